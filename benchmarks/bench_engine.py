"""Dataset engine benchmark: load cost and per-query cost at growing dataset sizes.

    .venv/bin/python benchmarks/bench_engine.py [--sizes 1000,10000,100000,1000000]
                                                [--yaml-max 100000] [--json-max 100000]

For each size a synthetic dataset (~50 achievements per title) is written as a cassette in the
compact form, once as YAML (pyyaml C dumper) and once in YAML's JSON subset, and each is loaded
through the proxy's real path (Replayer.from_dir), cold and then warm (parse cache). Sizes above
--yaml-max / --json-max skip that form (libyaml's Python-side object construction dominates
YAML loads). The query store is then built from the same entries in memory ("build").
Then the median cost of `answer()` is measured over a mixed query set: filters, all four orders,
early/middle/late pages, with and without titleId. "cold" is the first pass (index and cache
building, lazy expansion), "warm" the median over the following passes.
Targets: warm median <= 50 us at 10k, sublinear growth, 100k load <= 1 s.

    .venv/bin/python benchmarks/bench_engine.py --sweep [--sweep-size 100000]

A paging client instead: every page of maxItems=10 of a compact dataset asked once, each through
Replayer.answer, Validator.check_response (R7) and Answer.body_bytes, as the proxy serves it. It
prints the median cost per page, the growth of the objects the cyclic GC tracks and of RSS over
the sweep, what one full collection then costs, and what expanding a compact entry costs.
"""

from __future__ import annotations

import argparse
import gc
import json
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

from xblreplay import DEFAULT_RULES_DIR  # noqa: E402
from xblreplay.replay import Replayer  # noqa: E402
from xblreplay.contract.validator import Validator  # noqa: E402
from xblreplay.engine import DatasetStore  # noqa: E402
from xblreplay.engine.expand import expand  # noqa: E402
from xblreplay.model import ORDERS, AchievementsQuery  # noqa: E402

XUID = 2533274800000001
PER_TITLE = 50
NOW = datetime(2026, 11, 20, tzinfo=timezone.utc)
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
VALIDATOR = Validator.from_rules(DEFAULT_RULES_DIR)


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


def load_cassette(entry: dict, form: str) -> tuple[float, float]:
    """Write the entry as a cassette in `form` ("yaml": YAML as written by hand or by the
    recorder; "json": YAML's JSON subset) and time the proxy's real load path twice
    (Replayer.from_dir: parse, schema check, dataset build). The first load is cold (empty
    parse cache); the second finds the file's parsed form in the cache. Returns (cold, warm)."""
    doc = {"xblreplay": 1, "datasets": [entry]}
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XBLREPLAY_CACHE_DIR"] = str(Path(tmp) / "cache")
        path = Path(tmp) / "cassettes" / f"bench-{form}.yaml"
        path.parent.mkdir()
        if form == "yaml":
            path.write_text(yaml.dump(doc, Dumper=Dumper, default_flow_style=None, sort_keys=False))
        else:
            path.write_text("# bulk dataset\n" + json.dumps(doc, separators=(",", ":")))
        for _ in range(2):
            t0 = time.perf_counter()
            replayer = Replayer.from_dir(VALIDATOR, path.parent)
            times.append(time.perf_counter() - t0)
            del replayer
            gc.unfreeze()
    return times[0], times[1]


def build_in_memory(entry: dict) -> tuple[DatasetStore, float, int]:
    """(store, build seconds, RSS growth in bytes while building), with the cyclic GC paused
    as Replayer.from_dir pauses it."""
    before = rss()
    gc.disable()
    t0 = time.perf_counter()
    store = DatasetStore()
    store.add_hand_dataset(entry)
    built = time.perf_counter() - t0
    gc.enable()
    return store, built, rss() - before


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


def median_us_per(fn, items: list, rounds: int = 9) -> float:
    """Median over rounds of the mean cost of ``fn`` per item (microseconds)."""
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for item in items:
            fn(item)
        samples.append((time.perf_counter() - t0) / len(items) * 1e6)
    return statistics.median(samples)


class Pauses:
    """The cyclic collector's pauses while watched (``gc.callbacks``): each pause in seconds, and
    the collections of each generation."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self.collections = [0, 0, 0]
        self._started = 0.0

    def _watch(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append(time.perf_counter() - self._started)
            self.collections[info["generation"]] += 1

    def __enter__(self) -> "Pauses":
        gc.callbacks.append(self._watch)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._watch)


def sweep(size: int) -> None:
    """Every page of maxItems=10 answered once (answer + R7 check + serialisation)."""
    store, _, _ = build_in_memory(make_entry(size))
    replayer = Replayer(VALIDATOR, store, now=lambda: NOW)
    headers = {"authorization": "XBL3.0 x=1;t", "x-xbl-contract-version": "2", "accept-language": "en-US"}
    url = f"https://achievements.xboxlive.com/users/xuid({XUID})/achievements?maxItems=10&skipItems="
    gc.collect()
    gc.freeze()  # what loading leaves, as Replayer.from_dir freezes it
    objects, memory = len(gc.get_objects()), rss()
    loaded = memory
    costs, size_bytes = [], 0
    with Pauses() as watch:
        for start in range(0, size, 10):
            check = VALIDATOR.check_request("GET", f"{url}{start}", headers)
            t0 = time.perf_counter()
            answer = replayer.answer(check, "GET", url)
            # as the proxy checks it: the page as the engine made it (its items were checked as served)
            found = VALIDATOR.check_response(check, answer.status, {}, answer.page, answer)
            size_bytes += len(answer.body_bytes())
            costs.append(time.perf_counter() - t0)
            assert answer.status == 200 and not found, (answer.status, found)
    pauses = watch.pauses
    grown, memory = len(gc.get_objects()) - objects, rss() - memory
    t0 = time.perf_counter()
    gc.collect()
    full = time.perf_counter() - t0
    small = DatasetStore()
    small.add_hand_dataset(make_entry(2000))
    (ds,) = small._datasets.values()
    rows = ds._rows
    cost = {shape: median_us_per(lambda pos, s=shape: expand(rows, rows.row(pos), s), range(len(rows)))
            for shape in ("V2", "V1")}
    print(f"expanding a compact entry, per item: median V2 {cost['V2']:.2f} us, V1 {cost['V1']:.2f} us")
    print(f"sweep of {size} items, {len(costs)} pages of 10: median {statistics.median(costs) * 1e6:.1f} us/page "
          f"(mean {statistics.fmean(costs) * 1e6:.1f}), {size_bytes / len(costs):.0f} bytes/page; "
          f"GC-tracked objects +{grown}, RSS +{memory / 2**20:.1f} MB "
          f"(+{memory / loaded:.1%} of {loaded / 2**20:.0f} MB), full collection after: {full * 1e3:.1f} ms; "
          f"during the sweep {len(pauses)} collections, longest pause {max(pauses, default=0) * 1e3:.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,100000,1000000")
    ap.add_argument("--yaml-max", type=int, default=100000, help="largest size loaded from the YAML form")
    ap.add_argument("--json-max", type=int, default=100000, help="largest size loaded from the JSON form")
    ap.add_argument("--passes", type=int, default=15)
    ap.add_argument("--sweep", action="store_true", help="the paging sweep instead of the size table")
    ap.add_argument("--sweep-size", type=int, default=100000)
    args = ap.parse_args()
    if args.sweep:
        sweep(args.sweep_size)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"python {sys.version.split()[0]}, yaml C loader: {Loader.__name__}, pid {os.getpid()}")
    print("load = Replayer.from_dir (parse + schema check + dataset build), in seconds;")
    print("cold: first load of the file, warm: its parsed form found in the parse cache")
    print(f"{'size':>9} {'yaml cold':>10} {'yaml warm':>10} {'json cold':>10} {'json warm':>10} {'build':>6} "
          f"{'+RSS MB':>8} {'query cold us':>14} {'query warm us':>14}")
    rows = []
    for size in sizes:
        entry = make_entry(size)
        timed = {}
        for form, limit in (("yaml", args.yaml_max), ("json", args.json_max)):
            if size <= limit:
                timed[form] = load_cassette(entry, form)
        store, build, memory = build_in_memory(entry)
        del entry
        cold, warm = time_queries(store, mixed_queries(size, random.Random(size)), args.passes)
        rows.append((size, warm))
        shown = "".join(f"{timed[f][0]:10.2f} {timed[f][1]:10.2f} " if f in timed else f"{'-':>10} {'-':>10} "
                        for f in ("yaml", "json"))
        print(f"{size:>9} {shown}{build:6.2f} {memory / 2**20:8.1f} {cold:14.1f} {warm:14.1f}", flush=True)
    for (a, wa), (b, wb) in zip(rows, rows[1:]):
        print(f"warm median ratio {b}/{a} ({b // a}x data): {wb / wa:.2f}x")


if __name__ == "__main__":
    main()
