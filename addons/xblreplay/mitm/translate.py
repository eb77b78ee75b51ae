"""Between mitmproxy's flows and the policy's plain data: a request's host and headers and a
response as the policy reads them, and the response an :class:`~..model.Answer` is sent as."""

from __future__ import annotations

import functools

from mitmproxy import http
from mitmproxy.net.http import url

from ..model import Answer, Violation, violations_header
from ..proxy import Reply


def pretty_host(request: http.Request) -> str:
    """``request.pretty_host``, the host every hook tells the service's requests by. mitmproxy
    parses the Host header (IDNA decoding, checks) on every read, which costs more than the rest
    of a hook: the parse is kept for the last 64 distinct Host values."""
    authority = request.host_header
    return _authority_host(authority) if authority else request.host


@functools.lru_cache(maxsize=64)
def _authority_host(authority: str) -> str:
    return url.parse_authority(authority, check=False)[0]


def lowercase_headers(headers: http.Headers) -> dict[str, str]:
    """Header names (lowercase) to values, in one pass over the header lines: repeated names are
    joined with ", ", names and values decoded as mitmproxy does (UTF-8, undecodable bytes as
    surrogate escapes). mitmproxy's ``Headers.items()`` gives the same dict but looks every name
    up again, which takes seconds for a request with thousands of header lines."""
    found: dict[str, list[str]] = {}
    for raw_name, raw_value in headers.fields:
        found.setdefault(raw_name.decode("utf-8", "surrogateescape").lower(), []).append(
            raw_value.decode("utf-8", "surrogateescape"))
    return {name: values[0] if len(values) == 1 else ", ".join(values) for name, values in found.items()}


def make_response(answer: Answer, extra: list[Violation]) -> http.Response:
    headers: list[tuple[str, str]] = list(answer.headers)
    names = {k.lower() for k, _ in headers}
    if answer.is_json and "content-type" not in names:
        headers.append(("Content-Type", "application/json; charset=utf-8"))
    warnings = [v for v in answer.violations + extra if v.severity == "warning"]
    if warnings and "x-xblreplay-warning" not in names:
        headers.append(("X-Xblreplay-Warning", violations_header(warnings)))
    if answer.status >= 400 and answer.violations and "x-xblreplay-violations" not in names:
        headers.append(("X-Xblreplay-Violations", violations_header(answer.violations)))
    fields = [(k.encode("latin-1"), v.encode("utf-8")) for k, v in headers]
    return http.Response.make(answer.status, answer.body_bytes(), http.Headers(fields))


def reply_of(response: http.Response) -> Reply:
    """A response as the policy reads it."""
    return Reply(response.status_code, lowercase_headers(response.headers), response.raw_content,
                 bool(response.stream), response.timestamp_end or response.timestamp_start)
