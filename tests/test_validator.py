"""Validator: R8 request checks, R3/R5/R6 warnings, locales, tokens, R7 response checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from test_contract import R7_TRAPS, SCID, v1_body, v2_body
from xblreplay.model import (
    EP_DETAIL, EP_HISTORY, EP_LIST, EP_OTHER, EP_UPDATE, ERROR, WARNING, RequestCheck,
)
from xblreplay.answers import invalid_request
from xblreplay.contract import Validator, parse_accept_language

RULES = Path(__file__).resolve().parents[1] / "rules"
BASE = "https://achievements.xboxlive.com/users/xuid(2533274800000001)/achievements"
USERHASH = "1234567890123456789"
TOKEN = "eyJhbGciOi.secret-token-part"
AUTH = f"XBL3.0 x={USERHASH};{TOKEN}"


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator.from_rules(RULES)


def headers(**extra: str) -> dict[str, str]:
    h = {"authorization": AUTH, "x-xbl-contract-version": "2", "accept-language": "en-US"}
    h.update({k.replace("_", "-"): v for k, v in extra.items()})
    return h


def get(validator: Validator, query: str = "", path: str = BASE, **extra: str) -> RequestCheck:
    return validator.check_request("GET", path + ("?" + query if query else ""), headers(**extra))


def only_error(check: RequestCheck):
    assert len(check.errors) == 1, check.violations
    return check.errors[0]


# ---------------------------------------------------------------- valid requests


def test_typical_request_parses_into_query(validator: Validator) -> None:
    check = get(validator, "titleId=1234&maxItems=100&orderBy=unlocktime")
    assert check.ok and check.violations == []
    assert check.endpoint == EP_LIST
    q = check.query
    assert (q.xuid, q.title_ids, q.max_items, q.order_by) == (2533274800000001, (1234,), 100, "UnlockTime")
    assert (q.shape, q.rarity, q.locales, q.userhash) == ("V2", False, ("en-US",), USERHASH)
    assert check.path_params == {"xuid": 2533274800000001}


def test_absent_parameters_keep_defaults(validator: Validator) -> None:
    q = get(validator).query
    assert (q.title_ids, q.types, q.unlocked_only, q.possible_only) == (None, None, False, False)
    assert (q.order_by, q.skip_items, q.max_items, q.page_size, q.start) == ("Unordered", 0, None, 32, 0)


def test_boundaries_are_accepted(validator: Validator) -> None:
    """R8 ranges: uint64 xuid, uint32 title ids, int32 skip/max."""
    path = "https://achievements.xboxlive.com/users/xuid(18446744073709551615)/achievements"
    check = get(validator, "titleId=0,4294967295&maxItems=2147483647&skipItems=2147483647", path=path)
    assert check.ok, check.violations
    assert check.query.xuid == 2**64 - 1
    assert check.query.title_ids == (0, 4294967295)
    assert (check.query.max_items, check.query.skip_items) == (2**31 - 1, 2**31 - 1)


def test_r3_r4_enums_and_booleans_are_case_insensitive(validator: Validator) -> None:
    q = get(validator, "types=persistent,CHALLENGE&orderBy=ENDINGSOON&unlockedOnly=TRUE&possibleOnly=False").query
    assert q.types == frozenset({"Persistent", "Challenge"})
    assert q.order_by == "EndingSoon"
    assert (q.unlocked_only, q.possible_only) == (True, False)
    for raw, canonical in (("title", "Title"), ("unordered", "Unordered"), ("UnLockTime", "UnlockTime")):
        assert get(validator, f"orderBy={raw}").query.order_by == canonical


def test_path_match_ignores_case_and_trailing_slash(validator: Validator) -> None:
    check = validator.check_request(
        "GET", "https://achievements.xboxlive.com/Users/XUID(5)/Achievements/?continuationToken=32", headers())
    assert check.endpoint == EP_LIST and check.ok
    assert (check.query.xuid, check.query.token_offset) == (5, 32)


def test_origin_form_url_and_percent_encoding(validator: Validator) -> None:
    check = validator.check_request("GET", "/users/xuid%282533274800000001%29/achievements?titleId=1%2C2", headers())
    assert check.ok and check.query.title_ids == (1, 2)


def test_repeated_parameter_is_a_comma_list(validator: Validator) -> None:
    assert get(validator, "titleId=1&titleId=2").query.title_ids == (1, 2)
    assert only_error(get(validator, "maxItems=1&maxItems=2")).name == "maxItems"


# ---------------------------------------------------------------- R8: 400


R8_BAD_QUERY = [
    ("skipItems=abc", "skipItems"),
    ("skipItems=1.5", "skipItems"),
    ("skipItems=", "skipItems"),
    ("skipItems=-1", "skipItems"),
    ("skipItems=2147483648", "skipItems"),
    ("maxItems=0", "maxItems"),
    ("maxItems=-5", "maxItems"),
    ("maxItems=2147483648", "maxItems"),
    ("maxItems=ten", "maxItems"),
    ("maxItems=%2B5", "maxItems"),
    ("titleId=1,x", "titleId"),
    ("titleId=1,,2", "titleId"),
    ("titleId=4294967296", "titleId"),
    ("titleId=-1", "titleId"),
    ("titleId=", "titleId"),
    ("types=Bogus", "types"),
    ("types=Persistent,Bogus", "types"),
    ("orderBy=Random", "orderBy"),
    ("orderBy=", "orderBy"),
    ("unlockedOnly=yes", "unlockedOnly"),
    ("unlockedOnly=1", "unlockedOnly"),
    ("possibleOnly=", "possibleOnly"),
    ("continuationToken=abc", "continuationToken"),
    ("continuationToken=", "continuationToken"),
    ("continuationToken=-1", "continuationToken"),
    ("continuationToken=32,yesterday", "continuationToken"),
    ("continuationToken=32,2018-03-28T01:28:51.8070000", "continuationToken"),
    ("continuationToken=2147483648", "continuationToken"),
]


@pytest.mark.parametrize("query,name", R8_BAD_QUERY)
def test_r8_malformed_query_parameter_answers_400(validator: Validator, query: str, name: str) -> None:
    check = get(validator, query)
    assert check.status == 400
    v = only_error(check)
    assert (v.rule, v.location, v.name, v.severity) == ("R8", "query", name, ERROR)
    assert v.code


@pytest.mark.parametrize("xuid", ["abc", "-1", "18446744073709551616", "", "1.0"])
def test_r8_xuid_not_uint64_answers_400(validator: Validator, xuid: str) -> None:
    check = get(validator, path=f"https://achievements.xboxlive.com/users/xuid({xuid})/achievements")
    assert check.status == 400
    v = only_error(check)
    assert (v.rule, v.location, v.name) == ("R8", "path", "xuid")
    assert check.query is None


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=-(2**40), max_value=2**40))
def test_r8_max_items_range_property(validator: Validator, n: int) -> None:
    """R5/R8: maxItems is accepted exactly when 1 <= n <= 2147483647."""
    check = get(validator, f"maxItems={n}")
    assert check.ok == (1 <= n <= 2**31 - 1)
    if check.ok:
        assert check.query.max_items == n


def test_r8_several_errors_are_all_recorded(validator: Validator) -> None:
    check = get(validator, "maxItems=0&orderBy=x&types=y")
    assert check.status == 400
    assert sorted(v.name for v in check.errors) == ["maxItems", "orderBy", "types"]


# ---------------------------------------------------------------- R8: 401


@pytest.mark.parametrize("auth", [
    None, "", "Bearer abc", "XBL3.0 x=;tok", f"XBL3.0 x={USERHASH};", f"XBL3.0 x={USERHASH}",
    f"XBL2.0 x={USERHASH};{TOKEN}", f"XBL3.0 {USERHASH};{TOKEN}",
])
def test_r8_missing_or_malformed_authorization_answers_401(validator: Validator, auth: str | None) -> None:
    h = headers()
    if auth is None:
        del h["authorization"]
    else:
        h["authorization"] = auth
    check = validator.check_request("GET", BASE, h)
    assert check.status == 401
    v = only_error(check)
    assert (v.rule, v.location, v.name) == ("R8", "header", "Authorization")
    assert check.query.userhash is None


def test_r8_scheme_is_case_insensitive(validator: Validator) -> None:
    check = get(validator, authorization=f"xbl3.0 x={USERHASH};{TOKEN}")
    assert check.ok and check.query.userhash == USERHASH


def test_r8_401_wins_over_400_and_both_are_recorded(validator: Validator) -> None:
    """Spec §1.3: the token is validated before routing, so 401 wins."""
    check = get(validator, "maxItems=0", authorization="Bearer nope")
    assert check.status == 401
    assert {(v.location, v.name) for v in check.errors} == {("header", "Authorization"), ("query", "maxItems")}


def test_r8_401_on_other_paths_of_the_host(validator: Validator) -> None:
    check = validator.check_request("GET", "https://achievements.xboxlive.com/users/xuid(1)/titleachievements", {})
    assert (check.endpoint, check.status) == (EP_OTHER, 401)


def test_secrets_never_reach_violations_or_error_answers(validator: Validator) -> None:
    for auth in (f"XBL3.0 x={USERHASH}", f"XBL3.0 x={USERHASH};{TOKEN} extra"):
        check = get(validator, "maxItems=0", authorization=auth)
        answer = invalid_request(check)
        text = json.dumps([v.to_dict() for v in check.violations]) + repr(answer.headers) + answer.reason
        assert USERHASH not in text and TOKEN not in text


# ---------------------------------------------------------------- warnings


def test_unknown_parameter_is_a_contract_warning(validator: Validator) -> None:
    check = get(validator, "titleId=1&color=blue")
    assert check.ok
    (v,) = check.violations
    assert (v.rule, v.location, v.name, v.severity, v.code) == ("contract", "query", "color", WARNING, "unknown-parameter")


def test_r3_possible_only_and_unlocked_only_warn(validator: Validator) -> None:
    check = get(validator, "possibleOnly=true&unlockedOnly=TRUE")
    assert check.ok
    (v,) = check.violations
    assert (v.rule, v.code, v.severity) == ("R3", "conflicting-filters", WARNING)
    assert not get(validator, "possibleOnly=true&unlockedOnly=false").violations


def test_r5_token_and_skip_items_warn_and_token_wins(validator: Validator) -> None:
    check = get(validator, "skipItems=5&continuationToken=64")
    assert check.ok
    (v,) = check.violations
    assert (v.rule, v.code, v.severity) == ("R5", "conflicting-paging", WARNING)
    assert (check.query.skip_items, check.query.token_offset, check.query.start) == (5, 64, 64)


@pytest.mark.parametrize("token,offset", [
    ("0", 0), ("32", 32), ("32,2018-03-28T01:28:51.8070000Z", 32), ("1000,0001-01-01T00:00:00Z", 1000),
])
def test_r5_token_forms_are_accepted(validator: Validator, token: str, offset: int) -> None:
    check = get(validator, f"continuationToken={token}")
    assert check.ok, check.violations
    assert (check.query.continuation_token, check.query.token_offset) == (token, offset)


@pytest.mark.parametrize("contract,shape,rarity", [
    (None, "V1", False), ("1", "V1", False), ("2", "V2", False), ("3", "V1", True), ("4", "V2", True),
    (" 2 ", "V2", False),
])
def test_r6_contract_version_selects_shape(validator: Validator, contract: str | None, shape: str, rarity: bool) -> None:
    h = headers()
    if contract is None:
        del h["x-xbl-contract-version"]
    else:
        h["x-xbl-contract-version"] = contract
    check = validator.check_request("GET", BASE, h)
    assert check.ok and check.violations == []
    assert (check.query.shape, check.query.rarity, check.query.contract) == (shape, rarity, contract)


@pytest.mark.parametrize("contract", ["5", "0", "abc", ""])
def test_r6_unsupported_contract_warns_and_stays_valid(validator: Validator, contract: str) -> None:
    check = get(validator, x_xbl_contract_version=contract)
    assert check.ok and check.query.shape is None
    (v,) = check.violations
    assert (v.rule, v.code, v.severity, v.location) == ("R6", "contract-version", WARNING, "header")


# ---------------------------------------------------------------- locales


@pytest.mark.parametrize("header,expected", [
    ("fr-FR, fr, en-GB, en-WW, en-US", ("fr-FR", "fr", "en-GB", "en-WW", "en-US")),
    ("en;q=0.5, de-DE;q=0.9, fr-FR", ("fr-FR", "de-DE", "en")),
    ("en-us, EN-US;q=0.8, zh-hant-tw", ("en-US", "zh-Hant-TW")),
    ("*, ja-JP;q=0, es-MX;q=0.3, pt-BR;q=bad", ("es-MX",)),
    ("", ()),
])
def test_r6_accept_language_preference_list(header: str, expected: tuple[str, ...]) -> None:
    assert parse_accept_language(header) == expected


def test_r6_locales_reach_the_query(validator: Validator) -> None:
    q = get(validator, accept_language="en-GB;q=0.7, fr-fr").query
    assert q.locales == ("fr-FR", "en-GB")


# ---------------------------------------------------------------- other endpoints

DETAIL = f"https://achievements.xboxlive.com/users/xuid(2533274800000001)/achievements/{SCID}"


def test_detail_endpoint_path_params(validator: Validator) -> None:
    check = get(validator, path=f"{DETAIL}/7")
    assert check.ok and check.endpoint == EP_DETAIL
    assert check.path_params == {"xuid": 2533274800000001, "scid": SCID, "achievement_id": 7}
    assert check.query.shape == "V2"


@pytest.mark.parametrize("path,name", [
    (f"{DETAIL}/4294967296", "achievementId"),
    (f"{DETAIL}/x", "achievementId"),
    ("https://achievements.xboxlive.com/users/xuid(1)/achievements/not-a-guid/1", "scid"),
])
def test_r8_detail_bad_path_parameter_answers_400(validator: Validator, path: str, name: str) -> None:
    check = get(validator, path=path)
    assert (check.endpoint, check.status) == (EP_DETAIL, 400)
    v = only_error(check)
    assert (v.rule, v.location, v.name) == ("R8", "path", name)


def test_detail_takes_no_query_parameters(validator: Validator) -> None:
    (v,) = get(validator, "maxItems=5", path=f"{DETAIL}/7").violations
    assert (v.code, v.name) == ("unknown-parameter", "maxItems")


def test_history_endpoint_paging(validator: Validator) -> None:
    path = "https://achievements.xboxlive.com/users/xuid(1)/history/titles"
    check = get(validator, "maxItems=10&continuationToken=20", path=path)
    assert check.ok and check.endpoint == EP_HISTORY
    assert (check.query.max_items, check.query.start) == (10, 20)
    assert only_error(get(validator, "skipItems=-2", path=path)).name == "skipItems"
    assert get(validator, "titleId=1", path=path).violations[0].code == "unknown-parameter"


UPDATE = f"https://achievements.xboxlive.com/users/xuid(2533274800000001)/achievements/{SCID}/update"
GOOD_UPDATE = {"action": "progressUpdate", "serviceConfigId": SCID, "titleId": 1234,
               "userId": "2533274800000001", "achievements": [{"id": "1", "percentComplete": 100}]}


def test_update_body_is_checked(validator: Validator) -> None:
    ok = validator.check_request("POST", UPDATE, headers(), json.dumps(GOOD_UPDATE).encode())
    assert ok.ok and ok.endpoint == EP_UPDATE
    assert ok.path_params == {"xuid": 2533274800000001, "scid": SCID}
    bad = dict(GOOD_UPDATE, achievements=[{"id": "1", "percentComplete": 0}])
    check = validator.check_request("POST", UPDATE, headers(), json.dumps(bad).encode())
    assert check.status == 400
    v = only_error(check)
    assert (v.rule, v.location, v.name) == ("R8", "body", "/achievements/0/percentComplete")


@pytest.mark.parametrize("body,code", [(None, "missing-body"), (b"{nope", "invalid-json")])
def test_update_without_json_body_answers_400(validator: Validator, body: bytes | None, code: str) -> None:
    check = validator.check_request("POST", UPDATE, headers(), body)
    assert check.status == 400 and only_error(check).code == code


def test_wrong_method_or_unknown_path_is_other(validator: Validator) -> None:
    assert validator.check_request("POST", BASE, headers()).endpoint == EP_OTHER
    assert validator.check_request("GET", UPDATE.replace("/update", "/update/x"), headers()).endpoint == EP_OTHER
    other = validator.check_request("GET", "https://achievements.xboxlive.com/health", headers())
    assert other.endpoint == EP_OTHER and other.ok and other.query is None


def test_limits_are_read_from_the_document() -> None:
    """The rules are data: a changed document changes what is accepted."""
    with open(RULES / "achievements.openapi.yaml", encoding="utf-8") as f:
        doc = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    doc["components"]["parameters"]["maxItems"]["schema"]["maximum"] = 1000
    doc["components"]["parameters"]["orderBy"]["schema"]["enum"].append("Rarity")
    custom = Validator(doc)
    assert get(custom, "maxItems=1000").ok and get(custom, "maxItems=1001").status == 400
    assert get(custom, "orderBy=rarity").query.order_by == "Rarity"


# ---------------------------------------------------------------- R7 responses


def test_r7_good_bodies_have_no_violations(validator: Validator) -> None:
    assert validator.check_response(get(validator), 200, {}, v2_body(32, total=73, token="32")) == []
    v1_check = get(validator, x_xbl_contract_version="1")
    assert validator.check_response(v1_check, 200, {}, v1_body()) == []


@pytest.mark.parametrize("trap", sorted(R7_TRAPS))
def test_r7_response_traps_are_reported(validator: Validator, trap: str) -> None:
    body, pointer = R7_TRAPS[trap]
    found = validator.check_response(get(validator), 200, {}, body)
    assert [(v.rule, v.location, v.name, v.severity) for v in found] == [("R7", "response", pointer, ERROR)]


def test_r7_schema_follows_the_request_shape(validator: Validator) -> None:
    v1_check = get(validator, x_xbl_contract_version="1")
    assert validator.check_response(v1_check, 200, {}, v2_body(1))
    assert validator.check_response(get(validator), 200, {}, v1_body())


def test_r7_only_200_listings_are_checked(validator: Validator) -> None:
    bad = {"achievements": None}
    assert validator.check_response(get(validator), 404, {}, bad) == []
    history = get(validator, path="https://achievements.xboxlive.com/users/xuid(1)/history/titles")
    assert validator.check_response(history, 200, {}, bad) == []
    (v,) = validator.check_response(get(validator), 200, {}, None)
    assert (v.rule, v.name) == ("R7", "")


def test_r7_violations_are_capped(validator: Validator) -> None:
    body = v2_body(40)
    for item in body["achievements"]:
        item["platforms"] = None
    found = validator.check_response(get(validator), 200, {}, body)
    assert len(found) == 20
    assert all(v.name.endswith("/platforms") for v in found)


def test_r7_detail_answer_has_one_item(validator: Validator) -> None:
    check = get(validator, path=f"{DETAIL}/1")
    assert validator.check_response(check, 200, {}, v2_body(1)) == []
    (v,) = validator.check_response(check, 200, {}, v2_body(2))
    assert (v.rule, v.code) == ("R7", "detail-item-count")


# ---------------------------------------------------------------- error answers


def test_r8_error_answer_400(validator: Validator) -> None:
    check = get(validator, "maxItems=0&color=red")
    answer = invalid_request(check)
    assert (answer.status, answer.source) == (400, "error")
    assert set(answer.body) == {"errorCode", "errorMessage"}
    assert isinstance(answer.body["errorCode"], int) and "maxItems" in answer.body["errorMessage"]
    hdrs = dict(answer.headers)
    listed = json.loads(hdrs["X-Xblreplay-Violations"])
    assert [(d["rule"], d["name"], d["severity"]) for d in listed] == [("R8", "maxItems", "error")]
    assert "R8" in answer.reason and "maxItems" in answer.reason


def test_r8_error_answer_401(validator: Validator) -> None:
    check = get(validator, "maxItems=0", authorization="")
    answer = invalid_request(check)
    assert answer.status == 401 and answer.body is None and answer.body_bytes() == b""
    hdrs = dict(answer.headers)
    assert hdrs["WWW-Authenticate"] == 'Token realm="xboxlive.com", error="token_required"'
    names = [d["name"] for d in json.loads(hdrs["X-Xblreplay-Violations"])]
    assert names == ["Authorization", "maxItems"]
    assert "R8" in answer.reason and "Authorization" in answer.reason


def test_recursive_schema_reference_still_validates() -> None:
    """Inlined references stop at recursion, which stays a resolvable reference."""
    with open(RULES / "achievements.openapi.yaml", encoding="utf-8") as f:
        doc = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    doc["components"]["schemas"]["Tree"] = {
        "type": "object", "required": ["id"],
        "properties": {"id": {"type": "integer"},
                       "children": {"type": "array", "items": {"$ref": "#/components/schemas/Tree"}}},
    }
    tree = Validator(doc).schema("Tree")
    assert tree.is_valid({"id": 1, "children": [{"id": 2, "children": [{"id": 3}]}]})
    assert not tree.is_valid({"id": 1, "children": [{"id": 2, "children": [{"id": "x"}]}]})


def test_r7_a_remembered_valid_item_does_not_hide_a_changed_one(validator: Validator) -> None:
    """Valid items are remembered by content; the same item changed is checked again."""
    body = v2_body(3)
    assert validator.check_response(get(validator), 200, {}, body) == []
    body["achievements"][1]["platforms"] = "Durango"  # R7 trap: not an array
    found = validator.check_response(get(validator), 200, {}, body)
    assert [(v.rule, v.name) for v in found] == [("R7", "/achievements/1/platforms")]
    # The same wrong item is reported every time it is served, never remembered as valid.
    assert validator.check_response(get(validator), 200, {}, body) == found


def test_the_contract_is_read_as_every_file_from_outside(tmp_path):
    """A FIFO in place of the contract is refused by name instead of blocking the read, and a
    contract that nests past the bound is refused with its line."""
    import os

    import pytest as _pytest

    fifo_dir = tmp_path / "fifo"
    fifo_dir.mkdir()
    os.mkfifo(fifo_dir / "achievements.openapi.yaml")
    with _pytest.raises(ValueError, match="achievements.openapi.yaml: cannot read the contract: .*not a regular file"):
        Validator.from_rules(fifo_dir)
    deep_dir = tmp_path / "deep"
    deep_dir.mkdir()
    (deep_dir / "achievements.openapi.yaml").write_text("a: " + "[" * 300 + "]" * 300 + "\n")
    with _pytest.raises(ValueError, match="line 1: nested more than 200 levels deep"):
        Validator.from_rules(deep_dir)
