"""The validator's memo tables: a request read again (the same URL, headers or path) is answered
as a first reading would be, in a check of its own, and nothing longer than the bounds is kept."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xblreplay.bounds import MAX_CACHED_HEADER_CHARS, MAX_KEY_CHARS
from xblreplay.contract import Validator, parse_authorization, request_key
from xblreplay.memo import Memo
from xblreplay.contract.request import AUTHORIZATION, _quote
from xblreplay.model import EP_LIST, EP_OTHER

RULES = Path(__file__).resolve().parents[1] / "rules"
ORIGIN = "https://achievements.xboxlive.com"
SCID = "a1b2c3d4-0000-4000-8000-00006659fa71"
USER = "/users/xuid(2533274800000001)"
AUTH = "XBL3.0 x=1234567890123456789;token"
LISTING = f"{ORIGIN}{USER}/achievements?titleId=1&maxItems=10"


def headers(**extra: str | None) -> dict[str, str]:
    h = {"host": "achievements.xboxlive.com", "authorization": AUTH, "x-xbl-contract-version": "2",
         "accept-language": "en-US"}
    h.update({k.replace("_", "-"): v for k, v in extra.items()})
    return {k: v for k, v in h.items() if v is not None}


def fresh() -> Validator:
    return Validator.from_rules(RULES)


@pytest.fixture(scope="module")
def cold() -> Validator:
    """Reads nothing twice: emptied before each use by ``first_reading``."""
    return fresh()


def first_reading(validator: Validator, *request):
    for table in (validator._results, validator._headers, validator._routes, validator._locales):
        table.clear()
    return validator.check_request(*request)


def test_a_repeat_is_a_check_of_its_own():
    validator = fresh()
    url = LISTING + "&colour=blue"
    expected = fresh().check_request("GET", url, headers())
    assert expected.query.userhash == "1234567890123456789" and expected.violations
    given = []
    for _ in range(4):  # noted, kept, then copies of what was kept
        check = validator.check_request("GET", url, headers())
        assert check == expected
        assert all(check.violations is not other.violations and check.query is not other.query
                   and check.path_params is not other.path_params for other in given)
        given.append(check)
        # What callers do to a check they were given (proxy/policy.py) reaches no other check.
        check.violations.append(check.violations[0])
        check.violations[:] = []
        check.key, check.language, check.status = "changed", "changed", 500
        check.path_params["xuid"] = 0
        check.query.max_items = 99


@pytest.mark.parametrize("auth, status, code, userhash", [
    (AUTH, None, None, "1234567890123456789"),
    (None, 401, "missing-authorization", None),
    ("", 401, "missing-authorization", None),
    ("Bearer x", 401, "malformed-authorization", None),
    ("xbl3.0 X=77;t;u", None, None, "77"),
])
def test_each_repeat_reads_its_own_authorization(auth, status, code, userhash):
    validator = fresh()
    for other in (AUTH, None, "Bearer x"):  # the request noted and kept with other credentials
        validator.check_request("GET", LISTING, headers(authorization=other))
    check = validator.check_request("GET", LISTING, headers(authorization=auth))
    assert check == fresh().check_request("GET", LISTING, headers(authorization=auth))
    assert check.status == status and check.query.userhash == userhash
    assert [v.code for v in check.violations if v.location == "header"] == ([code] if code else [])


def test_a_bad_authorization_is_stronger_than_the_other_errors():
    validator = fresh()
    url = f"{ORIGIN}{USER}/achievements/{SCID}/update"
    validator.check_request("GET", url, headers())
    check = validator.check_request("GET", url, headers(authorization=None))
    assert check.status == 401 and [v.code for v in check.violations] == ["missing-authorization",
                                                                        "method-not-allowed"]
    assert check.allow == ("POST",)


def test_a_path_read_before_keeps_its_parameters_per_request():
    validator = fresh()
    one = validator.check_request("GET", LISTING + "&continuationToken=10", headers())
    two = validator.check_request("GET", LISTING + "&continuationToken=20", headers())
    assert (one.query.token_offset, two.query.token_offset) == (10, 20)
    one.path_params["xuid"] = 0
    assert two.path_params == {"xuid": 2533274800000001}
    assert validator.check_request("GET", LISTING + "&continuationToken=30", headers()).path_params == {
        "xuid": 2533274800000001}


def test_headers_read_before_answer_as_a_first_reading_does():
    validator = fresh()
    for contract, language in (("2", "en-US"), ("4", "fr-FR,en;q=0.5"), ("9", None), (None, "de-DE")):
        for url in (LISTING, LISTING + "&maxItems=5"):
            h = headers(x_xbl_contract_version=contract, accept_language=language)
            assert validator.check_request("GET", url, h) == fresh().check_request("GET", url, h)


def test_values_past_the_bounds_are_never_kept():
    validator = fresh()
    long_language = "en-US," + "x" * MAX_CACHED_HEADER_CHARS
    long_contract = " " * MAX_CACHED_HEADER_CHARS + "2"
    long_url = LISTING + "&colour=" + "b" * MAX_KEY_CHARS
    update = f"{ORIGIN}{USER}/achievements/{SCID}/update"
    long_body = b'{"action":"progressUpdate","x":"' + b"y" * MAX_KEY_CHARS + b'"}'
    requests = [("GET", LISTING, headers(accept_language=long_language), None),
                ("GET", LISTING, headers(x_xbl_contract_version=long_contract), None),
                ("GET", long_url, headers(), None),
                ("POST", update, headers(), long_body)]
    for request in requests * 3:
        assert validator.check_request(*request) == fresh().check_request(*request)
    kept = [key for table in (validator._results, validator._headers, validator._routes) for key in table]
    assert kept  # the short parts were kept
    for key in kept:
        assert all(part not in (long_language, long_contract, long_url, long_body) for part in key)
        assert all(len(part) <= MAX_KEY_CHARS for part in key if isinstance(part, (str, bytes)))


@pytest.mark.parametrize("body", [None, b"", b"content", b"{", b'{"action":"progressUpdate"}',
                                  b'{"action":"progressUpdate","serviceConfigId":"' + SCID.encode()
                                  + b'","titleId":1,"userId":"2533274800000001",'
                                  b'"achievements":[{"id":"7","percentComplete":100}]}'])
@pytest.mark.parametrize("method, path", [("POST", f"{USER}/achievements/{SCID}/update"),
                                          ("GET", f"{USER}/achievements?titleId=1")])
def test_a_request_with_a_body_read_again_reads_by_its_body(method, path, body):
    validator = fresh()
    other = b"[]" if body != b"[]" else b"{}"
    for sent in (other, body, other, body, body):  # each body noted, kept, then copied
        check = validator.check_request(method, ORIGIN + path, headers(), sent)
        assert check == fresh().check_request(method, ORIGIN + path, headers(), sent)


def test_a_memo_never_holds_more_than_its_limit():
    memo = Memo(3)
    for n in range(10):
        assert memo.put(n, str(n)) == str(n)
        assert len(memo) <= 3 and memo[n] == str(n)


_REQUEST = st.tuples(
    st.sampled_from(["GET", "GET", "POST", "HEAD", "get", "PUT", "BAD METHOD"]),
    st.sampled_from([f"{USER}/achievements", f"{USER}/achievements/{SCID}/7", f"{USER}/achievements/{SCID}/update",
                     f"{USER}/history/titles", "/users/xuid(abc)/achievements", "/users/xuid(1)/profile", "/x",
                     "/users/xuid(\udcff)/achievements"]),
    st.lists(st.sampled_from(["titleId=1", "titleId=1,x", "maxItems=0", "maxItems=10", "skipItems=3",
                              "continuationToken=20", "continuationToken=x", "orderBy=title", "types=challenge",
                              "unlockedOnly=true", "possibleOnly=true", "colour=blue", "a+b=%E2%82%AC",
                              "x=\udcfe"]), max_size=4),
    st.sampled_from([None, AUTH, "Bearer x", "XBL3.0 x=1;t\u00e9"]),
    st.sampled_from([None, "1", "2", "3", "4", " 2", "7"]),
    st.sampled_from([None, "en-US", "fr-FR,en;q=0.5", "*"]),
)


@settings(max_examples=300, deadline=None)
@given(first=_REQUEST, then=_REQUEST)
def test_any_request_read_again_reads_as_the_first_time(cold, first, then):
    """A memo filled by one request (``first``) changes nothing about the reading of another
    (``then``) or of the same one again."""
    def args(request):
        method, path, query, auth, contract, language = request
        url = ORIGIN + path + ("?" + "&".join(query) if query else "")
        return method, url, headers(authorization=auth, x_xbl_contract_version=contract, accept_language=language)

    validator = fresh()
    validator.check_request(*args(first))
    for _ in range(3):  # noted, kept, then a copy of what was kept
        check = validator.check_request(*args(then))
        assert check == first_reading(cold, *args(then))
        check.violations.clear()
        if check.query is not None:
            check.query.userhash = "changed"


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="XxBbLl3.0 =;:<!~\t\u00e9\u212a\x7f1a", max_size=24))
def test_authorization_reads_as_its_regex_says(value):
    found = AUTHORIZATION.match(value.strip())
    assert parse_authorization(value) == ((found.group(1), found.group(2)) if found else None)


@pytest.mark.parametrize("value", ["XBL3.0 x=1;t", "XBL3.0 x=1;" + "t" * 1600, "XBL3.0 x=1;t t", "XBL3.0 x=1;t\x7f",
                                   "XBL3.0 x=1\u212a;t", "XBL3\u212a0 x=1;t", "  XBL3.0 x=1;t\n"])
def test_authorization_edge_cases_read_as_the_regex_says(value):
    found = AUTHORIZATION.match(value.strip())
    assert parse_authorization(value) == ((found.group(1), found.group(2)) if found else None)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="aZ09_.-~,/ +%&=\u00e9\udcfe\ud800", max_size=12), st.sampled_from(["", ","]))
def test_plain_text_is_quoted_as_urllib_quotes_it(text, safe):
    try:
        expected = quote(text, safe=safe, errors="surrogateescape")
    except UnicodeEncodeError:
        expected = None  # a lone surrogate no byte stood for: read as readable() shows it
    if expected is not None:
        assert _quote(text, safe) == expected


def test_the_key_of_a_check_is_the_request_key():
    validator = fresh()
    for url in (LISTING, LISTING + "&colour=a%20b&titleId=2", f"{ORIGIN}/users/xuid(1)/Profile?a=1"):
        h = headers(x_xbl_contract_version=" 2 x")
        check = validator.check_request("GET", url, h)
        assert check.key == request_key("GET", url, h)
        assert check.endpoint == (EP_OTHER if "Profile" in url else EP_LIST)
