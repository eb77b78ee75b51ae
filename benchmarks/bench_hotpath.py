"""Per-request cost of the addon's own hooks, in-process, against a floor addon in the same run.

    .venv/bin/python benchmarks/bench_hotpath.py [--size 10000] [--n 5000] [--gc-n 50000] [--profile]

A synthetic dataset of --size achievements (benchmarks/bench_engine.py ``make_entry``) is written
as a cassette and loaded through the proxy's real path (mitmproxy's ``taddons`` context,
default options: replay, response checks on, the validation log written to a temporary file).
Each exchange is a fresh ``tflow`` driven through ``requestheaders``, ``request`` and
``response`` (mitmproxy's own proxying is not in the figures: only the hooks). Two sequences:

* ``repeat``: one URL (a title's first page) sent again and again;
* ``paging``: a caller paging through every title's achievements, 32 at a time.

The floor is an addon whose ``request`` answers a fixed body (its ``requestheaders`` and
``response`` do nothing): what any addon costs. Reported: the median µs per exchange of each hook
and of the whole exchange, ours and the floor's, and the difference. ``--profile`` adds a
cProfile of the ``repeat`` sequence, split by stage (µs per exchange, cumulative).

Then --gc-n exchanges of the paging sequence with the cyclic collector as mitmdump runs it:
the tracked objects (``len(gc.get_objects())``) before and after, each generation's collections
and the longest collection pause (``gc.callbacks``).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "addons"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from mitmproxy import http  # noqa: E402
from mitmproxy.test import taddons, tflow, tutils  # noqa: E402

from bench_engine import XUID, Pauses, make_entry  # noqa: E402
from xblreplay.mitm.addon import Achievements  # noqa: E402

HOST = "achievements.xboxlive.com"
AUTH = "XBL3.0 x=3141592653589793238;eyJhbGciOiJSUzI1NiJ9.dGVzdA.c2ln"
PAGE = 32
NOW = "2026-11-20T00:00:00Z"


class Floor:
    """The least an addon answering requests costs: a fixed body for every request."""

    BODY = b'{"achievements":[],"pagingInfo":{"continuationToken":null,"totalRecords":0}}'

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        pass

    async def request(self, flow: http.HTTPFlow) -> None:
        flow.response = http.Response.make(200, self.BODY, {"Content-Type": "application/json"})

    def response(self, flow: http.HTTPFlow) -> None:
        pass


def flow_for(path: str) -> http.HTTPFlow:
    req = tutils.treq(host=HOST, port=443, path=path.encode())
    req.scheme = "https"
    req.headers.clear()
    req.headers["Host"] = HOST
    req.headers["Authorization"] = AUTH
    req.headers["x-xbl-contract-version"] = "2"
    req.headers["Accept-Language"] = "en-US"
    flow = tflow.tflow(req=req)
    flow.response = None
    return flow


def repeat_paths(entry: dict) -> list[str]:
    title = entry["titles"][0]["id"]
    return [f"/users/xuid({XUID})/achievements?titleId={title}&maxItems={PAGE}"]


def paging_paths(entry: dict) -> list[str]:
    paths = []
    for t in entry["titles"]:
        for start in range(0, len(t["achievements"]), PAGE):
            token = f"&continuationToken={start}" if start else ""
            paths.append(f"/users/xuid({XUID})/achievements?titleId={t['id']}&maxItems={PAGE}{token}")
    return paths


async def exchange(addon, flow: http.HTTPFlow, clock) -> tuple[float, float, float]:
    """One exchange through the three hooks: (requestheaders, request, response) seconds."""
    t0 = clock()
    addon.requestheaders(flow)
    t1 = clock()
    await addon.request(flow)
    t2 = clock()
    addon.response(flow)
    t3 = clock()
    return t1 - t0, t2 - t1, t3 - t2


async def run(addon, paths: list[str], n: int) -> dict[str, float]:
    """Median µs per hook and per exchange over ``n`` exchanges cycling through ``paths``."""
    clock = time.perf_counter
    flows = [flow_for(paths[i % len(paths)]) for i in range(n)]
    hooks = ([], [], [], [])
    for flow in flows:
        parts = await exchange(addon, flow, clock)
        for bucket, value in zip(hooks, parts + (sum(parts),)):
            bucket.append(value)
        assert flow.response is not None and flow.response.status_code == 200, flow.response
    names = ("requestheaders", "request", "response", "exchange")
    return {name: statistics.median(values) * 1e6 for name, values in zip(names, hooks)}


# Stages of an exchange as cProfile names them (cumulative µs per exchange).
STAGES = [
    ("requestheaders", "addon.py", "requestheaders"),
    ("request hook", "addon.py", "request"),
    ("  lowercase_headers (all calls)", "translate.py", "lowercase_headers"),
    ("  check_request", "validator.py", "check_request"),
    ("  policy.decide", "policy.py", "decide"),
    ("    replay answer", "replay.py", "answer"),
    ("  make_response", "translate.py", "make_response"),
    ("      Answer.body_bytes", "model.py", "body_bytes"),
    ("response hook", "addon.py", "response"),
    ("  judge", "responses.py", "judge"),
    ("    check_response (R7)", "validator.py", "check_response"),
    ("  log_exchange", "logline.py", "log_exchange"),
    ("    call patterns", "patterns.py", "observe"),
    ("    log line (ValidationLog.write)", "vlog.py", "write"),
    ("    secrets", "state.py", "secrets"),
    ("    redact_url", "text.py", "redact_url"),
]


async def profile(addon, paths: list[str], n: int) -> list[tuple[str, float]]:
    flows = [flow_for(paths[i % len(paths)]) for i in range(n)]
    prof = cProfile.Profile()
    clock = time.perf_counter
    prof.enable()
    for flow in flows:
        await exchange(addon, flow, clock)
    prof.disable()
    stats = pstats.Stats(prof).stats
    out = []
    for label, file, func in STAGES:
        cum = sum(v[3] for (f, _line, name), v in stats.items() if f.endswith(file) and name == func)
        out.append((label, cum / n * 1e6))
    return out


async def gc_run(addon, paths: list[str], n: int) -> dict[str, float]:
    """Tracked objects and collector pauses over ``n`` exchanges; the objects left after a full
    collection are counted at every fifth of the run (flat: nothing accumulates)."""
    watch = Pauses()
    clock = time.perf_counter
    await asyncio.sleep(0)
    gc.collect()
    before = len(gc.get_objects())
    checkpoints = []
    for part in range(5):
        with watch:
            for i in range(part * n // 5, (part + 1) * n // 5):
                await exchange(addon, flow_for(paths[i % len(paths)]), clock)
                await asyncio.sleep(0)  # the event loop turns between exchanges, as in mitmdump
        gc.collect()
        checkpoints.append(len(gc.get_objects()))
    return {"tracked_before": before, "tracked_after_collect_by_fifth": checkpoints,
            "gen0": watch.collections[0], "gen1": watch.collections[1], "gen2": watch.collections[2],
            "max_pause_ms": round(max(watch.pauses, default=0.0) * 1e3, 3),
            "median_pause_ms": round(statistics.median(watch.pauses) * 1e3, 3) if watch.pauses else 0.0,
            "gc_us_per_exchange": round(sum(watch.pauses) / n * 1e6, 2)}


async def main_async(args) -> None:
    entry = make_entry(args.size)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XBLREPLAY_CACHE_DIR"] = str(Path(tmp) / "cache")
        cassettes = Path(tmp) / "cassettes"
        cassettes.mkdir()
        doc = {"xblreplay": 1, "datasets": [entry]}
        (cassettes / "bench.yaml").write_text("# bulk dataset\n" + json.dumps(doc, separators=(",", ":")))
        log = Path(tmp) / "validation.jsonl"
        addon = Achievements()
        with taddons.context(addon) as tctx:
            tctx.configure(addon, achievements_cassettes=str(cassettes), achievements_log=str(log),
                           achievements_now=NOW)
            floor = Floor()
            sequences = {"repeat": repeat_paths(entry), "paging": paging_paths(entry)}
            print(f"dataset {args.size} achievements, {args.n} exchanges per figure, median µs")
            print(f"{'sequence':8} {'addon':6} {'reqheaders':>10} {'request':>9} {'response':>9} {'exchange':>9}")
            for name, paths in sequences.items():
                await run(addon, paths, min(args.n, 500))  # warm: caches, first-page indexes
                await run(floor, paths, min(args.n, 500))
                rows = {"floor": await run(floor, paths, args.n), "ours": await run(addon, paths, args.n)}
                for who, row in rows.items():
                    print(f"{name:8} {who:6} {row['requestheaders']:10.1f} {row['request']:9.1f} "
                          f"{row['response']:9.1f} {row['exchange']:9.1f}")
                over = rows["ours"]["exchange"] - rows["floor"]["exchange"]
                print(f"{name:8} {'+':6} {'':10} {'':9} {'':9} {over:9.1f}  "
                      f"({rows['ours']['exchange'] / rows['floor']['exchange']:.2f}x the floor's hooks)")
            if args.profile:
                print("\ncProfile, repeat sequence, cumulative µs per exchange (profiler overhead included):")
                for label, us in await profile(addon, sequences["repeat"], args.n):
                    print(f"  {label:40} {us:8.1f}")
            if args.gc_n:
                print(f"\n{args.gc_n} exchanges (paging), cyclic collector on:")
                print("  " + json.dumps(await gc_run(addon, sequences["paging"], args.gc_n)))
            addon.log.close()
            lines = sum(1 for _ in log.open(encoding="utf-8"))
            print(f"\nvalidation log: {lines} lines")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=10000)
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--gc-n", type=int, default=50000)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--gc-threshold", help="gc.set_threshold for the run, e.g. 10000,10,10 (default: Python's)")
    args = ap.parse_args()
    if args.gc_threshold:
        gc.set_threshold(*map(int, args.gc_threshold.split(",")))
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
