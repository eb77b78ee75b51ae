"""End-to-end: diff mode (achievements_mode=diff) through a real mitmdump on 127.0.0.1 against a
real local upstream. The cassettes hold one recorded listing of a reference dataset
(tests/refservice.py) and a body captured from the live service; the upstream serves the same
data. A faithful upstream agrees on every rule (its rarity percentages, volatile, differ); one
that orders UnlockTime oldest first is reported under R4 and nothing else, with the differing
paths; the client gets the upstream's body byte for byte either way."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import refservice
from proxyharness import (REPO, VARIED_QUERIES, XUID, Mitmdump, SilentListener, Upstream, cassette_documents,
                          printed_summary, read_log)

pytestmark = pytest.mark.e2e

TITLES = {1111: 23, 2222: 41, 3333: 9}
BASE = f"/users/xuid({XUID})/achievements"
RECORDED = f"{BASE}?maxItems=1000"  # one unfiltered page of everything: R2 coverage of all titles
QUERIES = [
    *VARIED_QUERIES,
    "orderBy=UnlockTime&maxItems=10",
    "orderBy=UnlockTime&maxItems=10",  # asked twice: recorded live answers never become the reference
    "maxItems=25&skipItems=60",
]
REAL = REPO / "tests" / "data" / "real" / "achievements_one_gameprogress.json"
REAL_XUID = 2669321029139235
REAL_PATH = f"/users/xuid({REAL_XUID})/achievements?titleId=219630713"


def items_with_rarity(percent_of) -> list[dict]:
    items = refservice.make_dataset(11, TITLES)
    for n, item in enumerate(items):
        item["rarity"] = {"currentCategory": "Common", "currentPercentage": percent_of(n)}
    return items


CASSETTE_ITEMS = items_with_rarity(lambda n: 40.0 + n / 4)
# What the service says today: every rarity percentage moved (volatile, rules/diff.yaml).
LIVE_ITEMS = items_with_rarity(lambda n: 55.25 + n / 8)


def write_cassettes(directory: Path) -> Path:
    directory.mkdir()
    headers = {"x-xbl-contract-version": "4", "accept-language": "en-US"}
    doc = {"xblreplay": 1, "interactions": [
        {"recorded_at": "2026-11-27T12:00:00Z",
         "request": {"method": "GET", "url": f"https://achievements.xboxlive.com{RECORDED}", "headers": headers},
         "response": {"status": 200, "headers": {"content-type": "application/json"},
                      "body": refservice.answer(CASSETTE_ITEMS, RECORDED)}},
        {"recorded_at": "2026-11-27T12:00:01Z",
         "request": {"method": "GET", "url": f"https://achievements.xboxlive.com{REAL_PATH}",
                     "headers": {"x-xbl-contract-version": "2"}},
         "response": {"status": 200, "headers": {"content-type": "application/json"},
                      "body": json.loads(REAL.read_bytes())}},
    ]}
    (directory / "reference.yaml").write_text(json.dumps(doc))
    return directory


def upstream(broken: str | None):
    listing = refservice.handler(LIVE_ITEMS, broken=broken)

    def serve(method, path, headers, body):
        if path == REAL_PATH:
            return 200, {"Content-Type": "application/json"}, REAL.read_bytes()
        return listing(method, path, headers, body)

    return serve


def run_diff(tmp_path: Path, cassettes: Path, broken: str | None, **options) -> tuple[dict, list, dict, dict, str]:
    """Every query (contract 4) and the real capture's (contract 2) through a diff-mode mitmdump:
    (replies by index, log entries, log summary, printed summary, output)."""
    log = tmp_path / f"diff-{broken}.jsonl"
    with Upstream(upstream(broken)) as up:
        with Mitmdump(tmp_path, achievements_mode="diff", achievements_upstream=up.url,
                      achievements_cassettes=cassettes, achievements_log=log, **options) as proxy:
            replies = {n: proxy.request(f"{BASE}?{q}", contract="4") for n, q in enumerate(QUERIES)}
            replies["real"] = proxy.request(REAL_PATH, contract="2", headers={"Accept-Language": ""})
        out = proxy.stop()
    assert len(up.requests) == len(QUERIES) + 1, out  # every request went to the service
    entries, summary = read_log(log)
    return replies, entries, summary, printed_summary(out), out


def assert_live_bytes(replies: dict, broken: str | None) -> None:
    for n, q in enumerate(QUERIES):
        assert replies[n].status == 200, (q, replies[n].body[:200])
        assert replies[n].body == json.dumps(refservice.answer(LIVE_ITEMS, f"{BASE}?{q}", broken)).encode(), q
    assert replies["real"].body == REAL.read_bytes()


def test_a_faithful_service_agrees_on_every_rule_and_volatile_rarity_is_not_reported(tmp_path):
    cassettes = write_cassettes(tmp_path / "cassettes")
    replies, entries, summary, printed, out = run_diff(tmp_path, cassettes, None)
    assert_live_bytes(replies, None)
    # The rarity the client got is the service's, not the cassettes': there was a difference to leave out.
    assert replies[0].json()["achievements"][0]["rarity"] != next(
        i for i in CASSETTE_ITEMS if i["id"] == replies[0].json()["achievements"][0]["id"]
        and i["serviceConfigId"] == replies[0].json()["achievements"][0]["serviceConfigId"])["rarity"]
    assert len(entries) == len(QUERIES) + 1
    for entry in entries:
        assert entry["mode"] == "diff" and entry["source"] == "upstream"
        assert entry["diff"]["agreed"] is True, entry
        assert entry["diff"]["findings"] == []
        assert {"R4", "R5", "R7", "R8"} <= set(entry["diff"]["checked"])
    # The real capture was recorded exactly: replay answers it as recorded, and agrees.
    assert entries[-1]["diff"]["local"] == {"status": 200, "source": "interaction"}
    assert entries[0]["diff"]["local"] == {"status": 200, "source": "dataset"}
    diff = summary["diff"]
    n = len(QUERIES) + 1
    assert (diff["compared"], diff["agreed"], diff["disagreed"], diff["agreement"]) == (n, n, 0, 1.0)
    assert diff["by_rule"] and all(r["agreement"] == 1.0 and r["disagreed"] == 0 for r in diff["by_rule"].values())
    assert diff["by_rule"]["R8"]["compared"] == n and diff["by_rule"]["R3"]["compared"] >= 6
    assert printed["diff"] == diff, out
    assert "xblreplay diff" not in out


def test_a_service_ordering_unlock_time_oldest_first_is_reported_under_r4_only(tmp_path):
    cassettes = write_cassettes(tmp_path / "cassettes")
    before = (cassettes / "reference.yaml").read_bytes()
    replies, entries, summary, printed, out = run_diff(tmp_path, cassettes, refservice.OLDEST_FIRST,
                                                       achievements_diff_record="true")
    assert_live_bytes(replies, refservice.OLDEST_FIRST)
    # Which answers the broken rule changes, by the reference itself.
    changed = {n for n, q in enumerate(QUERIES) if refservice.answer(LIVE_ITEMS, f"{BASE}?{q}")
               != refservice.answer(LIVE_ITEMS, f"{BASE}?{q}", refservice.OLDEST_FIRST)}
    assert changed == {n for n, q in enumerate(QUERIES) if "unlocktime" in q.lower()}
    for n, entry in enumerate(entries[:len(QUERIES)]):
        findings = entry["diff"]["findings"]
        if n not in changed:
            assert entry["diff"]["agreed"] is True, (QUERIES[n], findings)
            continue
        assert entry["diff"]["agreed"] is False
        assert [(f["rule"], f["aspect"]) for f in findings] == [("R4", "order")], (QUERIES[n], findings)
        paths = findings[0]["paths"]
        assert paths and all(p.startswith("/achievements/") and p.endswith("/id") for p in paths)
        assert "orderBy=UnlockTime" in findings[0]["message"]
        # The first path is the first position where the two answers part.
        live_ids = [a["id"] for a in replies[n].json()["achievements"]]
        local = refservice.answer(CASSETTE_ITEMS, f"{BASE}?{QUERIES[n]}")
        first = next(i for i, (a, b) in enumerate(zip(live_ids, [a["id"] for a in local["achievements"]])) if a != b)
        assert paths[0] == f"/achievements/{first}/id"
    assert entries[-1]["diff"]["agreed"] is True
    diff = summary["diff"]
    assert diff["disagreed"] == len(changed) and diff["findings_by_rule"] == {"R4": len(changed)}
    r4 = diff["by_rule"]["R4"]
    assert (r4["compared"], r4["disagreed"]) == (len(QUERIES) + 1, len(changed))
    assert r4["agreement"] == round((len(QUERIES) + 1 - len(changed)) / (len(QUERIES) + 1), 4)
    assert all(r["disagreed"] == 0 for rule, r in diff["by_rule"].items() if rule != "R4")
    assert printed["diff"] == diff
    assert out.count("xblreplay diff GET") == len(changed) and " R4 order: " in out
    # achievements_diff_record: the service's answers are in the cassette directory now, the file
    # the comparison used untouched.
    assert (cassettes / "reference.yaml").read_bytes() == before
    recorded = {i["request"]["url"].split("?", 1)[1]: i["response"]["body"]
                for path, doc in cassette_documents(cassettes) if path.name != "reference.yaml"
                for i in doc.get("interactions") or ()}
    broken_query = QUERIES[1]
    assert recorded[broken_query] == refservice.answer(LIVE_ITEMS, f"{BASE}?{broken_query}", refservice.OLDEST_FIRST)


def start_to_exit(tmp_path: Path, network: SilentListener, **options) -> tuple[int, str]:
    proxy = Mitmdump(tmp_path, achievements_mode="diff", achievements_upstream=network.url, **options)
    proxy.confdir.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(proxy.argv(), cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=30)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("broken", ["no cassette directory", "a bad rules/diff.yaml"])
def test_diff_mode_refuses_to_start_on_what_it_cannot_compare_with(tmp_path, broken):
    options: dict = {"achievements_cassettes": tmp_path / "missing"}
    if broken == "a bad rules/diff.yaml":
        rules = tmp_path / "rules"
        shutil.copytree(REPO / "rules", rules)
        (rules / "diff.yaml").write_text("version: 1\nvolatile:\n  - path: rarity\n    why: w\n")
        options = {"achievements_cassettes": write_cassettes(tmp_path / "cassettes"), "achievements_rules": rules}
    with SilentListener() as network:
        code, out = start_to_exit(tmp_path, network, **options)
    assert network.accepted == 0
    assert code != 0 and "Traceback" not in out, out
    ours = [line for line in out.splitlines() if "xblreplay" in line]
    assert len(ours) == 1, out
    expected = "achievements_cassettes" if broken == "no cassette directory" else "diff.yaml"
    assert expected in ours[0], out
