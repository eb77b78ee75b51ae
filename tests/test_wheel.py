"""The built wheel is self-contained: installed outside the checkout, `xblreplay lint`, `query` and
`run` work from another directory, with the rules and the mitmdump entry script it carries.

The wheel is built from a copy of the working tree (pyproject.toml, README.md, addons/, rules/) and
installed without dependencies into a fresh virtualenv. The dependencies (mitmproxy, PyYAML,
jsonschema) are borrowed from the project's virtualenv through a `.pth` line, which only appends
that directory to sys.path: its own `.pth` files, the editable install of xblreplay among them, are
not processed, so `xblreplay` can only come from the wheel. A `mitmdump` launcher in the fresh
virtualenv's bin/ stands in for the console script pip would install with mitmproxy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import socket
import sysconfig
import time
from pathlib import Path

import pytest
import yaml

from proxyharness import REPO, XUID, Mitmdump

pytestmark = pytest.mark.e2e

LISTING = f"/users/xuid({XUID})/achievements?titleId=1829000002&unlockedOnly=true"


def run(argv: list, cwd: Path, env: dict, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for name in ("addons", "rules"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", root / "dist", src], root, env)
    assert built.returncode == 0, built.stderr
    (wheel,) = (root / "dist").glob("xblreplay-*.whl")

    venv = root / "venv"
    made = run([sys.executable, "-m", "venv", "--without-pip", venv], root, env)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    done = run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel],
               root, env)
    assert done.returncode == 0, done.stderr
    purelib = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], root, env)
    site = Path(purelib.stdout.strip())
    (site / "zz_project_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    mitmdump = venv / "bin" / "mitmdump"
    mitmdump.write_text(f"#!{python}\nimport sys\nfrom mitmproxy.tools.main import mitmdump\nsys.exit(mitmdump())\n")
    mitmdump.chmod(0o755)

    work = root / "elsewhere"
    shutil.copytree(REPO / "cassettes" / "example", work / "cassettes")
    env["PATH"] = os.pathsep.join([str(venv / "bin"), os.defpath])
    env["XBLREPLAY_CACHE_DIR"] = str(root / "cache")
    return {"venv": venv, "python": python, "site": site, "work": work, "env": env, "wheel": wheel}


def test_wheel_carries_the_rules_and_the_entry_script(installed):
    import zipfile

    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    expected = {f"xblreplay/rules/{p.relative_to(REPO / 'rules').as_posix()}"
                for p in (REPO / "rules").rglob("*") if p.is_file() and p.suffix in (".yaml", ".json")}
    assert expected and expected <= names
    assert "xblreplay/mitm/entry.py" in names
    # every module of the package, sub-packages included (a package missing from pyproject's
    # list would leave the installed tool unable to import it)
    package = REPO / "addons" / "xblreplay"
    modules = {f"xblreplay/{p.relative_to(package).as_posix()}" for p in package.rglob("*.py")}
    assert modules and modules <= names, sorted(modules - names)


def test_installed_package_is_imported_from_the_fresh_venv(installed):
    probe = ("import json, sys, xblreplay, xblreplay.cli, xblreplay.cassette as c\n"
             "print(json.dumps([xblreplay.__file__, str(xblreplay.rules_dir()), str(xblreplay.cli.ENTRY_SCRIPT),"
             " str(c.SCHEMA_PATH), sys.path]))")
    done = run([installed["python"], "-c", probe], installed["work"], installed["env"])
    assert done.returncode == 0, done.stderr
    module, rules, entry, schema, path = json.loads(done.stdout)
    package = installed["site"] / "xblreplay"
    assert Path(module) == package / "__init__.py"
    assert Path(rules) == package / "rules" and Path(schema) == package / "rules" / "cassette.schema.json"
    assert Path(entry) == package / "mitm" / "entry.py" and Path(entry).is_file()
    assert not any(str(REPO) in p for p in path if "site-packages" not in p), path


def test_installed_lint_and_query_work_from_another_directory(installed):
    xblreplay, work, env = installed["venv"] / "bin" / "xblreplay", installed["work"], installed["env"]
    lint = run([xblreplay, "lint", "cassettes"], work, env)
    assert lint.returncode == 0 and "cassettes OK" in lint.stdout, (lint.stdout, lint.stderr)
    query = run([xblreplay, "query", "--cassettes", "cassettes", "-H", "x-xbl-contract-version: 2",
                 f"https://achievements.xboxlive.com{LISTING}"], work, env)
    assert query.returncode == 0 and query.stdout.startswith("HTTP 200"), (query.stdout, query.stderr)
    body = json.loads(query.stdout[query.stdout.index("\n{") + 1:])
    assert body["achievements"] and all(a["progressState"] == "Achieved" for a in body["achievements"])


def test_installed_run_serves_https_from_the_dataset(installed, tmp_path):
    work, env = installed["work"], installed["env"]
    proxy = Mitmdump(tmp_path)
    proxy.confdir.mkdir(parents=True)
    argv = [installed["venv"] / "bin" / "xblreplay", "run", "--listen-host", "127.0.0.1",
            "--listen-port", str(proxy.port), "--set", f"confdir={proxy.confdir}",
            "--set", f"achievements_cassettes={work / 'cassettes'}"]
    proxy._out = open(proxy.output, "wb")
    proxy.proc = subprocess.Popen([str(a) for a in argv], cwd=work, env=env, stdout=proxy._out,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proxy.proc.poll() is None, proxy.text()
            assert time.monotonic() < deadline, proxy.text()
            try:
                with socket.create_connection(("127.0.0.1", proxy.port), timeout=0.2):
                    if proxy.ca.exists():
                        break
            except OSError:
                time.sleep(0.05)
        reply = proxy.request(LISTING)
    finally:
        out = proxy.stop()
    assert reply.status == 200, (reply.body, out)
    doc = yaml.safe_load((work / "cassettes" / "example.yaml").read_text())
    harbor = next(t for d in doc["datasets"] if d["shape"] == "V2" and d["locale"] == "en-US"
                  for t in d["titles"] if t["id"] == 1829000002)
    unlocked = [str(a["id"]) for a in harbor["achievements"] if "unlocked" in a]
    assert unlocked and [a["id"] for a in reply.json()["achievements"]] == unlocked
    assert "Traceback" not in out, out


def test_the_installed_plugin_replays_in_a_test_project_outside_the_checkout(installed, tmp_path):
    """A game's test suite with the wheel installed: pytest finds the plugin through the wheel's
    entry point, and the fixture starts the wheel's proxy, which answers over HTTPS."""
    from test_pytest_plugin import project

    root = project(tmp_path, '''
        import xblreplay

        @pytest.mark.achievements(cassettes="example_cassettes")
        def test_listing(achievements_proxy):
            status, body = call(achievements_proxy, f"/users/xuid({XUID})/achievements?titleId=1829000002")
            assert status == 200, body
            note("seen.json", {"package": xblreplay.__file__, "items": len(json.loads(body)["achievements"]),
                               "log": achievements_proxy.log()})
            achievements_proxy.assert_clean()
    ''')
    done = run([installed["python"], "-m", "pytest", "-p", "no:cacheprovider", "-q"], root, installed["env"], timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    seen = json.loads((root / "seen.json").read_text())
    assert Path(seen["package"]) == installed["site"] / "xblreplay" / "__init__.py"
    assert seen["items"] == 8 and [e["source"] for e in seen["log"]] == ["dataset"]
