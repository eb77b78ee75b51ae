"""What of a request's headers and URL is written: the header allow-lists and the query
allow-list (the contract's parameters), with token-shaped values and the exchange's secrets
taken out of what is kept."""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from ..contract import KNOWN_PARAMS, query_pairs
from ..memo import Memo
from .credentials import SECRET_HEADERS, is_token_shaped
from .pattern import REDACTED, SecretPattern
from .text import redact_text

REQUEST_HEADERS = frozenset(
    {"x-xbl-contract-version", "accept-language", "content-type", "x-requestedserviceversion", "accept"}
)
RESPONSE_HEADERS = frozenset({"content-type", "retry-after", "www-authenticate"})


def _redact_headers(headers: Mapping[str, str], keep) -> dict[str, str]:
    out = {}
    for name, value in headers.items():
        name = name.lower()
        if keep(name) and name not in SECRET_HEADERS and not is_token_shaped(value):
            out[name] = value
    return out


def redact_request_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return _redact_headers(headers, REQUEST_HEADERS.__contains__)


def redact_response_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return _redact_headers(headers, lambda n: n in RESPONSE_HEADERS or n.startswith("x-xbl-"))


def redact_url(url: str, secret_re: SecretPattern | None = None) -> str:
    """The URL as it may be written anywhere (cassettes, the validation log, event-log lines).
    Query parameters are allow-listed like headers: a parameter of the contract keeps its value
    unless that value is token-shaped or holds a secret; any other parameter keeps its name and
    loses its value (``zq=<redacted>``). Credentials before the host, the fragment, and the
    exchange's secrets anywhere in the path go too."""
    return written_url(*split_query(url), secret_re)


def split_query(url: str) -> tuple[str | SplitResult, list[tuple[str, str, str, str]]]:
    """(what comes before the query, the query's pairs as ``contract.query_pairs`` reads them),
    for :func:`written_url`. A URL without a '#', a tab or a line break (which urlsplit removes)
    splits at its first '?' as urlsplit splits it; any other is split by urlsplit."""
    if "#" in url or "\t" in url or "\n" in url or "\r" in url:
        parts = urlsplit(url)
        return parts, query_pairs(parts.query)
    before, _, query = url.partition("?")
    return before, query_pairs(query)


def written_url(before: str | SplitResult, pairs: list[tuple[str, str, str, str]],
                secret_re: SecretPattern | None) -> str:
    """:func:`redact_url` of a URL split by :func:`split_query`. A client sends a few paths and
    parameters again and again with one Authorization (one SecretPattern): the written form of
    each path and each parameter is kept, so a URL costs a lookup per part."""
    mark = pattern_mark(secret_re)
    if not isinstance(before, str):
        head = _written_head(before, secret_re)
    else:
        kept = _HEADS.get(before)
        if kept is not None and kept[0] is mark:
            head = kept[1]
        else:
            head = _written_head(urlsplit(before), secret_re)
            _keep(_HEADS, before, mark, head)
    if not pairs:
        return head
    written = []
    for piece, name, raw, value in pairs:
        kept = _PIECES.get(piece)
        if kept is not None and kept[0] is mark:
            written.append(kept[1])
        else:
            shown = _written_piece(piece, name, raw, value, secret_re)
            _keep(_PIECES, piece, mark, shown)
            written.append(shown)
    return head + "?" + "&".join(written)


_NO_SECRETS = object()


def pattern_mark(secret_re: SecretPattern | None) -> object:
    """What a kept written form remembers of the SecretPattern it was written under: a weak
    reference (the same object for as long as the pattern lives, never again after), so that a
    kept form holds no pattern in memory; ``_NO_SECRETS`` for none."""
    return _NO_SECRETS if secret_re is None else weakref.ref(secret_re)


def _written_head(parts: SplitResult, secret_re: SecretPattern | None) -> str:
    """The scheme, host and path as written: credentials before the host and the fragment gone,
    the exchange's secrets removed from the path."""
    netloc = parts.netloc.rpartition("@")[2]
    path = parts.path
    if secret_re is not None and (secret_re.search(path) or secret_re.search(unquote(path))):
        path = redact_text(unquote(path), secret_re)[0]
    return urlunsplit((parts.scheme, netloc, path, "", ""))


def _written_piece(piece: str, name: str, raw: str, value: str, secret_re: SecretPattern | None) -> str:
    """One ``&`` piece of the query as written."""
    shown = piece.partition("=")[0]
    if _hides(name, secret_re) or _hides(shown, secret_re):
        shown = REDACTED
    if "=" not in piece:
        return shown
    if name.lower() in KNOWN_PARAMS and raw and not _hides(value, secret_re) and not _hides(raw, secret_re):
        return f"{shown}={raw}"
    return f"{shown}={REDACTED}" if raw else f"{shown}="


# The written form of the paths (up to the query) and query pieces seen last, each with the
# mark of the SecretPattern it was written under: plain dicts, emptied when full, since a
# lookup is all a paging client's URL costs and an LRU's bookkeeping would double it. A part
# holding a secret is held in memory only, as the SecretPattern holds it.
_KEPT_PARTS = 4096
_HEADS = Memo(_KEPT_PARTS)
_PIECES = Memo(_KEPT_PARTS)
_KEPT_PART_CHARS = 512


def _keep(kept: Memo, part: str, mark: object, written: Any) -> None:
    if len(part) <= _KEPT_PART_CHARS:
        kept.put(part, (mark, written))


def _hides(text: str, secret_re: SecretPattern | None) -> bool:
    """Whether a URL part is not to be written: token-shaped, a credential, or a secret's form.
    A paging client sends the same few parameter names and values with one Authorization: the
    verdicts on short parts are kept like the written forms."""
    if not text:
        return False
    if len(text) > _JUDGED_PART_CHARS:
        return _judged(text, secret_re)
    mark = pattern_mark(secret_re)
    kept = _VERDICTS.get(text)
    if kept is not None and kept[0] is mark:
        return kept[1]
    verdict = _judged(text, secret_re)
    _keep(_VERDICTS, text, mark, verdict)
    return verdict


def _judged(text: str, secret_re: SecretPattern | None) -> bool:
    return is_token_shaped(text) or (secret_re is not None and secret_re.search(text))


_VERDICTS = Memo(_KEPT_PARTS)
_JUDGED_PART_CHARS = 64
