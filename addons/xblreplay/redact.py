"""Secret removal and the leak scan, applied on every path that writes a cassette.

Headers are kept only from allow-lists, token-shaped query values and body strings are replaced,
and the serialized bytes are scanned for the request's own secrets before anything is written.
The caller's userhash is kept only as its SHA-256 (``bindings``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

REDACTED = "<redacted>"

REQUEST_HEADERS = frozenset(
    {"x-xbl-contract-version", "accept-language", "content-type", "x-requestedserviceversion", "accept"}
)
RESPONSE_HEADERS = frozenset({"content-type", "retry-after", "www-authenticate"})
# Query parameters of the achievements endpoints (achievements-api.md §1.2), lowercase.
KNOWN_PARAMS = frozenset(
    {"skipitems", "continuationtoken", "maxitems", "titleid", "unlockedonly", "possibleonly", "types", "orderby"}
)
# Headers whose values are secrets wherever they appear.
SECRET_HEADERS = ("authorization", "proxy-authorization", "signature", "cookie", "set-cookie")
MIN_SECRET_LEN = 8  # shorter values are too likely to occur by chance

_JWT = r"eyJ[A-Za-z0-9_-]{10,}(?:\.[A-Za-z0-9_-]*){0,4}"
_XBL_AUTH = r"XBL[23]\.0 x=[^\s\"',]*"
_TOKEN_RE = re.compile(f"{_JWT}|{_XBL_AUTH}")
_BLOB_RE = re.compile(r"[A-Za-z0-9+/=_.-]{40,}")  # no ':' so URLs and timestamps never match
_GENERIC_LEAKS = (("JWT", re.compile(_JWT.encode())), ("XBL authorization", re.compile(_XBL_AUTH.encode())))
_AUTH_RE = re.compile(r"XBL[23]\.0 x=([^;]*);(.*)", re.S)


class LeakError(Exception):
    """The serialized output still holds a secret; nothing was written."""

    def __init__(self, target: str, findings: list[str]):
        self.target = target
        self.findings = findings
        super().__init__(f"{target}: refused to write, secret found: {', '.join(findings)}")


def is_token_shaped(value: str) -> bool:
    """A JWT, an XBL authorization value, or a long base64/hex blob (not a URL/GUID/time)."""
    return bool(_TOKEN_RE.search(value) or _BLOB_RE.fullmatch(value))


def parse_authorization(value: str | None) -> tuple[str, str] | None:
    """``XBL3.0 x=<userhash>;<token>`` -> (userhash, token), else None."""
    m = _AUTH_RE.fullmatch(value.strip()) if value else None
    return (m.group(1), m.group(2)) if m else None


def userhash_sha256(userhash: str) -> str:
    return hashlib.sha256(userhash.encode("utf-8")).hexdigest()


def request_secrets(
    url: str, request_headers: Mapping[str, str], response_headers: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Every secret of one exchange, named by where it came from (the names are safe to log)."""
    found: dict[str, str] = {}
    sides = (("request", request_headers), ("response", response_headers or {}))
    for side, headers in sides:
        for name, value in headers.items():
            name = name.lower()
            if name in SECRET_HEADERS:
                found[f"{side} header {name}"] = value
                if name in ("cookie", "set-cookie"):
                    for part in value.split(";"):
                        cname, _, cvalue = part.strip().partition("=")
                        found[f"{side} header {name} ({cname})"] = cvalue
            elif is_token_shaped(value):
                found[f"{side} header {name}"] = value
    auth = parse_authorization(request_headers.get("authorization"))
    if auth:
        found["authorization userhash"], found["authorization token"] = auth
    for _piece, name, raw, value in _query(urlsplit(url).query):
        if name.lower() not in KNOWN_PARAMS and is_token_shaped(value):
            found[f"query parameter {name}"] = raw
            found[f"query parameter {name} (decoded)"] = value
    return {k: v for k, v in found.items() if len(v) >= MIN_SECRET_LEN}


class SecretPattern:
    """The exchange's secret values as one pattern. ``search``/``sub`` look for the plain values
    first (substring search is ~10x faster than a regex alternation over a 32 KiB page)."""

    def __init__(self, values: list[str]) -> None:
        self.values = values
        self.regex = re.compile("|".join(map(re.escape, values)))
        self.pattern = self.regex.pattern

    def search(self, text: str) -> re.Match[str] | None:
        return self.regex.search(text) if any(v in text for v in self.values) else None

    def sub(self, repl: str, text: str) -> str:
        return self.regex.sub(repl, text) if any(v in text for v in self.values) else text


def secret_pattern(secrets: Mapping[str, str]) -> SecretPattern | None:
    values = sorted({v for v in secrets.values() if len(v) >= MIN_SECRET_LEN}, key=len, reverse=True)
    return SecretPattern(values) if values else None


def redact_text(value: str, secret_re: SecretPattern | None = None) -> str:
    if _BLOB_RE.fullmatch(value):
        return REDACTED
    value = _TOKEN_RE.sub(REDACTED, value)
    return secret_re.sub(REDACTED, value) if secret_re else value


# In a JSON text: a string that _BLOB_RE matches whole, or the start of a token.
_BLOB_STRING_RE = re.compile(r'"[A-Za-z0-9+/=_.-]{40,}"')
# In a secret_pattern (re.escape'd values): a character JSON escapes ('"', a control character,
# or a backslash, which re.escape doubles), so the secret would not appear verbatim in JSON text.
_JSON_ESCAPED = re.compile(r'["\x00-\x1f]|\\\\')


def needs_redaction(obj: Any, secret_re: SecretPattern | None = None, text: str | None = None) -> bool:
    """Whether :func:`redact_body` would change anything, decided on the JSON text at C speed
    (a recorded page is thousands of strings; almost none hold anything to redact). ``text`` is
    the JSON the value was parsed from, used as is when it has no escapes (then every string
    stands in it verbatim)."""
    if secret_re is not None and _JSON_ESCAPED.search(secret_re.pattern):
        return True  # a secret JSON would escape: only the walk can tell
    if text is None or "\\" in text:
        try:
            text = json.dumps(obj, ensure_ascii=False)
        except (TypeError, ValueError):
            return True
    return bool(_BLOB_STRING_RE.search(text)
                or (("eyJ" in text or "XBL" in text) and _TOKEN_RE.search(text))  # the tokens' prefixes
                or (secret_re is not None and secret_re.search(text)))


def redact_body(obj: Any, secret_re: SecretPattern | None = None, text: str | None = None) -> Any:
    """A copy of a JSON value with token-shaped or secret-holding strings replaced (``text``:
    the JSON it was parsed from, if at hand)."""
    if not needs_redaction(obj, secret_re, text):
        return obj
    return _redact_value(obj, secret_re)


def _redact_value(obj: Any, secret_re: SecretPattern | None) -> Any:
    if isinstance(obj, str):
        return redact_text(obj, secret_re)
    if isinstance(obj, dict):
        return {k: _redact_value(v, secret_re) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_redact_value(v, secret_re) for v in obj]
    return obj


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


def _query(query: str) -> list[tuple[str, str, str, str]]:
    """(piece, name, raw value, value) per ``&`` piece; ``+`` stays ``+`` (tokens are base64)."""
    out = []
    for piece in query.split("&") if query else ():
        name, _, raw = piece.partition("=")
        out.append((piece, unquote(name), raw, unquote(raw)))
    return out


def redact_url(url: str) -> str:
    """Drops credentials, the fragment and token-shaped values of unknown query parameters."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    kept = [
        piece for piece, name, _raw, value in _query(parts.query)
        if name.lower() in KNOWN_PARAMS or not is_token_shaped(value)
    ]
    return urlunsplit((parts.scheme, netloc, parts.path, "&".join(kept), ""))


def redact_interaction(interaction: dict, secrets: Mapping[str, str] | None = None) -> dict:
    """A redacted copy of one cassette interaction (idempotent)."""
    secret_re = secret_pattern(secrets or {})
    out = dict(interaction)
    request = dict(out.get("request") or {})
    response = dict(out.get("response") or {})
    if "url" in request:
        request["url"] = redact_url(request["url"])
    if "headers" in request:
        request["headers"] = redact_request_headers(request["headers"])
    if "headers" in response:
        response["headers"] = redact_response_headers(response["headers"])
    for part in (request, response):
        if "body" in part:
            part["body"] = redact_body(part["body"], secret_re)
        if "body_text" in part:
            part["body_text"] = redact_text(part["body_text"], secret_re)
    out["request"], out["response"] = request, response
    return out


def leak_scan(serialized: bytes, secrets: Mapping[str, str]) -> list[str]:
    """Names of the secrets (by field) and generic token patterns present in ``serialized``."""
    found = [name for name, value in secrets.items() if value and value.encode("utf-8") in serialized]
    found += [name for name, pattern in _GENERIC_LEAKS if pattern.search(serialized)]
    return found
