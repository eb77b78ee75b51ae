"""Memory of a replaying mitmdump over many distinct callers: does its RSS stay flat?

    .venv/bin/python benchmarks/campaign_soak.py [--requests 100000] [--every 10000] [-c 4]
        [--rules DIR] [--checkout DIR] [--load PATH]

One mitmdump runs the addon in replay mode on cassettes/example with throttling on
(``achievements_throttle=true``) and a validation log (``achievements_log``). Every request asks
for a different xuid (``GET /users/xuid(N)/achievements?titleId=1717113201&maxItems=5``), so
every request is a new (xuid, title) caller for the rate limiter and the call-pattern checks;
xuids without a dataset are answered 404, which is fine here: what is measured is the state the
proxy keeps per caller. The requests are sent by the keep-alive load generator of the benchmark
harness (``../shared/bench/load.py``, HTTPS through the proxy, ``-c`` connections) in chunks of
``--every`` requests; after each chunk the proxy's VmRSS is read from /proc. Printed: RSS after
start and after every chunk, the growth of each chunk, and the mean growth per chunk after the
warm-up (``--warmup`` chunks, default 5: with the shipped caps the callers reach
``tracking.max_callers`` = 10,000 in the first chunk and the call-pattern requests, one per
caller here, ``tracking.max_requests`` = 40,000 in the fourth).

``--checkout DIR`` runs another checkout's entry script (and so its package and rules), e.g. an
older commit in a ``git worktree``, with this checkout's mitmdump; ``--rules DIR`` sets
``achievements_rules``. The run is bounded: ``--requests`` in total, each chunk with a timeout;
mitmdump is stopped (SIGINT, then killed) whatever happens. Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests")]

from proxyharness import ENTRY, HOST, Mitmdump, read_log  # noqa: E402

TITLE = 1717113201
FIRST_XUID = 2535000000000000
# a userhash no cassette binds, so no caller is refused with 403 before it is counted
AUTH = "XBL3.0 x=2718281828459045235;anytoken"
DEFAULT_LOAD = REPO.parent / "shared" / "bench" / "load.py"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Proxy(Mitmdump):
    """proxyharness.Mitmdump running the entry script of ``checkout``."""

    def __init__(self, workdir: Path, checkout: Path, **options) -> None:
        super().__init__(workdir, **options)
        self.entry = checkout / "addons" / "achievements.py"

    def argv(self) -> list[str]:
        return [str(self.entry) if a == str(ENTRY) else a for a in super().argv()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=100_000, help="requests in all, one distinct xuid each")
    ap.add_argument("--every", type=int, default=10_000, help="requests per chunk (RSS is read after each)")
    ap.add_argument("--warmup", type=int, default=5, help="chunks left out of the mean growth")
    ap.add_argument("-c", type=int, default=4, help="keep-alive HTTPS connections")
    ap.add_argument("--checkout", type=Path, default=REPO, help="checkout whose addon is run")
    ap.add_argument("--rules", type=Path, default=None, help="achievements_rules (default: the addon's own)")
    ap.add_argument("--load", type=Path, default=DEFAULT_LOAD, help="path of the harness's load.py")
    ap.add_argument("--chunk-timeout", type=float, default=600.0, help="seconds one chunk may take")
    args = ap.parse_args()
    if not args.load.exists():
        print(f"campaign_soak: no load generator at {args.load} (--load PATH)", file=sys.stderr)
        return 2
    if args.every <= 0 or args.requests < args.every:
        print("campaign_soak: --requests must be at least --every > 0", file=sys.stderr)
        return 2
    checkout = args.checkout.resolve()
    chunks = args.requests // args.every

    with tempfile.TemporaryDirectory(prefix="xbl-soak-") as tmp:
        work = Path(tmp)
        urls = work / "urls.txt"
        urls.write_text("".join(
            f"https://{HOST}/users/xuid({FIRST_XUID + i})/achievements?titleId={TITLE}&maxItems=5\n"
            for i in range(chunks * args.every)
        ))
        options = {
            "achievements_cassettes": checkout / "cassettes" / "example",
            "achievements_throttle": True,
            "achievements_log": work / "validation.jsonl",
        }
        if args.rules is not None:
            options["achievements_rules"] = args.rules.resolve()
        proxy = Proxy(work, checkout, **options)
        print(f"campaign_soak: {chunks} x {args.every} requests, distinct xuids, {args.c} connections, "
              f"addon of {checkout}", flush=True)
        proxy.start()
        try:
            pid = proxy.proc.pid
            time.sleep(0.5)
            rss = [rss_kib(pid)]
            print(f"{0:>8} requests  RSS {rss[0] / 1024:7.1f} MB", flush=True)
            statuses: dict[str, int] = {}
            started = time.monotonic()
            for k in range(chunks):
                cmd = [sys.executable, str(args.load), "--proxy", f"127.0.0.1:{proxy.port}", "--mode", "https",
                       "--ca", str(proxy.ca), "-n", str(args.every), "-c", str(args.c), "--warmup", "0",
                       "--url-file", str(urls), "--url-offset", str(k * args.every),
                       "--timeout", str(args.chunk_timeout), "--header", f"Authorization: {AUTH}"]
                out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.chunk_timeout + 30)
                try:
                    result = json.loads(out.stdout.strip().splitlines()[-1])
                except (ValueError, IndexError):
                    raise RuntimeError(f"load.py failed: {out.stderr.strip()[-500:]}") from None
                if result["errors"] or result["n"] != args.every:
                    raise RuntimeError(f"load.py: {result['n']} answered, {result['errors']} errors: "
                                       f"{result['last_error']}")
                for status, n in result["statuses"].items():
                    statuses[status] = statuses.get(status, 0) + n
                rss.append(rss_kib(pid))
                print(f"{(k + 1) * args.every:>8} requests  RSS {rss[-1] / 1024:7.1f} MB  "
                      f"{(rss[-1] - rss[-2]) / 1024:+6.1f} MB  ({result['rps']:.0f} req/s)", flush=True)
            elapsed = time.monotonic() - started
        finally:
            output = proxy.stop()
        entries, summary = read_log(work / "validation.jsonl")

    growth = [(b - a) / 1024 for a, b in zip(rss, rss[1:])]
    after = growth[args.warmup:]
    print(f"statuses {json.dumps(statuses, sort_keys=True)}; {len(entries)} log entries; "
          f"{elapsed:.0f} s of traffic")
    print(f"RSS {rss[0] / 1024:.1f} MB at start, {rss[-1] / 1024:.1f} MB after {chunks * args.every} requests "
          f"({(rss[-1] - rss[0]) / 1024:+.1f} MB, {(rss[-1] - rss[0]) * 1024 / (chunks * args.every):.0f} bytes "
          f"per distinct xuid)")
    if after:
        print(f"growth per {args.every} requests after {args.warmup} warm-up chunks: mean {statistics.mean(after):+.2f} MB, "
              f"max {max(after):+.2f} MB")
    if summary is None:
        print("no summary in the validation log; mitmdump said:\n" + output[-2000:])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
