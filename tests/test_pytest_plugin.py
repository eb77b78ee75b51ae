"""The pytest plugin as a game team uses it: a test project outside the checkout (no conftest of
ours; the plugin comes from the installed package's entry point) run by `python -m pytest` in a
subprocess, its tests talking HTTPS through `achievements_proxy` to real mitmdump processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from proxyharness import REPO, Upstream
from refservice import handler, make_dataset

pytestmark = pytest.mark.e2e

EXAMPLE = REPO / "cassettes" / "example"
RECORDED_TITLE = 1829000002

# The client every outside test file starts with: one HTTPS request to the service through the
# proxy, trusting the CA the fixture names.
CLIENT = '''
import http.client, json, os, ssl
from pathlib import Path
import pytest

XUID = 2533274800000001
AUTH = "XBL3.0 x=3141592653589793238;eyJhbGciOiJSUzI1NiJ9.dGVzdA.c2ln"
SCID = "a1b2c3d4-0000-4000-8000-00006659fa71"
HERE = Path(__file__).parent


def call(proxy, path, method="GET", body=None):
    ctx = ssl.create_default_context(cafile=str(proxy.ca_cert))
    host, port = proxy.proxy_url.removeprefix("http://").split(":")
    conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=20)
    conn.set_tunnel("achievements.xboxlive.com", 443)
    headers = {"Authorization": AUTH, "x-xbl-contract-version": "2", "Accept-Language": "en-US"}
    if body is not None:
        headers["Content-Type"] = "application/json"
        body = json.dumps(body).encode()
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def note(name, value):
    (HERE / name).write_text(json.dumps(value))
'''


def project(tmp_path: Path, tests: str, *, example: bool = True, ini: str = "") -> Path:
    """A test project in a directory of its own: test_game.py (CLIENT + ``tests``), the example
    cassette beside it when asked, and a pytest.ini when ``ini`` is given."""
    root = tmp_path / "game"
    root.mkdir(parents=True)
    (root / "test_game.py").write_text(CLIENT + textwrap.dedent(tests))
    if example:
        shutil.copytree(EXAMPLE, root / "example_cassettes")
    if ini:
        (root / "pytest.ini").write_text("[pytest]\n" + textwrap.dedent(ini))
    return root


def run(root: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    env.pop("PYTEST_XDIST_WORKER", None)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", *args], cwd=root,
                          env=env, capture_output=True, text=True, timeout=timeout)


def noted(root: Path, name: str):
    return json.loads((root / name).read_text())


def test_replays_the_example_cassette_over_https(tmp_path):
    root = project(tmp_path, '''
        @pytest.mark.achievements(cassettes="example_cassettes")
        def test_listing(achievements_proxy):
            status, body = call(achievements_proxy, f"/users/xuid({XUID})/achievements?titleId=1717113201&maxItems=5")
            assert status == 200, body
            note("listing.json", json.loads(body))
            note("handle.json", {"proxy_url": achievements_proxy.proxy_url, "ca": str(achievements_proxy.ca_cert),
                                 "env": achievements_proxy.env, "cassettes": str(achievements_proxy.cassettes),
                                 "pid": achievements_proxy.pid, "log": achievements_proxy.log(),
                                 "summary": achievements_proxy.summary()})
            achievements_proxy.assert_clean()
    ''')
    done = run(root)
    assert done.returncode == 0, done.stdout + done.stderr
    listing, handle = noted(root, "listing.json"), noted(root, "handle.json")
    assert len(listing["achievements"]) == 5 and listing["pagingInfo"]["totalRecords"] == 23
    assert handle["proxy_url"].startswith("http://127.0.0.1:")
    assert handle["env"]["HTTPS_PROXY"] == handle["proxy_url"] and handle["env"]["SSL_CERT_FILE"] == handle["ca"]
    assert handle["env"]["REQUESTS_CA_BUNDLE"] == handle["ca"]
    assert handle["cassettes"] == str(root / "example_cassettes")
    assert [e["source"] for e in handle["log"]] == ["dataset"]
    assert handle["summary"]["requests"] == 1 and handle["summary"]["status"] == {"200": 1}
    with pytest.raises(ProcessLookupError):  # stopped when the run ended
        os.kill(handle["pid"], 0)


def test_records_into_the_default_directory_then_replays_offline(tmp_path):
    root = project(tmp_path, f'''
        def test_listing(achievements_proxy):
            status, body = call(achievements_proxy, f"/users/xuid({{XUID}})/achievements?titleId={RECORDED_TITLE}&maxItems=4")
            assert status == 200, body
            note(f"body-{{achievements_proxy.mode}}.json", json.loads(body))
            note(f"cassettes-{{achievements_proxy.mode}}.json", str(achievements_proxy.cassettes))
    ''', example=False)
    with Upstream(handler(make_dataset(7, {RECORDED_TITLE: 9}))) as upstream:
        recorded = run(root, "--achievements-mode=record", f"--achievements-upstream={upstream.url}")
        assert recorded.returncode == 0, recorded.stdout + recorded.stderr
        assert len(upstream.requests) == 1
    default = root / "cassettes" / "test_game"
    assert noted(root, "cassettes-record.json") == str(default)
    assert list(default.rglob("*.yaml")), list(root.rglob("*"))
    replayed = run(root)  # the upstream is gone: replay answers offline or not at all
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    body = noted(root, "body-replay.json")
    assert body == noted(root, "body-record.json")
    assert body["pagingInfo"]["totalRecords"] == 9 and len(body["achievements"]) == 4


def test_assert_clean_names_the_rule_of_a_bad_request(tmp_path):
    root = project(tmp_path, '''
        @pytest.mark.achievements(cassettes="example_cassettes")
        def test_bad_page_size(achievements_proxy):
            status, _ = call(achievements_proxy, f"/users/xuid({XUID})/achievements?maxItems=abc")
            assert status == 400
            achievements_proxy.assert_clean()

        @pytest.mark.achievements(cassettes="example_cassettes")
        def test_good_page_size(achievements_proxy):
            status, _ = call(achievements_proxy, f"/users/xuid({XUID})/achievements?maxItems=3")
            assert status == 200
            achievements_proxy.assert_clean()
    ''')
    done = run(root)
    assert done.returncode == 1, done.stdout
    assert "FAILED test_game.py::test_bad_page_size" in done.stdout
    assert "PASSED test_game.py::test_good_page_size" in done.stdout
    assert "R8 invalid-integer (error) query maxItems" in done.stdout
    assert "maxItems=abc -> 400" in done.stdout


def test_tests_share_one_process_and_start_from_the_cassettes_as_loaded(tmp_path):
    """One mitmdump for two tests of one configuration; the first one's progress update and
    repeated request (call-pattern state) are gone when the second starts."""
    root = project(tmp_path, '''
        LISTING = f"/users/xuid({XUID})/achievements?titleId=1717113201&unlockedOnly=true&maxItems=100"
        UPDATE = f"/users/xuid({XUID})/achievements/{SCID}/update"

        def unlock(proxy, achievement):
            return call(proxy, UPDATE, "POST", {"action": "progressUpdate", "serviceConfigId": SCID,
                        "titleId": 1717113201, "userId": str(XUID),
                        "achievements": [{"id": str(achievement), "percentComplete": 100}]})[0]

        def unlocked(proxy):
            return {a["id"] for a in json.loads(call(proxy, LISTING)[1])["achievements"]}

        @pytest.mark.achievements(cassettes="example_cassettes", now="2026-11-27T12:00:00Z")
        def test_first(achievements_proxy):
            before = unlocked(achievements_proxy)
            locked = next(str(n) for n in range(1, 100) if str(n) not in before)
            assert unlock(achievements_proxy, locked) == 200
            after = unlocked(achievements_proxy)   # the same request again: a repeated-request finding
            assert after == before | {locked}
            note("first.json", {"pid": achievements_proxy.pid, "locked": locked, "before": sorted(before),
                                "codes": [v["code"] for v in achievements_proxy.violations(None)]})

        @pytest.mark.achievements(cassettes="example_cassettes", now="2026-11-27T12:00:00Z")
        def test_second(achievements_proxy):
            seen = unlocked(achievements_proxy)
            note("second.json", {"pid": achievements_proxy.pid, "unlocked": sorted(seen),
                                 "update": unlock(achievements_proxy, json.loads((HERE / "first.json").read_text())["locked"]),
                                 "codes": [v["code"] for v in achievements_proxy.violations(None)]})
    ''')
    done = run(root)
    assert done.returncode == 0, done.stdout + done.stderr
    first, second = noted(root, "first.json"), noted(root, "second.json")
    assert first["pid"] == second["pid"]
    assert "repeated-request" in first["codes"]
    assert second["unlocked"] == first["before"]  # the first test's unlock is not visible
    assert first["locked"] not in second["unlocked"]
    assert second["update"] == 200  # unlocked afresh, not 304 (already achieved)
    assert "repeated-request" not in second["codes"]


def test_marks_merge_over_achievements_config_the_narrowest_winning(tmp_path):
    root = project(tmp_path, '''
        pytestmark = pytest.mark.achievements(cassettes="example_cassettes", seed=1, now="2026-01-01T00:00:00Z")

        @pytest.fixture
        def achievements_config():
            return {"seed": 0, "now": "2020-01-01T00:00:00Z", "throttle": True, "strict_coverage": True,
                    "mode": "validate"}

        @pytest.mark.achievements(seed=2, strict_coverage=False)
        class TestGame:
            @pytest.mark.achievements(seed=3)
            def test_function_mark(self, achievements_proxy):
                note("function.json", achievements_proxy.options)

            def test_class_mark(self, achievements_proxy):
                note("class.json", achievements_proxy.options)

        def test_module_mark(achievements_proxy):
            note("module.json", achievements_proxy.options)
    ''')
    done = run(root, "--achievements-mode=replay")
    assert done.returncode == 0, done.stdout + done.stderr
    function, klass, module = (noted(root, f"{n}.json") for n in ("function", "class", "module"))
    assert [o["achievements_seed"] for o in (function, klass, module)] == [3, 2, 1]
    assert [o["achievements_strict_coverage"] for o in (function, klass, module)] == [False, False, True]
    assert {o["achievements_now"] for o in (function, klass, module)} == {"2026-01-01T00:00:00Z"}
    assert all(o["achievements_throttle"] is True for o in (function, klass, module))  # from achievements_config
    assert {o["achievements_mode"] for o in (function, klass, module)} == {"replay"}  # the flag wins
    assert {o["achievements_cassettes"] for o in (function, klass, module)} == {str(root / "example_cassettes")}


def test_an_unknown_mark_option_is_a_clear_error(tmp_path):
    root = project(tmp_path, '''
        @pytest.mark.achievements(casettes="example_cassettes")
        def test_typo(achievements_proxy):
            pass

        @pytest.mark.achievements(seed="seven")
        def test_bad_value(achievements_proxy):
            pass
    ''')
    done = run(root)
    assert done.returncode == 1, done.stdout
    assert "unknown achievements option 'casettes'; did you mean 'cassettes'?" in done.stdout
    assert "achievements_seed='seven' is not an integer" in done.stdout
    assert "Traceback" not in done.stdout


def test_a_broken_cassette_fails_the_test_with_its_file_and_line_first(tmp_path):
    root = project(tmp_path, """
        @pytest.mark.achievements(cassettes="broken")
        def test_broken(achievements_proxy):
            pass
    """, example=False)
    (root / "broken").mkdir()
    (root / "broken" / "a.yaml").write_text("xblreplay: 1\ndatasets:\n  - xuid: nope\n")
    done = run(root)
    assert done.returncode == 1, done.stdout
    first = next(line for line in done.stdout.splitlines() if line.startswith("achievements_proxy: "))
    assert first.startswith(f"achievements_proxy: xblreplay: achievements_cassettes: {root / 'broken' / 'a.yaml'}:3: ")
    assert "did not answer" not in done.stdout and "During handling" not in done.stdout


def test_fail_on_violations_fails_every_test_with_findings(tmp_path):
    tests = '''
        @pytest.mark.achievements(cassettes="example_cassettes")
        def test_bad_page_size(achievements_proxy):
            status, _ = call(achievements_proxy, f"/users/xuid({XUID})/achievements?maxItems=abc")
            assert status == 400

        @pytest.mark.achievements(cassettes="example_cassettes")
        def test_good_page_size(achievements_proxy):
            assert call(achievements_proxy, f"/users/xuid({XUID})/achievements?maxItems=2")[0] == 200
    '''
    lenient = run(project(tmp_path / "off", tests))
    assert lenient.returncode == 0, lenient.stdout
    strict = run(project(tmp_path / "on", tests, ini="achievements_fail_on_violations = true\n"))
    assert strict.returncode == 1, strict.stdout
    assert "FAILED test_game.py::test_bad_page_size" in strict.stdout
    assert "PASSED test_game.py::test_good_page_size" in strict.stdout
    assert "R8 invalid-integer" in strict.stdout and "achievements_fail_on_violations = true" in strict.stdout


def test_runs_under_xdist_without_port_clashes(tmp_path):
    pytest.importorskip("xdist", reason="pytest-xdist is not installed (pip install -e '.[test]')")
    root = project(tmp_path, '''
        @pytest.mark.achievements(cassettes="example_cassettes")
        @pytest.mark.parametrize("n", range(6))
        def test_listing(achievements_proxy, n):
            status, body = call(achievements_proxy, f"/users/xuid({XUID})/achievements?maxItems={n + 1}")
            assert status == 200 and len(json.loads(body)["achievements"]) == n + 1
            achievements_proxy.assert_clean()
            note(f"pid-{n}.json", [os.environ.get("PYTEST_XDIST_WORKER"), achievements_proxy.pid])
    ''')
    done = run(root, "-n", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "6 passed" in done.stdout
    by_worker: dict[str, set[int]] = {}
    for n in range(6):
        worker, pid = noted(root, f"pid-{n}.json")
        by_worker.setdefault(worker, set()).add(pid)
    assert set(by_worker) <= {"gw0", "gw1"}
    assert all(len(pids) == 1 for pids in by_worker.values())  # one proxy per worker, shared by its tests
    assert len(set.union(*by_worker.values())) == len(by_worker)  # and not shared between workers
