"""Hostile requests: whatever a client sends, a request for the host is answered, and an invalid
one is answered with its R8 status (400, 401 or 405), the faithful body and
``X-Xblreplay-Violations`` -- never a 5xx, never an exception.

Unit tests read requests through the Validator and the Replayer on the shipped example cassette;
the end-to-end tests send the same hostile requests through a real mitmdump (replay mode), over
HTTPS through its CONNECT tunnel and as raw bytes on a TLS socket, and then check that the proxy
still answers. Expected statuses, codes and values are derived from the requests sent here and
from the bounds in ``bounds.py`` and the contract, never read back from the proxy.
"""

from __future__ import annotations

import functools
import http.client
import json
import re
import socket
import ssl
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xblreplay.answers import invalid_request as error_answer
from xblreplay.bounds import MAX_INT_DIGITS, MAX_JSON_DEPTH
from xblreplay.contract import MAX_RESPONSE_VIOLATIONS, Validator, query_params, request_key
from xblreplay.model import EP_OTHER, EP_UPDATE, ERROR
from xblreplay.replay import Replayer

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "rules"
EXAMPLE = REPO / "cassettes" / "example"
XUID = 2533274800000001
SCID = "a1b2c3d4-0000-4000-8000-00006659fa71"  # Starfall, in the example cassette
AUTH = "XBL3.0 x=3141592653589793238;token"
ORIGIN = "https://achievements.xboxlive.com"
USER = f"/users/xuid({XUID})"
LISTING = f"{USER}/achievements"
UPDATE = f"{USER}/achievements/{SCID}/update"
DETAIL = f"{USER}/achievements/{SCID}"
INT32_MAX = 2**31 - 1
HUGE = "9" * 5000  # longer than int() reads by default (4300 digits)


@functools.cache
def contract() -> dict:
    return yaml.safe_load((RULES / "achievements.openapi.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator.from_rules(RULES)


@pytest.fixture
def replayer(validator: Validator) -> Replayer:
    return Replayer.from_dir(validator, EXAMPLE)


@pytest.fixture(scope="module")
def shared_replayer(validator: Validator) -> Replayer:
    """One replayer for many generated requests (updates may change its datasets)."""
    return Replayer.from_dir(validator, EXAMPLE)


def headers(**extra: str) -> dict[str, str]:
    h = {"authorization": AUTH, "x-xbl-contract-version": "2", "accept-language": "en-US"}
    h.update({k.replace("_", "-"): v for k, v in extra.items()})
    return h


def update_body(**fields) -> bytes:
    body = {"action": "progressUpdate", "serviceConfigId": SCID, "titleId": 1717113201,
            "userId": str(XUID), "achievements": [{"id": "1", "percentComplete": 100}]}
    body.update(fields)
    return json.dumps(body).encode()


def errors(check) -> list[tuple[str, str, str, str]]:
    return [(v.rule, v.location, v.name, v.code) for v in check.errors]


def assert_r8_answer(check, status: int, code: str) -> dict:
    """The answer an invalid request gets: its status, the service's error body and every error
    in X-Xblreplay-Violations. Returns the deciding violation as the header carries it."""
    answer = error_answer(check)
    assert (check.status, answer.status) == (status, status)
    sent = dict(answer.headers)
    found = json.loads(sent["X-Xblreplay-Violations"])
    assert [v["code"] for v in found] == [v.code for v in check.errors]
    deciding = next(v for v in found if v["code"] == code)
    assert deciding["rule"] == "R8" and deciding["severity"] == ERROR
    if status == 401:
        assert answer.body is None and "WWW-Authenticate" in sent
    else:
        assert answer.body == {"errorCode": 4000, "errorMessage": deciding["message"]}
        answer.body_bytes().decode("utf-8")
    for name, value in answer.headers:
        name.encode("latin-1"), value.encode("utf-8")
    return deciding


# ---------------------------------------------------------------- deep and broken bodies


@pytest.mark.parametrize("body", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1),  # parses, nests one level too deep
], ids=["brackets-100k", "objects-50k", "one-level-too-deep"])
def test_deep_update_body_is_400_too_deep(validator, body):
    check = validator.check_request("POST", ORIGIN + UPDATE, headers(), body)
    assert check.endpoint == EP_UPDATE
    assert errors(check) == [("R8", "body", "", "too-deep")]
    assert str(MAX_JSON_DEPTH) in assert_r8_answer(check, 400, "too-deep")["message"]


def test_body_at_the_depth_bound_is_read_and_checked(validator):
    body = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    check = validator.check_request("POST", ORIGIN + UPDATE, headers(), body)
    assert [v.code for v in check.errors] == ["invalid-body"]  # not an object: the schema says so


@pytest.mark.parametrize("body,code", [
    (b"\xff\xfe\x00", "invalid-json"),
    (b'{"titleId": ' + HUGE.encode() + b"}", "invalid-json"),  # a number int() will not read
    (b'{"a": NaN}', "invalid-body"),
    (update_body(titleId=float("inf")), "invalid-body"),
    (update_body(userId=HUGE), "invalid-body"),  # userId is a uint64: 20 digits at most
    (update_body(achievements=[{"id": "1", "percentComplete": 1e308}]), "invalid-body"),
], ids=["not-utf8", "huge-number", "nan", "infinity", "huge-user-id", "huge-percent"])
def test_broken_update_body_is_400(validator, body, code):
    check = validator.check_request("POST", ORIGIN + UPDATE, headers(), body)
    assert check.status == 400 and code in [v.code for v in check.errors]
    assert_r8_answer(check, 400, code)


def test_update_of_another_user_or_title_is_400_at_the_contract(validator):
    """The contract says the body repeats the path (x-xblreplay-path-fields); the validator
    holds every update to it before any dataset is touched."""
    fields = contract()["paths"]["/users/xuid({xuid})/achievements/{scid}/update"]["post"]["requestBody"]
    assert fields["x-xblreplay-path-fields"] == {"userId": "xuid", "serviceConfigId": "scid"}
    other_user = validator.check_request("POST", ORIGIN + UPDATE, headers(), update_body(userId=str(XUID + 1)))
    assert errors(other_user) == [("R8", "body", "/userId", "path-mismatch")]
    message = assert_r8_answer(other_user, 400, "path-mismatch")["message"]
    assert str(XUID + 1) in message and str(XUID) in message
    other_title = SCID.replace("a1b2", "ffff")
    check = validator.check_request("POST", ORIGIN + UPDATE, headers(), update_body(serviceConfigId=other_title))
    assert errors(check) == [("R8", "body", "/serviceConfigId", "path-mismatch")]


@pytest.mark.parametrize("fields", [
    {"userId": "000" + str(XUID)},  # the same number
    {"serviceConfigId": SCID.upper()},  # XSAPI lowercases the scid; any case names the same one
])
def test_update_naming_the_path_in_another_spelling_is_valid(validator, fields):
    check = validator.check_request("POST", ORIGIN + UPDATE, headers(), update_body(**fields))
    assert check.ok, check.violations


def test_update_of_another_user_never_reaches_the_dataset(replayer):
    before = replayer.handle("GET", ORIGIN + f"{LISTING}?titleId=1717113201&maxItems=100", headers())[1].body
    check, answer = replayer.handle("POST", ORIGIN + UPDATE, headers(), update_body(userId="1" + HUGE[:19]))
    assert (answer.status, answer.source) == (400, "error")
    after = replayer.handle("GET", ORIGIN + f"{LISTING}?titleId=1717113201&maxItems=100", headers())[1].body
    assert after == before


# ---------------------------------------------------------------- huge integers


INTEGER_PLACES = [
    (f"/users/xuid({HUGE})/achievements", "path", "xuid"),
    (f"{DETAIL}/{HUGE}", "path", "achievementId"),
    (f"{LISTING}?maxItems={HUGE}", "query", "maxItems"),
    (f"{LISTING}?skipItems={HUGE}", "query", "skipItems"),
    (f"{LISTING}?titleId=1,{HUGE}", "query", "titleId"),
    (f"{LISTING}?continuationToken={HUGE}", "query", "continuationToken"),
    (f"{LISTING}?continuationToken={HUGE},2018-03-28T01:28:51.8070000Z", "query", "continuationToken"),
    (f"{USER}/history/titles?maxItems=-{HUGE}", "query", "maxItems"),
]


@pytest.mark.parametrize("path,location,name", INTEGER_PLACES)
def test_integer_longer_than_any_of_the_contract_is_400_out_of_range(validator, path, location, name):
    check = validator.check_request("GET", ORIGIN + path, headers())
    assert errors(check) == [("R8", location, name, "out-of-range")]
    message = assert_r8_answer(check, 400, "out-of-range")["message"]
    assert len(message) < 200  # the value is shown cut short


def test_integer_digits_bound_counts_digits_not_leading_zeros(validator):
    padded = "0" * 100 + str(XUID)
    assert len(str(2**64 - 1)) == MAX_INT_DIGITS
    check = validator.check_request("GET", ORIGIN + f"/users/xuid({padded})/achievements", headers())
    assert check.ok and check.query.xuid == XUID
    too_long = "1" + "0" * MAX_INT_DIGITS
    check = validator.check_request("GET", ORIGIN + f"/users/xuid({too_long})/achievements", headers())
    assert [v.code for v in check.errors] == ["out-of-range"]


def test_huge_xuid_on_a_path_the_contract_does_not_describe_is_read_safely(replayer):
    check, answer = replayer.handle("GET", ORIGIN + f"/users/xuid({HUGE})/other", headers())
    assert check.endpoint == EP_OTHER and "xuid" not in check.path_params
    assert answer.status == 404
    answer.body_bytes()
    check, answer = replayer.handle("GET", ORIGIN + f"{USER}/other?titleId={HUGE}", headers())
    assert check.path_params == {"xuid": XUID} and check.bad_title_ids and check.title_ids is None
    assert answer.status == 404


# ---------------------------------------------------------------- continuation token range (R5)


def token_pattern() -> re.Pattern[str]:
    return re.compile(contract()["components"]["parameters"]["continuationToken"]["schema"]["pattern"])


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.integers(min_value=0, max_value=2**40),
                 st.integers(min_value=INT32_MAX - 1000, max_value=INT32_MAX + 1000),
                 st.sampled_from([0, 9, 10, 999999999, 10**9, 2 * 10**9, INT32_MAX, INT32_MAX + 1, 10**10])),
       st.integers(min_value=0, max_value=3), st.booleans())
def test_token_offset_is_accepted_exactly_in_the_range_of_skip_items(validator, offset, zeros, v1):
    """R5: the contract's pattern and the proxy agree: 0 <= offset <= 2147483647."""
    token = "0" * zeros + str(offset) + (",2018-03-28T01:28:51.8070000Z" if v1 else "")
    in_range = offset <= INT32_MAX
    assert bool(token_pattern().search(token)) == in_range
    check = validator.check_request("GET", ORIGIN + f"{LISTING}?continuationToken={token}", headers())
    assert check.ok == in_range
    if in_range:
        assert check.query.start == offset
    else:
        assert errors(check) == [("R8", "query", "continuationToken", "out-of-range")]


@pytest.mark.parametrize("token", ["32\n", "32%0A", "%2032", "32,2018-03-28T01:28:51.8070000Z%0A", "+32", "-0"])
def test_token_with_anything_around_the_offset_is_malformed(validator, token):
    check = validator.check_request("GET", ORIGIN + f"{LISTING}?continuationToken={token}", headers())
    assert [(v.name, v.code) for v in check.errors] in (
        [("continuationToken", "invalid-format")], [("continuationToken", "out-of-range")])


# ---------------------------------------------------------------- 405


@pytest.mark.parametrize("method,path,allow", [
    ("GET", UPDATE, "POST"),
    ("get", UPDATE.upper().replace("XUID", "xuid"), "POST"),
    ("POST", LISTING, "GET"),
    ("DELETE", f"{DETAIL}/1", "GET"),
    ("PUT", f"{USER}/history/titles", "GET"),
    ("OPTIONS", LISTING, "GET"),
])
def test_method_the_path_does_not_document_is_405_with_allow(validator, method, path, allow):
    check = validator.check_request(method, ORIGIN + path, headers())
    assert errors(check) == [("R8", "method", method.upper() if method.isupper() else method, "method-not-allowed")]
    assert_r8_answer(check, 405, "method-not-allowed")
    assert dict(error_answer(check).headers)["Allow"] == allow


def test_405_to_head_has_no_body(validator):
    check = validator.check_request("HEAD", ORIGIN + LISTING, headers())
    answer = error_answer(check)
    assert answer.status == 405 and answer.body is None and dict(answer.headers)["Allow"] == "GET"


@pytest.mark.parametrize("url", [ORIGIN + LISTING + "\udcff", ORIGIN + "/unknown?x=\udcff"])
def test_400_to_head_has_no_body(validator, url):
    check = validator.check_request("head", url, headers())
    answer = error_answer(check)
    assert answer.status == 400 and answer.body is None
    assert json.loads(dict(answer.headers)["X-Xblreplay-Violations"])[0]["code"] == "invalid-encoding"


def test_missing_authorization_wins_over_405(validator):
    check = validator.check_request("GET", ORIGIN + UPDATE, {})
    assert check.status == 401 and {v.code for v in check.errors} == {"missing-authorization", "method-not-allowed"}
    assert_r8_answer(check, 401, "missing-authorization")


def test_path_the_contract_does_not_describe_is_not_405(validator):
    check = validator.check_request("DELETE", ORIGIN + "/health", headers())
    assert check.ok and check.endpoint == EP_OTHER


# ---------------------------------------------------------------- bytes that are not UTF-8, NUL


@pytest.mark.parametrize("url,location", [
    (ORIGIN + LISTING + "\udcff", "path"),
    (ORIGIN + f"/users/xuid(\udcff)/achievements", "path"),
    (ORIGIN + "/unknown\udc80", "path"),
    (ORIGIN + LISTING + "?maxItems=\udcff", "query"),
    (ORIGIN + LISTING + "?ma\udcffx=1", "query"),
    (ORIGIN + LISTING + "?titleId=\ud800", "query"),  # a surrogate no byte stands for
])
def test_request_target_that_is_not_utf8_is_400(replayer, url, location):
    """mitmproxy hands bytes that are not UTF-8 over as lone surrogates (surrogateescape)."""
    check, answer = replayer.handle("GET", url, headers())
    assert errors(check) == [("R8", location, "", "invalid-encoding")]
    assert answer.status == 400
    assert_r8_answer(check, 400, "invalid-encoding")
    check.key.encode("utf-8")


@pytest.mark.parametrize("query,name", [
    ("maxItems=%00", "maxItems"),
    ("maxItems=\x00", "maxItems"),
    ("titleId=%FF", "titleId"),  # percent-encoded bytes that are not UTF-8 decode to U+FFFD
    ("orderBy=Title%00", "orderBy"),
    ("unlockedOnly=%E2%80%8Btrue", "unlockedOnly"),
    ("types=Persistent%2C%FF", "types"),
])
def test_nul_and_odd_percent_encodings_are_400_for_the_parameter(validator, query, name):
    check = validator.check_request("GET", ORIGIN + f"{LISTING}?{query}", headers())
    assert [(v.location, v.name) for v in check.errors] == [("query", name)]
    assert_r8_answer(check, 400, check.errors[0].code)


def test_unknown_parameter_names_are_logged_readably(validator):
    check = validator.check_request("GET", ORIGIN + f"{LISTING}?%FF%00=1&{'n' * 10_000}=2", headers())
    assert check.ok
    for v in check.violations:
        assert v.code == "unknown-parameter" and len(v.name) <= 43
        (v.name + v.message).encode("utf-8")


@pytest.mark.parametrize("method", ["G\x01T", "G\udcffT", "GET /x", ""])
def test_method_that_is_not_an_http_token_is_400(replayer, method):
    check, answer = replayer.handle(method, ORIGIN + "/anything", headers())
    assert [(v.location, v.code) for v in check.errors] == [("method", "invalid-method")]
    assert answer.status == 400
    assert_r8_answer(check, 400, "invalid-method")


@pytest.mark.parametrize("value", [
    "XBL3.0 x=\udcff;token", "XBL3.0 x=1;tök", "XBL3.0 x=1;t\x00k", "XBL3.0 x=\u212a;token",
    "XBL3.0 x=1;" + "t" * 100_000 + "\udcff",
])
def test_authorization_that_is_not_visible_ascii_is_401(replayer, value):
    check, answer = replayer.handle("GET", ORIGIN + LISTING, headers(authorization=value))
    assert errors(check) == [("R8", "header", "Authorization", "malformed-authorization")]
    assert answer.status == 401
    assert_r8_answer(check, 401, "malformed-authorization")


@pytest.mark.parametrize("contract", ["\udcff", HUGE, "2\x00"])
def test_odd_contract_version_is_an_empty_200_with_a_warning(replayer, contract):
    check, answer = replayer.handle("GET", ORIGIN + LISTING, headers(x_xbl_contract_version=contract))
    assert check.ok and answer.status == 200 and answer.body["achievements"] == []
    assert [v.code for v in check.violations] == ["contract-version"]
    check.violations[0].message.encode("utf-8")
    check.key.encode("utf-8")


# ---------------------------------------------------------------- huge headers and queries


@pytest.mark.parametrize("language", [
    ",".join(f"x{i}-{i}" for i in range(50_000)),
    "en-US;q=" + HUGE,
    "en-US;q=nan, fr-FR;q=inf, de-DE;q=1e999, es-ES;q=-1",
    "\udcff\udcfe, en-US",
    "en-US" + ";" * 100_000,
])
def test_huge_or_odd_accept_language_still_answers(replayer, language):
    check, answer = replayer.handle("GET", ORIGIN + f"{LISTING}?titleId=1717113201", headers(accept_language=language))
    assert check.ok and answer.status == 200
    answer.body_bytes()


def test_thousands_of_unknown_parameters_give_a_bounded_warning_list(validator):
    n = 20_000
    check = validator.check_request("GET", ORIGIN + LISTING + "?" + "&".join(f"p{i}=1" for i in range(n)), headers())
    assert check.ok
    assert len(check.violations) == MAX_RESPONSE_VIOLATIONS + 1
    assert str(n - MAX_RESPONSE_VIOLATIONS) in check.violations[-1].message


def test_repeated_parameter_joins_every_value(validator):
    titles = list(range(100_000))
    query = "&".join(f"titleId={t}" for t in titles)
    assert query_params(query)["titleId"] == ",".join(map(str, titles))
    check = validator.check_request("GET", ORIGIN + f"{LISTING}?{query}", headers())
    assert check.ok and check.query.title_ids == tuple(titles)


def test_megabyte_query_string_is_read(validator):
    check = validator.check_request("GET", ORIGIN + f"{LISTING}?maxItems=5&x={'a' * 1_000_000}", headers())
    assert check.ok and check.query.max_items == 5
    assert request_key("GET", ORIGIN + f"{LISTING}?maxItems=5&x={'a' * 1_000_000}", {}).endswith("maxItems=5&x")


# ---------------------------------------------------------------- any request at all


_TEXT = st.lists(st.one_of(
    st.sampled_from(list("0123456789,&=%+;-()/?#xXfF .\x00\r\n\t") + ["%FF", "%00", "%2C", "%ED%A0%80", "\udcff",
                                                                        "\udc80", "\ud800", "é", "\u212a", HUGE[:30]]),
    st.characters()), max_size=12).map("".join)
_SEGMENT = st.sampled_from(["users", f"xuid({XUID})", "xuid(", "achievements", SCID, SCID.upper(), "update",
                            "history", "titles", "1", ""]) | _TEXT
_NAME = st.sampled_from(["titleId", "maxItems", "skipItems", "continuationToken", "orderBy", "types",
                         "unlockedOnly", "possibleOnly"]) | _TEXT
_HEADER = st.sampled_from([AUTH, "XBL3.0 x=1;t", "", "en-US", "fr-FR, en;q=0.5", "2", "4", "1"]) | _TEXT
_BODY = st.one_of(
    st.none(), st.binary(max_size=40),
    st.builds(lambda user, scid, title, ident, percent: (
        '{"action":"progressUpdate","serviceConfigId":"%s","titleId":%s,"userId":"%s",'
        '"achievements":[{"id":"%s","percentComplete":%s}]}' % (scid, title, user, ident, percent)
    ).encode("utf-8", "surrogatepass"),
        st.sampled_from([str(XUID), "1", HUGE[:40]]) | _TEXT, st.sampled_from([SCID, SCID.upper()]) | _TEXT,
        st.sampled_from(["1", "1.0", HUGE[:30], "1e999", "NaN"]) | _TEXT, st.sampled_from(["1", "6"]) | _TEXT,
        st.sampled_from(["100", "50", "1e2"]) | _TEXT))


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(method=st.sampled_from(["GET", "POST", "HEAD", "PUT", "get", "G\udcffT"]),
       segments=st.lists(_SEGMENT, max_size=6),
       query=st.lists(st.tuples(_NAME, _TEXT), max_size=6),
       sent=st.dictionaries(st.sampled_from(["authorization", "x-xbl-contract-version", "accept-language"]), _HEADER),
       body=_BODY)
def test_any_request_is_answered_below_500_in_text_that_encodes(shared_replayer, method, segments, query, sent,
                                                               body):
    url = ORIGIN + "/" + "/".join(segments) + ("?" + "&".join(f"{k}={v}" for k, v in query) if query else "")
    check, answer = shared_replayer.handle(method, url, sent, body)
    assert check.status in (None, 400, 401, 405)
    assert answer.status < 500
    answer.body_bytes()
    for name, value in answer.headers:
        name.encode("latin-1"), value.encode("utf-8")
    for v in check.violations + answer.violations:
        (v.name + v.message).encode("utf-8")
    check.key.encode("utf-8")
    if check.status is not None:
        assert answer.status == check.status


# ---------------------------------------------------------------- end to end, real mitmdump

HOST = "achievements.xboxlive.com"


def tls_exchange(proxy, raw: bytes, method: str = "GET", timeout: float = 30.0):
    """Raw request bytes inside the proxy's CONNECT tunnel (origin-form, as a TLS client sends
    them): (status, headers, body), or None when the connection closed without an answer."""
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=timeout)
    try:
        sock.sendall(f"CONNECT {HOST}:443 HTTP/1.1\r\nHost: {HOST}:443\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            assert chunk, "CONNECT refused"
            head += chunk
        assert head.startswith(b"HTTP/1.1 200"), head
        context = ssl.create_default_context(cafile=str(proxy.ca))
        # As HTTP clients do: without ALPN mitmproxy guesses the tunnel's protocol from the first
        # bytes, and a request line that does not fit in them makes it a raw TCP tunnel.
        context.set_alpn_protocols(["http/1.1"])
        tls = context.wrap_socket(sock, server_hostname=HOST)
        tls.sendall(raw)
        response = http.client.HTTPResponse(tls, method=method)
        try:
            response.begin()
        except (http.client.RemoteDisconnected, ConnectionError):
            return None
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        sock.close()


def raw_request(method: bytes, target: bytes, extra: list[bytes] = (), body: bytes = b"",
                auth: bytes = AUTH.encode()) -> bytes:
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: " + HOST.encode(), b"Connection: close",
             b"x-xbl-contract-version: 2"]
    if auth:
        lines.append(b"Authorization: " + auth)
    lines += list(extra)
    if body:
        lines += [b"Content-Type: application/json", b"Content-Length: %d" % len(body)]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


U = UPDATE.encode()
L = LISTING.encode()
# (name, raw request, expected status, expected deciding code)
HOSTILE = [
    ("update-brackets-100k", raw_request(b"POST", U, body=b"[" * 100_000 + b"]" * 100_000), 400, "too-deep"),
    ("update-objects-50k", raw_request(b"POST", U, body=b'{"a":' * 50_000 + b"1" + b"}" * 50_000), 400, "too-deep"),
    ("update-huge-user-id", raw_request(b"POST", U, body=update_body(userId=HUGE)), 400, "invalid-body"),
    ("update-other-user", raw_request(b"POST", U, body=update_body(userId=str(XUID + 1))), 400, "path-mismatch"),
    ("update-not-json", raw_request(b"POST", U, body=b"\xff" * 1000), 400, "invalid-json"),
    ("get-update", raw_request(b"GET", U), 405, "method-not-allowed"),
    ("huge-xuid", raw_request(b"GET", b"/users/xuid(" + HUGE.encode() + b")/achievements"), 400, "out-of-range"),
    ("huge-max-items", raw_request(b"GET", L + b"?maxItems=" + HUGE.encode()), 400, "out-of-range"),
    ("huge-token", raw_request(b"GET", L + b"?continuationToken=" + HUGE.encode()), 400, "out-of-range"),
    ("token-past-int32", raw_request(b"GET", L + b"?continuationToken=%d" % (INT32_MAX + 1)), 400, "out-of-range"),
    ("huge-title-list", raw_request(b"GET", L + b"?titleId=" + b",".join([b"1"] * 50_000 + [HUGE.encode()])),
     400, "out-of-range"),
    ("huge-achievement-id", raw_request(b"GET", f"{DETAIL}/{HUGE}".encode()), 400, "out-of-range"),
    ("raw-ff-in-path", raw_request(b"GET", L + b"\xff"), 400, "invalid-encoding"),
    ("raw-ff-in-query", raw_request(b"GET", L + b"?maxItems=\xff\xfe"), 400, "invalid-encoding"),
    ("raw-ff-in-unknown-path", raw_request(b"GET", b"/health\xff"), 400, "invalid-encoding"),
    ("raw-nul-in-query", raw_request(b"GET", L + b"?maxItems=1\x00"), 400, "invalid-integer"),
    ("percent-ff-in-xuid", raw_request(b"GET", b"/users/xuid(%FF)/achievements"), 400, "invalid-integer"),
    ("control-in-method", raw_request(b"G\x01T", L), 400, "invalid-method"),
    ("ff-in-authorization", raw_request(b"GET", L, auth=b"XBL3.0 x=\xff;token"), 401, "malformed-authorization"),
]


@pytest.mark.e2e
def test_hostile_requests_through_mitmdump_get_r8_answers_and_the_proxy_stays_up(tmp_path):
    from proxyharness import Mitmdump, SilentListener, read_log

    log = tmp_path / "validation.jsonl"
    with SilentListener() as upstream:
        with Mitmdump(tmp_path, achievements_mode="replay", achievements_cassettes=EXAMPLE,
                      achievements_upstream=upstream.url, achievements_log=log) as proxy:
            answers = {name: tls_exchange(proxy, raw, raw.split(b" ", 1)[0].decode("latin-1"))
                       for name, raw, _, _ in HOSTILE}
            flood = proxy.request(f"{LISTING}?titleId=1717113201&" + "&".join(f"p{i}=1" for i in range(5_000)))
            huge_language = proxy.request(f"{LISTING}?titleId=1717113201",
                                          {"Accept-Language": ",".join(f"x{i}-{i}" for i in range(20_000))})
            after = proxy.request(f"{LISTING}?titleId=1717113201&maxItems=5")
            alive = proxy.proc.poll() is None
            output = proxy.stop()
    assert upstream.accepted == 0
    for name, _, status, code in HOSTILE:
        answer = answers[name]
        assert answer is not None, f"{name}: connection closed without an answer"
        got, sent, body = answer
        assert got == status, (name, got, body[:200])
        found = json.loads(sent["x-xblreplay-violations"])
        deciding = next(v for v in found if v["code"] == code)
        assert deciding["rule"] == "R8", name
        if status == 401:
            assert body == b"" and sent["www-authenticate"].startswith("Token")
        else:
            assert json.loads(body) == {"errorCode": 4000, "errorMessage": deciding["message"]}, name
        if status == 405:
            assert sent["allow"] == "POST"
    assert flood.status == 200
    warnings = json.loads(flood.headers["x-xblreplay-warning"])
    assert len(warnings) == MAX_RESPONSE_VIOLATIONS + 1
    assert huge_language.status == 200
    assert alive and after.status == 200 and len(after.json()["achievements"]) == 5
    assert "internal error" not in output and "Traceback" not in output
    entries, summary = read_log(log)
    assert summary is not None
    expected = [status for _, _, status, _ in HOSTILE] + [200] * 3  # one line per request
    assert sorted(e["status"] for e in entries) == sorted(expected)


# ---------------------------------------------------------------- many header lines


def test_lowercase_headers_equals_mitmproxys_items_with_repeated_names():
    from mitmproxy import http as mhttp

    from xblreplay.mitm.translate import lowercase_headers

    h = mhttp.Headers([(b"Accept-Language", b"en-US"), (b"X-Thing", b"1"), (b"accept-language", b"fr-FR"),
                       (b"X-THING", b"\xff2"), (b"Authorization", AUTH.encode()), (b"x-\xe9", b"caf\xc3\xa9")])
    old = {k.lower(): v for k, v in h.items()}
    assert lowercase_headers(h) == old
    assert lowercase_headers(h)["accept-language"] == "en-US, fr-FR"
    assert lowercase_headers(mhttp.Headers()) == {}


@pytest.mark.e2e
def test_ten_thousand_header_lines_are_answered_quickly(tmp_path):
    import time

    from proxyharness import Mitmdump, SilentListener

    many = [b"X-Many-%d: v" % i for i in range(9_990)] + [b"X-Same: %d" % i for i in range(10)]
    raw = raw_request(b"GET", L + b"?titleId=1717113201&maxItems=2", extra=many)
    with SilentListener() as upstream:
        with Mitmdump(tmp_path, achievements_mode="replay", achievements_cassettes=EXAMPLE,
                      achievements_upstream=upstream.url) as proxy:
            started = time.monotonic()
            answer = tls_exchange(proxy, raw, timeout=20)
            took = time.monotonic() - started
            after = proxy.request(f"{LISTING}?titleId=1717113201&maxItems=1")
    assert answer is not None and answer[0] == 200, answer
    assert len(json.loads(answer[2])["achievements"]) == 2
    assert took < 5, took
    assert after.status == 200


# ---------------------------------------------------------------- bounded caches and keys


def test_accept_language_is_cached_only_up_to_the_bound(validator):
    from xblreplay.bounds import MAX_CACHED_HEADER_CHARS

    fresh = Validator.from_rules(RULES)
    short = "en-US," + "x" * (MAX_CACHED_HEADER_CHARS - 6)
    long = short + "a"
    assert len(short) == MAX_CACHED_HEADER_CHARS
    for value in (short, long, long):
        check = fresh.check_request("GET", f"{ORIGIN}{LISTING}?titleId=1", headers(accept_language=value), None)
        assert check.query.locales == fresh._locale_list(value)
    assert list(fresh._locales) == [short]


def test_request_key_longer_than_the_bound_keeps_its_start_and_a_hash():

    from xblreplay.bounds import MAX_KEY_CHARS

    h = headers()
    short = request_key("GET", f"{ORIGIN}{LISTING}?titleId=1", h)
    assert " sha256=" not in short
    one = f"{ORIGIN}{LISTING}?titleId=" + ",".join(["1"] * 300_000)
    two = one + ",2"
    k1, k2 = request_key("GET", one, h), request_key("GET", two, h)
    assert len(k1) == len(k2) == MAX_KEY_CHARS - 20 + len(" sha256=") + 16
    assert k1 != k2 and k1[:MAX_KEY_CHARS - 20] == k2[:MAX_KEY_CHARS - 20]
    assert k1.startswith("GET /users/xuid(") and k1 == request_key("GET", one, h)
    digest = k1.rsplit(" sha256=", 1)[1]
    assert len(digest) == 16 and int(digest, 16) >= 0


# ---------------------------------------------------------------- HEAD


@pytest.mark.e2e
def test_head_is_answered_without_a_body_and_the_connection_stays_in_step(tmp_path):
    from proxyharness import Mitmdump, SilentListener

    with SilentListener() as upstream:
        with Mitmdump(tmp_path, achievements_mode="replay", achievements_cassettes=EXAMPLE,
                      achievements_upstream=upstream.url) as proxy:
            context = ssl.create_default_context(cafile=str(proxy.ca))
            conn = http.client.HTTPSConnection("127.0.0.1", proxy.port, context=context, timeout=20)
            conn.set_tunnel(HOST, 443)
            sent = {"Authorization": AUTH, "x-xbl-contract-version": "2", "Accept-Language": "en-US"}
            try:
                answers = []
                for method, target in [("HEAD", f"{LISTING}?titleId=1717113201"), ("GET", f"{LISTING}?titleId=1717113201&maxItems=1"),
                                       ("HEAD", "/health"), ("HEAD", UPDATE), ("GET", f"{LISTING}?titleId=1717113201&maxItems=2")]:
                    conn.request(method, target, headers=sent)
                    response = conn.getresponse()
                    answers.append((method, response.status, response.read(), response.getheader("x-xblreplay-reason")))
                # nothing was left on the connection after the HEAD answers
                conn.sock.settimeout(0.5)
                with pytest.raises((TimeoutError, socket.timeout)):
                    leftover = conn.sock.recv(1)
                    assert leftover, "connection closed"
                    raise AssertionError(f"bytes after the last answer: {leftover!r}")
            finally:
                conn.close()
    for method, status, body, _ in answers:
        if method == "HEAD":
            assert body == b""
    assert answers[1][1] == 200 and len(json.loads(answers[1][2])["achievements"]) == 1
    assert answers[4][1] == 200 and len(json.loads(answers[4][2])["achievements"]) == 2
    assert answers[3][1] == 405  # HEAD to the update path: R8
