"""End-to-end: bad option values and misspelt option names, at start-up and at run time, through a
real mitmdump.

mitmdump runs in mitmproxy's upstream-proxy mode pointing at a SilentListener: whatever the proxy
would send out to the network (to achievements.xboxlive.com, to achievements_upstream, eagerly at
CONNECT) lands on that listener, so "nothing dials out" is a count of zero there."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from proxyharness import ENTRY, HOST, REPO, XUID, Mitmdump, SilentListener

pytestmark = pytest.mark.e2e

EXAMPLE = REPO / "cassettes" / "example"
LISTING = f"/users/xuid({XUID})/achievements?titleId=1829000002&maxItems=3"
CONTROL_HOST = "xblreplay-control.test"

# What mitmproxy itself prints while starting and stopping; everything else is ours.
MITMPROXY_LINES = [
    re.compile(r"Loading script "),
    re.compile(r"HTTP\(S\) proxy( \([a-z ]+ mode\))? listening at "),
    re.compile(r"^Errors? logged during startup, exiting\.\.\.$"),
]
TIMESTAMP = re.compile(r"^\[\d\d:\d\d:\d\d\.\d{3}\] ")


def own_lines(out: str) -> list[str]:
    """The output lines that are not mitmproxy's own start-up banner, timestamps removed."""
    lines = [TIMESTAMP.sub("", line) for line in out.splitlines() if line.strip()]
    return [line for line in lines if not any(p.search(line) for p in MITMPROXY_LINES)]


class Proxy(Mitmdump):
    """The harness's mitmdump in upstream-proxy mode towards `network`, with extra scripts."""

    def __init__(self, workdir: Path, network: SilentListener, *, entry: Path = ENTRY,
                 scripts: tuple[Path, ...] = (), **options) -> None:
        super().__init__(workdir, **options)
        self.network, self.entry, self.scripts = network, entry, scripts

    def argv(self) -> list[str]:
        argv = [str(self.entry) if a == str(ENTRY) else a for a in super().argv()]
        argv[1:1] = ["--mode", f"upstream:{self.network.url}"]
        for script in self.scripts:
            argv += ["-s", str(script)]
        return argv

    def plain(self, path: str = LISTING, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
        """A plain-HTTP request for the host through the proxy (absolute form)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", f"http://{HOST}{path}", headers={
                "Host": HOST, "x-xbl-contract-version": "2",
                "Authorization": "XBL3.0 x=3141592653589793238;token"})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def control(self, **spec) -> tuple[int, dict]:
        """Change options of the running proxy through the control script (see CONTROL)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            conn.request("POST", f"http://{CONTROL_HOST}/", body=json.dumps(spec).encode(),
                         headers={"Host": CONTROL_HOST, "Content-Type": "application/json"})
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read())
        finally:
            conn.close()


# A second script that changes options the ways mitmproxy's users do at run time: the command
# bar of the console and mitmweb (`:set name value`, `:achievements.reload`) and mitmweb's options
# editor (options.update with typed values). It answers its own host without any connection.
CONTROL = f'''
import json
from mitmproxy import ctx, http


class Control:
    def request(self, flow):
        if flow.request.pretty_host != "{CONTROL_HOST}":
            return
        spec = json.loads(flow.request.get_text() or "{{}}")
        try:
            if "command" in spec:
                ctx.master.commands.execute(spec["command"])
            if "update" in spec:
                ctx.options.update(**spec["update"])
            status, result = 200, "ok"
        except Exception as e:
            status, result = 400, f"{{type(e).__name__}}: {{e}}"
        options = {{k: getattr(ctx.options, k) for k in sorted(ctx.options.keys()) if k.startswith("achievements_")}}
        flow.response = http.Response.make(status, json.dumps({{"result": result, "options": options}}),
                                           {{"Content-Type": "application/json"}})


addons = [Control()]
'''


def control_script(tmp_path: Path) -> Path:
    path = tmp_path / "control.py"
    path.write_text(CONTROL)
    return path


class Knocker(threading.Thread):
    """Sends requests for the host through a proxy that is starting, until stopped: plain HTTP
    and a CONNECT to port 443 (which an eager connection strategy dials at once)."""

    def __init__(self, proxy: Proxy) -> None:
        super().__init__(daemon=True)
        self.proxy, self.stop, self.replies = proxy, threading.Event(), []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.replies.append(self.proxy.plain(timeout=1.0)[:2])
            except OSError:
                pass
            try:
                with socket.create_connection(("127.0.0.1", self.proxy.port), timeout=1.0) as s:
                    s.sendall(f"CONNECT {HOST}:443 HTTP/1.1\r\nHost: {HOST}:443\r\n\r\n".encode())
                    s.recv(1024)
                    time.sleep(0.05)  # an eager strategy dials while the tunnel is open
            except OSError:
                pass
            time.sleep(0.005)


def bad_values(tmp_path: Path) -> dict[str, str]:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory\n")
    return {
        "achievements_mode": "sideways",
        "achievements_cassettes": str(a_file),
        "achievements_upstream": "ftp://staging.example",
        "achievements_log": str(a_file / "log.jsonl"),
        "achievements_strict": "maybe",
        "achievements_rules": str(tmp_path / "no-rules"),
        "achievements_now": "yesterday",
        "achievements_strict_coverage": "yes",
        "achievements_throttle": "2",
        "achievements_faults": "no-such-profile",
        "achievements_seed": "abc",
        "achievements_check_responses": "TRUE",
        "achievements_max_body": "0",
        "achievements_diff_record": "maybe",
    }


OPTION_NAMES = [
    "achievements_mode", "achievements_cassettes", "achievements_upstream", "achievements_log",
    "achievements_strict", "achievements_rules", "achievements_now", "achievements_strict_coverage",
    "achievements_throttle", "achievements_faults", "achievements_seed", "achievements_check_responses",
    "achievements_max_body", "achievements_diff_record",
]


def test_the_parametrized_names_are_every_option():
    from xblreplay.proxy.options import NAMES

    assert set(OPTION_NAMES) == NAMES


def start_and_wait_for_exit(proxy: Proxy, timeout: float = 10.0, knock: bool = False
                            ) -> tuple[int, str, float, Knocker | None]:
    proxy.confdir.mkdir(parents=True, exist_ok=True)
    knocker = Knocker(proxy) if knock else None
    started = time.monotonic()
    proc = subprocess.Popen(proxy.argv(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=REPO, stdin=subprocess.DEVNULL)
    if knocker:
        knocker.start()
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"mitmdump still running after {timeout} s:\n{out}")
    finally:
        if knocker:
            knocker.stop.set()
            knocker.join()
    return proc.returncode, out, time.monotonic() - started, knocker


@pytest.mark.parametrize("name", OPTION_NAMES)
def test_a_bad_value_stops_mitmdump_at_start_with_one_line(tmp_path, name):
    value = bad_values(tmp_path)[name]
    with SilentListener() as network:
        options = {"achievements_mode": "validate", "achievements_cassettes": tmp_path / "none", name: value}
        code, out, took, _ = start_and_wait_for_exit(Proxy(tmp_path, network, **options))
        assert network.accepted == 0, out
    assert code != 0, out
    assert took < 10
    assert "Traceback" not in out
    lines = own_lines(out)
    assert len(lines) == 1, out  # exactly one line besides mitmproxy's banner
    (line,) = lines
    assert line.startswith("xblreplay: ") and name in line, out


@pytest.mark.parametrize("bad", ["achievements_seed=abc", "achievements_mode=sideways"])
def test_requests_while_a_bad_start_is_stopping_are_refused_and_nothing_dials_out(tmp_path, bad):
    """Between mitmproxy opening its port and exiting there is a moment; a client that gets in
    then (the knocker tries all the time, over plain HTTP and CONNECT) gets the proxy's own 502
    and nothing reaches the network. validate forwards: a configuration that fell back to
    defaults or left connection_strategy eager would dial out. mitmproxy's own output about
    connections cut by its exit is not looked at here."""
    name, value = bad.split("=")
    replies = []
    with SilentListener() as network:
        for _ in range(3):
            options = {"achievements_mode": "validate", "achievements_cassettes": tmp_path / "none", name: value}
            code, out, took, knocker = start_and_wait_for_exit(Proxy(tmp_path, network, **options), knock=True)
            assert code != 0 and took < 10, out
            replies += knocker.replies
        time.sleep(0.2)
        assert network.accepted == 0
    assert all(status == 502 and "misconfigured" in headers.get("x-xblreplay-reason", "")
               for status, headers in replies), replies


@pytest.mark.parametrize("spelling, meant", [
    ("achievements_modee", "achievements_mode"),
    ("achievement_seed", "achievements_seed"),
    ("achievements_upstreams", "achievements_upstream"),
])
def test_a_misspelt_option_stops_mitmdump_naming_the_closest_option(tmp_path, spelling, meant):
    with SilentListener() as network:
        options = {"achievements_cassettes": EXAMPLE, spelling: "record"}
        code, out, took, _ = start_and_wait_for_exit(Proxy(tmp_path, network, **options))
        assert network.accepted == 0
    assert code != 0 and took < 10, out
    lines = own_lines(out)
    assert len(lines) == 1, out
    (line,) = lines
    assert line == f"xblreplay: unknown option {spelling}; did you mean {meant}?", out


def test_a_misspelt_option_of_mitmproxy_is_named_in_a_warning_and_the_proxy_serves(tmp_path):
    with SilentListener() as network:
        with Proxy(tmp_path, network, achievements_cassettes=EXAMPLE, stream_large_bodie="1m") as proxy:
            status, _, _ = proxy.plain()
            out = proxy.stop()
    assert status == 200
    (warning,) = [line for line in out.splitlines() if "stream_large_bodie" in line]
    assert "did you mean stream_large_bodies?" in warning, out


def test_startup_line_counts_what_was_loaded_and_an_empty_replay_directory_warns(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with SilentListener() as network:
        with Proxy(tmp_path, network, achievements_cassettes=EXAMPLE) as proxy:
            pass
        loaded = own_lines(proxy.text())[0]
        with Proxy(tmp_path, network, achievements_cassettes=empty) as proxy:
            pass
        empty_lines = own_lines(proxy.text())
    assert re.fullmatch(r"xblreplay: loaded 1 file: 3 datasets, 60 achievements, 0 interactions in \d+\.\d\d s",
                        loaded), loaded
    assert re.fullmatch(r"xblreplay: loaded 0 files: 0 datasets, 0 achievements, 0 interactions in \d+\.\d\d s",
                        empty_lines[0]), empty_lines
    assert empty_lines[1] == f"xblreplay: no cassette files in {empty}: replay has nothing to answer from"


def test_a_bad_value_at_run_time_is_refused_and_the_configuration_in_force_stays(tmp_path):
    with SilentListener() as network:
        with Proxy(tmp_path, network, scripts=(control_script(tmp_path),),
                   achievements_cassettes=EXAMPLE) as proxy:
            assert proxy.plain()[0] == 200  # replay, from the example cassette
            refused = {
                # mitmproxy's own parser refuses these...
                "set seed": proxy.control(command="set achievements_seed abc"),
                "set strict": proxy.control(command="set achievements_strict maybe"),
                # ...and the addon these, each leaving replay in force.
                "set mode": proxy.control(command="set achievements_mode sideways"),
                "set upstream": proxy.control(command="set achievements_upstream ftp://x"),
                "set faults": proxy.control(command="set achievements_faults no-such-profile"),
                "set now": proxy.control(command="set achievements_now yesterday"),
                # A change of several options is refused whole: not validate with default rules.
                "update": proxy.control(update={"achievements_mode": "validate", "achievements_rules": "/nonexistent"}),
            }
            after = [proxy.plain() for _ in range(3)]
            assert network.accepted == 0  # nothing was forwarded
            # A good change does take effect (and validate does forward: the count is live).
            switched = proxy.control(command="set achievements_mode validate")
            forwarded = proxy.plain()
            dialled = network.accepted
        out = proxy.stop()
    for what, (status, reply) in refused.items():
        assert status == 400, (what, reply)
        assert reply["options"]["achievements_mode"] == "replay", (what, reply)
        assert reply["options"]["achievements_rules"] != "/nonexistent"
    assert "achievements_mode='sideways' is not a mode" in refused["set mode"][1]["result"]
    assert "achievements_rules: rules file not found" in refused["update"][1]["result"]
    for status, headers, body in after:
        assert status == 200 and len(json.loads(body)["achievements"]) == 3
    assert switched[0] == 200 and switched[1]["options"]["achievements_mode"] == "validate"
    assert forwarded[0] == 502 and "x-xblreplay-reason" not in forwarded[1]  # mitmproxy's: the network hung up
    assert dialled >= 1
    assert "Traceback" not in out


def test_a_proxy_whose_configuration_never_loaded_answers_502_and_never_connects(tmp_path):
    """mitmproxy reloads a changed script: the new addon instance has no configuration of its
    own. When its configuration cannot be built (here the rules file went away) it must refuse
    every request for the host, in a forwarding mode, with no connection anywhere."""
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules)
    entry = tmp_path / "entry.py"
    entry.write_text(f"import sys\nsys.path.insert(0, {str(REPO / 'addons')!r})\n"
                     "from xblreplay.mitm.addon import Achievements\naddons = [Achievements()]\n")
    with SilentListener() as network:
        with Proxy(tmp_path, network, entry=entry, achievements_mode="validate",
                   achievements_rules=rules, achievements_cassettes=tmp_path / "none") as proxy:
            before = proxy.request(LISTING)  # forwarded: the network hangs up, mitmproxy says 502
            dialled = network.accepted
            (rules / "achievements.openapi.yaml").unlink()
            later = time.time() + 5
            os.utime(entry, (later, later))  # mitmproxy polls scripts' mtime every second
            deadline = time.monotonic() + 15
            while "rules file not found" not in proxy.text() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert "rules file not found" in proxy.text(), proxy.text()
            over_tls = [proxy.request(LISTING) for _ in range(3)]
            plain = proxy.plain()
            time.sleep(0.3)
            assert proxy.proc.poll() is None  # still serving
            assert network.accepted == dialled, proxy.text()
        out = proxy.stop()
    assert before.status == 502 and "x-xblreplay-reason" not in before.headers and dialled >= 1
    for reply in over_tls:
        assert reply.status == 502
        reason = reply.headers["x-xblreplay-reason"]
        assert reason.startswith("xblreplay misconfigured: achievements_rules: rules file not found"), reason
        assert json.loads(reply.body)["errorMessage"] == reason
    assert plain[0] == 502 and "rules file not found" in plain[1]["x-xblreplay-reason"]
    assert "Traceback" not in out
