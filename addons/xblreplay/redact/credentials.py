"""What counts as a secret: an exchange's own secrets (:func:`request_secrets`) and the verified
credentials recognised in any text (:func:`find_credentials`).

Headers whose values are secrets wherever they appear (Authorization, Signature, cookies), any
header or unknown query value that is token-shaped, and two kinds of credential, each verified
before it is removed:

* an Xbox Live authorization value, ``XBL3.0 x=<userhash>;<token>`` (or XBL2.0);
* a JWT (JWS or JWE): base64url segments joined by dots whose first segment decodes to a JSON
  object with ``alg`` -- so a description that merely contains ``eyJ`` text is left alone.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from urllib.parse import unquote, urlsplit

from ..contract import KNOWN_PARAMS, parse_authorization, query_pairs

# Headers whose values are secrets wherever they appear.
SECRET_HEADERS = ("authorization", "proxy-authorization", "signature", "cookie", "set-cookie")
MIN_SECRET_LEN = 8  # shorter values are too likely to occur by chance

_XBL_AUTH = re.compile(r"XBL[23]\.0 x=[^;\s\"'\\]+;[^\s\"'\\,]+", re.IGNORECASE)
_JWT_CANDIDATE = re.compile(r"eyJ[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*){1,4}")
JWT, XBL_AUTH = "JWT", "XBL authorization"
# A long base64/hex run: header and query values of this shape are never kept (bodies are not
# judged by shape: real bodies are full of long ids).
_BLOB_RE = re.compile(r"[A-Za-z0-9+/=_.-]{40,}")  # no ':' so URLs and timestamps never match


def _is_jwt_header(segment: str) -> bool:
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(header, dict) and "alg" in header


def find_credentials(text: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of every verified credential in ``text``, in order."""
    found: list[tuple[int, int, str]] = []
    xbl = ".0 " in text  # one scan for either case of "XBL3.0 x="
    jwt = "eyJ" in text
    if not xbl and not jwt:  # most text: two scans
        return found
    if xbl:
        found += [(m.start(), m.end(), XBL_AUTH) for m in _XBL_AUTH.finditer(text)]
    if jwt:
        found += [(m.start(), m.end(), JWT) for m in _JWT_CANDIDATE.finditer(text)
                  if _is_jwt_header(m.group().partition(".")[0])
                  and not any(s <= m.start() < e for s, e, _ in found)]
    return sorted(found)


def is_token_shaped(value: str) -> bool:
    """A header or query value never kept: a credential, or a long base64/hex blob (not a URL,
    GUID or time)."""
    return bool(_BLOB_RE.fullmatch(value) or find_credentials(value))


def _secret_value(raw: str, value: str) -> bool:
    """A query value never kept: token-shaped as sent or decoded (base64's '+' is a space in form
    decoding, so both forms are judged)."""
    return is_token_shaped(value) or is_token_shaped(unquote(raw))


def userhash_sha256(userhash: str) -> str:
    return hashlib.sha256(userhash.encode("utf-8")).hexdigest()


def request_secrets(
    url: str, request_headers: Mapping[str, str], response_headers: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The exchange's own secrets, named by where they came from (the names are safe to log):
    the Authorization value with its userhash and token, Signature, cookie values, and any other
    header or unknown query value that is never kept because of its shape."""
    found = header_secrets(request_headers, response_headers)
    found.update(query_secrets(url))
    return found


def header_secrets(request_headers: Mapping[str, str], response_headers: Mapping[str, str] | None = None
                   ) -> dict[str, str]:
    """The secrets of an exchange's headers (see :func:`request_secrets`)."""
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
    return {k: v for k, v in found.items() if len(v) >= MIN_SECRET_LEN}


def query_secrets(url: str) -> dict[str, str]:
    """The secrets of a URL's query: the value of a parameter the contract does not know that is
    never kept because of its shape, as sent and decoded (see :func:`request_secrets`)."""
    return pair_secrets(query_pairs(urlsplit(url).query))


def pair_secrets(pairs: Iterable[tuple[str, str, str, str]]) -> dict[str, str]:
    """:func:`query_secrets` of a query already split (``contract.query_pairs``)."""
    found: dict[str, str] = {}
    for _piece, name, raw, value in pairs:
        if name.lower() not in KNOWN_PARAMS and _secret_value(raw, value):
            found[f"query parameter {name}"] = raw
            found[f"query parameter {name} (decoded)"] = value
    return {k: v for k, v in found.items() if len(v) >= MIN_SECRET_LEN} if found else found
