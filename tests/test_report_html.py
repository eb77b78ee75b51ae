"""The HTML traffic report (`xblreplay report --log FILE --html OUT`, python -m
xblreplay.report.cli_html): built from the validation log of a real mitmdump run (throttling, a
fault profile, invalid requests, a burst, a coverage gap), self-contained, counts as in the log,
opened in headless Chromium; a log still being written, bad input, and untrusted text escaped.

Expected counts are taken from the log itself (read here with json, line by line), never from the
report's own code."""

from __future__ import annotations

import html
import http.client
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from proxyharness import REPO, XUID, Mitmdump, env_ok, read_log

from xblreplay.model import Violation
from xblreplay.vlog import ValidationLog

CHROMIUM = Path("/usr/bin/chromium")
TITLE = 1234
BURST = 10  # the burst limit of the run's own rules (limits.yaml copied with this value)
CASSETTE = f"""xblreplay: 1
datasets:
- xuid: {XUID}
  shape: V2
  locale: en-US
  complete: false
  titles:
  - id: {TITLE}
    name: Sample Game
    scid: 00000000-0000-0000-0000-0000000004d2
    achievements:
    - {{id: 1, name: First Steps, gamerscore: 10}}
    - {{id: 2, name: Collector, gamerscore: 20, progress: [3, 5]}}
"""
PROFILE = """seed: 7
faults:
  - {endpoint: achievements, probability: 0.2, kind: 503, retry_after: 1}
  - {endpoint: achievements, probability: 0.1, kind: 500}
"""


def report(log: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    """The report's own entry point, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "xblreplay.report.cli_html", "--log", str(log), "--html", str(out),
                           *extra], capture_output=True, text=True, timeout=120, cwd=REPO)


def group_count(page: str, rule: str, code: str) -> int | None:
    """The count the page shows for a (rule, code) group."""
    m = re.search(rf"<code>{re.escape(rule)}</code> · <code>{re.escape(code)}</code> · <b>([\d,]+)</b>", page)
    return int(m.group(1).replace(",", "")) if m else None


def bar_count(page: str, label: str) -> int | None:
    """The count of a bar (statuses, sources) from its tooltip."""
    m = re.search(rf"<title>{re.escape(label)}: ([\d,]+)</title></rect>", page)
    return int(m.group(1).replace(",", "")) if m else None


def markup(page: str) -> str:
    """The page without its text nodes: tags and attributes only (where a fetch could hide)."""
    page = re.sub(r"<style>.*?</style>", "<style></style>", page, flags=re.S)
    return re.sub(r">[^<]*<", "><", page)


def assert_self_contained(page: str) -> None:
    tags = markup(page)
    assert "http://" not in tags and "https://" not in tags
    assert not re.search(r"\bsrc\s*=", tags)
    assert all(h.startswith("#") for h in re.findall(r"\bhref\s*=\s*[\"']?([^\"' >]*)", tags))
    assert "@import" not in page and "url(" not in page
    assert "<script" not in page.lower()


# --------------------------------------------------------------------------- a real proxy run

@pytest.fixture(scope="module")
def run(tmp_path_factory):
    if not env_ok():
        pytest.skip("mitmdump is not installed in the venv")
    tmp = tmp_path_factory.mktemp("report")
    rules = tmp / "rules"
    shutil.copytree(REPO / "rules", rules)
    limits = (rules / "limits.yaml").read_text()
    shipped = "burst:         {max_requests: 100,  period_s: 15}"
    assert shipped in limits
    (rules / "limits.yaml").write_text(limits.replace(shipped, f"burst: {{max_requests: {BURST}, period_s: 15}}"))
    (tmp / "cassettes").mkdir()
    (tmp / "cassettes" / "gap.yaml").write_text(CASSETTE)
    (tmp / "flaky.yaml").write_text(PROFILE)
    log = tmp / "validation.jsonl"
    statuses = []
    with Mitmdump(tmp, achievements_mode="replay", achievements_cassettes=tmp / "cassettes",
                  achievements_log=log, achievements_throttle=True, achievements_faults=tmp / "flaky.yaml",
                  achievements_rules=rules) as proxy:
        def get(path: str) -> None:
            try:
                statuses.append(proxy.request(path).status)
            except (http.client.HTTPException, OSError):
                statuses.append(None)
        for _ in range(3):
            get(f"/users/xuid({XUID})/achievements?titleId={TITLE}&maxItems=abc")
        get(f"/users/xuid({XUID})/achievements?titleId={TITLE}&orderBy=Sideways")
        for _ in range(BURST + 6):  # a burst past the run's burst limit
            get(f"/users/xuid({XUID})/achievements?titleId={TITLE}&maxItems=2")
    entries, summary = read_log(log)
    out = tmp / "report.html"
    done = report(log, out, "--rules", str(rules))
    return {"tmp": tmp, "log": log, "rules": rules, "entries": entries, "summary": summary, "out": out,
            "done": done, "statuses": statuses}


def test_the_run_had_what_the_report_is_to_show(run):
    """The premise: the run's log holds invalid requests, throttled answers, injected faults and
    a coverage gap."""
    codes = Counter(v.get("code") for e in run["entries"] for v in e["violations"])
    statuses = Counter(e["status"] for e in run["entries"])
    sources = Counter(e["source"] for e in run["entries"])
    assert codes["invalid-integer"] == 3 and codes["burst-limit"] >= 1 and codes["coverage"] >= 1, codes
    assert statuses[429] >= 1 and sources["throttle"] >= 1, statuses
    assert sources["fault"] >= 1, sources
    assert run["summary"] is not None


def test_report_of_a_real_run_shows_every_group_with_the_logs_counts(run):
    assert run["done"].returncode == 0, run["done"].stderr
    page = run["out"].read_text(encoding="utf-8")
    entries = run["entries"]
    groups = Counter((v["rule"], v.get("code", "")) for e in entries for v in e["violations"])
    assert groups
    for (rule, code), n in groups.items():
        assert group_count(page, rule, code) == n, (rule, code, n)
    for status, n in Counter(e["status"] for e in entries).items():
        assert bar_count(page, "no answer" if status is None else str(status)) == n, status
    for source, n in Counter(e["source"] for e in entries).items():
        assert bar_count(page, source) == n, source
    assert f"<b>{len(entries):,}</b><span>requests</span>" in page
    # The log's own summary line (written by the proxy at stop) agrees with the page.
    assert f"<b>{run['summary']['violations']:,}</b><span>violations</span>" in page
    # Example requests are shown as logged (the first one of the invalid-integer group).
    first = next(e for e in entries if any(v.get("code") == "invalid-integer" for v in e["violations"]))
    assert html.escape(first["url"]) in page
    # The burst is drawn on its caller's timeline against the run's own burst limit.
    assert f"xuid {XUID} · title {TITLE}" in page
    assert f"burst limit {BURST} / 15 s" in page and "<polyline" in page
    # The coverage gap names the (xuid, titleId) missing.
    assert re.search(rf"<td>{XUID}</td><td>{TITLE}</td>", page)
    # The log records latency: a histogram with percentiles.
    assert "p50 ≤" in page and 'class="lat"' in page
    assert_self_contained(page)


def test_the_default_rules_draw_the_shipped_burst_limit(run, tmp_path):
    out = tmp_path / "default.html"
    done = report(run["log"], out)
    assert done.returncode == 0, done.stderr
    page = out.read_text(encoding="utf-8")
    assert "burst limit 100 / 15 s" in page and f"burst limit {BURST} / 15 s" not in page


def test_the_report_opens_in_headless_chromium(run, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip("chromium is not installed (/usr/bin/chromium; Debian package 'chromium')")
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         f"--screenshot={shot}", "--window-size=1280,2000", run["out"].resolve().as_uri()],
        capture_output=True, text=True, timeout=120)
    assert shot.is_file(), done.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 30_000  # a blank 1280x2000 page compresses to a few KB


# ------------------------------------------------------------------------ logs written here

def write_log(path: Path, n: int, url: str = "https://achievements.xboxlive.com/users/xuid(1)/achievements?titleId=5",
              close: bool = True) -> None:
    """``n`` entries through the proxy's own log writer, one invalid-integer violation each."""
    log = ValidationLog(path)
    for i in range(n):
        log.write(method="GET", url=url, mode="replay", endpoint="achievements", status=400, source="error",
                  latency_ms=1.0 + i, time=1_800_000_000.0 + i,
                  violations=[Violation("R8", "query", "maxItems", "error", "maxItems must be an integer",
                                        "invalid-integer")])
    if close:
        log.close()
    else:
        log.flush()


def test_a_log_being_written_renders_without_its_partial_last_line(tmp_path):
    log = tmp_path / "live.jsonl"
    write_log(log, 4, close=False)
    whole = log.read_bytes()
    with open(log, "ab") as f:
        f.write(whole.splitlines(keepends=True)[0][:37])  # half a line, no newline yet
    out = tmp_path / "live.html"
    done = report(log, out)
    assert done.returncode == 0, done.stderr
    page = out.read_text(encoding="utf-8")
    assert group_count(page, "R8", "invalid-integer") == 4
    assert "<b>4</b><span>requests</span>" in page
    assert "still being written" in page and "no summary line" in page


@pytest.mark.parametrize("content", [b"hello, this is not a log\n", b"\x89PNG\r\n\x1a\n\x00\x00binary", b"[1, 2, 3]\n",
                                     b'{"some": "json"}\n'])
def test_a_file_that_is_not_a_log_is_one_line_and_exit_2(tmp_path, content):
    bad = tmp_path / "notes.txt"
    bad.write_bytes(content)
    out = tmp_path / "out.html"
    done = report(bad, out)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("xblreplay report: ") and "not a validation log" in done.stderr
    assert not out.exists()


@pytest.mark.parametrize("which", ["missing", "directory"])
def test_an_unreadable_log_is_one_line_and_exit_2(tmp_path, which):
    path = tmp_path / "nothing.jsonl"
    if which == "directory":
        path.mkdir()
    done = report(path, tmp_path / "out.html")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert "cannot read" in done.stderr and str(path) in done.stderr


def test_a_url_holding_a_script_is_shown_escaped(tmp_path):
    log = tmp_path / "hostile.jsonl"
    url = ("https://achievements.xboxlive.com/users/xuid(1)/achievements?titleId=5"
           "&x=<script>alert(1)</script>&y=\"><img src=x onerror=alert(2)>")
    write_log(log, 2, url=url)
    out = tmp_path / "hostile.html"
    done = report(log, out)
    assert done.returncode == 0, done.stderr
    page = out.read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "<script" not in page and "<img" not in page
    assert_self_contained(page)
