"""The written form's costs on a large recording: 100k achievements of the real V2 shape in pages
of 100 (one interaction each, the service's compact JSON): making the lines, writing the file,
loading it (what the proxy does at start), and rewriting it with one page changed after reading
it from disk (the lines a rewrite reuses). Medians of --runs; the file's size and longest line.

    .venv/bin/python benchmarks/bench_cassette_layout.py [--achievements 100000] [--runs 3] [--canonical FILE]

``--canonical FILE``: the written form taken from another version of ``cassette/canonical.py``
(e.g. ``git show REV:addons/xblreplay/cassette/canonical.py > FILE``), to compare two layouts
in one checkout.
"""

from __future__ import annotations

import argparse
import copy
import gc
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "addons"))

from xblreplay import cassette  # noqa: E402
from xblreplay.cassette import canonical, files  # noqa: E402

written_form = canonical


def use_canonical(path: str) -> None:
    """The written form of ``path`` in place of the package's own (the writer and the line maker)."""
    global written_form
    spec = importlib.util.spec_from_file_location("xblreplay.cassette._measured", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    files.dump, files.interaction_lines, files.lines_in = module.dump, module.interaction_lines, module.lines_in
    written_form = module

URL = "https://achievements.xboxlive.com/users/xuid(2533274800000001)/achievements?titleId=219630713&skipItems={}"
TEMPLATE = json.loads((ROOT / "tests/data/real/achievements_one_gameprogress.json").read_bytes())["achievements"][0]


def page(n: int, size: int, total: int, stamp: str = "2015-10-26T18:11:03.6689508Z") -> str:
    """The service's compact JSON text of one page."""
    items = []
    for k in range(n, min(n + size, total)):
        item = copy.deepcopy(TEMPLATE)
        item["id"], item["name"] = str(k + 1), f"Achievement {k + 1}"
        item["progression"]["timeUnlocked"] = stamp
        items.append(item)
    token = str(n + size) if n + size < total else None
    return json.dumps({"achievements": items, "pagingInfo": {"continuationToken": token, "totalRecords": total}},
                      separators=(",", ":"), ensure_ascii=False)


def interaction(n: int, raw: str) -> dict:
    return {"recorded_at": "2026-11-27T12:00:00Z",
            "request": {"method": "GET", "url": URL.format(n), "headers": {"x-xbl-contract-version": "2"}},
            "response": {"status": 200, "headers": {"content-type": "application/json"}, "latency_ms": 85.2,
                         "body": json.loads(raw)}}


def timed(fn) -> float:
    gc.collect()
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--achievements", type=int, default=100_000)
    parser.add_argument("--page", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--canonical", help="another version of cassette/canonical.py to measure")
    args = parser.parse_args()
    if args.canonical:
        use_canonical(args.canonical)
    line_of = written_form.interaction_line
    raw_json = written_form.raw_json
    starts = range(0, args.achievements, args.page)
    raws = [page(n, args.page, args.achievements) for n in starts]
    interactions = [interaction(n, raw) for n, raw in zip(starts, raws)]
    changed_raw = page(0, args.page, args.achievements, "2026-01-01T00:00:00.0000000Z")
    costs: dict[str, list[float]] = {"lines": [], "write": [], "load": [], "rewrite one page from disk": []}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.yaml"
        for _ in range(args.runs):
            path.unlink(missing_ok=True)
            cassette.forget(path)
            lines: list[str] = []
            costs["lines"].append(timed(lambda: lines.extend(
                line_of(i, raw_json(r)) for i, r in zip(interactions, raws))))

            def write() -> None:
                for i, line in zip(interactions, lines):
                    cassette.remember_line(path, i, line)
                cassette.update_file(path, lambda _old: {"xblreplay": 1, "interactions": interactions})

            costs["write"].append(timed(write))
            cassette.forget(path)
            costs["load"].append(timed(lambda: cassette.load_file(path)))
            first = interaction(0, changed_raw)
            line = line_of(first, raw_json(changed_raw))

            def rewrite() -> None:
                cassette.remember_line(path, first, line)
                cassette.update_file(path, lambda old: {**old, "interactions": [first, *old["interactions"][1:]]})

            costs["rewrite one page from disk"].append(timed(rewrite))
            cassette.forget(path)
        data = path.read_bytes()
    rows = data.split(b"\n")
    longest = max(len(row) for row in rows)
    print(f"{args.achievements} achievements in {len(raws)} pages: file {len(data) / 1e6:.1f} MB, "
          f"{len(rows) - 1} lines, longest {longest} bytes")
    for name, values in costs.items():
        print(f"{name:28s} median {statistics.median(values):.3f} s  ({', '.join(f'{v:.3f}' for v in values)})")


if __name__ == "__main__":
    main()
