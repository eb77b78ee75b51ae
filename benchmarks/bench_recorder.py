"""Recorder and cassette loading costs: median record() call, writer files per second, and the
load time of a 100k-achievement cassette (first parse and unchanged-file load).

    .venv/bin/python benchmarks/bench_recorder.py
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "addons"))

from xblreplay import cassette  # noqa: E402
from xblreplay.recording import Recorder  # noqa: E402

BASE = "https://achievements.xboxlive.com/users/xuid(2533274800000001)/achievements"
HEADERS = {"x-xbl-contract-version": "2", "accept-language": "en-US",
           "authorization": "XBL3.0 x=1234567890123;eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"}
BODY = json.dumps({"achievements": [{"id": str(n), "name": f"A{n}"} for n in range(32)],
                   "pagingInfo": {"continuationToken": "32", "totalRecords": 100}}).encode()


def record(rec: Recorder, title: int, n: int) -> None:
    rec.record("GET", f"{BASE}?titleId={title}&skipItems={n}", HEADERS, 200, {"content-type": "application/json"},
               BODY, "application/json", 12.0, "2026-11-27T12:00:00Z")


def bench_record_call(root: Path, calls: int = 5000) -> float:
    rec = Recorder(root)
    costs = []
    for n in range(calls):
        t = time.perf_counter_ns()
        record(rec, n % 50, n)
        costs.append(time.perf_counter_ns() - t)
    rec.close()
    return statistics.median(costs) / 1000


def bench_writer(root: Path, files: int = 300, per_file: int = 3) -> float:
    rec = Recorder(root)
    t = time.perf_counter()
    for title in range(files):
        for n in range(per_file):
            record(rec, 100_000 + title, n)
    rec.flush()
    elapsed = time.perf_counter() - t
    rec.close()
    assert not rec.errors, list(rec.errors)
    return files / elapsed


def bench_load(root: Path, achievements: int = 100_000) -> tuple[float, float]:
    os.environ["XBLREPLAY_CACHE_DIR"] = str(root / "cache")
    entries = [{"id": n, "name": f"Achievement {n}", "gamerscore": 10} for n in range(achievements)]
    doc = {"xblreplay": 1, "datasets": [{"xuid": 2533274800000001, "titles": [{"id": 1234, "achievements": entries}]}]}
    path = root / "big.yaml"
    path.write_bytes(cassette.dump(doc))
    t = time.perf_counter()
    cassette.load_file(path)
    first = time.perf_counter() - t
    again = []
    for _ in range(5):
        t = time.perf_counter()
        cassette.load_file(path)
        again.append(time.perf_counter() - t)
    return first, statistics.median(again)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        per_call = bench_record_call(root / "calls")
        print(f"record() median call: {per_call:.2f} us")
        fps = bench_writer(root / "writer")
        print(f"writer: {fps:.0f} files/s (3 interactions per file, fsync on)")
        first, again = bench_load(root)
        print(f"100k-achievement cassette: first load {first:.2f} s, unchanged-file load median {again:.3f} s "
              f"(ratio {first / again:.0f}x)")


if __name__ == "__main__":
    main()
