"""The mitmproxy glue's kept readings: a response built from a kept set of header lines is the
one mitmproxy's ``Response.make`` builds; header dicts, hosts and URLs read once per hook are
mitmproxy's own readings."""

from __future__ import annotations

import gzip

import pytest
from mitmproxy import http
from mitmproxy.test import tutils

from xblreplay.memo import Memo
from xblreplay.mitm import translate
from xblreplay.mitm.translate import lowercase_headers, make_response, pretty_host, pretty_url
from xblreplay.model import ERROR, WARNING, Answer, Violation, violations_header

WARN = Violation("R3", "query", "maxItems", WARNING, "maxItems over 1000: capped", "capped")
OTHER_WARN = Violation("R5", "header", "accept-language", WARNING, "no such language", "language")
REFUSAL = Violation("R8", "query", "maxItems", ERROR, "not an integer", "invalid-integer")


def made_by_mitmproxy(answer: Answer, extra: list[Violation]) -> http.Response:
    """The response mitmproxy's Response.make builds for the answer's header lines."""
    fields = translate._header_lines(answer, extra)
    return http.Response.make(answer.status, answer.body_bytes(), http.Headers(fields))


def same_response(got: http.Response, want: http.Response) -> None:
    assert (got.http_version, got.status_code, got.reason) == (want.http_version, want.status_code, want.reason)
    assert got.headers.fields == want.headers.fields
    assert got.raw_content == want.raw_content
    assert got.trailers == want.trailers
    assert got.timestamp_start <= got.timestamp_end


@pytest.mark.parametrize("answer, extra", [
    (Answer(200, {"achievements": [], "pagingInfo": {"continuationToken": None, "totalRecords": 0}},
            headers=[("X-Xbl-Contract-Version", "2")]), []),
    (Answer(200, {"achievements": []}), [WARN]),
    (Answer(400, {"code": "BadRequest"}, violations=[REFUSAL]), [WARN]),
    (Answer(429, b"slow down", headers=[("Retry-After", "3")], source="throttle"), []),
    (Answer(204), []),
    (Answer(599, {"x": "\u00e9"}), []),  # no reason phrase
    (Answer(200, b"abc", headers=[("Content-Encoding", "gzip")]), []),  # mitmproxy encodes the body
    (Answer(200, b"abc", headers=[("Content-Length", "99")]), []),  # replaced where it stands
    (Answer(200, b"abc", headers=[("transfer-encoding", "chunked")]), []),  # no Content-Length
    (Answer(200, b"abc", headers=[["X-Listed", "as a list"]]), []),  # a header that is not a tuple
], ids=["page", "warning", "refusal", "bytes", "empty", "unknown-status", "gzip", "length", "chunked", "list"])
def test_a_response_is_the_one_mitmproxy_makes_first_and_again(answer, extra):
    want = made_by_mitmproxy(answer, extra)
    for _ in range(2):  # built, then from the kept header lines
        same_response(make_response(answer, list(extra)), want)


def test_an_encoded_answer_is_sent_encoded():
    got = make_response(Answer(200, b"abc", headers=[("Content-Encoding", "gzip")]), [])
    assert gzip.decompress(got.raw_content) == b"abc"
    assert got.headers["content-length"] == str(len(got.raw_content))


def test_the_same_answer_with_other_warnings_gets_their_header():
    answer = Answer(200, {"achievements": []})
    make_response(answer, [WARN])
    got = make_response(answer, [OTHER_WARN])
    assert got.headers["x-xblreplay-warning"] == violations_header([OTHER_WARN])
    assert "x-xblreplay-warning" not in make_response(answer, []).headers


def test_an_answer_changed_since_it_was_sent_is_sent_as_it_now_is():
    answer = Answer(200, {"achievements": []}, headers=[("X-A", "1")])
    make_response(answer, [])
    answer.headers.append(("X-B", "2"))
    answer.violations.append(WARN)
    answer.body = {"achievements": [1]}
    same_response(make_response(answer, []), made_by_mitmproxy(answer, []))


def test_kept_header_lines_are_bounded(monkeypatch):
    monkeypatch.setattr(translate, "_FIELDS", Memo(translate.KEPT_FIELD_SETS))
    for i in range(translate.KEPT_FIELD_SETS + 5):
        make_response(Answer(200, b"x", headers=[("X-N", str(i))]), [])
    assert 0 < len(translate._FIELDS) <= translate.KEPT_FIELD_SETS
    make_response(Answer(200, b"x", headers=[("X-Big", "v" * translate.KEPT_HEADER_CHARS)]), [])
    assert not any(("X-Big", "v" * translate.KEPT_HEADER_CHARS) in key[2] for key in translate._FIELDS)


def headers_of(*fields: tuple[bytes, bytes]) -> http.Headers:
    return http.Headers(list(fields))


def test_lowercase_headers_are_mitmproxys_and_each_call_gets_its_own():
    h = headers_of((b"Host", b"a.example"), (b"X-Twice", b"1"), (b"x-twice", b"2"), (b"X-Bad", b"\xff\xc3"))
    want = {k.lower(): h[k] for k in h.keys()}
    first = lowercase_headers(h)
    assert first == want
    first["x-twice"] = "changed"
    del first["host"]
    assert lowercase_headers(h) == want
    assert lowercase_headers(headers_of(*h.fields)) == want  # equal lines read again


def test_many_or_long_header_lines_are_read_each_time_and_not_kept(monkeypatch):
    monkeypatch.setattr(translate, "_LOWERED", Memo(translate.KEPT_HEADER_SETS))
    many = headers_of(*[(f"X-{i}".encode(), b"v") for i in range(translate.KEPT_HEADER_LINES + 1)])
    long = headers_of((b"X-Long", b"v" * (translate.KEPT_HEADER_CHARS + 1)))
    for h in (many, long):
        assert lowercase_headers(h) == {k.lower(): h[k] for k in h.keys()}
    assert translate._LOWERED == {}


def request(host_header: bytes | None, host: str = "achievements.xboxlive.com", port: int = 443,
            scheme: str = "https", version: bytes = b"HTTP/1.1", authority: bytes = b"") -> http.Request:
    req = tutils.treq(host=host, port=port, path=b"/users/xuid(1)/achievements?maxItems=2",
                      http_version=version, authority=authority)
    req.scheme = scheme
    req.headers.clear()
    if host_header is not None:
        for value in host_header.split(b"|"):
            req.headers.add("Host", value)
    return req


@pytest.mark.parametrize("req", [
    request(b"achievements.xboxlive.com"),
    request(b"Achievements.XboxLive.com:8443"),
    request(b"achievements.xboxlive.com:443", scheme="http"),
    request(None, host="10.0.0.1", port=8080),
    request(b"a.example|b.example"),  # two Host lines, joined as mitmproxy joins them
    request(b"xn--bcher-kva.example"),  # IDNA
    request(b"[::1]:8080"),
    request(b"other.example", version=b"HTTP/2.0", authority=b"achievements.xboxlive.com:443"),
    request(b"achievements.xboxlive.com", version=b"HTTP/2.0"),
], ids=["plain", "port", "http", "no-host", "two", "idna", "ipv6", "h2-authority", "h2-host"])
def test_host_and_url_read_from_the_header_dict_are_mitmproxys(req):
    headers = lowercase_headers(req.headers)
    assert pretty_host(req, headers) == req.pretty_host
    assert pretty_host(req) == req.pretty_host
    assert pretty_url(req, headers) == req.pretty_url


def test_an_authority_form_request_reads_as_mitmproxy_reads_it():
    req = http.Request("achievements.xboxlive.com", 443, b"CONNECT", b"", b"achievements.xboxlive.com:443", b"",
                       b"HTTP/1.1", http.Headers(), b"", None, 0.0, None)
    assert req.first_line_format == "authority"
    assert pretty_url(req, lowercase_headers(req.headers)) == req.pretty_url
