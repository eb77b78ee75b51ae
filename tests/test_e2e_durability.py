"""End-to-end durability of record mode: a recording mitmdump is killed with SIGKILL at random
moments while a client keeps it busy with new interactions, round after round, into one cassette
directory. After every kill each cassette on disk loads, nothing on disk before the round is
gone, and every recorded answer is the upstream's answer for its URL; at the end a replay-mode
mitmdump starts on the directory."""

from __future__ import annotations

import http.client
import random
import signal
import ssl
import threading
import time
from pathlib import Path

import pytest

import refservice
from proxyharness import AUTH, HOST, XUID, Mitmdump, Upstream
from xblreplay import cassette

pytestmark = pytest.mark.e2e

ROUNDS = 20
SEED = 20261127
TITLES = {t: 12 for t in range(4001, 4009)}
BASE = f"/users/xuid({XUID})/achievements"
HEADERS = {"Authorization": AUTH, "x-xbl-contract-version": "2", "Accept-Language": "en-US"}
ORIGIN = f"https://{HOST}"


def path_for(n: int) -> str:
    """The n-th request: a URL no other n produces (title, page size and offset from n)."""
    titles = sorted(TITLES)
    rest = n // len(titles)
    return f"{BASE}?titleId={titles[n % len(titles)]}&maxItems={1 + rest % 3}&skipItems={rest // 3}"


class Client(threading.Thread):
    """Sends paths from `next_n` one after another over one keep-alive tunnel until it fails."""

    def __init__(self, proxy: Mitmdump, next_n: int) -> None:
        super().__init__(daemon=True)
        self.proxy, self.n = proxy, next_n
        self.sent: list[str] = []
        self.answered: list[str] = []
        self.first_answer = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        ctx = ssl.create_default_context(cafile=str(self.proxy.ca))
        conn = http.client.HTTPSConnection("127.0.0.1", self.proxy.port, context=ctx, timeout=10)
        conn.set_tunnel(HOST, 443)
        try:
            while not self.stop.is_set():
                path = path_for(self.n)
                self.n += 1
                self.sent.append(path)
                conn.request("GET", path, headers=HEADERS)
                resp = conn.getresponse()
                resp.read()
                if resp.status == 200:
                    self.answered.append(path)
                    self.first_answer.set()
        except (OSError, http.client.HTTPException):
            pass  # the proxy was killed
        finally:
            conn.close()
            self.first_answer.set()


def wait_for_writers(cassettes: Path, timeout: float = 30.0) -> None:
    """A killed proxy's recorder child sees its pipe close, writes what it was given and exits:
    the files are judged once it is gone (it runs on; that is the point)."""
    marker = b"xblreplay.recording\0" + str(cassettes).encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = False
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                alive = alive or marker in cmdline.read_bytes()
            except OSError:
                continue
        if not alive:
            return
        time.sleep(0.05)
    raise AssertionError(f"the recorder child for {cassettes} did not exit within {timeout} s")


def files_below(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def snapshot(root: Path, items: list[dict], sent: set[str], where: str) -> dict[Path, set[str]]:
    """URLs recorded per cassette file; checks every file on disk on the way."""
    loaded = {path for path, _doc in cassette.load_dir(root)}
    recorded: dict[Path, set[str]] = {}
    for path in files_below(root):
        name = path.name
        if name.startswith("."):  # lock files and a killed writer's temp files are hidden
            assert path not in loaded, (where, path)
            assert name.endswith((".lock", ".tmp")), (where, path)
            continue
        assert path.suffix == ".yaml" and path in loaded, (where, path)
        doc = cassette.load_file(path)  # raises on a truncated or half-written file
        urls = set()
        for interaction in doc.get("interactions", []):
            url = interaction["request"]["url"]
            assert url.startswith(ORIGIN), (where, url)
            path_query = url[len(ORIGIN):]
            assert path_query in sent, (where, url)
            assert interaction["response"]["status"] == 200, (where, url)
            assert interaction["response"]["body"] == refservice.answer(items, path_query), (where, url)
            urls.add(path_query)
        recorded[path] = urls
    return recorded


def test_record_mode_survives_kill_9_at_random_moments(tmp_path):
    rng = random.Random(SEED)
    items = refservice.make_dataset(11, TITLES)
    cassettes = tmp_path / "cassettes"
    sent: set[str] = set()
    answered: set[str] = set()
    before: dict[Path, set[str]] = {}
    next_n = 0
    with Upstream(refservice.handler(items)) as up:
        # Headers and body leave in two writes: without TCP_NODELAY each answer waits ~40 ms for
        # a delayed ACK, which would leave the proxy mostly idle between requests.
        up.server.RequestHandlerClass.disable_nagle_algorithm = True
        for rnd in range(ROUNDS):
            proxy = Mitmdump(tmp_path, achievements_mode="record", achievements_upstream=up.url,
                             achievements_cassettes=cassettes).start()
            client = Client(proxy, next_n)
            try:
                client.start()
                assert client.first_answer.wait(20), proxy.text()
                assert client.answered, (rnd, proxy.text())
                time.sleep(rng.uniform(0.2, 1.2))
                proxy.proc.send_signal(signal.SIGKILL)
                proxy.proc.wait(10)
            finally:
                client.stop.set()
                client.join(15)
                proxy.stop()
            assert proxy.proc.returncode == -signal.SIGKILL
            next_n = client.n
            sent |= set(client.sent)
            answered |= set(client.answered)

            wait_for_writers(cassettes)
            now = snapshot(cassettes, items, sent, f"round {rnd}")
            for path, urls in before.items():
                lost = urls - now.get(path, set())
                assert not lost, f"round {rnd}: {path} lost {sorted(lost)[:3]}"
            before = now

        recorded = set().union(*before.values())
        # Writes really happened between the kills: a good share of the answers reached the disk
        # (the rest were still queued for the background writer when the kill came).
        share = len(recorded & answered) / len(answered)
        assert share >= 0.4, (len(recorded & answered), len(answered))

        # The directory is usable: replay starts on it and answers a recorded URL with 200 from
        # the recorded achievements (R1/R2 decide which ones; each must be the service's item).
        some = sorted(u for u in recorded if u.endswith("&skipItems=0"))[-1]
        with Mitmdump(tmp_path, achievements_mode="replay", achievements_cassettes=cassettes) as proxy:
            reply = proxy.request(some)
        assert reply.status == 200, reply.body
        got = reply.json()["achievements"]
        assert got, reply.json()
        by_key = {(i["titleAssociations"][0]["id"], i["id"]): i for i in items}
        for item in got:
            assert item == by_key[(item["titleAssociations"][0]["id"], item["id"])], item
