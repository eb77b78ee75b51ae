"""The result tables of a benchmark run: medians over rounds and ratios against the floor
measured in the same run, as Markdown.

A cell is (workload, mode, connections); in each, every target's req/s median (min–max) over
its rounds, that median ÷ the floor's median, p50/p99 latency and proxy CPU ms per request
(medians), the CPU above the floor's (Δ CPU: the addon's own cost), the mean response body, and
the target's start-up (ready s: until the port accepts; RSS once ready; RSS after this cell's
load).
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict

FLOOR = "floor"
GC_LINE = re.compile(r"gc_probe gen=(\d) count=(\d+) total_ms=([\d.]+) max_ms=([\d.]+)")


def _med(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def cell_table(results: list[dict], labels: list[str]) -> str:
    cells: dict[tuple, list[dict]] = defaultdict(list)
    for r in results:
        cells[(r["workload"], r["mode"], r["c"], r["label"])].append(r)
    keys = dict.fromkeys((r["workload"], r["mode"], r["c"]) for r in results)
    out = ["| workload | mode | c | target | rounds | req/s median (min–max) | ÷ floor | p50 ms | p99 ms "
           "| CPU ms/req | Δ CPU ms/req | body B | ready s | RSS ready MB | RSS after MB |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for workload, mode, c in keys:
        floor = cells.get((workload, mode, c, FLOOR))
        for label in labels:
            rows = cells.get((workload, mode, c, label))
            if not rows:
                continue
            rps = [r["rps"] for r in rows]
            mark = " †" if any(r.get("wrapped") for r in rows) else ""
            ratio = delta = "–"
            if floor:
                ratio = f"{statistics.median(rps) / _med(floor, 'rps'):.2f}"
                delta = f"{_med(rows, 'cpu_ms_per_req') - _med(floor, 'cpu_ms_per_req'):+.2f}"
            out.append(
                f"| {workload} | {mode} | {c} | {label} | {len(rows)} "
                f"| {statistics.median(rps):.0f} ({min(rps):.0f}–{max(rps):.0f}){mark} | {ratio} "
                f"| {_med(rows, 'p50_ms'):.2f} | {_med(rows, 'p99_ms'):.2f} "
                f"| {_med(rows, 'cpu_ms_per_req'):.2f} | {delta} | {_med(rows, 'body_bytes'):.0f} "
                f"| {_med(rows, 'ready_s'):.2f} "
                f"| {_med(rows, 'rss_ready_mb'):.0f} | {_med(rows, 'rss_after_mb'):.0f} |")
    return "\n".join(out)


def gc_summary(log_text: str) -> dict | None:
    """count, gen2 count, total and max pause (ms) from gc_probe's lines; None without them."""
    found = [tuple(map(float, m.groups())) for m in GC_LINE.finditer(log_text)]
    if not found:
        return None
    return {"count": sum(f[1] for f in found), "gen2": sum(f[1] for f in found if f[0] == 2),
            "total_ms": sum(f[2] for f in found), "max_ms": max(f[3] for f in found)}


def gc_table(runs: list[dict]) -> str:
    """One row per (workload, target) that ran with the GC probe, over its starts."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in runs:
        groups[(r["workload"], r["label"])].append(r["gc"])
    out = ["| workload | target | starts | collections (median) | gen-2 (median) "
           "| total pause ms (median) | max pause ms (worst) |", "|---|---|---|---|---|---|---|"]
    for (workload, label), gcs in groups.items():
        out.append(f"| {workload} | {label} | {len(gcs)} | {_med(gcs, 'count'):.0f} | {_med(gcs, 'gen2'):.0f} "
                   f"| {_med(gcs, 'total_ms'):.1f} | {max(g['max_ms'] for g in gcs):.1f} |")
    return "\n".join(out)
