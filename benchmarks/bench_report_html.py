"""The HTML traffic report of a large validation log: lines, seconds and page size (target: a
100k-line log rendered in under 10 s).

The log is written by the proxy's own writer (xblreplay.vlog.ValidationLog) from a seeded mix of
requests read by the contract's validator, with the call-pattern checks (traffic.CallPatterns, on
a simulated clock) adding their findings: a few hot callers bursting and polling, many quiet ones
paging, invalid parameters, throttled and faulted answers, latency spread over decades.

    .venv/bin/python benchmarks/bench_report_html.py [--lines 100000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "addons"))

from xblreplay import rules_dir  # noqa: E402
from xblreplay.contract import Validator  # noqa: E402
from xblreplay.report.cli_html import main as report_main  # noqa: E402
from xblreplay.traffic import CallPatterns, caller_key, load_limits  # noqa: E402
from xblreplay.vlog import ValidationLog  # noqa: E402

BASE = "https://achievements.xboxlive.com/users/xuid({xuid})/achievements"
HEADERS = {"x-xbl-contract-version": "2", "accept-language": "en-US", "authorization": "XBL3.0 x=1;t"}


def write_log(path: Path, lines: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    rules = rules_dir()
    validator = Validator.from_rules(rules)
    now = [1_800_000_000.0]
    patterns = CallPatterns(load_limits(rules / "limits.yaml"), clock=lambda: now[0])
    log = ValidationLog(path)
    hot = [(2533274800000000 + i, 1717113201 + i) for i in range(4)]
    for n in range(lines):
        now[0] += rng.expovariate(100.0)  # about 100 requests a second over the run
        if rng.random() < 0.3:
            xuid, title = rng.choice(hot)
            query = f"titleId={title}&maxItems=10"
        else:
            xuid, title = 2533274900000000 + rng.randrange(3000), 1000 + rng.randrange(40)
            query = f"titleId={title}&maxItems=32&skipItems={32 * rng.randrange(5)}"
        roll = rng.random()
        if roll < 0.03:
            query += "&maxItems=abc"
        elif roll < 0.04:
            query += "&orderBy=Sideways"
        url = BASE.format(xuid=xuid) + "?" + query
        check = validator.check_request("GET", url, HEADERS)
        status, source = (check.status, "error") if check.status else (200, "dataset")
        fault = rng.random()
        if fault < 0.02:
            status, source = 503, "fault"
        elif fault < 0.025:
            status, source = None, "fault:reset"
        elif fault < 0.05 and (xuid, title) in hot:
            status, source = 429, "throttle"
        violations = list(check.violations)
        violations += patterns.observe(*caller_key(check), check.key, status or 0, 5.0 if status in (429, 503) else None)
        log.write(method="GET", url=url, mode="replay", endpoint=check.endpoint, status=status, source=source,
                  latency_ms=rng.lognormvariate(1.0, 1.2), violations=violations, time=now[0])
    log.close({"call_patterns": patterns.summary(), "call_pattern_episodes": patterns.episodes()})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--keep", help="write the log and the page into this directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        log, out = folder / "validation.jsonl", folder / "report.html"
        log.unlink(missing_ok=True)
        started = time.perf_counter()
        write_log(log, args.lines)
        print(f"log: {args.lines:,} entries, {log.stat().st_size / 1e6:.1f} MB, written in "
              f"{time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        status = report_main(["--log", str(log), "--html", str(out)])
        seconds = time.perf_counter() - started
        lines = sum(1 for _ in open(log, "rb"))
        print(f"report: {lines:,} lines in {seconds:.2f} s (target < 10 s), page {out.stat().st_size / 1024:,.0f} KiB, "
              f"exit {status}")
    return status


if __name__ == "__main__":
    sys.exit(main())
