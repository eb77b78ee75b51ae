"""Secret removal and the leak scan, applied on every path that writes a cassette.

A recording keeps every value the service sent. What is removed is only what is verifiably a
secret: headers are kept from allow-lists; in URLs, token-shaped values of unknown query
parameters are dropped; in bodies, only the exchange's own secrets (the Authorization value, its
userhash and token, Signature, cookie values, wherever they appear) and verified credentials (an
``XBL3.0 x=…;…`` value, a JWT whose first segment decodes to a JSON header with ``alg``) are
replaced, each removal reported with its JSON path (:class:`Removal`). Before anything is written
the serialized bytes are scanned for the exchange's secrets and verified credentials. The
caller's userhash is kept only as its SHA-256 (``bindings``).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from ..bounds import MAX_SECRET_CHARS, depth_guard, json_loads, too_deep
from ..contract.request import KNOWN_PARAMS, parse_authorization, query_pairs

REDACTED = "<redacted>"

REQUEST_HEADERS = frozenset(
    {"x-xbl-contract-version", "accept-language", "content-type", "x-requestedserviceversion", "accept"}
)
RESPONSE_HEADERS = frozenset({"content-type", "retry-after", "www-authenticate"})
# Headers whose values are secrets wherever they appear.
SECRET_HEADERS = ("authorization", "proxy-authorization", "signature", "cookie", "set-cookie")
MIN_SECRET_LEN = 8  # shorter values are too likely to occur by chance

# Credentials recognised in any text, each verified before it is removed:
# * an Xbox Live authorization value, "XBL3.0 x=<userhash>;<token>" (or XBL2.0);
# * a JWT (JWS or JWE): base64url segments joined by dots whose first segment decodes to a JSON
#   object with "alg" -- so a description that merely contains "eyJ" text is left alone.
_XBL_AUTH = re.compile(r"XBL[23]\.0 x=[^;\s\"'\\]+;[^\s\"'\\,]+", re.IGNORECASE)
_JWT_CANDIDATE = re.compile(r"eyJ[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*){1,4}")
JWT, XBL_AUTH = "JWT", "XBL authorization"
# A long base64/hex run: header and query values of this shape are never kept (bodies are not
# judged by shape: real bodies are full of long ids).
_BLOB_RE = re.compile(r"[A-Za-z0-9+/=_.-]{40,}")  # no ':' so URLs and timestamps never match


class LeakError(Exception):
    """The serialized output still holds a secret; nothing was written."""

    def __init__(self, target: str, findings: list[str]):
        self.target = target
        self.findings = findings
        super().__init__(f"{target}: refused to write, secret found: {', '.join(findings)}")


@dataclass(frozen=True, slots=True)
class Removal:
    """One value taken out of a recorded body: where (a JSON pointer; "" for a text body) and
    what it was (the secret's name, or JWT / XBL authorization). Never the value itself."""

    path: str
    what: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "what": self.what}


def _is_jwt_header(segment: str) -> bool:
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(header, dict) and "alg" in header


def find_credentials(text: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of every verified credential in ``text``, in order."""
    found = []
    if ".0 " in text:  # one scan for either case of "XBL3.0 x="
        found += [(m.start(), m.end(), XBL_AUTH) for m in _XBL_AUTH.finditer(text)]
    if "eyJ" in text:
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
    for _piece, name, raw, value in query_pairs(urlsplit(url).query):
        if name.lower() not in KNOWN_PARAMS and _secret_value(raw, value):
            found[f"query parameter {name}"] = raw
            found[f"query parameter {name} (decoded)"] = value
    return {k: v for k, v in found.items() if len(v) >= MIN_SECRET_LEN}


# Characters percent-encoding never changes (RFC 3986 "unreserved"), which JSON never escapes
# either: a run of them in a secret stands verbatim in every form of it, so it serves as the
# cheap substring probe that decides whether the regex needs to run at all.
_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]+")
_ALNUM = re.compile(r"[A-Za-z0-9]+")  # what both base64 alphabets share
_PROBE_MIN = 4  # shortest run worth probing; a secret without one is always searched
_B64_MIN = 8  # shortest base64 core searched for (a shorter one is too likely by chance)


def _utf8(text: str) -> bytes:
    """The bytes ``text`` stands for: a lone surrogate is the byte mitmproxy decoded it from
    (``surrogateescape``), or its own UTF-8 form when it is not one of those."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _hex(byte: int) -> str:
    """A regex of ``%XX`` for one byte, hex digits in either case."""
    return "%" + "".join(f"[{c}{c.lower()}]" if c.isalpha() else c for c in f"{byte:02X}")


def _percent_form(value: str) -> str:
    """A regex matching ``value`` percent-encoded in any mix (each reserved character raw or as
    its ``%XX`` bytes, in either case; a space also as ``+``)."""
    out = []
    for ch in value:
        if _UNRESERVED.fullmatch(ch):
            out.append(re.escape(ch))
            continue
        options = [re.escape(ch), "".join(_hex(b) for b in _utf8(ch))]
        if ch == " ":
            options.append(r"\+")
        out.append("(?:" + "|".join(options) + ")")
    return "".join(out)


def _base64_forms(value: str) -> list[str]:
    """The parts of ``value``'s base64 (standard and URL-safe alphabets) that stand in any base64
    text holding it, whatever its alignment: for each of the three offsets, the characters
    that only the secret's own bits decide."""
    data = _utf8(value)
    forms = []
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data + b"\0\0").decode("ascii")
        start = -(-8 * offset // 6)
        end = 8 * (offset + len(data)) // 6
        core = encoded[start:end]
        if len(core) >= _B64_MIN:
            forms += [core, core.replace("+", "-").replace("/", "_")]
    return list(dict.fromkeys(forms))


def _json_forms(value: str) -> list[str]:
    """``value`` as JSON strings write it, when that differs from the value."""
    forms = {json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    forms |= {f.replace("/", "\\/") for f in forms}
    return [f for f in forms if f != value]


class SecretPattern:
    """The exchange's secret values, each searched in every form it can be written in: as it is,
    percent-encoded (any mix), base64 (either alphabet, any alignment) and, in JSON text,
    JSON-escaped. ``find``/``sub`` work on decoded text (a body's strings, a URL) or, with
    ``in_json``, on serialized JSON (a cassette line, a log line). Every form of a value has a
    named group of one regex, so a match names its secret; both look for cheap substring probes
    first (~10x faster than the regex over a 32 KiB page). A value longer than
    :data:`bounds.MAX_SECRET_CHARS` is searched as plain text, as it is and fully percent-encoded
    (a regex of its other forms would cost seconds to build)."""

    def __init__(self, secrets: Mapping[str, str]) -> None:
        names: dict[str, str] = {}
        for name, value in secrets.items():
            names.setdefault(value, name)
        self.values = sorted(names, key=len, reverse=True)  # a longer value holding a shorter one wins
        self.names: dict[str, str] = {}  # regex group -> what a match is
        self.literals: list[tuple[str, str]] = []  # (long value in a form, what it is), longest first
        decoded, escaped, probes = [], [], set()
        for i, value in enumerate(self.values):
            name = names[value]
            if len(value) > MAX_SECRET_CHARS:
                self.literals += [(value, name), (quote(value, safe=""), f"{name} (percent-encoded)")]
                continue
            forms = [(re.escape(value), name), (_percent_form(value), f"{name} (percent-encoded)")]
            forms += [(re.escape(f), f"{name} (base64)") for f in _base64_forms(value)]
            for j, (source, what) in enumerate(forms):
                group = f"s{i}_{j}"
                self.names[group] = what
                decoded.append(f"(?P<{group}>{source})")
            for j, form in enumerate(_json_forms(value)):
                group = f"s{i}_j{j}"
                self.names[group] = f"{name} (JSON-escaped)"
                escaped.append(f"(?P<{group}>{re.escape(form)})")
        # Probes: a value holding another secret is never present, in any form, without that
        # one's form (a base64 text of the whole Authorization holds one of its token's three
        # base64 cores), so only the values that hold no other are probed.
        self.always = False  # a secret with no probe: the regex always runs
        short = [v for v in self.values if len(v) <= MAX_SECRET_CHARS]
        for value in short:
            if any(o != value and o in value for o in short):
                continue
            runs = _UNRESERVED.findall(value)
            run = max(runs, key=len) if runs else ""
            if len(run) < _PROBE_MIN:
                self.always = True
            probes.add(run)
            for core in _base64_forms(value):  # its longest run that both alphabets share
                run = max(_ALNUM.findall(core), key=len, default="")
                self.always = self.always or not run
                probes.add(run)
        self.regex = re.compile("|".join(decoded)) if decoded else None
        self.json_regex = re.compile("|".join(decoded + escaped)) if decoded else None
        self.non_ascii = not all(v.isascii() for v in self.values)
        self.json_escaped = any(_JSON_ESCAPED.search(v) for v in self.values)
        probes.discard("")
        # A probe holding another is never present without it: look for the shortest ones only.
        self._probes = [p for p in probes if not any(o != p and o in p for o in probes)]

    def _probe(self, text: str) -> bool:
        return self.regex is not None and (self.always or any(p in text for p in self._probes))

    def search(self, text: str, in_json: bool = False) -> bool:
        """Whether a secret is in ``text`` (decoded text, or serialized JSON with ``in_json``)."""
        if any(lit in text for lit, _ in self.literals):
            return True
        return self._probe(text) and (self.json_regex if in_json else self.regex).search(text) is not None

    def find(self, text: str, in_json: bool = False) -> list[str]:
        """What is in ``text``: each secret's form found, named, once each."""
        found = [what for lit, what in self.literals if lit in text]
        if self._probe(text):
            regex = self.json_regex if in_json else self.regex
            found += [self.names[m.lastgroup] for m in regex.finditer(text)]
        return list(dict.fromkeys(found))

    def sub(self, text: str, in_json: bool = False) -> tuple[str, list[str]]:
        """``text`` with every form of every secret replaced, and what was replaced (in order)."""
        removed: list[str] = []
        for lit, what in self.literals:
            if lit in text:
                removed += [what] * text.count(lit)
                text = text.replace(lit, REDACTED)
        if self._probe(text):
            def named(m: re.Match[str]) -> str:
                removed.append(self.names[m.lastgroup])
                return REDACTED

            text = (self.json_regex if in_json else self.regex).sub(named, text)
        return text, removed


def secret_pattern(secrets: Mapping[str, str]) -> SecretPattern | None:
    kept = tuple(sorted((k, v) for k, v in secrets.items() if len(v) >= MIN_SECRET_LEN))
    if not kept:
        return None
    if any(len(v) > MAX_SECRET_CHARS for _k, v in kept):
        return SecretPattern(dict(kept))  # not kept in the cache: it holds the values
    return _pattern(kept)


@functools.lru_cache(maxsize=256)
def _pattern(secrets: tuple[tuple[str, str], ...]) -> SecretPattern:
    """Compiled once per set of secrets: a client sends the same Authorization again and again."""
    return SecretPattern(dict(secrets))


def redact_text(value: str, secret_re: SecretPattern | None = None) -> tuple[str, list[str]]:
    """``value`` (decoded text: a body's string, a URL part) with every form of the exchange's
    secrets and every verified credential replaced, and what was removed (names, in order)."""
    return _scrub(value, secret_re, in_json=False)


def scrub_line(text: str, secret_re: SecretPattern | None = None) -> tuple[str, list[str]]:
    """:func:`redact_text` for a serialized JSON line the proxy writes about a request (a
    validation-log entry, an event-log line): JSON-escaped forms too, and the replacement keeps
    the JSON valid. Costs a few substring searches when there is nothing to remove."""
    return _scrub(text, secret_re, in_json=True)


def _scrub(text: str, secret_re: SecretPattern | None, in_json: bool) -> tuple[str, list[str]]:
    removed: list[str] = []
    if secret_re is not None:
        text, removed = secret_re.sub(text, in_json)
    found = find_credentials(text)
    if found:
        out, at = [], 0
        for start, end, kind in found:
            out += [text[at:start], REDACTED]
            removed.append(kind)
            at = end
        text = "".join(out) + text[at:]
    return text, removed


# A character JSON escapes ('"', a backslash, a control character): a secret holding one may not
# stand verbatim in JSON text in every form, so only decoding the JSON can tell.
_JSON_ESCAPED = re.compile(r'["\\\x00-\x1f]')


# A \u escape of a printable ASCII character: with \/ the only escapes that can stand for a
# character of a secret (ASCII, no quote or backslash) or of a credential.
_ASCII_ESCAPE = re.compile(r"\\u00[2-7][0-9A-Fa-f]")


def _searchable(text: str | None, secret_re: SecretPattern | None) -> str | None:
    """JSON text in which every secret and credential inside its strings stands as in the decoded
    strings (an escaped solidus read as ``/``), or None when only decoding the JSON can tell."""
    if text is None:
        return None
    if secret_re is not None and (secret_re.json_escaped or secret_re.non_ascii):
        return None  # a secret JSON would escape
    if "\\" in text:
        if _ASCII_ESCAPE.search(text):
            return None
        text = text.replace("\\/", "/")
    return text


def _holds_secrets(text: str, secret_re: SecretPattern | None) -> bool:
    return bool(find_credentials(text) or (secret_re is not None and secret_re.search(text)))


def needs_redaction(obj: Any, secret_re: SecretPattern | None = None, text: str | None = None) -> bool:
    """Whether :func:`redact_body` would change anything, decided on the JSON text at C speed
    (a recorded page is thousands of strings; almost none hold anything to redact). ``text`` is
    the JSON the value was parsed from, searched as it is when its escapes cannot hide anything."""
    searchable = _searchable(text, secret_re)
    if searchable is None:
        if secret_re is not None and secret_re.json_escaped:
            return True  # a secret JSON would escape: only the walk can tell
        try:
            searchable = json.dumps(obj, ensure_ascii=False)
        except (TypeError, ValueError):
            return True
    return _holds_secrets(searchable, secret_re)


def redact_body(obj: Any, secret_re: SecretPattern | None = None, text: str | None = None
                ) -> tuple[Any, list[Removal]]:
    """A JSON value with the exchange's secrets and verified credentials replaced inside its
    strings (keys included), and every removal with its JSON pointer. When nothing is removed
    the value itself is returned (``text``: the JSON it was parsed from, if at hand)."""
    with depth_guard():
        if not needs_redaction(obj, secret_re, text):
            return obj, []
        removals: list[Removal] = []
        return _redact_value(obj, secret_re, "", removals), removals


def _pointer_part(key: str) -> str:
    return "/" + key.replace("~", "~0").replace("/", "~1")


def _redact_value(obj: Any, secret_re: SecretPattern | None, path: str, removals: list[Removal]) -> Any:
    if isinstance(obj, str):
        value, removed = redact_text(obj, secret_re)
        removals += [Removal(path, what) for what in removed]
        return value
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if isinstance(k, str):
                k, removed = redact_text(k, secret_re)
                removals += [Removal(path + _pointer_part(k), what) for what in removed]
            out[k] = _redact_value(v, secret_re, path + _pointer_part(str(k)), removals)
        return out
    if isinstance(obj, list):
        return [_redact_value(v, secret_re, f"{path}/{i}", removals) for i, v in enumerate(obj)]
    return obj


@dataclass(slots=True)
class RecordedBody:
    """A response body as it is recorded: ``body`` (parsed JSON) or ``body_text`` (anything
    else), ``raw`` (the service's JSON text, when nothing was removed from it) and the removals."""

    body: Any = None
    body_text: str | None = None
    raw: str | None = None
    removals: list[Removal] = field(default_factory=list)
    is_json: bool = False


def recorded_body(body: bytes, content_type: str | None, secret_re: SecretPattern | None,
                  parsed: tuple[Any] | None = None) -> RecordedBody:
    """The one way a response body is made ready for a cassette: JSON bodies parsed (``parsed``:
    the parsed value, if at hand), everything else as text; secrets and credentials removed
    and reported; a body nothing was removed from keeps the service's text."""
    out = RecordedBody()
    if not body:
        return out
    text = None
    if not (content_type and "json" in content_type.lower()):
        parsed = None  # only a JSON body is recorded as JSON
    else:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if parsed is None:
            try:
                # A body nested deeper than MAX_JSON_DEPTH is kept as text: every later reader
                # of the cassette can hold it.
                parsed = (json_loads(body, limit_depth=True),)
            except ValueError:
                parsed = None
        elif too_deep(parsed[0]):
            parsed = None
    if parsed is not None:
        out.is_json = True
        out.body, out.removals = redact_body(parsed[0], secret_re, text)
        if not out.removals:
            out.raw = text
        return out
    out.body_text, removed = redact_text(body.decode("utf-8", "replace"), secret_re)
    out.removals = [Removal("", what) for what in removed]
    return out


def removals_in(body: bytes, content_type: str | None, secret_re: SecretPattern | None) -> list[Removal]:
    """What :func:`recorded_body` would remove, decided on the bytes first (C-speed substring
    checks; the body is parsed only when something may be there)."""
    if not body:
        return []
    searchable = _searchable(body.decode("utf-8", "replace"), secret_re)
    if searchable is not None and not _holds_secrets(searchable, secret_re):
        return []
    return recorded_body(body, content_type, secret_re).removals


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
    return bool(text) and (is_token_shaped(text) or (secret_re is not None and secret_re.search(text)))


def redact_interaction(interaction: dict, secrets: Mapping[str, str] | None = None) -> dict:
    """A redacted copy of one cassette interaction (idempotent); the secrets of its own request
    count, with ``secrets``."""
    out = dict(interaction)
    request = dict(out.get("request") or {})
    response = dict(out.get("response") or {})
    own = request_secrets(str(request.get("url") or ""), {str(k).lower(): str(v) for k, v in (request.get("headers") or {}).items()},
                          {str(k).lower(): str(v) for k, v in (response.get("headers") or {}).items()})
    secret_re = secret_pattern({**own, **(secrets or {})})
    if "url" in request:
        request["url"] = redact_url(request["url"])
    if "headers" in request:
        request["headers"] = redact_request_headers(request["headers"])
    if "headers" in response:
        response["headers"] = redact_response_headers(response["headers"])
    for part in (request, response):
        if "body" in part:
            part["body"] = redact_body(part["body"], secret_re)[0]
        if "body_text" in part:
            part["body_text"] = redact_text(part["body_text"], secret_re)[0]
    out["request"], out["response"] = request, response
    return out


def leak_scan(serialized: bytes, secrets: Mapping[str, str]) -> list[str]:
    """What is present in ``serialized`` (JSON or YAML text about to be written): the secrets
    by field, in any of their forms (raw, percent-encoded, base64, JSON-escaped, each named),
    then the kinds of verified credentials."""
    text = serialized.decode("utf-8", "replace")
    pattern = secret_pattern(secrets)
    found: list[str] = []
    if pattern is not None:
        found = pattern.find(text, in_json=True)
    kinds = {kind for _s, _e, kind in find_credentials(text)}
    found += [kind for kind in (XBL_AUTH, JWT) if kind in kinds]
    return found
