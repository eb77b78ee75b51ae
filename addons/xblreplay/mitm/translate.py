"""Between mitmproxy's flows and the policy's plain data: a request's host, URL and headers and a
response as the policy reads them, and the response an :class:`~..model.Answer` is sent as."""

from __future__ import annotations

import functools
import time

from mitmproxy import http
from mitmproxy.net.http import status_codes, url

from ..memo import Memo
from ..model import Answer, Violation, violations_header
from ..proxy import Reply


def pretty_host(request: http.Request, headers: dict[str, str] | None = None) -> str:
    """``request.pretty_host``, the host every hook tells the service's requests by (``headers``:
    the request's as :func:`lowercase_headers` gives them, when they are at hand). mitmproxy
    looks the Host header up among every header line, and parses it (IDNA decoding, checks), on
    every read, which costs more than the rest of a hook: the header lines are read as a whole,
    and the parse is kept for the last 64 distinct Host values."""
    authority = _host_header(request, _lowered(request.headers)[0] if headers is None else headers)
    return _authority(authority)[0] if authority else request.host


def pretty_url(request: http.Request, headers: dict[str, str]) -> str:
    """``request.pretty_url`` (``headers``: the request's, as :func:`lowercase_headers` gives
    them), its Host header read from them and parsed as :func:`pretty_host` parses it."""
    if request.first_line_format == "authority":
        return request.authority
    authority = _host_header(request, headers)
    if not authority:
        return request.url
    host, port = _authority(authority)
    scheme = request.scheme
    return url.unparse(scheme, host, port or url.default_port(scheme) or 443, request.path)


def _host_header(request: http.Request, headers: dict[str, str]) -> str | None:
    """``request.host_header``: the Host header lines joined (as mitmproxy joins a repeated
    header), or for HTTP/2 and 3 the authority before them."""
    if request.is_http2 or request.is_http3:
        return request.authority or headers.get("host")
    return headers.get("host")


@functools.lru_cache(maxsize=64)
def _authority(authority: str) -> tuple[str, int | None]:
    return url.parse_authority(authority, check=False)


# The header names and values of the last header sets read (a client sends the same headers
# again and again; the proxy's answers repeat theirs): at most KEPT_HEADER_SETS of at most
# KEPT_HEADER_LINES lines and KEPT_HEADER_CHARS characters each, emptied when full.
KEPT_HEADER_SETS = 32
_LOWERED: Memo = Memo(KEPT_HEADER_SETS)
KEPT_HEADER_LINES = 32
KEPT_HEADER_CHARS = 8192


def lowercase_headers(headers: http.Headers) -> dict[str, str]:
    """Header names (lowercase) to values, in one pass over the header lines: repeated names are
    joined with ", ", names and values decoded as mitmproxy does (UTF-8, undecodable bytes as
    surrogate escapes). mitmproxy's ``Headers.items()`` gives the same dict but looks every name
    up again, which takes seconds for a request with thousands of header lines. Each call gets
    a dict of its own."""
    lowered, kept = _lowered(headers)
    return lowered.copy() if kept else lowered


def _lowered(headers: http.Headers) -> tuple[dict[str, str], bool]:
    """(:func:`lowercase_headers`, whether that dict is the one kept: to be read, never changed)."""
    fields = headers.fields
    kept = _LOWERED.get(fields) if len(fields) <= KEPT_HEADER_LINES else None
    if kept is not None:
        return kept, True
    found: dict[str, list[str]] = {}
    for raw_name, raw_value in fields:
        found.setdefault(raw_name.decode("utf-8", "surrogateescape").lower(), []).append(
            raw_value.decode("utf-8", "surrogateescape"))
    lowered = {name: values[0] if len(values) == 1 else ", ".join(values) for name, values in found.items()}
    if len(fields) <= KEPT_HEADER_LINES and sum(map(len, lowered)) + sum(map(len, lowered.values())) <= KEPT_HEADER_CHARS:
        return _LOWERED.put(fields, lowered), True
    return lowered, False


# Header lines that make mitmproxy's Response.make change the body or its Content-Length.
_BODY_HEADERS = frozenset({"content-encoding", "transfer-encoding", "content-length"})
# The header lines of the last answers sent, by what they are written from: the engine gives
# the same answer for the same page asked again. At most KEPT_FIELD_SETS, of lines of at most
# KEPT_HEADER_CHARS bytes together; emptied when full.
KEPT_FIELD_SETS = 64
_FIELDS: Memo = Memo(KEPT_FIELD_SETS)


def make_response(answer: Answer, extra: list[Violation]) -> http.Response:
    """The response ``answer`` is sent as (``extra``: the request's violations; its warnings go in
    X-Xblreplay-Warning): what ``http.Response.make`` builds from the answer's headers and body."""
    body = answer.body_bytes()
    fields = _answer_fields(answer, extra)
    if fields is None:  # the body as mitmproxy encodes it for the answer's own headers
        return http.Response.make(answer.status, body, http.Headers(_header_lines(answer, extra)))
    status = answer.status
    return http.Response(
        b"HTTP/1.1", status, status_codes.RESPONSES.get(status, "").encode(),
        http.Headers(fields + ((b"content-length", str(len(body)).encode()),)), body, None,
        time.time(), time.time(),
    )


def _answer_fields(answer: Answer, extra: list[Violation]) -> tuple[tuple[bytes, bytes], ...] | None:
    """The answer's header lines but its Content-Length; None when they name the body's encoding
    or length (Response.make then writes the body as they say)."""
    try:
        key = (answer.status, answer.is_json, tuple(answer.headers), tuple(answer.violations), tuple(extra))
        kept = _FIELDS.get(key, False)
    except TypeError:  # a header that is not a pair of strings
        key, kept = None, False
    if kept is not False:
        return kept
    lines = _header_lines(answer, extra)
    fields = None if any(k.lower() in _BODY_HEADERS for k, _ in answer.headers) else tuple(lines)
    if key is not None and sum(len(k) + len(v) for k, v in lines) <= KEPT_HEADER_CHARS:
        _FIELDS.put(key, fields)
    return fields


def _header_lines(answer: Answer, extra: list[Violation]) -> list[tuple[bytes, bytes]]:
    headers: list[tuple[str, str]] = list(answer.headers)
    names = {k.lower() for k, _ in headers}
    if answer.is_json and "content-type" not in names:
        headers.append(("Content-Type", "application/json; charset=utf-8"))
    warnings = [v for v in answer.violations + extra if v.severity == "warning"]
    if warnings and "x-xblreplay-warning" not in names:
        headers.append(("X-Xblreplay-Warning", violations_header(warnings)))
    if answer.status >= 400 and answer.violations and "x-xblreplay-violations" not in names:
        headers.append(("X-Xblreplay-Violations", violations_header(answer.violations)))
    return [(k.encode("latin-1"), v.encode("utf-8")) for k, v in headers]


def reply_of(response: http.Response) -> Reply:
    """A response as the policy reads it."""
    return Reply(response.status_code, lowercase_headers(response.headers), response.raw_content,
                 bool(response.stream), response.timestamp_end or response.timestamp_start)
