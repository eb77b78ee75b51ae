"""Hostile upstreams against record mode, through a real mitmdump and real local upstreams on
127.0.0.1: bodies that decode to far more than achievements_max_body (a 1 MB gzip body of 1 GiB,
br and zstd likewise), a 50 MB body, bodies with no Content-Length, a truncated gzip body, an
unknown Content-Encoding, JSON nested 100k deep, request URLs holding bytes that are not UTF-8 and
very long requests.

What must hold: the client gets exactly the upstream's bytes and headers; a body that is not read
is logged as not recorded, with why; every other exchange, before and after, reaches the disk;
the memory of mitmdump and of its recorder child stays bounded (VmHWM from /proc); SIGINT stops
mitmdump within a few seconds. Every test bounds itself: a watchdog kills the processes it
started if their memory passes a cap, and an alarm stops a test that runs too long."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import os
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
import tracemalloc
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable

import pytest

from proxyharness import AUTH, HOST, REPO, XUID, Mitmdump, SilentListener, Upstream, cassette_documents, read_log
from xblreplay import bounds, cassette
from xblreplay.redact import redact_url
from xblreplay.recording import (TOO_LARGE, UNDECODABLE, UNKNOWN_ENCODING, RecorderProcess, UnreadableBody,
                                decode_body)

pytestmark = pytest.mark.e2e

MiB = 1 << 20
BASE = f"/users/xuid({XUID})/achievements"
ORIGIN = f"https://{HOST}"
NORMAL = json.dumps({"achievements": [], "pagingInfo": {"continuationToken": None, "totalRecords": 0}}).encode()
RSS_CAP = 700 * MiB  # a watched process over this is killed: the test fails instead of the machine
TEST_BUDGET_S = 150


# ------------------------------------------------------------------------------------ bounds

@pytest.fixture(autouse=True)
def time_budget():
    """Each test stops with TimeoutError after TEST_BUDGET_S (a blocking socket read included)."""
    def expired(signum, frame):
        raise TimeoutError(f"test ran past its {TEST_BUDGET_S} s budget")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(TEST_BUDGET_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def status_of(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in bytes ({} once it is gone)."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return out


def recorder_children(pid: int) -> list[int]:
    """The recorder child processes of ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if ppid == pid and b"xblreplay.recording" in (stat.parent / "cmdline").read_bytes():
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


class MemoryWatch:
    """Kills a watched process (mitmdump, its recorder children) whose RSS passes ``cap``."""

    def __init__(self, pid: int, cap: int = RSS_CAP) -> None:
        self.pid, self.cap = pid, cap
        self.killed: list[tuple[int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            for pid in [self.pid, *recorder_children(self.pid)]:
                rss = status_of(pid).get("VmRSS", 0)
                if rss > self.cap:
                    self.killed.append((pid, rss))
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        assert not self.killed, f"killed for passing {self.cap >> 20} MiB of RSS: {self.killed}"


@contextmanager
def watched(proxy: Mitmdump):
    with proxy:
        watch = MemoryWatch(proxy.proc.pid)
        try:
            yield proxy
        finally:
            watch.stop()


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists() or status_of(pid) == {}


# ------------------------------------------------------------------------------- hostile bodies

def gzip_zeros(size: int) -> bytes:
    """``size`` zero bytes (a multiple of 1 MiB) as a gzip body of about size/1000 bytes, built
    without compressing all of it: each fully flushed 1 MiB block of zeros compresses to the same
    bytes."""
    chunk = b"\0" * MiB
    co = zlib.compressobj(9, zlib.DEFLATED, 31)
    first = co.compress(chunk) + co.flush(zlib.Z_FULL_FLUSH)
    block = co.compress(chunk) + co.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(size // MiB):
        crc = zlib.crc32(chunk, crc)
    final = zlib.compressobj(9, zlib.DEFLATED, -15).flush()  # an empty last block
    return first + block * (size // MiB - 1) + final + struct.pack("<II", crc, size & 0xFFFFFFFF)


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return gzip_zeros(1 << 30)


def deep_json(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def listing(title: int | str, extra: str = "") -> str:
    return f"{BASE}?titleId={title}{extra}"


def recorded_urls(cassettes: Path) -> set[str]:
    """Path and query of every interaction on disk."""
    urls = set()
    if not cassettes.exists():
        return urls
    for _path, doc in cassette_documents(cassettes):
        for interaction in doc.get("interactions") or ():
            urls.add(interaction["request"]["url"][len(ORIGIN):])
    return urls


def entry_for(entries: list[dict], path: str) -> dict:
    found = [e for e in entries if e["url"] == ORIGIN + path]
    assert len(found) == 1, (path, [e["url"] for e in entries])
    return found[0]


def codes(entry: dict) -> set[str]:
    return {v.get("code") for v in entry["violations"]}


def stop_in(proxy: Mitmdump, limit: float) -> float:
    """SIGINT to mitmdump; seconds until it exited (at most ``limit``, else the test fails)."""
    started = time.monotonic()
    proxy.proc.send_signal(signal.SIGINT)
    try:
        proxy.proc.wait(limit)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"mitmdump did not stop within {limit} s of SIGINT") from None
    return time.monotonic() - started


# ----------------------------------------------------------------------------------- servers

class RawUpstream:
    """A raw HTTP/1.1 server on 127.0.0.1: ``respond(path)`` gives the head (bytes) and an
    iterable of body pieces, sent as they are (no Content-Length unless the head has one), and
    the connection is closed."""

    def __init__(self, respond: Callable[[str], tuple[bytes, Iterable[bytes]]]) -> None:
        self.respond = respond
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> "RawUpstream":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                more = conn.recv(65536)
                if not more:
                    return
                data += more
            path = data.split(b" ", 2)[1].decode("latin-1")
            head, pieces = self.respond(path)
            try:
                conn.sendall(head)
                for piece in pieces:
                    conn.sendall(piece)
            except OSError:
                pass


def tunnel(proxy: Mitmdump) -> ssl.SSLSocket:
    """A TLS connection to the host through the proxy's CONNECT, trusting the proxy's CA."""
    raw = socket.create_connection(("127.0.0.1", proxy.port), timeout=30)
    raw.sendall(f"CONNECT {HOST}:443 HTTP/1.1\r\nHost: {HOST}:443\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += raw.recv(4096)
    assert head.startswith(b"HTTP/1.1 200"), head
    ctx = ssl.create_default_context(cafile=str(proxy.ca))
    return ctx.wrap_socket(raw, server_hostname=HOST)


def raw_request(proxy: Mitmdump, target: bytes) -> bytes:
    """Sends a request whose target is ``target`` byte for byte; the whole answer."""
    with tunnel(proxy) as tls:
        tls.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\nAuthorization: "
                    + AUTH.encode() + b"\r\nx-xbl-contract-version: 2\r\nConnection: close\r\n\r\n")
        answer = b""
        while True:
            try:
                more = tls.recv(65536)
            except (ssl.SSLError, OSError):
                break
            if not more:
                break
            answer += more
    return answer


def get(proxy: Mitmdump, path: str, timeout: float = 60.0) -> tuple[int, dict[str, str], str, int]:
    """One request through the proxy; (status, headers, sha256 of the body, its length), the
    body read in pieces so a large one is never held."""
    ctx = ssl.create_default_context(cafile=str(proxy.ca))
    conn = http.client.HTTPSConnection("127.0.0.1", proxy.port, context=ctx, timeout=timeout)
    conn.set_tunnel(HOST, 443)
    try:
        conn.request("GET", path, headers={"Authorization": AUTH, "x-xbl-contract-version": "2",
                                           "Accept-Language": "en-US"})
        resp = conn.getresponse()
        digest, size = hashlib.sha256(), 0
        while piece := resp.read(MiB):
            digest.update(piece)
            size += len(piece)
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, digest.hexdigest(), size
    finally:
        conn.close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def record_proxy(tmp_path: Path, upstream_url: str, **options) -> Mitmdump:
    return Mitmdump(tmp_path, achievements_mode="record", achievements_upstream=upstream_url,
                    achievements_cassettes=tmp_path / "cassettes", achievements_log=tmp_path / "log.jsonl",
                    **options)


def around_one(proxy: Mitmdump, before: list[str], hostile: str, after: list[str]):
    """Normal exchanges, one hostile exchange, normal exchanges again, then SIGINT: the recorder
    child's pid, the normal replies, the hostile reply, (proxy, child) RSS at the start and their
    peaks, and the seconds the proxy took to stop."""
    pid = proxy.proc.pid
    wait_until(lambda: recorder_children(pid), 20, "the recorder child starting")
    (child,) = recorder_children(pid)
    base = status_of(pid)["VmRSS"], status_of(child)["VmRSS"]
    replies = [get(proxy, p) for p in before]
    hostile_reply = get(proxy, hostile)
    replies += [get(proxy, p) for p in after]
    peak = status_of(pid)["VmHWM"], status_of(child)["VmHWM"]
    return child, replies, hostile_reply, base, peak, stop_in(proxy, 10)


# ------------------------------------------------------------------------------- the e2e tests

def test_gzip_bomb_is_forwarded_untouched_never_recorded_and_loses_nothing_else(tmp_path, bomb):
    """1 GiB of zeros as a 1 MB gzip body, between normal exchanges, at the default bound."""
    bomb_path = listing(666)

    def handler(method, path, headers, body):
        if path == bomb_path:
            return 200, {"Content-Type": "application/json", "Content-Encoding": "gzip"}, bomb
        return 200, {"Content-Type": "application/json"}, NORMAL

    before = [listing(t) for t in range(1, 6)]
    after = [listing(t) for t in range(10, 15)]
    with Upstream(handler) as up:
        proxy = record_proxy(tmp_path, up.url)
        with watched(proxy):
            child, replies, bomb_reply, base, peak, stop_s = around_one(proxy, before, bomb_path, after)
    out = proxy.text()

    status, headers, digest, size = bomb_reply
    assert (status, digest, size) == (200, sha(bomb), len(bomb))  # exactly the upstream's bytes
    assert headers["content-encoding"] == "gzip" and headers["content-length"] == str(len(bomb))
    assert all(r[0] == 200 and r[2] == sha(NORMAL) for r in replies)
    # Bounded: the decoder stops past achievements_max_body (32 MiB); the child never sees it.
    assert peak[0] - base[0] < 160 * MiB, (peak, base)
    assert peak[1] - base[1] < 48 * MiB, (peak, base)
    assert stop_s < 5, stop_s

    wait_until(lambda: gone(child), 20, "the recorder child finishing")
    on_disk = recorded_urls(tmp_path / "cassettes")
    assert set(before + after) <= on_disk, sorted(set(before + after) - on_disk)
    assert bomb_path not in on_disk

    entries, summary = read_log(tmp_path / "log.jsonl")
    assert len(entries) == 11
    entry = entry_for(entries, bomb_path)
    assert entry["status"] == 200
    assert entry["not_recorded"] == "body over achievements_max_body (33554432 bytes) after gzip decoding"
    assert "body-too-large" in codes(entry)
    assert summary["not_recorded"] == 1
    assert "Traceback" not in out, out[-3000:]


def test_a_50_mb_body_at_the_default_bound_is_streamed_not_held_and_not_recorded(tmp_path):
    """Over 32 MiB as sent: mitmproxy streams it (stream_large_bodies is held at
    achievements_max_body), so neither process ever holds it."""
    big = os.urandom(MiB) * 50
    big_path = listing(777)

    def handler(method, path, headers, body):
        if path == big_path:
            return 200, {"Content-Type": "application/json"}, big
        return 200, {"Content-Type": "application/json"}, NORMAL

    around = [listing(t) for t in (1, 2, 3)], [listing(t) for t in (4, 5, 6)]
    with Upstream(handler) as up:
        proxy = record_proxy(tmp_path, up.url)
        with watched(proxy):
            child, replies, big_reply, base, peak, stop_s = around_one(proxy, around[0], big_path, around[1])

    assert big_reply[0] == 200 and big_reply[2:] == (sha(big), len(big))
    assert all(r[0] == 200 and r[2] == sha(NORMAL) for r in replies)
    assert peak[0] - base[0] < 40 * MiB, (peak, base)  # less than the body: never held
    assert peak[1] - base[1] < 32 * MiB, (peak, base)
    assert stop_s < 5, stop_s
    wait_until(lambda: gone(child), 20, "the recorder child finishing")
    on_disk = recorded_urls(tmp_path / "cassettes")
    assert set(around[0] + around[1]) <= on_disk and big_path not in on_disk
    entry = entry_for(read_log(tmp_path / "log.jsonl")[0], big_path)
    assert entry["not_recorded"] == ("body over achievements_max_body (33554432 bytes) as received: "
                                     "streamed to the client")
    assert "body-too-large" in codes(entry)


def test_large_bodies_in_a_row_keep_memory_bounded_and_every_one_reaches_the_disk(tmp_path):
    """24 bodies just under achievements_max_body (8 MiB), as fast as the upstream can send them:
    the recorder writes a large body alone, reads ahead only so much, and the proxy holds flows
    back while it is behind; each process stays within a few times the bound (not the 192 MiB
    that went through) and none is lost."""
    limit, count = 8 * MiB, 24
    body = b'{"achievements":[],"pad":"' + b"p" * (limit - 64) + b'"}'

    warm = f"{BASE}?maxItems=1"  # a small body first: both processes warmed up

    def handler(method, path, headers, _body):
        return 200, {"Content-Type": "application/json"}, NORMAL if path == warm else body

    paths = [listing(t) for t in range(1, count + 1)]
    with Upstream(handler) as up:
        proxy = record_proxy(tmp_path, up.url, achievements_max_body=limit)
        with watched(proxy):
            pid = proxy.proc.pid
            assert get(proxy, warm)[0] == 200
            wait_until(lambda: warm in recorded_urls(tmp_path / "cassettes"), 20, "the first exchange on disk")
            (child,) = recorder_children(pid)
            base = status_of(pid)["VmRSS"], status_of(child)["VmRSS"]
            replies = [get(proxy, p) for p in paths]
            wait_until(lambda: set(paths) <= recorded_urls(tmp_path / "cassettes"), 60, "every body on disk")
            peak = status_of(pid)["VmHWM"], status_of(child)["VmHWM"]
            stop_in(proxy, 10)
    assert all(r[0] == 200 and r[2] == sha(body) for r in replies)
    print(f"growth: mitmdump {(peak[0] - base[0]) >> 20} MiB, recorder child {(peak[1] - base[1]) >> 20} MiB")
    assert peak[0] - base[0] < 12 * limit, (peak, base)
    assert peak[1] - base[1] < 14 * limit, (peak, base)
    assert read_log(tmp_path / "log.jsonl")[1]["not_recorded"] == 0


def test_bodies_without_content_length_are_streamed_past_the_bound(tmp_path):
    """A close-delimited and a chunked body of 24 MiB with achievements_max_body=1 MiB: mitmproxy
    holds at most about the bound, then streams the rest."""
    size, piece = 24 * MiB, b"x" * MiB
    content = piece * (size // MiB)

    def respond(path: str) -> tuple[bytes, Iterable[bytes]]:
        if path.endswith("&close"):
            return b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n", [piece] * (size // MiB)
        if path.endswith("&chunked"):
            chunks = [b"%x\r\n%s\r\n" % (len(piece), piece)] * (size // MiB) + [b"0\r\n\r\n"]
            return b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n", chunks
        return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                b"Connection: close\r\n\r\n" % len(NORMAL)), [NORMAL]

    paths = [listing(1), listing(2, "&close"), listing(3), listing(4, "&chunked"), listing(5)]
    with RawUpstream(respond) as up:
        proxy = record_proxy(tmp_path, up.url, achievements_max_body=MiB)
        with watched(proxy):
            pid = proxy.proc.pid
            base = status_of(pid)["VmRSS"]
            replies = {p: get(proxy, p) for p in paths}
            peak = status_of(pid)["VmHWM"]
            stop_in(proxy, 10)
    for p in (paths[1], paths[3]):
        assert replies[p][0] == 200 and replies[p][2:] == (sha(content), size), p
    assert peak - base < 16 * MiB, (peak, base)
    entries = read_log(tmp_path / "log.jsonl")[0]
    for p in (paths[1], paths[3]):
        entry = entry_for(entries, p)
        assert entry["not_recorded"] == "body over achievements_max_body (1048576 bytes) as received: streamed to the client"
    wait_until(lambda: {paths[0], paths[2], paths[4]} <= recorded_urls(tmp_path / "cassettes"), 20,
               "the normal exchanges reaching the disk")
    assert not {paths[1], paths[3]} & recorded_urls(tmp_path / "cassettes")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """One recording mitmdump (default bound) in front of an upstream with a hostile body per path."""
    tmp = tmp_path_factory.mktemp("hostile")
    truncated = gzip.compress(NORMAL * 50)[:-40]
    bodies = {
        "truncated-gzip": ({"Content-Type": "application/json", "Content-Encoding": "gzip"}, truncated),
        "unknown-coding": ({"Content-Type": "application/json", "Content-Encoding": "compress"}, b"\x1f\x9d\x90"),
        "deep-json": ({"Content-Type": "application/json"}, deep_json(100_000)),
        "br-bomb": ({"Content-Type": "application/json", "Content-Encoding": "br"}, None),
    }
    import brotli
    bodies["br-bomb"] = (bodies["br-bomb"][0], brotli.compress(b"\0" * (256 * MiB), quality=5))

    def handler(method, path, headers, body):
        for name, (hdrs, out) in bodies.items():
            if name in path:
                return 200, hdrs, out
        return 200, {"Content-Type": "application/json"}, NORMAL

    with Upstream(handler) as up:
        proxy = record_proxy(tmp, up.url)
        with watched(proxy):
            yield proxy, bodies, tmp


def log_entries(tmp: Path) -> list[dict]:
    path = tmp / "log.jsonl"
    return [json.loads(line) for line in path.read_bytes().decode("utf-8").splitlines()] if path.exists() else []


def wait_logged(tmp: Path, path: str) -> dict:
    wait_until(lambda: any(e.get("url") == ORIGIN + path for e in log_entries(tmp)), 20, f"a log entry for {path}")
    return entry_for(log_entries(tmp), path)


@pytest.mark.parametrize("name, code, why", [
    ("truncated-gzip", UNDECODABLE, "gzip data ends before its end of stream (truncated)"),
    ("unknown-coding", UNKNOWN_ENCODING, "Content-Encoding 'compress' is not one the proxy decodes (gzip, deflate, br, zstd)"),
    ("br-bomb", TOO_LARGE, "body over achievements_max_body (33554432 bytes) after br decoding"),
])
def test_a_body_that_cannot_be_read_reaches_the_client_as_sent_and_the_log_says_why(hostile, name, code, why):
    proxy, bodies, tmp = hostile
    path = listing(100 + list(bodies).index(name), f"&{name}")
    status, headers, digest, size = get(proxy, path)
    hdrs, body = bodies[name]
    assert (status, digest, size) == (200, sha(body), len(body))
    assert headers["content-encoding"] == hdrs["Content-Encoding"]
    entry = wait_logged(tmp, path)
    assert entry["not_recorded"] == why
    assert code in codes(entry)
    after = listing(200 + list(bodies).index(name))
    assert get(proxy, after)[0] == 200
    wait_until(lambda: after in recorded_urls(tmp / "cassettes"), 20, "the next exchange reaching the disk")
    assert path not in recorded_urls(tmp / "cassettes")
    assert "Traceback" not in proxy.text()


def test_json_nested_100k_deep_is_answered_logged_and_kept_as_text(hostile):
    proxy, bodies, tmp = hostile
    path = listing(300, "&deep-json")
    status, _headers, digest, size = get(proxy, path)
    assert (status, digest, size) == (200, sha(deep_json(100_000)), 200_000)
    entry = wait_logged(tmp, path)
    assert "json-too-deep" in codes(entry), entry
    assert "not_recorded" not in entry
    wait_until(lambda: path in recorded_urls(tmp / "cassettes"), 20, "the exchange reaching the disk")
    (doc,) = [d for p, d in cassette_documents(tmp / "cassettes") if p.name == "300.yaml"]
    assert doc["interactions"][0]["response"]["body_text"] == deep_json(100_000).decode()
    assert "Traceback" not in proxy.text()


def test_a_url_holding_bytes_that_are_not_utf8_is_logged_percent_encoded(hostile):
    proxy, _bodies, tmp = hostile
    target = f"{BASE}/".encode() + b"caf\xe9\xff\xfe?titleId=400"
    answer = raw_request(proxy, target)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(NORMAL), answer[:300]
    logged = ORIGIN + f"{BASE}/caf%E9%FF%FE?titleId=400"
    wait_until(lambda: any(e.get("url") == logged for e in log_entries(tmp)), 20, "the log entry")
    (tmp / "log.jsonl").read_bytes().decode("utf-8")  # every line is UTF-8
    # Recorded with the same URL: the cassette holds text, not lone surrogates.
    wait_until(lambda: logged[len(ORIGIN):] in recorded_urls(tmp / "cassettes"), 20, "the exchange on disk")
    assert "Traceback" not in proxy.text()


def test_long_requests_are_recorded_under_bounded_file_names(hostile):
    proxy, _bodies, tmp = hostile
    titles = ",".join(str(1_000_000 + n) for n in range(400))
    paths = [
        listing(titles),  # 400 title ids
        listing(titles + ",x12"),  # 400 and a malformed one
        f"/users/xuid({'0' * 300}{XUID})/achievements?titleId=7",  # huge xuid text
        "/" + "/".join(["segment" * 30] * 12) + "?titleId=8",  # not a user path, 2.5 kB
        listing(9, "&unknown=" + "v" * 5000),
    ]
    for p in paths:
        assert get(proxy, p)[0] == 200, p
    cassettes = tmp / "cassettes"
    expected = {redact_url(ORIGIN + p)[len(ORIGIN):] for p in paths}  # as every written URL is
    wait_until(lambda: expected <= recorded_urls(cassettes), 30, "every long request reaching the disk")
    names = [p for p in cassettes.rglob("*") if p.is_file()]
    assert any(p.name.startswith("titles-400-") for p in names)
    assert all(len(p.name.encode()) <= 255 and len(str(p).encode()) < 4096 for p in names)
    assert "File name too long" not in proxy.text()


def test_sigint_after_hostile_bodies_stops_within_seconds_and_everything_is_on_disk(hostile):
    """Last of the module: the shared proxy stops, and each exchange answered 200 with a readable
    body is on disk."""
    proxy, _bodies, tmp = hostile
    child = recorder_children(proxy.proc.pid)
    assert stop_in(proxy, 10) < 5
    for pid in child:
        wait_until(lambda: gone(pid), 20, "the recorder child finishing")
    entries = [e for e in log_entries(tmp) if "summary" not in e]
    on_disk = recorded_urls(tmp / "cassettes")
    for e in entries:
        if e["status"] == 200 and "not_recorded" not in e:
            assert e["url"][len(ORIGIN):] in on_disk, e["url"]


class UpstreamMode(Mitmdump):
    """mitmdump in upstream-proxy mode towards a SilentListener: anything the proxy would dial
    lands there and is counted."""

    def __init__(self, workdir: Path, network: SilentListener, **options) -> None:
        super().__init__(workdir, **options)
        self.network = network

    def argv(self) -> list[str]:
        argv = super().argv()
        argv[1:1] = ["--mode", f"upstream:{self.network.url}"]
        return argv


def test_a_request_body_over_the_bound_in_replay_is_refused_and_never_dialled(tmp_path):
    """mitmproxy streams a request body over stream_large_bodies before the request hook; in
    replay it must go nowhere: with a Content-Length it is refused at its headers, chunked when
    it outgrows the bound. Both are logged."""
    with SilentListener() as network:
        proxy = UpstreamMode(tmp_path, network, achievements_mode="replay", achievements_max_body=64 * 1024,
                             achievements_cassettes=REPO / "cassettes" / "example", achievements_log=tmp_path / "log.jsonl")
        with watched(proxy):
            for chunked in (False, True):
                assert post_big(proxy, chunked) in (None, 502)  # refused: closed, or mitmproxy's 502
            wait_until(lambda: len(log_entries(tmp_path)) >= 2, 20, "two log entries")
            stop_in(proxy, 10)
        assert network.accepted == 0
    entries = read_log(tmp_path / "log.jsonl")[0]
    assert len(entries) == 2
    for entry in entries:
        assert "body-too-large" in codes(entry) and entry["status"] is None, entry
        assert any("refused unread" in v["message"] for v in entry["violations"]), entry


def post_big(proxy: Mitmdump, chunked: bool) -> int | None:
    """POSTs a 2 MiB update body (chunked or with a Content-Length); the status, None when the
    connection was closed."""
    big = b"{" + b" " * (2 * MiB) + b"}"
    ctx = ssl.create_default_context(cafile=str(proxy.ca))
    conn = http.client.HTTPSConnection("127.0.0.1", proxy.port, context=ctx, timeout=30)
    conn.set_tunnel(HOST, 443)
    body = iter([big[i:i + 65536] for i in range(0, len(big), 65536)]) if chunked else big
    try:
        conn.request("POST", f"{BASE}/00000000-0000-0000-0000-0000000004d2/update", body=body,
                     headers={"Authorization": AUTH, "Content-Type": "application/json"}, encode_chunked=chunked)
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def test_a_request_body_over_the_bound_never_reaches_achievements_upstream_unread(tmp_path):
    """Record mode with achievements_upstream: a request streamed before the request hook could
    only go to the service itself, so it is refused; the next requests are recorded as usual."""
    with Upstream(lambda *a: (200, {"Content-Type": "application/json"}, NORMAL)) as up:
        proxy = record_proxy(tmp_path, up.url, achievements_max_body=64 * 1024)
        with watched(proxy):
            assert post_big(proxy, chunked=False) in (None, 502)
            assert post_big(proxy, chunked=True) in (None, 502)
            assert get(proxy, listing(1))[0] == 200
            wait_until(lambda: listing(1) in recorded_urls(tmp_path / "cassettes"), 20, "the GET on disk")
            stop_in(proxy, 10)
    assert [r[0] for r in up.requests] == ["GET"]
    entries = read_log(tmp_path / "log.jsonl")[0]
    refused = [e for e in entries if e["method"] == "POST"]
    assert len(refused) == 2 and all("body-too-large" in codes(e) for e in refused), entries


def test_stream_large_bodies_is_held_at_achievements_max_body(tmp_path):
    """A smaller stream_large_bodies given by hand would stream (and so lose) bodies the proxy
    can read: it is replaced, with a warning, and a 3 MB body is recorded."""
    body = json.dumps({"achievements": [], "pagingInfo": {"continuationToken": None, "totalRecords": 0},
                       "padding": "p" * (3 * 1000 * 1000)}).encode()

    def handler(method, path, headers, _body):
        return 200, {"Content-Type": "application/json"}, body

    with Upstream(handler) as up:
        proxy = record_proxy(tmp_path, up.url, stream_large_bodies="1m")
        with watched(proxy):
            assert get(proxy, listing(1))[2] == sha(body)
            wait_until(lambda: listing(1) in recorded_urls(tmp_path / "cassettes"), 20, "the body on disk")
            stop_in(proxy, 10)
    assert "stream_large_bodies stays at achievements_max_body (33554432)" in proxy.text()
    assert "not_recorded" not in entry_for(read_log(tmp_path / "log.jsonl")[0], listing(1))


def test_achievements_max_body_of_zero_stops_mitmdump_at_start(tmp_path):
    proxy = Mitmdump(tmp_path, achievements_max_body=0, achievements_cassettes=tmp_path)
    try:
        proxy.start(timeout=30)  # the port may open before the start-up error stops it
    except RuntimeError:
        pass
    try:
        assert proxy.proc.wait(20) != 0
    finally:
        out = proxy.stop()
    assert "xblreplay: achievements_max_body=0 is not a size: give a number of bytes above 0" in out, out


# ------------------------------------------------------------------------- the decoder itself

@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    """96 MiB of zeros in each coding, compressed 1 MiB at a time (never held whole)."""
    import brotli
    import zstandard

    size, chunk = 96 * MiB, b"\0" * MiB

    def stream(compress, finish) -> bytes:
        return b"".join(compress(chunk) for _ in range(size // MiB)) + finish()

    deflate = zlib.compressobj(9)
    br = brotli.Compressor(quality=5)
    sized = zstandard.ZstdCompressor().compressobj(size=size)
    unsized = zstandard.ZstdCompressor(write_content_size=False).compressobj()
    return {
        "gzip": gzip_zeros(size),
        "deflate": stream(deflate.compress, deflate.flush),
        "br": stream(br.process, br.finish),
        "zstd": stream(sized.compress, sized.flush),
        "zstd-unsized": stream(unsized.compress, unsized.flush),
    }


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd", "zstd-unsized"])
def test_decoding_a_bomb_stops_past_the_bound(bombs, coding):
    raw = bombs[coding]
    limit = 4 * MiB
    tracemalloc.start()
    try:
        with pytest.raises(UnreadableBody) as err:
            decode_body(raw, coding.split("-")[0], limit)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert err.value.code == TOO_LARGE
    assert str(err.value) == f"body over achievements_max_body ({limit} bytes) after {coding.split('-')[0]} decoding"
    assert peak < limit + 40 * MiB, peak  # brotli may decode one meta-block (16 MiB) past it


def test_decoding_round_trips_every_coding_and_names_what_it_cannot_read():
    import brotli
    import zstandard

    body = json.dumps({"achievements": [{"id": str(n), "name": "x" * 50} for n in range(2000)]}).encode()
    encoded = {
        "gzip": gzip.compress(body), "x-gzip": gzip.compress(body), "deflate": zlib.compress(body),
        "br": brotli.compress(body), "zstd": zstandard.ZstdCompressor().compress(body),
        "identity": body, "gzip, br": brotli.compress(gzip.compress(body)),
    }
    for coding, raw in encoded.items():
        assert decode_body(raw, coding, MiB) == body, coding
    assert decode_body(zlib.compress(body)[2:-4], "deflate", MiB) == body  # raw deflate, as servers send it
    assert decode_body(gzip.compress(body) * 2, "gzip", MiB) == body * 2  # two members
    assert decode_body(b"", "gzip", 1) == b""
    for coding, raw in encoded.items():
        if coding != "identity":
            with pytest.raises(UnreadableBody) as err:
                decode_body(raw[:len(raw) // 2], coding, MiB)
            assert err.value.code == UNDECODABLE and "truncated" in str(err.value), coding
    with pytest.raises(UnreadableBody) as err:
        decode_body(b"junk", "gzip", MiB)
    assert err.value.code == UNDECODABLE
    with pytest.raises(UnreadableBody) as err:
        decode_body(body, "compress", MiB)
    assert err.value.code == UNKNOWN_ENCODING
    with pytest.raises(UnreadableBody) as err:
        decode_body(body, None, len(body) - 1)
    assert err.value.code == TOO_LARGE and str(err.value) == f"body over achievements_max_body ({len(body) - 1} bytes)"
    assert decode_body(body, None, len(body)) == body
    assert bounds.MAX_BODY_BYTES == 32 * MiB


# ------------------------------------------------------------------- the recorder child process

def one_exchange(rec, title: int) -> None:
    rec.record("GET", f"{ORIGIN}{listing(title)}", {"authorization": AUTH, "x-xbl-contract-version": "2"},
               200, {"content-type": "application/json"}, NORMAL, "application/json", 5.0)


def titles_on_disk(cassettes: Path) -> set[int]:
    return {int(u.rsplit("=", 1)[1]) for u in recorded_urls(cassettes)}


def test_a_recorder_child_that_dies_is_replaced_and_later_exchanges_are_written(tmp_path):
    errors: list[Exception] = []
    rec = RecorderProcess(tmp_path, on_error=errors.append)
    try:
        one_exchange(rec, 1)
        assert rec.flush(30)
        first = rec._child.proc
        first.kill()
        first.wait(10)
        for title in (2, 3):
            one_exchange(rec, title)
        assert rec.flush(30)
        assert rec._child.proc is not first
    finally:
        rec.close(30)
    assert titles_on_disk(tmp_path) == {1, 2, 3}
    assert any("ended unexpectedly" in str(e) for e in errors), errors


def test_close_waits_a_bounded_time_and_the_child_finishes_on_its_own(tmp_path):
    """The child is held up (another process holds its directory's lock): close(1) returns in
    about a second, and the child writes once it can, after the parent stopped waiting."""
    directory = tmp_path / "recorded" / str(XUID)
    directory.mkdir(parents=True)
    rec = RecorderProcess(tmp_path)
    child = rec._child.proc
    with cassette.file_lock(directory / "1.yaml"):
        for title in (1, 2):
            one_exchange(rec, title)
        started = time.monotonic()
        rec.close(1.0)
        waited = time.monotonic() - started
        assert waited < 3, waited
        assert child.poll() is None and not titles_on_disk(tmp_path)
    child.wait(30)
    assert titles_on_disk(tmp_path) == {1, 2}


def test_close_hands_a_long_backlog_to_the_child_at_once_and_nothing_is_lost(tmp_path):
    """The child reads ahead only its backlog limit; when the proxy stops, it takes the rest at
    once, so close returns within its timeout and the child writes every exchange after."""
    directory = tmp_path / "recorded" / str(XUID)
    directory.mkdir(parents=True)
    rec = RecorderProcess(tmp_path, backlog_limit=MiB)
    child = rec._child.proc
    big = b'{"achievements":[],"pad":"' + b"p" * MiB + b'"}'
    with cassette.file_lock(directory / "1.yaml"):  # the child is held up
        for title in range(1, 11):
            rec.record("GET", f"{ORIGIN}{listing(title)}", {"x-xbl-contract-version": "2"}, 200,
                       {"content-type": "application/json"}, big, "application/json", 5.0)
        wait_until(lambda: rec.backlog() > MiB, 10, "a backlog building up in the proxy")
        started = time.monotonic()
        rec.close(2.0)
        assert time.monotonic() - started < 4
        assert rec.backlog() == 0  # all handed over
    child.wait(60)
    assert titles_on_disk(tmp_path) == set(range(1, 11))


def test_the_recorder_child_ignores_sigint_sent_to_the_process_group(tmp_path):
    rec = RecorderProcess(tmp_path)
    try:
        one_exchange(rec, 1)
        assert rec.flush(30)
        os.kill(rec._child.proc.pid, signal.SIGINT)
        os.kill(rec._child.proc.pid, signal.SIGTERM)
        one_exchange(rec, 2)
        assert rec.flush(30)
        assert rec._child.proc.poll() is None
    finally:
        rec.close(30)
    assert titles_on_disk(tmp_path) == {1, 2}


def test_import_skips_a_bomb_and_records_the_rest(tmp_path):
    from mitmproxy import io
    from mitmproxy.test import tflow, tutils

    from xblreplay.mitm.flows import UnreadableFlow, import_flows

    flows = []
    for n, (content, coding) in enumerate([(NORMAL, None), (gzip_zeros(64 * MiB), "gzip"), (NORMAL, None)]):
        headers = [(b"Content-Type", b"application/json")] + ([(b"Content-Encoding", coding.encode())] if coding else [])
        f = tflow.tflow(resp=tutils.tresp(content=b"", headers=headers))
        f.response.raw_content = content
        f.request.scheme, f.request.host, f.request.port = "https", HOST, 443
        f.request.path = listing(n + 1)
        f.request.headers["x-xbl-contract-version"] = "2"
        flows.append(f)
    flow_file = tmp_path / "flows.mitm"
    with open(flow_file, "wb") as fh:
        writer = io.FlowWriter(fh)
        for f in flows:
            writer.add(f)
    problems: list[Exception] = []
    assert import_flows(flow_file, tmp_path / "c", on_error=problems.append, max_body=MiB) == 2
    assert titles_on_disk(tmp_path / "c") == {1, 3}
    (problem,) = problems
    assert isinstance(problem, UnreadableFlow)
    assert "not recorded: body over achievements_max_body (1048576 bytes) after gzip decoding" in str(problem)
    with pytest.raises(UnreadableFlow):
        import_flows(flow_file, tmp_path / "d", max_body=MiB)
