"""End-to-end: replay-or-record answers from the cassettes when coverage allows, forwards and
records the rest (gzip bodies stored decoded), and answers the new recording offline next time."""

from __future__ import annotations

import gzip
import json
import shutil

import pytest

import refservice
from proxyharness import REPO, XUID, Mitmdump, Upstream, read_log

pytestmark = pytest.mark.e2e

BASE = f"/users/xuid({XUID})/achievements"
NEW_TITLE = 4444  # not in the example cassette


def test_r2_replay_or_record_forwards_only_what_the_cassette_does_not_cover(tmp_path):
    cassettes = tmp_path / "cassettes"
    shutil.copytree(REPO / "cassettes" / "example", cassettes)
    items = refservice.make_dataset(11, {NEW_TITLE: 12})

    def serve_gzip(method, path, headers, body):
        data = gzip.compress(json.dumps(refservice.answer(items, path)).encode())
        return 200, {"Content-Type": "application/json", "Content-Encoding": "gzip"}, data

    log = tmp_path / "log.jsonl"
    with Upstream(serve_gzip) as up:
        with Mitmdump(tmp_path, achievements_mode="replay-or-record", achievements_cassettes=cassettes,
                      achievements_upstream=up.url, achievements_log=log) as proxy:
            covered = proxy.request(f"{BASE}?titleId=1829000002&maxItems=3")
            assert up.requests == []  # answered from the example cassette
            fresh = proxy.request(f"{BASE}?titleId={NEW_TITLE}")  # the whole title, one page
            assert len(up.requests) == 1
            # Recorded live: a query never sent upstream is now answered from the recording.
            again = proxy.request(f"{BASE}?titleId={NEW_TITLE}&unlockedOnly=true&orderBy=UnlockTime")
            assert len(up.requests) == 1
    assert covered.status == 200 and len(covered.json()["achievements"]) == 3
    assert fresh.status == 200 and fresh.headers["content-encoding"] == "gzip"  # passed through as sent
    assert json.loads(gzip.decompress(fresh.body)) == refservice.answer(items, f"{BASE}?titleId={NEW_TITLE}")
    expected = refservice.answer(items, f"{BASE}?titleId={NEW_TITLE}&unlockedOnly=true&orderBy=UnlockTime")
    assert again.json() == expected
    entries, _ = read_log(log)
    assert [e["source"] for e in entries] == ["dataset", "upstream", "dataset"]

    # The recording is on disk, decoded (no gzip bytes), and replays with no upstream at all.
    recorded = cassettes / "recorded" / str(XUID) / f"{NEW_TITLE}.yaml"
    assert b"Achievement 4444-1" in recorded.read_bytes()
    with Mitmdump(tmp_path, achievements_mode="replay", achievements_cassettes=cassettes) as proxy:
        offline = proxy.request(f"{BASE}?titleId={NEW_TITLE}&maxItems=5&skipItems=5&orderBy=Title")
    assert offline.json() == refservice.answer(items, f"{BASE}?titleId={NEW_TITLE}&maxItems=5&skipItems=5&orderBy=Title")
