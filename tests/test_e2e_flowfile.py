"""End-to-end: mitmproxy's own flow files work with the addon loaded. In every mode a real
mitmdump with `-w FILE` writes a flow file that `mitmdump -nr FILE` reads back and that
`xblreplay import` turns into cassettes holding the recorded 200s; mitmweb saves its flows."""

from __future__ import annotations

import io
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from mitmproxy import io as mio

import refservice
from proxyharness import MITMDUMP, REPO, XUID, Mitmdump, Upstream, free_port
from xblreplay.cassette import load_dir

pytestmark = pytest.mark.e2e

BASE = f"/users/xuid({XUID})/achievements"
FORWARDED_TITLE = 4444  # served by the local upstream, not in the example cassette
REPLAYED_TITLE = 1829000002  # in the example cassette


def service(items):
    """The reference service, answering 400 to a query it cannot parse."""
    serve = refservice.handler(items)

    def handler(method, path, headers, body):
        try:
            return serve(method, path, headers, body)
        except ValueError:
            return 400, {"Content-Type": "application/json"}, b'{"errorCode": 4000, "errorMessage": "bad query"}'
    return handler


class SavingMitmdump(Mitmdump):
    """The harness's mitmdump, also writing every flow with mitmproxy's `-w`."""

    def __init__(self, workdir, flowfile, **options) -> None:
        super().__init__(workdir, **options)
        self.flowfile = flowfile

    def argv(self) -> list[str]:
        return super().argv() + ["-w", str(self.flowfile)]


@pytest.mark.parametrize("mode", ["replay", "record", "validate", "replay-or-record"])
def test_w_flow_file_reads_back_and_imports_in_every_mode(tmp_path, mode):
    flows = tmp_path / "capture.flows"
    items = refservice.make_dataset(5, {FORWARDED_TITLE: 12})
    options = {"achievements_mode": mode}
    if mode == "replay":
        options["achievements_cassettes"] = REPO / "cassettes" / "example"
        title = REPLAYED_TITLE
    else:
        options["achievements_cassettes"] = tmp_path / "proxy-cassettes"
        title = FORWARDED_TITLE
    with Upstream(service(items)) as up:
        if mode != "replay":
            options["achievements_upstream"] = up.url
        with SavingMitmdump(tmp_path, flows, **options) as proxy:
            first = proxy.request(f"{BASE}?titleId={title}&maxItems=5")
            second = proxy.request(f"{BASE}?titleId={title}&maxItems=5&continuationToken=5")
            bad = proxy.request(f"{BASE}?titleId={title}&maxItems=abc")  # R8 400 (or the upstream's answer)
        out = proxy.text()
    assert first.status == 200 and second.status == 200, (first, second)
    assert len(first.json()["achievements"]) == 5
    if mode != "replay":
        assert len(up.requests) >= 2  # these 200s were forwarded, not answered by the proxy
    assert "unserializable" not in out and "Addon error" not in out, out
    assert flows.stat().st_size > 0

    # mitmproxy reads its file back.
    conf = tmp_path / "readback-conf"
    read = subprocess.run([str(MITMDUMP), "-n", "-r", str(flows), "--set", f"confdir={conf}"],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert read.returncode == 0, read.stdout + read.stderr
    assert read.stdout.count("/users/xuid(") == 3 and read.stdout.count("<< ") == 3, read.stdout  # three flows

    # xblreplay imports it: the recorded 200s are cassette files.
    imported = tmp_path / "imported"
    done = subprocess.run([sys.executable, "-m", "xblreplay.cli", "import", str(flows), "--cassettes", str(imported)],
                          capture_output=True, text=True, timeout=60, cwd=REPO / "addons", stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "imported 3 flow(s)" in done.stdout, done.stdout
    recorded = imported / "recorded" / str(XUID) / f"{title}.yaml"
    assert recorded.is_file(), sorted(p.relative_to(imported) for p in imported.rglob("*"))
    interactions = [i for _, doc in load_dir(imported) for i in doc.get("interactions") or ()]
    by_url = {i["request"]["url"].split("?", 1)[1]: i["response"] for i in interactions}
    assert by_url[f"titleId={title}&maxItems=5"]["status"] == 200
    assert by_url[f"titleId={title}&maxItems=5"]["body"] == first.json()
    assert by_url[f"titleId={title}&maxItems=5&continuationToken=5"]["body"] == second.json()
    assert by_url[f"titleId={title}&maxItems=abc"]["status"] == bad.status



class Mitmweb(Mitmdump):
    """The harness's proxy run by mitmweb, its web API on `web_port`."""

    def __init__(self, workdir, **options) -> None:
        super().__init__(workdir, **options)
        self.web_port = free_port()

    def argv(self) -> list[str]:
        argv = super().argv()
        return [str(MITMDUMP.with_name("mitmweb")), "--no-web-open-browser", "--web-host", "127.0.0.1",
                "--web-port", str(self.web_port), *argv[1:]]

    def web_get(self, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}{path}", timeout=timeout) as resp:
                    return resp.status, resp.read()
            except urllib.error.HTTPError as e:
                return e.code, e.read()
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


def test_mitmweb_saves_flows_with_the_addon_loaded(tmp_path):
    """mitmweb's "save" (GET /flows/dump) serialises every flow it holds."""
    items = refservice.make_dataset(5, {FORWARDED_TITLE: 12})
    with Upstream(service(items)) as up:
        with Mitmweb(tmp_path, achievements_mode="validate", achievements_upstream=up.url) as proxy:
            reply = proxy.request(f"{BASE}?titleId={FORWARDED_TITLE}&maxItems=5")
            status, dump = proxy.web_get("/flows/dump")
    assert reply.status == 200
    assert status == 200, dump[:500]
    (flow,) = mio.FlowReader(io.BytesIO(dump)).stream()
    assert flow.request.pretty_url == f"https://achievements.xboxlive.com{BASE}?titleId={FORWARDED_TITLE}&maxItems=5"
    assert flow.response.status_code == 200 and flow.metadata["xblreplay_upstream"] == up.url
