"""How a request is read: the one definition of its parts, shared by every job of the proxy.

The validator parses a request into a :class:`model.RequestCheck` with these helpers; recording
(file naming, caller bindings, secrets), replay (the exact-interaction key), coverage and call
patterns all read the request through them, so "the same request" means one thing everywhere:

* :func:`split_url` -- (path, query) of an absolute URL or origin-form target;
* :func:`query_pairs` / :func:`query_params` -- the query, pair by pair or by name (a repeated
  parameter is joined with commas, as the service's binder does: ``titleId=1&titleId=2`` is
  ``titleId=1,2``);
* :func:`parse_authorization` -- ``XBL3.0 x=<userhash>;<token>`` (scheme case-insensitive, as
  HTTP authentication schemes are; the credentials are visible ASCII, as HTTP credentials are);
* :func:`request_key` and :func:`request_language` -- "the same request" for recording and
  replay (:func:`key_of`: the same key of a request whose parts the validator has read);
* :data:`KNOWN_PARAMS` -- the query parameter names of the contract (read from the document):
  their values are the request's, any other parameter counts by name only.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping, Set
from functools import cache
from urllib.parse import quote, unquote, unquote_plus

from ..bounds import MAX_KEY_CHARS
from ..model import readable
from .document import query_parameters, shipped

CONTRACT_HEADER = "x-xbl-contract-version"

# Only the scheme is case-insensitive; the userhash and token are visible ASCII (RFC 9110
# token68/credentials), so a value holding other characters is malformed (R8 401). The value
# (stripped) that parse_authorization accepts, as a regex:
AUTHORIZATION = re.compile(r"(?i:XBL3\.0 x)=([!-:<-~]+);([!-~]+)\Z")
_SCHEME = "xbl3.0 x="
_SCHEME_CHARS = len(_SCHEME)
# Text that percent-encoding leaves as it is (urllib.parse.quote's always-safe characters, plus
# the comma of a value), recognised in one regex step instead of quote's per-character work.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.~-]*\Z").match
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9_.~,-]*\Z").match


@cache
def _known_params() -> frozenset[str]:
    return frozenset(name.lower() for name in query_parameters(shipped()))


class _KnownParams(Set[str]):
    """The query parameters of the achievements endpoints, lowercase, as the shipped contract
    lists them; the document is read when the set is first asked, not on import."""

    __slots__ = ()

    def __contains__(self, name: object) -> bool:
        return name in _known_params()

    def __iter__(self) -> Iterator[str]:
        return iter(_known_params())

    def __len__(self) -> int:
        return len(_known_params())


KNOWN_PARAMS: Set[str] = _KnownParams()


def split_url(url: str) -> tuple[str, str]:
    """(path, query) of an absolute URL or an origin-form target, without urllib; the path is
    percent-decoded, the query is not."""
    if not url.startswith("/"):
        scheme_end = url.find("://")
        start = url.find("/", scheme_end + 3 if scheme_end >= 0 else 0)
        url = url[start:] if start >= 0 else "/"
    url = url.partition("#")[0]
    path, _, query = url.partition("?")
    if "%" in path:
        path = unquote(path)
    return path, query


def _decode(text: str) -> str:
    return unquote_plus(text) if "%" in text or "+" in text else text


def query_pairs(query: str) -> list[tuple[str, str, str, str]]:
    """(piece, name, raw value, value) per ``&`` piece, in order; names and values decoded as
    form data (``+`` is a space)."""
    out = []
    for piece in query.split("&") if query else ():
        if not piece:
            continue
        name, _, raw = piece.partition("=")
        out.append((piece, _decode(name), raw, _decode(raw)))
    return out


def query_params(query: str) -> dict[str, str]:
    """Query values by name; a repeated parameter is joined with commas."""
    if "%" not in query and "+" not in query:
        # Nothing to decode (a client's usual query): the pieces as they are, unless a name repeats.
        pairs = [piece.partition("=") for piece in query.split("&") if piece]
        plain = {name: value for name, _, value in pairs}
        if len(plain) == len(pairs):
            return plain
    values: dict[str, list[str]] = {}
    for _piece, name, _raw, value in query_pairs(query):
        values.setdefault(name, []).append(value)
    return {name: ",".join(parts) for name, parts in values.items()}


def parse_authorization(value: str | None) -> tuple[str, str] | None:
    """``XBL3.0 x=<userhash>;<token>`` -> (userhash, token); None when absent or malformed (R8).

    The regex :data:`AUTHORIZATION` says what is accepted; it is read here with string methods,
    which take a tenth of the time on a real token (1,500 characters) and accept the same."""
    if not value:
        return None
    text = value.strip()
    head = text[:_SCHEME_CHARS]
    if not head.isascii() or head.lower() != _SCHEME:
        return None
    userhash, semicolon, token = text[_SCHEME_CHARS:].partition(";")
    if semicolon and _visible(userhash) and _visible(token):
        return userhash, token
    return None


def _visible(text: str) -> bool:
    """Whether ``text`` is one or more visible ASCII characters (``[!-~]+``)."""
    return text.isascii() and text.isprintable() and " " not in text and text != ""


def request_key(method: str, url: str, headers: Mapping[str, str]) -> str:
    """"The same request", for recording (an interaction re-recorded replaces the old one, with
    :func:`request_language`), replay (an exact interaction answers it, its language chosen by R6)
    and call patterns: the method, the path (case-insensitive), the query parameters in any order
    (a repeated one joined as the service joins it) and the contract version. Parameters that are
    not the contract's count by name only: their values are never kept in a cassette.
    ``headers`` have lowercase names.

    The key is readable (``GET /users/xuid(1)/achievements?maxItems=5&titleId=1 contract=2``):
    call-pattern findings name the request by it, and it holds no secret."""
    path, query = split_url(url)
    return key_of(method, path, query_params(query) if query else {}, contract_part(headers.get(CONTRACT_HEADER)))


def contract_part(contract: str | None) -> str:
    """The contract-version header's part of the key (a value as sent; "" for none)."""
    contract = (contract or "").strip()
    return " contract=" + _quote(contract, "") if contract else ""


def key_of(method: str, path: str, params: Mapping[str, str], contract: str) -> str:
    """:func:`request_key` of a request already read: its path (decoded), its query values by name
    (:func:`query_params`) and its :func:`contract_part`."""
    known = _known_params()
    parts = []
    for name, value in sorted(params.items()):
        if name.lower() in known:
            parts.append(_quote(name, "") + "=" + _quote(value, ","))
        else:
            parts.append(_quote(name, ""))
    key = readable(method.upper() + " " + path.lower()) + ("?" + "&".join(parts) if parts else "") + contract
    if len(key) > MAX_KEY_CHARS:  # kept by call patterns for thousands of requests
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        key = key[:MAX_KEY_CHARS - 20] + " sha256=" + digest
    return key


def _quote(text: str, safe: str) -> str:
    """Percent-encoding of client text; bytes that were not UTF-8 are encoded as they came."""
    if (_PLAIN_VALUE if safe == "," else _PLAIN_NAME)(text):
        return text
    try:
        return quote(text, safe=safe, errors="surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that no byte stood for
        return quote(readable(text), safe=safe)


def request_language(headers: Mapping[str, str]) -> str:
    """The Accept-Language a request was sent with (stripped; "" when none): two recordings of
    one request in two languages are two interactions."""
    return (headers.get("accept-language") or "").strip()
