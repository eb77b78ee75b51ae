"""Dataset engine benchmark: load cost and per-query cost at growing dataset sizes.

    .venv/bin/python benchmarks/bench_engine.py [--sizes 1000,10000,100000,1000000] [--yaml-max 100000]

For each size a synthetic dataset (~50 achievements per title) is written as a cassette in the
compact form (pyyaml C dumper), read back with the C safe loader and fed to
`DatasetStore.add_hand_dataset`. Sizes above --yaml-max skip the YAML round trip (libyaml's
Python-side object construction dominates there) and build from the same entries in memory.
Then the median cost of `answer()` is measured over a mixed query set: filters, all four orders,
early/middle/late pages, with and without titleId. "cold" is the first pass (index and cache
building, lazy expansion), "warm" the median over the following passes.
Targets: warm median <= 50 us at 10k, sublinear growth, 100k load <= 1 s.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "addons"))

from xblreplay.dataset import DatasetStore  # noqa: E402
from xblreplay.model import ORDERS, AchievementsQuery  # noqa: E402

XUID = 2533274800000001
PER_TITLE = 50
NOW = datetime(2026, 11, 20, tzinfo=timezone.utc)
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def make_entry(size: int, seed: int = 1) -> dict:
    rng = random.Random(seed)
    base = datetime(2020, 1, 1, tzinfo=timezone.utc)
    titles = []
    for t in range(max(1, size // PER_TITLE)):
        achievements = []
        for n in range(1, min(PER_TITLE, size - t * PER_TITLE) + 1):
            a: dict = {"id": n, "name": f"Achievement {n}", "gamerscore": rng.choice((5, 10, 20, 50))}
            roll = rng.random()
            if roll < 0.4:
                a["unlocked"] = (base + timedelta(seconds=rng.randrange(10**8))).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
            elif roll < 0.5:
                a["progress"] = [rng.randrange(1, 5), 5]
            if rng.random() < 0.05:
                end = NOW + timedelta(days=rng.randrange(-30, 60))
                a["type"] = "Challenge"
                a["window"] = {"start": (end - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                               "end": end.strftime("%Y-%m-%dT%H:%M:%SZ")}
            achievements.append(a)
        titles.append({"id": 100000 + t, "name": f"Title {t}", "achievements": achievements})
    return {"xuid": XUID, "shape": "V2", "locale": "en-US", "titles": titles}


def load(entry: dict, via_yaml: bool) -> tuple[DatasetStore, float, float, int]:
    """Returns (store, parse seconds, build seconds, RSS growth in bytes while building)."""
    parse = 0.0
    if via_yaml:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.yaml"
            path.write_text(yaml.dump({"xblreplay": 1, "datasets": [entry]}, Dumper=Dumper,
                                      default_flow_style=None, sort_keys=False))
            t0 = time.perf_counter()
            entry = yaml.load(path.read_text(), Loader=Loader)["datasets"][0]
            parse = time.perf_counter() - t0
    before = rss()
    t0 = time.perf_counter()
    store = DatasetStore()
    store.add_hand_dataset(entry)
    build = time.perf_counter() - t0
    return store, parse, build, rss() - before


def rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def mixed_queries(size: int, rng: random.Random) -> list[AchievementsQuery]:
    n_titles = max(1, size // PER_TITLE)
    out = []
    for i in range(64):
        titles = None if i % 2 else tuple(100000 + rng.randrange(n_titles) for _ in range(1 + i % 3))
        expected = size if titles is None else PER_TITLE * len(titles)
        page = (10, 32, 100)[i % 3]
        start = (0, expected // 2, max(0, expected - page))[(i // 3) % 3]
        out.append(AchievementsQuery(
            xuid=XUID, shape="V2", title_ids=titles, order_by=ORDERS[i % 4],
            types=frozenset({"Persistent"}) if i % 5 == 0 else None,
            unlocked_only=i % 7 == 0, possible_only=i % 11 == 0, max_items=page,
            skip_items=start if i % 2 else 0,
            token_offset=None if i % 2 else start, continuation_token=None if i % 2 else str(start),
        ))
    return out


def time_queries(store: DatasetStore, queries: list[AchievementsQuery], passes: int) -> tuple[float, float]:
    """(cold median, warm median) of answer() in microseconds."""
    runs = []
    for _ in range(passes):
        costs = []
        for q in queries:
            t0 = time.perf_counter()
            store.answer(q, NOW)
            costs.append(time.perf_counter() - t0)
        runs.append(costs)
    warm = [c for costs in runs[1:] for c in costs]
    return statistics.median(runs[0]) * 1e6, statistics.median(warm) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,100000,1000000")
    ap.add_argument("--yaml-max", type=int, default=100000, help="largest size loaded through YAML")
    ap.add_argument("--passes", type=int, default=15)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"python {sys.version.split()[0]}, yaml C loader: {Loader.__name__}, pid {os.getpid()}")
    print(f"{'size':>9} {'yaml parse s':>12} {'build s':>8} {'+RSS MB':>10} "
          f"{'cold med us':>12} {'warm med us':>12}")
    rows = []
    for size in sizes:
        entry = make_entry(size)
        store, parse, build, memory = load(entry, size <= args.yaml_max)
        del entry
        cold, warm = time_queries(store, mixed_queries(size, random.Random(size)), args.passes)
        rows.append((size, warm))
        shown = f"{parse:12.2f}" if size <= args.yaml_max else f"{'(skipped)':>12}"
        print(f"{size:>9} {shown} {build:8.2f} {memory / 2**20:10.1f} {cold:12.1f} {warm:12.1f}", flush=True)
    for (a, wa), (b, wb) in zip(rows, rows[1:]):
        print(f"warm median ratio {b}/{a} ({b // a}x data): {wb / wa:.2f}x")


if __name__ == "__main__":
    main()
