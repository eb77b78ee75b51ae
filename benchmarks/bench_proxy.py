"""Proxy benchmark: the project's addon inside mitmdump against the floor, end to end.

What it measures. Closed-loop HTTP/1.1 clients on 127.0.0.1 send Xbox Live achievements
listings through a mitmdump and time each answer. Targets, interleaved in one run:

  floor      mitmdump -s benchmarks/proxybench/floor_addon.py: `request()` answers a fixed,
             pre-serialised ~3 KB JSON body. The least any addon that answers locally can cost.
  floor-page with --page-floor BYTES: the same floor answering a body of BYTES (a real page of
             10 achievements is ~8.7 KB): what a body the size of the addon's costs mitmproxy
             alone. The addon's ratio to it is its own work's share.
  xblreplay  mitmdump -s addons/achievements.py --set achievements_cassettes=DIR [--set ...]
  others     --cand LABEL:'ARGS': the project's addon with more mitmdump arguments.

Every target runs with --set connection_strategy=lazy (nothing dials the real host) and one
confdir for the run (its CA is what the HTTPS client trusts). Each round runs every workload;
in a workload each target is started afresh, in an order rotated every round, and measured in
each mode (http: absolute-form requests; https: CONNECT, then TLS in the tunnel) at each
number of keep-alive connections (1 and 16). Workloads (--workloads KIND:SIZE, or KIND at each
of --sizes; by default repeated at 10k and 1M achievements, pages at 100k and 1M):

  repeated   one listing URL over and over (titleId=100123&maxItems=10)
  pages      a paging client: titles x skipItems 0..40 with maxItems=10, every request a page
             not served before; SIZE/10 pages, so below 100k a target start runs out of new
             pages and the list wraps (noted, and the cells marked †)

The datasets are benchmarks/bench_engine.py's `make_entry` in the JSON form, written once into
a cache directory (--cache-dir) and reused by later runs.

Commands (from the checkout; the machine has 2 cores: the loader takes one, the proxy the other):

    .venv/bin/python benchmarks/bench_proxy.py            # full: 3 rounds, n=1500, ~10 min
    .venv/bin/python benchmarks/bench_proxy.py --quick    # smoke: 1 round, small n, 10k / 100k
    .venv/bin/python benchmarks/bench_proxy.py --workloads pages:1000000 --rounds 5 \
        --set achievements_check_responses=false --cand log:'--set achievements_log=/tmp/v.jsonl' --gc

Reading the table. Per workload, mode and connection count: req/s median (min–max) over the
rounds, ÷ floor (the target's median over the floor's median in the same cell), p50/p99
latency, the proxy's CPU ms per request (from /proc/PID/stat of the mitmdump, timed phase
only) and Δ CPU (that minus the floor's: the addon's own cost per request), body B (mean
response body; the floor's is ~3 KB), ready s (start until the port accepts, dataset loaded),
RSS once ready and after the cell's load. --gc adds a GC-pause probe to every target (the
floors too: their pauses are mitmproxy's own) and a table of collections and pauses. These are medians of one run on shared,
noisy machines: compare the ratios and Δ CPU of one run, never absolute numbers across runs
or machines.

Fails loudly: a target that does not become ready, a non-200 answer or a connection error
stops the run with one line on stderr and exit code 1 (the logs are kept).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from proxybench import cassettes, table, workloads
from proxybench.load import Loader
from proxybench.target import NotReady, Proxy, rss_mb

HERE = Path(__file__).resolve().parent
CHECKOUT = HERE.parent
FLOOR_ADDON = HERE / "proxybench" / "floor_addon.py"
GC_PROBE = HERE / "proxybench" / "gc_probe.py"
PRESETS = {
    "full": {"rounds": 3, "n": 1500, "warmup": 20, "sizes": "10000,1000000",
             "workloads": "repeated:10000,repeated:1000000,pages:100000,pages:1000000"},
    "quick": {"rounds": 1, "n": 300, "warmup": 5, "sizes": "10000", "workloads": "repeated:10000,pages:100000"},
}


class Failed(Exception):
    """The run cannot go on; the message is the one line printed."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke preset: 1 round, n=300, repeated:10000,pages:100000")
    ap.add_argument("--rounds", type=int, help="rounds (full 3)")
    ap.add_argument("-n", type=int, help="timed requests per cell (full 1500)")
    ap.add_argument("--warmup", type=int, help="untimed requests per connection before a cell (full 20)")
    ap.add_argument("--workloads", help="KIND or KIND:SIZE, comma-separated; KIND alone runs at every --sizes "
                                        f"(kinds: {', '.join(workloads.KINDS)}; full {PRESETS['full']['workloads']})")
    ap.add_argument("--sizes", help="dataset sizes in achievements (full 10000,1000000)")
    ap.add_argument("--modes", default="http,https")
    ap.add_argument("-c", "--connections", default="1,16", help="keep-alive connections per cell")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="OPTION=VALUE",
                    help="mitmdump option for the project's addon (repeatable; achievements_cassettes "
                         "is the workload's)")
    ap.add_argument("--cand", action="append", default=[], metavar="LABEL:ARGS",
                    help="another candidate: the project's addon with these extra mitmdump arguments")
    ap.add_argument("--gc", action="store_true", help="add the GC-pause probe to every target")
    ap.add_argument("--page-floor", type=int, metavar="BYTES",
                    help="also run the floor answering a body of BYTES (e.g. 8664, a 10-item page)")
    ap.add_argument("--mitmdump", default=str(CHECKOUT / ".venv" / "bin" / "mitmdump"))
    ap.add_argument("--cache-dir", default=str(Path(tempfile.gettempdir()) / "xblreplay-bench"),
                    help="where generated cassettes are kept between runs")
    ap.add_argument("--ready-timeout", type=float, default=180.0, help="seconds for a target's port to accept")
    ap.add_argument("--keep", action="store_true", help="keep the run's directory (logs, confdir)")
    args = ap.parse_args(argv)
    for key, value in PRESETS["quick" if args.quick else "full"].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.modes = [m for m in args.modes.split(",") if m]
    if not set(args.modes) <= {"http", "https"}:
        ap.error("--modes takes http and/or https")
    args.connections = [int(c) for c in args.connections.split(",")]
    try:
        args.workloads = workloads.parse(args.workloads, [int(s) for s in args.sizes.split(",")])
    except ValueError as exc:
        ap.error(str(exc))
    return args


def candidates(args) -> dict[str, list[str]]:
    """label -> mitmdump arguments, with {cassettes} where the workload's directory goes."""
    base = ["-s", str(CHECKOUT / "addons" / "achievements.py"), "--set", "achievements_cassettes={cassettes}"]
    base += [a for s in args.sets for a in ("--set", s)]
    probe = ["-s", str(GC_PROBE)] if args.gc else []
    out = {"xblreplay": base + probe}
    for spec in args.cand:
        label, sep, extra = spec.partition(":")
        if not sep or not label or label in out or label == table.FLOOR:
            raise Failed(f"--cand wants a new LABEL:ARGS, got {spec!r}")
        out[label] = base + shlex.split(extra) + probe
    return out


class Run:
    """One benchmark run: its directory, the shared confdir, the results."""

    def __init__(self, args, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.confdir = workdir / "confdir"
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True)
        self.env = dict(os.environ, XBLREPLAY_CACHE_DIR=str(workdir / "parsed"))
        probe = ["-s", str(GC_PROBE)] if args.gc else []
        self.targets = {table.FLOOR: ["-s", str(FLOOR_ADDON), *probe]}
        if args.page_floor:
            self.targets["floor-page"] = ["-s", str(FLOOR_ADDON), "--set", f"floor_body_bytes={args.page_floor}", *probe]
        self.targets.update(candidates(args))
        self.results: list[dict] = []
        self.gc_runs: list[dict] = []

    def start(self, label: str, cmd_args: list[str], log: Path) -> Proxy:
        try:
            return Proxy(self.args.mitmdump, self.confdir, cmd_args, log, self.env, self.args.ready_timeout)
        except NotReady as exc:
            raise Failed(f"{label} did not become ready: {exc}; log {log}") from None

    def make_ca(self) -> str:
        """Starts the floor once so the confdir has its CA before anything is timed."""
        with self.start("floor (CA set-up)", self.targets[table.FLOOR], self.logs / "ca.log"):
            pass
        ca = self.confdir / "mitmproxy-ca-cert.pem"
        if not ca.is_file():
            raise Failed(f"mitmdump wrote no CA into {self.confdir}")
        return str(ca)

    def measure(self, rnd: int, workload, label: str, cmd_args: list[str], urls: list[str], ca: str) -> None:
        log = self.logs / f"{workload.kind}-{workload.size}-{label}-r{rnd}.log"
        with self.start(label, cmd_args, log) as proxy:
            loader = Loader(proxy.port, ca)
            offset = 0
            for mode in self.args.modes:
                for c in self.args.connections:
                    r = loader.run(mode, urls, c, self.args.n, self.args.warmup, offset, proxy.pid)
                    offset = r["next_offset"]
                    where = f"{label}, {workload.name}, {mode} c={c}, round {rnd}"
                    if r["errors"] or r["non200"] or not r["n"]:
                        raise Failed(f"{where}: statuses {r['statuses'] or 'none'}, {r['errors']} connection "
                                     f"errors{(' (' + r['last_error'] + ')') if r['last_error'] else ''}; "
                                     f"{proxy.exit_note()}log {log}")
                    r.update(round=rnd, workload=workload.name, label=label, mode=mode, c=c,
                             wrapped=len(urls) > 1 and offset > len(urls),
                             ready_s=proxy.ready_s, rss_ready_mb=proxy.rss_ready_mb, rss_after_mb=rss_mb(proxy.pid))
                    self.results.append(r)
                    print(f"  {where}: {r['rps']:.0f} req/s, p99 {r['p99_ms']:.1f} ms, "
                          f"CPU {r['cpu_ms_per_req']:.2f} ms/req", file=sys.stderr, flush=True)
        text = log.read_text(errors="replace")
        if "Traceback" in text:
            print(f"bench_proxy: warning: {label}'s log has a traceback: {log}", file=sys.stderr)
        if self.args.gc:
            gc = table.gc_summary(text)
            if gc is None:
                raise Failed(f"{label}: the GC probe printed nothing; log {log}")
            self.gc_runs.append({"workload": workload.name, "label": label, "gc": gc})

    def run(self) -> None:
        dirs = {w.size: cassettes.cassette_dir(Path(self.args.cache_dir), w.size) for w in self.args.workloads}
        per_start = sum(self.args.warmup * c + self.args.n for c in self.args.connections) * len(self.args.modes)
        for w in self.args.workloads:
            if w.kind == "pages" and len(w.urls()) < per_start:
                print(f"bench_proxy: note: {w.name} has {len(w.urls())} pages and a target start sends "
                      f"{per_start} requests: later cells ask for pages served before (marked †)", file=sys.stderr)
        ca = self.make_ca()
        labels = list(self.targets)
        for rnd in range(1, self.args.rounds + 1):
            for w in self.args.workloads:
                urls = w.urls()
                for i in range(len(labels)):
                    label = labels[(i + rnd - 1) % len(labels)]
                    cmd_args = [a.replace("{cassettes}", str(dirs[w.size])) for a in self.targets[label]]
                    self.measure(rnd, w, label, cmd_args, urls, ca)


def mitmproxy_version(mitmdump: str) -> str:
    try:
        out = subprocess.run([mitmdump, "--version"], capture_output=True, text=True, timeout=60).stdout
    except OSError as exc:
        raise Failed(f"cannot run {mitmdump}: {exc.strerror or exc} (--mitmdump PATH)") from None
    return out.splitlines()[0].split()[-1] if out else "?"


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench_proxy."))
    try:
        version = mitmproxy_version(args.mitmdump)
        run = Run(args, workdir)
        t0 = time.perf_counter()
        run.run()
    except Failed as exc:
        print(f"bench_proxy: FAILED: {exc}", file=sys.stderr)
        return 1
    except BaseException:
        print(f"bench_proxy: stopped; logs in {workdir}", file=sys.stderr)
        raise
    print(f"\nmitmproxy {version}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
          f"{args.rounds} round(s), n={args.n} timed requests per cell, warm-up {args.warmup} per connection, "
          f"{time.perf_counter() - t0:.0f} s\n")
    print(table.cell_table(run.results, list(run.targets)))
    if any(r["wrapped"] for r in run.results):
        print("\n† the page list wrapped in this cell: some requests asked for pages served before")
    if run.gc_runs:
        print("\nGC pauses of the targets while serving (gc_probe):\n")
        print(table.gc_table(run.gc_runs))
    if args.keep:
        print(f"\nlogs and confdir: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
