"""What of a request's headers and URL is written: the header allow-lists and the query
allow-list (the contract's parameters), with token-shaped values and the exchange's secrets
taken out of what is kept."""

from __future__ import annotations

import functools

from collections.abc import Mapping
from urllib.parse import unquote, urlsplit, urlunsplit

from ..contract import KNOWN_PARAMS, query_pairs
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
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    path = parts.path
    if secret_re is not None and (secret_re.search(path) or secret_re.search(unquote(path))):
        path = redact_text(unquote(path), secret_re)[0]
    kept = []
    for piece, name, raw, value in query_pairs(parts.query):
        shown = piece.partition("=")[0]
        if _hides(name, secret_re) or _hides(shown, secret_re):
            shown = REDACTED
        if "=" not in piece:
            kept.append(shown)
        elif name.lower() in KNOWN_PARAMS and raw and not _hides(value, secret_re) and not _hides(raw, secret_re):
            kept.append(f"{shown}={raw}")
        else:
            kept.append(f"{shown}={REDACTED}" if raw else f"{shown}=")
    return urlunsplit((parts.scheme, netloc, path, "&".join(kept), ""))


def _hides(text: str, secret_re: SecretPattern | None) -> bool:
    """Whether a URL part is not to be written: token-shaped, a credential, or a secret's form."""
    if not text:
        return False
    if len(text) <= _CACHED_PART_CHARS:
        return _hides_short(text, secret_re)
    return _judged(text, secret_re)


def _judged(text: str, secret_re: SecretPattern | None) -> bool:
    return is_token_shaped(text) or (secret_re is not None and secret_re.search(text))


# A paging client sends the same few parameter names and values with one Authorization (one
# SecretPattern, compiled once): their verdicts are kept, so the URL of each log line costs a
# lookup per part instead of a shape check and a secret search.
_CACHED_PART_CHARS = 64
_hides_short = functools.lru_cache(maxsize=4096)(_judged)
