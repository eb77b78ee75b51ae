"""Record-mode throughput through a real mitmdump, as a ratio to validate-mode passthrough.

    .venv/bin/python benchmarks/bench_record.py [--requests 400] [--rounds 4] [--threads 4] [--titles 20]

A local upstream answers every request with a realistic 32-item V2 page (tests/refservice.py,
one page per titleId, bytes prepared in memory, one send per answer, keep-alive). The same set
of distinct URLs (titleId x continuationToken) is sent through mitmdump in validate mode and in
record mode (a fresh cassette directory per run) by a few client threads, each on one keep-alive
HTTPS connection through the proxy; rounds alternate the two modes. Per run: requests/s seen by
the clients (after one warm-up request per connection), then mitmdump is stopped with SIGINT and
the time to exit is measured (in record mode it includes writing what is still queued), and the
interactions on disk are counted (the timed URLs and one warm-up URL per connection). Printed:
per-run numbers, medians, the ratio record/validate (target >= 0.9), the same ratio counting until
mitmdump has exited, and whether every interaction reached the disk.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import signal
import socket
import ssl
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "addons"), str(REPO / "tests")]

import refservice  # noqa: E402
from proxyharness import AUTH, HOST, XUID, Mitmdump  # noqa: E402
from xblreplay import cassette  # noqa: E402

BASE = f"/users/xuid({XUID})/achievements"
HEADERS = {"Authorization": AUTH, "x-xbl-contract-version": "2", "Accept-Language": "en-US"}
FIRST_TITLE = 1717100001


class PageServer:
    """HTTP/1.1 keep-alive server answering each request with its title's prepared page."""

    def __init__(self, pages: dict[int, bytes]) -> None:
        self.answers = {
            tid: b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            for tid, body in pages.items()
        }
        self.default = next(iter(self.answers.values()))
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.requests = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _answer(self, target: bytes) -> bytes:
        _, _, query = target.partition(b"?")
        for pair in query.split(b"&"):
            name, _, value = pair.partition(b"=")
            if name.lower() == b"titleid" and value.isdigit():
                return self.answers.get(int(value), self.default)
        return self.default

    def _serve(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")  # GET only: no request body
                self.requests += 1
                conn.sendall(self._answer(head.split(b" ", 2)[1]))

    def close(self) -> None:
        self.sock.close()


def make_pages(titles: int) -> dict[int, bytes]:
    """One 32-item page (first page of a 100-achievement title) per titleId."""
    pages = {}
    for n in range(titles):
        tid = FIRST_TITLE + n
        items = refservice.make_dataset(n, {tid: 100})
        pages[tid] = json.dumps(refservice.answer(items, f"{BASE}?titleId={tid}&maxItems=32")).encode()
    return pages


def make_paths(count: int, titles: int) -> list[str]:
    """`count` distinct listing URLs spread over `titles` titleIds (one cassette file each)."""
    paths = []
    for n in range(count):
        tid, page = FIRST_TITLE + n % titles, n // titles
        token = f"&continuationToken={page * 32}" if page else ""
        paths.append(f"{BASE}?titleId={tid}&maxItems=32{token}")
    return paths


def client(proxy: Mitmdump, warmup: str, paths: list[str], ready: threading.Barrier,
           errors: list[str]) -> None:
    ctx = ssl.create_default_context(cafile=str(proxy.ca))
    conn = http.client.HTTPSConnection("127.0.0.1", proxy.port, context=ctx, timeout=60)
    conn.set_tunnel(HOST, 443)
    try:
        for i, path in enumerate([warmup, *paths]):
            if i == 1:
                ready.wait()
            conn.request("GET", path, headers=HEADERS)
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200 or len(body) < 10_000:
                errors.append(f"{path}: {resp.status} {body[:200]!r}")
    except Exception as exc:  # reported, never hidden
        errors.append(f"{type(exc).__name__}: {exc}")
        ready.abort()
    finally:
        conn.close()


def run(mode: str, workdir: Path, upstream: str, paths: list[str], threads: int) -> dict:
    cassettes = workdir / f"cassettes-{mode}"
    shutil.rmtree(cassettes, ignore_errors=True)
    proxy = Mitmdump(workdir, achievements_mode=mode, achievements_upstream=upstream,
                     achievements_cassettes=cassettes).start()
    try:
        errors: list[str] = []
        ready = threading.Barrier(threads + 1)
        warmups = [f"{BASE}?titleId={FIRST_TITLE}&maxItems=32&skipItems={900 + t}" for t in range(threads)]
        workers = [threading.Thread(target=client, args=(proxy, warmups[t], paths[t::threads], ready, errors))
                   for t in range(threads)]
        for w in workers:
            w.start()
        ready.wait(60)
        start = time.perf_counter()
        for w in workers:
            w.join()
        elapsed = time.perf_counter() - start
        if errors:
            raise RuntimeError(f"{mode}: {len(errors)} failed requests, first: {errors[0]}\n{proxy.text()[-2000:]}")
        t = time.perf_counter()
        proxy.proc.send_signal(signal.SIGINT)
        proxy.proc.wait(180)
        stop_s = time.perf_counter() - t
    finally:
        proxy.stop()
    on_disk = sum(len(doc.get("interactions") or ()) for _, doc in cassette.load_dir(cassettes)) \
        if cassettes.exists() else 0
    size = sum(p.stat().st_size for p in cassettes.rglob("*.yaml")) if cassettes.exists() else 0
    return {"rps": len(paths) / elapsed, "stop_s": stop_s, "rps_exit": len(paths) / (elapsed + stop_s), "on_disk": on_disk, "expected": len(paths) + threads,
            "bytes": size}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--titles", type=int, default=20, help="distinct titleIds = cassette files")
    args = ap.parse_args()

    pages = make_pages(args.titles)
    paths = make_paths(args.requests, args.titles)
    assert len(set(paths)) == len(paths)
    page_kb = statistics.mean(map(len, pages.values())) / 1024
    print(f"{args.requests} distinct URLs over {args.titles} titleIds, 32-item V2 pages of {page_kb:.1f} KiB, "
          f"{args.threads} client threads on keep-alive HTTPS connections, {args.rounds} rounds per mode")
    server = PageServer(pages)
    results: dict[str, list[dict]] = {"validate": [], "record": []}
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(args.rounds):
            for mode in ("validate", "record"):
                r = run(mode, Path(tmp), server.url, paths, args.threads)
                results[mode].append(r)
                disk = f", on disk {r['on_disk']}/{r['expected']} ({r['bytes'] / 2**20:.1f} MiB)" if mode == "record" else ""
                print(f"  round {rnd + 1} {mode:8s} {r['rps']:7.1f} req/s, SIGINT->exit {r['stop_s']:.2f} s{disk}",
                      flush=True)
    server.close()

    med = {m: statistics.median(r["rps"] for r in rs) for m, rs in results.items()}
    stop = {m: statistics.median(r["stop_s"] for r in rs) for m, rs in results.items()}
    to_exit = {m: statistics.median(r["rps_exit"] for r in rs) for m, rs in results.items()}
    complete = all(r["on_disk"] == r["expected"] for r in results["record"])
    ratio = med["record"] / med["validate"]
    print()
    print(f"validate: median {med['validate']:7.1f} req/s, SIGINT->exit median {stop['validate']:.2f} s")
    print(f"record:   median {med['record']:7.1f} req/s, SIGINT->exit median {stop['record']:.2f} s")
    print(f"ratio record/validate: {ratio:.2f} (target >= 0.9: {'met' if ratio >= 0.9 else 'NOT met'})")
    print(f"counting until mitmdump has exited (everything on disk): validate {to_exit['validate']:.1f} req/s, "
          f"record {to_exit['record']:.1f} req/s, ratio {to_exit['record'] / to_exit['validate']:.2f}")
    print(f"interactions on disk after a clean exit: "
          f"{', '.join(str(r['on_disk']) for r in results['record'])} of {results['record'][0]['expected']} "
          f"per run ({'all' if complete else 'NOT all'})")


if __name__ == "__main__":
    main()
