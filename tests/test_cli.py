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


def one_line_error(done: subprocess.CompletedProcess, *parts: str) -> None:
    """Bad input: exit status 2, no traceback, one line on stderr naming the problem."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("xblreplay "), done.stderr
    for part in parts:
        assert part in done.stderr, done.stderr


def test_bad_query_input_is_one_line_and_status_2(tmp_path):
    one_line_error(xblreplay("query", "--cassettes", str(EXAMPLE), "--now", "yesterday", URL), "--now", "'yesterday'")
    one_line_error(xblreplay("query", "--cassettes", str(tmp_path / "nope"), URL), str(tmp_path / "nope"),
                   "does not exist")
    one_line_error(xblreplay("query", "--cassettes", str(EXAMPLE), "--rules", str(tmp_path), URL),
                   "rules file not found")
    (tmp_path / "achievements.openapi.yaml").write_text("openapi: [3.1\n  broken: {\n")
    one_line_error(xblreplay("query", "--cassettes", str(EXAMPLE), "--rules", str(tmp_path), URL),
                   f"cannot load the rules in {tmp_path}")
    one_line_error(xblreplay("query", "--cassettes", str(EXAMPLE), "-H", "no colon", URL), "-H expects")
    one_line_error(xblreplay("query", "--cassettes", str(EXAMPLE), "https://[::1/achievements"), "cannot read the URL")


def test_bad_import_input_is_one_line_and_status_2(tmp_path):
    out = tmp_path / "out"
    one_line_error(xblreplay("import", str(tmp_path / "missing.flows"), "--cassettes", str(out)),
                   "missing.flows", "cannot read flow file")
    text = tmp_path / "notaflow.txt"
    text.write_text("just some text\n")
    one_line_error(xblreplay("import", str(text), "--cassettes", str(out)), "notaflow.txt",
                   "not a mitmproxy flow file")
    one_line_error(xblreplay("import", str(tmp_path), "--cassettes", str(out)), "cannot read flow file")
    one_line_error(xblreplay("import", str(text), "--cassettes", str(text)), "not a directory")
    assert not out.exists()


def test_lint_of_a_missing_path_is_status_2_and_problems_are_status_1(tmp_path):
    one_line_error(xblreplay("lint", str(tmp_path / "nope")), "no such file or directory")
    hand = tmp_path / "hand.yaml"
    hand.write_text("xblreplay: 1\ndatasets:\n  - xuid: 2533274800000001\n    titles:\n      - id: 1234\n"
                    "        achievements:\n          - {id: 1, unlocked: \"yesterday\", gamerscoer: 10}\n")
    done = xblreplay("lint", str(tmp_path))
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith(f"{hand}:7: ") for line in lines), lines
    assert "unknown key 'gamerscoer' (did you mean 'gamerscore'?)" in lines[0]
    assert "'yesterday' is not an ISO time" in lines[1]
    # The load refuses it at the same place: query (and the proxy) stop with FILE:LINE.
    query = xblreplay("query", "--cassettes", str(tmp_path), URL)
    one_line_error(query, f"{hand}:7:", "gamerscoer")
