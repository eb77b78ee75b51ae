"""End-to-end: a real mitmdump replays a dataset `xblreplay generate` wrote (3 users, 200 titles,
10,000 achievements each): a title paged to the end with continuation tokens, V1 and contract-4
pages, and a validation log without one R7 finding; nothing dialled upstream."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from proxyharness import REPO, Mitmdump, SilentListener, page_all, read_log

pytestmark = pytest.mark.e2e

XUID = 2533274900000003  # the third generated user


def cassette(out: Path) -> dict:
    text = (out / str(XUID) / "en-US.yaml").read_text(encoding="utf-8")
    return json.loads(text[text.index("\n{") + 1:])


def test_a_generated_dataset_is_replayed_page_by_page_without_r7_findings(tmp_path):
    out = tmp_path / "generated"
    env = {**os.environ, "PYTHONPATH": str(REPO / "addons")}
    done = subprocess.run([sys.executable, "-m", "xblreplay.cli", "generate", "--out", str(out), "--users", "3",
                           "--titles", "200", "--achievements", "10000", "--seed", "1"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    assert done.returncode == 0, done.stderr
    doc = cassette(out)
    v2 = next(d for d in doc["datasets"] if d["shape"] == "V2")
    v1 = next(d for d in doc["datasets"] if d["shape"] == "V1")
    title = max(v2["titles"], key=lambda t: len(t["achievements"]))  # the longest: most pages
    old = v1["titles"][0]
    log = tmp_path / "validation.jsonl"
    with SilentListener() as upstream:
        with Mitmdump(tmp_path, achievements_mode="replay", achievements_cassettes=out,
                      achievements_upstream=upstream.url, achievements_log=log,
                      achievements_now="2026-11-20T00:00:00Z") as proxy:
            items, infos = page_all(proxy, f"titleId={title['id']}&maxItems=7", xuid=XUID)
            rare, _ = page_all(proxy, f"titleId={title['id']}&maxItems=25&orderBy=UnlockTime", xuid=XUID, contract="4")
            classic, _ = page_all(proxy, f"titleId={old['id']}&maxItems=10", xuid=XUID, contract="1")
            soon = proxy.request(f"/users/xuid({XUID})/achievements?types=Challenge&orderBy=EndingSoon&maxItems=50",
                                 contract="2")
        proxy.stop()
    assert upstream.accepted == 0
    # R5: pages of 7 with decimal-offset tokens, true totals; R1: the cassette's order.
    count = len(title["achievements"])
    assert len(infos) == -(-count // 7) >= 2
    assert [i["continuationToken"] for i in infos] == [str(n) for n in range(7, count, 7)] + [None]
    assert {i["totalRecords"] for i in infos} == {count}
    assert [(int(a["id"]), a["name"], a["progressState"] == "Achieved") for a in items] == \
        [(a["id"], a["name"], "unlocked" in a) for a in title["achievements"]]
    assert sorted(int(a["id"]) for a in rare) == [a["id"] for a in title["achievements"]]
    assert all("rarity" in a for a in rare) and not any("rarity" in a for a in items)
    assert [a["id"] for a in classic] == [a["id"] for a in old["achievements"]]
    assert all(a["titleId"] == old["id"] and isinstance(a["flags"], int) for a in classic)
    assert soon.status == 200 and soon.json()["achievements"]
    assert {a["achievementType"] for a in soon.json()["achievements"]} == {"Challenge"}
    entries, summary = read_log(log)
    assert len(entries) == len(infos) + -(-count // 25) + -(-len(classic) // 10) + 1
    assert all(e["status"] == 200 and e["source"] == "dataset" for e in entries)
    assert [v for e in entries for v in e["violations"] if v["rule"] == "R7"] == []
    assert [v for e in entries for v in e["violations"] if v["severity"] == "error"] == []
    assert summary is not None and summary["requests"] == len(entries)
