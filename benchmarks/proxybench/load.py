"""Closed-loop HTTP/1.1 load through an HTTP proxy on loopback, standard library only.

One thread, asyncio streams (+ ssl), so on a 2-core machine the loader takes one core and
leaves the other to the proxy under test.

  http  mode: C keep-alive connections to the proxy, absolute-form requests
              (GET http://host/path HTTP/1.1), as clients talk to a forward proxy.
  https mode: each connection sends CONNECT host:443, then TLS inside the tunnel (trusting
              the proxy's CA file, SNI = host, ALPN http/1.1), then keep-alive origin-form
              requests.

Each connection first sends `warmup` untimed requests (connection set-up, CONNECT, the TLS
handshake and the proxy's per-host certificate stay out of the figures); then the `n` timed
requests are shared by the C connections. Latency is send -> last body byte. With more than
one URL, requests walk the list in order from `offset`, shared by all connections (warm-up
included), so a paging client never asks for the same page twice until the list wraps.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

HEADERS = [
    ("Accept", "application/json"),
    ("x-xbl-contract-version", "2"),
    ("Accept-Language", "en-US"),
    ("Authorization", "XBL3.0 x=3141592653589793238;anytoken"),
]


class BadResponse(Exception):
    pass


def requests_for(urls: list[str], mode: str) -> tuple[str, int, list[bytes]]:
    """(host, port, raw request per URL) as the client sends them through the proxy in `mode`."""
    host = urlsplit(urls[0]).hostname or ""
    port = 443 if mode == "https" else (urlsplit(urls[0]).port or 80)
    head = "".join(f"{k}: {v}\r\n" for k, v in HEADERS)
    raw = []
    for url in urls:
        u = urlsplit(url)
        if u.hostname != host:
            raise ValueError("every URL of a workload must name the same host")
        path = u.path + (f"?{u.query}" if u.query else "")
        target = path if mode == "https" else f"http://{u.netloc}{path}"
        raw.append(f"GET {target} HTTP/1.1\r\nHost: {host}\r\n{head}\r\n".encode())
    return host, port, raw


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, int]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    try:
        status = int(lines[0].split(b" ", 2)[1])
    except (IndexError, ValueError) as exc:
        raise BadResponse(f"bad status line {lines[0][:80]!r}") from exc
    length, chunked, close = None, False, False
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        k = k.strip().lower()
        if k == b"content-length":
            length = int(v.strip())
        elif k == b"transfer-encoding" and b"chunked" in v.lower():
            chunked = True
        elif k == b"connection" and b"close" in v.lower():
            close = True
    if chunked:
        length = 0
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            await reader.readexactly(size + 2)
            length += size
        await reader.readuntil(b"\r\n")
    elif length is not None:
        await reader.readexactly(length)
    else:
        raise BadResponse("response without content-length or chunked encoding")
    if close:
        raise BadResponse("the proxy closed a keep-alive connection")
    return status, length


@dataclass
class _Shared:
    remaining: int
    next_url: int
    lat_ns: list[int] = field(default_factory=list)
    errors: int = 0
    nbytes: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    last_error: str = ""


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process, all threads, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pct(sorted_ns: list[int], q: float) -> float:
    if not sorted_ns:
        return float("nan")
    i = min(len(sorted_ns) - 1, max(0, int(round(q * len(sorted_ns) + 0.5)) - 1))
    return sorted_ns[i] / 1e6


class Loader:
    """Drives one proxy on 127.0.0.1:`proxy_port`; `run` returns one cell's figures."""

    def __init__(self, proxy_port: int, ca_file: str, timeout: float = 300.0) -> None:
        self.proxy_port = proxy_port
        self.timeout = timeout
        self.sslctx = ssl.create_default_context(cafile=ca_file)
        self.sslctx.set_alpn_protocols(["http/1.1"])

    async def _open(self, mode: str, host: str, port: int):
        reader, writer = await asyncio.open_connection("127.0.0.1", self.proxy_port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if mode == "https":
            writer.write(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            if b" 200" not in head.split(b"\r\n", 1)[0]:
                raise BadResponse(f"CONNECT refused: {head[:80]!r}")
            await writer.start_tls(self.sslctx, server_hostname=host)
        return reader, writer

    async def _worker(self, mode, host, port, reqs, warmup, shared: _Shared, ready, go) -> None:
        nreq = len(reqs)
        try:
            reader, writer = await self._open(mode, host, port)
            for _ in range(warmup):
                writer.write(reqs[shared.next_url % nreq])
                shared.next_url += 1
                status, _ = await _read_response(reader)
                if status != 200:
                    shared.statuses[status] = shared.statuses.get(status, 0) + 1
                    raise BadResponse(f"warm-up answered {status}")
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, BadResponse) as exc:
            shared.errors += 1
            shared.last_error = f"set-up: {type(exc).__name__}: {exc}"
            ready()
            return
        ready()
        await go.wait()
        clock = time.perf_counter_ns
        while shared.remaining > 0:
            shared.remaining -= 1
            req = reqs[shared.next_url % nreq]
            shared.next_url += 1
            t0 = clock()
            try:
                writer.write(req)
                status, nbytes = await _read_response(reader)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, BadResponse) as exc:
                shared.errors += 1
                shared.last_error = f"{type(exc).__name__}: {exc}"
                writer.close()
                try:
                    reader, writer = await self._open(mode, host, port)
                except (OSError, asyncio.IncompleteReadError, BadResponse) as exc2:
                    shared.last_error = f"reconnect: {type(exc2).__name__}: {exc2}"
                    return
                continue
            shared.lat_ns.append(clock() - t0)
            shared.nbytes += nbytes
            shared.statuses[status] = shared.statuses.get(status, 0) + 1
        writer.close()

    async def _run(self, mode, urls, c, n, warmup, offset, server_pid) -> dict:
        host, port, reqs = requests_for(urls, mode)
        shared = _Shared(remaining=n, next_url=offset)
        go, all_ready, pending = asyncio.Event(), asyncio.Event(), [c]

        def ready() -> None:
            pending[0] -= 1
            if pending[0] == 0:
                all_ready.set()

        tasks = [asyncio.create_task(self._worker(mode, host, port, reqs, warmup, shared, ready, go))
                 for _ in range(c)]
        await asyncio.wait_for(all_ready.wait(), timeout=self.timeout)
        cpu0, t0 = proc_cpu_s(server_pid), time.perf_counter()
        go.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=self.timeout)
        wall = time.perf_counter() - t0
        cpu = proc_cpu_s(server_pid) - cpu0
        lat = sorted(shared.lat_ns)
        ok = len(lat)
        return {
            "n": ok,
            "errors": shared.errors,
            "non200": sum(v for k, v in shared.statuses.items() if k != 200),
            "statuses": dict(sorted(shared.statuses.items())),
            "last_error": shared.last_error,
            "rps": ok / wall if wall > 0 else 0.0,
            "p50_ms": _pct(lat, 0.50),
            "p99_ms": _pct(lat, 0.99),
            "cpu_ms_per_req": cpu * 1000 / ok if ok else float("nan"),
            "body_bytes": shared.nbytes // ok if ok else 0,
            "next_offset": shared.next_url,
        }

    def run(self, mode: str, urls: list[str], c: int, n: int, warmup: int, offset: int,
            server_pid: int) -> dict:
        """One cell: `c` connections, `warmup` untimed requests each, then `n` timed ones."""
        return asyncio.run(self._run(mode, urls, c, n, warmup, offset, server_pid))
