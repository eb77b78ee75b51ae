"""A hostile upstream against record mode, at scale, through a real mitmdump.

    .venv/bin/python benchmarks/campaign_upstream.py [--rounds 3] [--normal 40] [--bomb-gib 1]
                                                     [--big-mb 50] [--stream-gib 1]

One mitmdump records (default achievements_max_body, 32 MiB) from a local upstream on 127.0.0.1.
Two clients run at once, each on its own HTTPS connections through the proxy: one sends normal
listing requests without pause (realistic 32-item V2 pages, each URL new), the other, round
after round, the hostile answers:

* a gzip bomb: ``--bomb-gib`` GiB of zeros as a ~1 MB gzip body (Content-Length known);
* a ``--big-mb`` MB plain body (Content-Length known);
* a ``--stream-gib`` GiB plain body with no Content-Length, sent until the connection closes;
* a truncated gzip body and a JSON body nested 100k deep.

A sampler reads VmRSS of mitmdump and of its recorder child every 50 ms; VmHWM is read before the
stop. Then mitmdump gets SIGINT (the time to exit is measured), the recorder child is waited for,
and the interactions on disk are counted. Printed: per round what each hostile answer did, the
memory peaks, normal exchanges answered vs on disk (must be equal), hostile ones logged as not
recorded, and the shutdown time.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterable

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "addons"), str(REPO / "tests")]

import refservice  # noqa: E402
from proxyharness import XUID, Mitmdump, read_log  # noqa: E402
from test_robust_upstream import (RawUpstream, deep_json, get, gzip_zeros, recorded_urls,  # noqa: E402
                                  recorder_children, sha, status_of)


MiB = 1 << 20
BASE = f"/users/xuid({XUID})/achievements"
TITLES = {t: 40 for t in range(5001, 5011)}


def http_head(extra: str) -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{extra}Connection: close\r\n\r\n".encode()


class Hostile:
    """The upstream's answers, by a marker in the path; anything else is a normal page."""

    def __init__(self, bomb_size: int, big_size: int, stream_size: int) -> None:
        self.items = refservice.make_dataset(3, TITLES)
        self.bomb = gzip_zeros(bomb_size)
        self.big = bytes(range(256)) * (big_size // 256)
        self.stream_size = stream_size
        self.truncated = gzip.compress(json.dumps(refservice.answer(self.items, f"{BASE}?titleId=5001")).encode())[:-100]
        self.deep = deep_json(100_000)
        self.pages: dict[str, bytes] = {}

    def page(self, path: str) -> bytes:
        if path not in self.pages:
            self.pages[path] = json.dumps(refservice.answer(self.items, path), separators=(",", ":")).encode()
        return self.pages[path]

    def respond(self, path: str) -> tuple[bytes, Iterable[bytes]]:
        if "&bomb" in path:
            return http_head(f"Content-Encoding: gzip\r\nContent-Length: {len(self.bomb)}\r\n"), [self.bomb]
        if "&big" in path:
            return http_head(f"Content-Length: {len(self.big)}\r\n"), [self.big]
        if "&stream" in path:
            chunk = b"\0" * MiB
            return http_head(""), (chunk for _ in range(self.stream_size // MiB))
        if "&truncated" in path:
            return http_head(f"Content-Encoding: gzip\r\nContent-Length: {len(self.truncated)}\r\n"), [self.truncated]
        if "&deep" in path:
            return http_head(f"Content-Length: {len(self.deep)}\r\n"), [self.deep]
        body = self.page(path)
        return http_head(f"Content-Length: {len(body)}\r\n"), [body]


class Sampler(threading.Thread):
    """Peak VmRSS of mitmdump and of any recorder child, every 50 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.proxy_peak = self.child_peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.05):
            self.proxy_peak = max(self.proxy_peak, status_of(self.pid).get("VmRSS", 0))
            for child in recorder_children(self.pid):
                self.child_peak = max(self.child_peak, status_of(child).get("VmRSS", 0))


def normal_path(n: int) -> str:
    titles = sorted(TITLES)
    return f"{BASE}?titleId={titles[n % len(titles)]}&maxItems=32&skipItems={n // len(titles)}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--normal", type=int, default=40, help="normal requests per round (at least)")
    ap.add_argument("--bomb-gib", type=int, default=1)
    ap.add_argument("--big-mb", type=int, default=50)
    ap.add_argument("--stream-gib", type=int, default=1)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="xblreplay-campaign-"))
    built = time.monotonic()
    hostile = Hostile(args.bomb_gib << 30, args.big_mb * 1000 * 1000, args.stream_gib << 30)
    print(f"upstream: gzip bomb {len(hostile.bomb) / MiB:.2f} MiB -> {args.bomb_gib} GiB, big body "
          f"{len(hostile.big) / 1e6:.0f} MB, stream {args.stream_gib} GiB without Content-Length "
          f"(built in {time.monotonic() - built:.1f} s)", flush=True)
    cassettes, log = work / "cassettes", work / "log.jsonl"
    answered: list[str] = []
    failed: list[tuple[str, object]] = []
    hostile_results: list[tuple[int, str, int, str, float]] = []
    try:
        with RawUpstream(hostile.respond) as up:
            proxy = Mitmdump(work, achievements_mode="record", achievements_upstream=up.url,
                             achievements_cassettes=cassettes, achievements_log=log).start()
            pid = proxy.proc.pid
            sampler = Sampler(pid)
            sampler.start()
            base = status_of(pid).get("VmRSS", 0)
            time.sleep(0.5)
            children = recorder_children(pid)
            base_child = status_of(children[0]).get("VmRSS", 0) if children else 0
            done = threading.Event()
            counter = iter(range(10**9))

            def normal_client() -> None:
                while not done.is_set():
                    path = normal_path(next(counter))
                    try:
                        status, _h, digest, _n = get(proxy, path, timeout=120)
                    except OSError as exc:
                        failed.append((path, exc))
                        continue
                    if status == 200 and digest == sha(hostile.page(path)):
                        answered.append(path)
                    else:
                        failed.append((path, status))

            client = threading.Thread(target=normal_client, daemon=True)
            client.start()
            kinds = [("bomb", len(hostile.bomb), sha(hostile.bomb)), ("big", len(hostile.big), sha(hostile.big)),
                     ("stream", hostile.stream_size, None),
                     ("truncated", len(hostile.truncated), sha(hostile.truncated)),
                     ("deep", len(hostile.deep), sha(hostile.deep))]
            for rnd in range(args.rounds):
                for kind, size, digest in kinds:
                    path = f"{BASE}?titleId={9000 + rnd}&{kind}"
                    started = time.monotonic()
                    status, _h, got, n = get(proxy, path, timeout=600)
                    elapsed = time.monotonic() - started
                    ok = status == 200 and n == size and (digest is None or got == digest)
                    hostile_results.append((rnd, kind, n, "exact" if ok else f"WRONG ({status}, {n} bytes)", elapsed))
                    print(f"round {rnd}: {kind:9} {n / MiB:9.1f} MiB to the client, {hostile_results[-1][3]}, "
                          f"{elapsed:.2f} s", flush=True)
                target = (rnd + 1) * args.normal
                while len(answered) < target and client.is_alive():
                    time.sleep(0.05)
            done.set()
            client.join(120)
            peak = status_of(pid).get("VmHWM", 0)
            children = recorder_children(pid)
            child_hwm = max((status_of(c).get("VmHWM", 0) for c in children), default=0)
            stop_started = time.monotonic()
            proxy.proc.send_signal(signal.SIGINT)
            try:
                proxy.proc.wait(60)
                stop_s = time.monotonic() - stop_started
            except Exception:
                stop_s = float("inf")
            sampler.stop.set()
            proxy.stop()
            writer_started = time.monotonic()
            for child in children:
                while Path(f"/proc/{child}").exists() and status_of(child) and time.monotonic() - writer_started < 120:
                    time.sleep(0.05)
            writer_s = time.monotonic() - writer_started

        on_disk = recorded_urls(cassettes)
        entries, summary = read_log(log)
        not_recorded = {e["url"].split("&")[-1]: e["not_recorded"] for e in entries if "not_recorded" in e}
        missing = [p for p in answered if p not in on_disk]
        hostile_on_disk = [p for p in on_disk if "&" in p and p.rsplit("&", 1)[1] in {k for k, _s, _d in kinds}]
        print()
        print(f"mitmdump: VmRSS at start {base / MiB:.0f} MiB, sampled peak {sampler.proxy_peak / MiB:.0f} MiB, "
              f"VmHWM {peak / MiB:.0f} MiB")
        print(f"recorder child: VmRSS at start {base_child / MiB:.0f} MiB, sampled peak {sampler.child_peak / MiB:.0f} MiB, "
              f"VmHWM {child_hwm / MiB:.0f} MiB")
        print(f"normal exchanges: {len(answered)} answered, {len(answered) - len(missing)} on disk, "
              f"{len(failed)} failed at the client")
        print(f"hostile exchanges: {len(hostile_results)} answered, "
              f"{sum(1 for r in hostile_results if r[3] == 'exact')} exactly as the upstream sent them; "
              f"on disk: {sorted(hostile_on_disk) or 'none'} (the deep JSON is recorded as text)")
        print(f"log: {len(entries)} entries, {summary.get('not_recorded') if summary else '?'} not recorded; "
              f"why: {sorted(set(not_recorded.values()))}")
        print(f"shutdown: SIGINT to exit {stop_s:.2f} s; recorder child done {writer_s:.2f} s later")
        ok = not missing and not failed and all(r[3] == "exact" for r in hostile_results) and stop_s < 5
        print("RESULT:", "every normal exchange on disk, every hostile one forwarded exactly" if ok
              else f"PROBLEM: missing {missing[:5]}, failed {failed[:5]}")
        return 0 if ok else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
