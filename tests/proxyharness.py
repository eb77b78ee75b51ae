"""Real processes and sockets for end-to-end tests: a mitmdump running the addon, a local
upstream HTTP server, and an HTTPS client that goes through the proxy trusting its CA.
Everything listens on 127.0.0.1 only."""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

from xblreplay.pytest_plugin.launcher import MitmdumpProcess, free_port, mitmdump_path

REPO = Path(__file__).resolve().parents[1]
ENTRY = REPO / "addons" / "achievements.py"
MITMDUMP = mitmdump_path()
HOST = "achievements.xboxlive.com"
XUID = 2533274800000001
AUTH = "XBL3.0 x=3141592653589793238;eyJhbGciOiJSUzI1NiJ9.dGVzdA.c2ln"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    header_list: list[tuple[str, str]] = field(default_factory=list)  # as sent, repeats kept

    def count(self, name: str) -> int:
        return sum(1 for k, _ in self.header_list if k == name.lower())

    def json(self) -> Any:
        return json.loads(self.body)


class Mitmdump(MitmdumpProcess):
    """mitmdump -s addons/achievements.py on 127.0.0.1 with its own confdir (and CA), started and
    stopped by the package's launcher (xblreplay.pytest_plugin.launcher)."""

    def __init__(self, workdir: Path, **options: Any) -> None:
        self.workdir = workdir
        port = free_port()
        super().__init__(workdir / "mitmconf", workdir / f"mitmdump-{port}.out", options, port=port,
                         entry=ENTRY, cwd=REPO)

    def start(self, timeout: float = 30.0) -> "Mitmdump":
        super().start(timeout)
        return self

    def __enter__(self) -> "Mitmdump":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def request(self, path: str, headers: dict[str, str] | None = None, *, method: str = "GET",
                body: bytes | None = None, auth: str | None = AUTH, contract: str | None = "2",
                timeout: float = 20.0) -> Reply:
        """One HTTPS request to achievements.xboxlive.com through the proxy (CONNECT tunnel)."""
        ctx = ssl.create_default_context(cafile=str(self.ca))
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=timeout)
        conn.set_tunnel(HOST, 443)
        hdrs = {"Accept-Language": "en-US"}
        if auth is not None:
            hdrs["Authorization"] = auth
        if contract is not None:
            hdrs["x-xbl-contract-version"] = contract
        hdrs.update(headers or {})
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read(),
                         [(k.lower(), v) for k, v in resp.getheaders()])
        finally:
            conn.close()


@dataclass
class Upstream:
    """A real local HTTP server standing in for the service; it records what it receives."""

    handler: Callable[[str, str, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    connections: int = 0

    def __post_init__(self) -> None:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once, no delayed-ACK wait

            def setup(self) -> None:
                upstream.connections += 1
                super().setup()

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                upstream.requests.append((self.command, self.path, headers))
                status, out_headers, out = upstream.handler(self.command, self.path, headers, body)
                self.send_response(status)
                for k, v in out_headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = _serve

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Upstream":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class SilentListener:
    """A listening socket that must receive nothing; counts the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            conn.close()

    def __enter__(self) -> "SilentListener":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join()
        self.sock.close()


def read_log(path: Path) -> tuple[list[dict], dict | None]:
    """Entries and summary of a JSON Lines validation log."""
    entries, summary = [], None
    for line in path.read_text().splitlines():
        obj = json.loads(line)
        if "summary" in obj:
            summary = obj["summary"]
        else:
            entries.append(obj)
    return entries, summary


def env_ok() -> bool:
    return MITMDUMP.exists() and os.access(MITMDUMP, os.X_OK)


def cassette_documents(directory: Path) -> list[tuple[Path, dict]]:
    """Every cassette below ``directory`` as (path, document), read without the proxy's own
    loader: JSON when the file is in YAML's JSON subset (after leading ``#`` lines), else YAML."""
    import yaml

    docs = []
    for path in sorted(directory.rglob("*")):
        if not path.is_file() or path.suffix not in (".yaml", ".yml"):
            continue
        text = path.read_text(encoding="utf-8")
        body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
        try:
            doc = json.loads(body)
        except ValueError:
            doc = yaml.safe_load(text)
        docs.append((path, doc))
    return docs


def printed_summary(output: str) -> dict | None:
    """The summary mitmdump printed when it exited (``xblreplay summary: {...}``)."""
    marker = "xblreplay summary: "
    lines = [line for line in output.splitlines() if line.startswith(marker)]
    return json.loads(lines[-1][len(marker):]) if lines else None


# Listing queries no single recorded page answers as they are: filters, orders, paging, case.
VARIED_QUERIES = [
    "titleId=2222&orderBy=Title&maxItems=7",
    "titleId=2222&orderBy=UnlockTime&maxItems=100",
    "titleId=1111,3333&unlockedOnly=true",
    "titleId=2222&types=Challenge",
    "titleId=1111&skipItems=5&maxItems=4",
    "titleId=3333,2222,1111&orderBy=title&maxItems=50&continuationToken=20",
    "titleId=1111&unlockedOnly=TRUE&orderBy=unlocktime&maxItems=3&continuationToken=3",
]


def page_all(proxy: "Mitmdump", query: str, headers: dict | None = None, *, xuid: int = XUID,
             contract: str = "2", limit: int = 1000) -> tuple[list[dict], list[dict]]:
    """Every page of a listing ``query`` through the proxy, following continuation tokens to
    the end: (items, pagingInfos)."""
    items, infos, token = [], [], None
    for _ in range(limit):
        path = f"/users/xuid({xuid})/achievements?{query}" + (f"&continuationToken={token}" if token else "")
        reply = proxy.request(path, headers, contract=contract)
        assert reply.status == 200, (reply.status, reply.body[:300])
        body = reply.json()
        items += body["achievements"]
        infos.append(body["pagingInfo"])
        token = body["pagingInfo"]["continuationToken"]
        if token is None:
            return items, infos
    raise AssertionError("continuation tokens never ended")
