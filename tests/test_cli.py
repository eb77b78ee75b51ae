"""The `xblreplay` console script: query, lint, import (run as real subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml
from mitmproxy import io
from mitmproxy.test import tflow, tutils

from proxyharness import REPO, XUID

EXAMPLE = REPO / "cassettes" / "example"
URL = f"https://achievements.xboxlive.com/users/xuid({XUID})/achievements"


def xblreplay(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "addons")}
    return subprocess.run([sys.executable, "-m", "xblreplay.cli", *args], capture_output=True,
                          text=True, timeout=120, env=env, cwd=REPO)


def json_part(stdout: str) -> dict:
    return json.loads(stdout[stdout.index("\n{") + 1:])


def test_query_answers_offline_from_the_example_cassette():
    done = xblreplay("query", "--cassettes", str(EXAMPLE), "-H", "x-xbl-contract-version: 2",
                     f"{URL}?titleId=1829000002&unlockedOnly=true")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("HTTP 200")
    doc = yaml.safe_load((EXAMPLE / "example.yaml").read_text())
    harbor = next(t for d in doc["datasets"] if d["shape"] == "V2" and d["locale"] == "en-US"
                  for t in d["titles"] if t["id"] == 1829000002)
    unlocked = [str(a["id"]) for a in harbor["achievements"] if "unlocked" in a]
    body = json_part(done.stdout)
    assert [a["id"] for a in body["achievements"]] == unlocked
    assert body["pagingInfo"] == {"continuationToken": None, "totalRecords": len(unlocked)}


def test_query_reports_r8_and_r2_diagnostics():
    bad = xblreplay("query", "--cassettes", str(EXAMPLE), f"{URL}?orderBy=Sideways")
    assert bad.returncode == 1 and bad.stdout.startswith("HTTP 400")
    assert "R8 query:orderBy" in bad.stdout
    unknown = xblreplay("query", "--cassettes", str(EXAMPLE), "--strict-coverage",
                        "-H", "x-xbl-contract-version: 2", f"{URL}?titleId=4242")
    assert unknown.returncode == 1 and unknown.stdout.startswith("HTTP 404")
    assert "4242" in unknown.stdout


def test_lint_reports_file_and_line_and_never_touches_the_file(tmp_path):
    good = xblreplay("lint", str(EXAMPLE))
    assert good.returncode == 0, good.stdout
    broken = tmp_path / "broken.yaml"
    text = "xblreplay: 1\ninteractions:\n  - request: {method: GET}\n    response: !!python/object:os.system {}\n"
    broken.write_text(text)
    done = xblreplay("lint", str(tmp_path))
    assert done.returncode == 1
    assert f"{broken}:4:" in done.stdout and "Python object tag" in done.stdout
    assert broken.read_text() == text
    query = xblreplay("query", "--cassettes", str(tmp_path), f"{URL}?titleId=1")
    assert query.returncode == 2 and f"{broken}:4:" in query.stderr


def test_import_turns_a_flow_file_into_redacted_cassettes(tmp_path):
    token = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXBheWxvYWQtZm9yLXRlc3Q.c2lnbmF0dXJlLXZhbHVl"
    page = json.loads(xblreplay("query", "--cassettes", str(EXAMPLE), "-H", "x-xbl-contract-version: 2",
                                f"{URL}?titleId=1829000002").stdout.split("\n", 1)[1])
    req = tutils.treq(host="achievements.xboxlive.com", port=443,
                      path=f"/users/xuid({XUID})/achievements?titleId=1829000002".encode())
    req.scheme = "https"
    req.headers.clear()
    req.headers["Host"] = "achievements.xboxlive.com"
    req.headers["Authorization"] = f"XBL3.0 x=3141592653589793238;{token}"
    req.headers["Signature"] = "AAAAAQHa" + "Zm9vYmFyYmF6" * 6
    req.headers["x-xbl-contract-version"] = "2"
    resp = tutils.tresp(status_code=200, content=json.dumps(page).encode())
    resp.headers.clear()
    resp.headers["Content-Type"] = "application/json"
    flows = tmp_path / "capture.flows"
    with open(flows, "wb") as f:
        io.FlowWriter(f).add(tflow.tflow(req=req, resp=resp))
    out = tmp_path / "imported"
    done = xblreplay("import", str(flows), "--cassettes", str(out))
    assert done.returncode == 0, done.stderr
    files = [p for p in out.rglob("*.yaml")]
    assert files
    blob = b"".join(p.read_bytes() for p in files)
    assert token.encode() not in blob and b"Zm9vYmFyYmF6" not in blob
    # The imported recording replays: a query never recorded (other order, page size).
    again = xblreplay("query", "--cassettes", str(out), "-H", "x-xbl-contract-version: 2",
                      f"{URL}?titleId=1829000002&maxItems=2&skipItems=1")
    assert again.returncode == 0, again.stdout
    body = json_part(again.stdout)
    assert [a["id"] for a in body["achievements"]] == [a["id"] for a in page["achievements"][1:3]]
