"""Diff mode's comparison without a proxy: two answers to one request compared, each difference
attributed to the rule it points at (README, "Diff mode"), volatile fields left out
(rules/diff.yaml), the log's ``diff`` field and the summary's per-rule agreement. The service's
side is a body captured from the live service (tests/data/real/), altered one way per test.
The same through a real mitmdump: tests/test_e2e_diff.py."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from xblreplay import DEFAULT_RULES_DIR
from xblreplay.contract import Validator
from xblreplay.diff import (
    Comparison, DiffRules, DiffRulesError, compare, differences, expect, judge, load_diff_rules, pointer,
)
from xblreplay.model import Answer, Violation
from xblreplay.vlog import ValidationLog
from proxyharness import AUTH, read_log

REAL = Path(__file__).resolve().parent / "data" / "real"
CAPTURE = json.loads((REAL / "achievements_one_gameprogress.json").read_bytes())
XUID = 2669321029139235
TITLE = 219630713
VALIDATOR = Validator.from_rules(DEFAULT_RULES_DIR)
RULES = load_diff_rules(DEFAULT_RULES_DIR)


def query(params: str = f"titleId={TITLE}", contract: str = "2"):
    url = f"https://achievements.xboxlive.com/users/xuid({XUID})/achievements?{params}"
    check = VALIDATOR.check_request("GET", url, {"authorization": AUTH, "x-xbl-contract-version": contract})
    assert check.ok, check.violations
    return check.query


def body() -> dict:
    return copy.deepcopy(CAPTURE)


def rules_of(verdict) -> list[str]:
    return [f.rule for f in verdict.findings]


# ------------------------------------------------------------------------------- agreement

def test_the_capture_against_itself_agrees_on_every_rule_it_exercises():
    verdict = compare(query(), 200, body(), 200, body(), [], RULES)
    assert verdict.findings == []
    assert verdict.checked == {"R8", "R3", "R4", "R5", "R7"}  # titleId filters: the set is R3's


def test_without_filters_the_set_is_the_datasets_r1():
    verdict = compare(query("maxItems=32"), 200, body(), 200, body(), [], RULES)
    assert verdict.findings == [] and "R1" in verdict.checked and "R3" not in verdict.checked


# ------------------------------------------------------------------------- one rule broken

def test_the_same_items_in_another_order_point_at_r4_with_the_positions():
    live = body()
    live["achievements"][2], live["achievements"][5] = live["achievements"][5], live["achievements"][2]
    verdict = compare(query(f"titleId={TITLE}&orderBy=UnlockTime"), 200, live, 200, body(), [], RULES)
    assert rules_of(verdict) == ["R4"]
    (finding,) = verdict.findings
    assert finding.aspect == "order"
    assert finding.paths == ("/achievements/2/id", "/achievements/5/id")
    assert "orderBy=UnlockTime" in finding.message and "position 2" in finding.message
    assert CAPTURE["achievements"][5]["id"] in finding.message


def test_another_total_under_a_filter_points_at_r3_and_names_the_missing_items():
    live = body()
    gone = live["achievements"].pop(4)
    live["pagingInfo"]["totalRecords"] -= 1
    verdict = compare(query(f"titleId={TITLE}&unlockedOnly=true"), 200, live, 200, body(), [], RULES)
    assert rules_of(verdict) == ["R3"]
    (finding,) = verdict.findings
    assert finding.aspect == "records" and finding.paths[0] == "/pagingInfo/totalRecords"
    assert f"only the cassettes have id {gone['id']}" in finding.message
    assert "unlockedOnly=true" in finding.message


def test_another_total_without_filters_points_at_the_dataset_r1_or_at_r2_when_replay_said_so():
    live = body()
    live["pagingInfo"]["totalRecords"] = 80
    plain = compare(query("maxItems=32"), 200, live, 200, body(), [], RULES)
    assert rules_of(plain) == ["R1"]
    warned = [Violation("R2", "response", "", "warning", "titles not recorded", "coverage")]
    assert rules_of(compare(query("maxItems=32"), 200, live, 200, body(), warned, RULES)) == ["R2"]


def test_another_token_points_at_r5():
    live = body()
    live["pagingInfo"]["continuationToken"] = "33"
    verdict = compare(query(), 200, live, 200, body(), [], RULES)
    assert [(f.rule, f.aspect, f.paths) for f in verdict.findings] == [
        ("R5", "token", ("/pagingInfo/continuationToken",))]
    assert "'33'" in verdict.findings[0].message and "'32'" in verdict.findings[0].message


def test_a_shorter_page_points_at_r5():
    live = body()
    del live["achievements"][-1]
    assert rules_of(compare(query(), 200, live, 200, body(), [], RULES)) == ["R5"]


def test_a_field_of_the_same_achievement_points_at_r7_with_its_path():
    live = body()
    live["achievements"][3]["progression"]["timeUnlocked"] = "2016-01-01T00:00:00.0000000Z"
    live["achievements"][7]["rewards"][0]["value"] = "999"
    verdict = compare(query(), 200, live, 200, body(), [], RULES)
    (finding,) = verdict.findings
    assert (finding.rule, finding.aspect) == ("R7", "field")
    assert finding.paths == ("/achievements/3/progression/timeUnlocked", "/achievements/7/rewards/0/value")


def test_fields_are_compared_by_identity_not_by_position():
    live = body()
    live["achievements"].reverse()
    local = body()
    local["achievements"][0]["name"] = "Renamed"
    verdict = compare(query(), 200, live, 200, local, [], RULES)
    assert sorted(rules_of(verdict)) == ["R4", "R7"]
    field = next(f for f in verdict.findings if f.rule == "R7")
    assert field.paths == (f"/achievements/{len(live['achievements']) - 1}/name",)


def test_paths_are_capped_by_max_paths_and_the_rest_counted():
    live = body()
    for item in live["achievements"]:
        item["description"] = "changed"
    verdict = compare(query(), 200, live, 200, body(), [], DiffRules(RULES.volatile, max_paths=3))
    (finding,) = verdict.findings
    assert len(finding.paths) == 3 and finding.more == len(live["achievements"]) - 3
    assert finding.to_dict()["more_paths"] == finding.more


# ---------------------------------------------------------------- volatile fields, R6

def with_rarity(doc: dict, percentage: float, category: str = "Common") -> dict:
    for item in doc["achievements"]:
        item["rarity"] = {"currentCategory": category, "currentPercentage": percentage}
    return doc


def test_rarity_percentage_and_category_are_volatile():
    verdict = compare(query(contract="4"), 200, with_rarity(body(), 12.5, "Rare"), 200,
                      with_rarity(body(), 64.86), [], RULES)
    assert verdict.findings == []


def test_without_the_volatile_list_the_same_rarity_difference_is_reported_as_r6():
    verdict = compare(query(contract="4"), 200, with_rarity(body(), 12.5), 200, with_rarity(body(), 64.86), [],
                      DiffRules())
    assert rules_of(verdict) == ["R6"]
    assert verdict.findings[0].paths[0] == "/achievements/0/rarity/currentPercentage"


def test_rarity_missing_on_one_side_is_r6():
    verdict = compare(query(contract="4"), 200, with_rarity(body(), 50.0), 200, body(), [], RULES)
    assert rules_of(verdict) == ["R6"] and verdict.findings[0].paths[0] == "/achievements/0/rarity"


def test_user_data_under_possible_only_points_at_r3():
    live = body()
    live["achievements"][0]["progressState"] = "NotStarted"
    verdict = compare(query(f"titleId={TITLE}&possibleOnly=true"), 200, live, 200, body(), [], RULES)
    assert rules_of(verdict) == ["R3"] and verdict.findings[0].paths == ("/achievements/0/progressState",)


# ----------------------------------------------------------------------------- statuses

@pytest.mark.parametrize("live, local, rule", [
    (400, 200, "R8"), (200, 401, "R8"), (403, 200, "R8"), (200, 404, "R9"), (429, 200, "R10"),
])
def test_a_status_difference_points_at_its_rule_and_stops_there(live, local, rule):
    verdict = compare(query(), live, b"", local, body(), [], RULES)
    assert [(f.rule, f.aspect) for f in verdict.findings] == [(rule, "status")]
    assert str(live) in verdict.findings[0].message and str(local) in verdict.findings[0].message


def test_a_strict_coverage_404_points_at_r2():
    coverage = [Violation("R2", "path", "titleId", "error", "not covered", "coverage")]
    assert rules_of(compare(query(), 200, body(), 404, b"", coverage, RULES)) == ["R2"]


def test_the_same_error_status_agrees_whatever_the_bodies():
    verdict = compare(query(), 400, b'{"errorCode":1}', 400, {"errorCode": 4000}, [], RULES)
    assert verdict.findings == [] and verdict.checked == {"R8"}


def test_a_body_that_is_not_a_listing_is_compared_field_by_field():
    verdict = compare(None, 200, {"a": [1, {"b": True}]}, 200, {"a": [1, {"b": 1}], "c": 0}, [], RULES)
    (finding,) = verdict.findings
    assert finding.rule == "R7" and finding.paths == ("/a/1/b", "/c")


# ---------------------------------------------------------------------------------- walk

def test_walk_numbers_booleans_missing_keys_and_escaping():
    assert differences({"x": 1}, {"x": 1.0}, DiffRules()) == []
    assert differences({"x": True}, {"x": 1}, DiffRules()) == [("x",)]
    assert differences([1, 2, 3], [1, 2], DiffRules()) == [("2",)]
    assert differences({"a/b": {"~": 1}}, {"a/b": {}}, DiffRules()) == [("a/b", "~")]
    assert pointer(("a/b", "~")) == "/a~1b/~0"
    assert differences({"x": {"y": 1}}, {"x": [1]}, DiffRules()) == [("x",)]


def test_walk_survives_a_body_nested_past_the_recursion_limit():
    deep_a: list = []
    deep_b: list = []
    a, b = deep_a, deep_b
    for _ in range(5000):
        a.append([])
        b.append([])
        a, b = a[0], b[0]
    a.append(1)
    assert len(differences(deep_a, deep_b, DiffRules())[0]) == 5001


# --------------------------------------------------------------------------- rules file

def test_the_shipped_rules_list_the_rarity_fields(tmp_path):
    assert RULES.ignores(("achievements", "7", "rarity", "currentPercentage"))
    assert not RULES.ignores(("achievements", "7", "rarity"))
    assert not RULES.ignores(("achievements", "7", "progression", "timeUnlocked"))


@pytest.mark.parametrize("text, said", [
    ("version: 1\nvolatile:\n  - path: achievements/*/x\n    why: w\n", "path"),
    ("version: 1\nvolatile:\n  - path: /a\n", "why"),
    ("version: 2\nvolatile: []\n", "version"),
    ("version: 1\nvolatile: []\nignore: []\n", "ignore"),
    ("version: 1\nvolatile: [\n", "not valid YAML"),
])
def test_a_bad_rules_file_is_refused_naming_the_file(tmp_path, text, said):
    (tmp_path / "diff.yaml").write_text(text)
    with pytest.raises(DiffRulesError) as err:
        load_diff_rules(tmp_path)
    line = str(err.value)
    assert line.startswith(str(tmp_path / "diff.yaml")) and said in line


def test_a_missing_rules_file_is_refused(tmp_path):
    with pytest.raises(DiffRulesError, match="cannot read"):
        load_diff_rules(tmp_path)


# ----------------------------------------------------------------------- one exchange

def test_a_failing_answer_builder_is_an_internal_finding_not_an_exception():
    def broken(*_):
        raise KeyError("boom")

    comparison = expect(broken, None, "GET", "/", None)
    judge(comparison, None, 200, lambda: (body(), ""), RULES)
    entry = comparison.entry()
    assert entry["not_compared"] == "internal error"
    assert entry["findings"] == [{"rule": "internal", "aspect": "internal-error",
                                  "message": "the cassettes' answer could not be made: KeyError"}]


def test_a_failing_read_of_the_live_body_is_an_internal_finding():
    def unreadable():
        raise ValueError("bad")

    comparison = Comparison(expected=Answer(200, body()))
    judge(comparison, query(), 200, unreadable, RULES)
    assert comparison.entry()["findings"][0]["message"] == "the comparison failed: ValueError"


def test_a_service_error_or_an_unread_body_is_not_compared():
    comparison = Comparison(expected=Answer(200, body()))
    judge(comparison, query(), 503, lambda: pytest.fail("read"), RULES)
    assert comparison.entry() == {"not_compared": "the service answered 503: its trouble, not a rule's",
                                  "local": {"status": 200, "source": "dataset"}}
    unread = Comparison(expected=Answer(200, body()))
    judge(unread, query(), 200, lambda: (None, "body over achievements_max_body"), RULES)
    assert unread.entry()["not_compared"].endswith("body over achievements_max_body")


def test_the_cassettes_answer_is_read_back_from_the_bytes_it_would_send():
    live = body()
    live["achievements"][0]["name"] = "Other"
    comparison = Comparison(expected=Answer(200, json.dumps(CAPTURE).encode(), source="interaction"))
    judge(comparison, query(), 200, lambda: (live, ""), RULES)
    entry = comparison.entry()
    assert entry["agreed"] is False and entry["local"] == {"status": 200, "source": "interaction"}
    assert entry["findings"][0]["paths"] == ["/achievements/0/name"]
    assert entry["checked"] == ["R3", "R4", "R5", "R7", "R8"]


# ---------------------------------------------------------------------- log and summary

def test_the_log_writes_the_diff_field_and_the_summary_counts_agreement_per_rule(tmp_path):
    log = ValidationLog(tmp_path / "log.jsonl")
    log.count_diffs()
    swapped = body()
    swapped["achievements"][0], swapped["achievements"][1] = swapped["achievements"][1], swapped["achievements"][0]
    fields = dict(method="GET", url="https://achievements.xboxlive.com/x", mode="diff", endpoint="achievements",
                  status=200, source="upstream", latency_ms=1.0, violations=[])
    for live in (body(), swapped, body()):
        comparison = Comparison(expected=Answer(200, body()))
        judge(comparison, query(), 200, lambda: (live, ""), RULES)
        log.write(**fields, diff=comparison.entry())
    log.write(**fields, diff={"not_compared": "answered by the proxy (throttle), not by the service"})
    summary = log.close()
    entries, written = read_log(tmp_path / "log.jsonl")
    assert [e["diff"].get("agreed") for e in entries] == [True, False, True, None]
    assert entries[1]["diff"]["findings"][0]["rule"] == "R4"
    assert written == summary
    diff = summary["diff"]
    assert {k: diff[k] for k in ("exchanges", "compared", "agreed", "disagreed", "not_compared")} == {
        "exchanges": 4, "compared": 3, "agreed": 2, "disagreed": 1, "not_compared": 1}
    assert diff["by_rule"]["R4"] == {"compared": 3, "agreed": 2, "disagreed": 1, "agreement": 0.6667}
    assert all(diff["by_rule"][r]["agreement"] == 1.0 for r in ("R3", "R5", "R7", "R8"))
    assert diff["findings_by_rule"] == {"R4": 1}


def test_the_summary_has_no_diff_counts_outside_diff_mode():
    assert "diff" not in ValidationLog().summary()
