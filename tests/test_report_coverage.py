"""`report` (coverage and staleness) and `show` (a dataset as a table), run as commands: on
cassettes recorded through a real mitmdump from a real local upstream, on the example cassette,
and on a broken cassette."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

import refservice
from proxyharness import REPO, XUID, Mitmdump, Upstream

from xblreplay import DEFAULT_RULES_DIR
from xblreplay.contract import Validator
from xblreplay.replay import Replayer, parse_now
from xblreplay.report import cli as report_cli
from xblreplay.report import show as show_module
from xblreplay.report.coverage import parse_age

BASE = f"/users/xuid({XUID})/achievements"
FILTERED, PAGED, CUT = 1111, 2222, 3333  # listed unlockedOnly / unfiltered, every page / first page only
TITLES = {FILTERED: 17, PAGED: 9, CUT: 12}
EXAMPLE = REPO / "cassettes" / "example"
EXAMPLE_XUID, EXAMPLE_TITLE = 2533274800000001, 1717113201


def command(*args: str) -> subprocess.CompletedProcess:
    """`python -m xblreplay.report.cli ARGS` with its output in a pipe (not a terminal)."""
    return subprocess.run([sys.executable, "-m", "xblreplay.report.cli", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=120)


def table(stdout: str, title: str) -> list[dict[str, str]]:
    """The rows of the plain table under ``# title``, read by the header's column offsets."""
    lines = stdout.splitlines()
    start = lines.index(f"# {title}") + 1
    header = lines[start]
    names = header.split()
    offsets = [header.index(f"{n} ") if i < len(names) - 1 else header.rindex(n) for i, n in enumerate(names)]
    rows = []
    for line in lines[start + 1:]:
        if not line.strip() or line.startswith(("#", "summary:")):
            break
        bounds = offsets[1:] + [len(line)]
        rows.append({n: line[a:b].strip() for n, a, b in zip(names, offsets, bounds)})
    return rows


def items_of(items: list[dict], title: int) -> list[dict]:
    return [i for i in items if i["titleAssociations"][0]["id"] == title]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Cassettes recorded through mitmdump (record mode) from the reference upstream: FILTERED
    listed with unlockedOnly=true, PAGED listed unfiltered through every page, CUT's first page
    only, and one achievement detail the upstream answers 404."""
    tmp = tmp_path_factory.mktemp("recorded")
    items = refservice.make_dataset(11, TITLES)
    listing = refservice.handler(items)

    def upstream(method, path, headers, body):
        if path.startswith(BASE + "/"):  # the detail endpoint: not known upstream
            return 404, {"Content-Type": "application/json"}, b'{"code":404,"description":"not found"}'
        return listing(method, path, headers, body)

    cassettes = tmp / "cassettes"
    with Upstream(upstream) as up:
        with Mitmdump(tmp, achievements_mode="record", achievements_upstream=up.url,
                      achievements_cassettes=cassettes) as proxy:
            for query, follow in ((f"titleId={FILTERED}&unlockedOnly=true&maxItems=4", True),
                                  (f"titleId={PAGED}&maxItems=4", True), (f"titleId={CUT}&maxItems=5", False)):
                token = None
                while True:
                    reply = proxy.request(f"{BASE}?{query}" + (f"&continuationToken={token}" if token else ""))
                    assert reply.status == 200, reply.body
                    token = reply.json()["pagingInfo"]["continuationToken"]
                    if token is None or not follow:
                        break
            scid = items_of(items, PAGED)[0]["serviceConfigId"]
            assert proxy.request(f"{BASE}/{scid}/999").status == 404
        out = proxy.stop()
    assert any(cassettes.rglob("*.yaml")), out
    return cassettes, items


@pytest.mark.e2e
def test_report_names_complete_and_partial_titles_with_the_reason(recorded):
    cassettes, items = recorded
    done = command("report", str(cassettes))
    assert done.returncode == 0, done.stderr
    rows = {r["title"]: r for r in table(done.stdout, "titles")}
    assert set(rows) == {str(FILTERED), str(PAGED), str(CUT), "(others)"}, done.stdout

    paged, filtered, cut = rows[str(PAGED)], rows[str(FILTERED)], rows[str(CUT)]
    assert paged["coverage"] == "complete" and paged["why"] == "-"
    assert int(paged["known"]) == len(items_of(items, PAGED))
    assert int(paged["unlocked"]) == sum(i["progressState"] == "Achieved" for i in items_of(items, PAGED))

    unlocked = [i for i in items_of(items, FILTERED) if i["progressState"] == "Achieved"]
    assert filtered["coverage"] == "partial" and filtered["why"] == "filtered: unlockedOnly=true"
    assert int(filtered["known"]) == int(filtered["unlocked"]) == len(unlocked)

    assert cut["coverage"] == "partial" and int(cut["known"]) == 5
    assert cut["why"] == f"truncated: pages hold 5 of {len(items_of(items, CUT))}"
    assert rows["(others)"]["coverage"] == "partial" and rows["(others)"]["why"].startswith("never listed")
    for row in (paged, filtered, cut):
        assert row["origin"] == "recorded" and row["oldest"] != "-" and row["oldest"] <= row["newest"]
        assert row["stale"] == "-"  # no --max-age: nothing is judged

    held = table(done.stdout, "exact interactions held for other paths")
    assert [(h["endpoint"], h["status"]) for h in held] == [("achievement-detail", "404")]
    assert held[0]["url"].endswith("/999")


@pytest.mark.e2e
def test_report_json_holds_the_same_facts_as_the_table(recorded):
    cassettes, _ = recorded
    shown = table(command("report", str(cassettes)).stdout, "titles")
    done = command("report", str(cassettes), "--json")
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout)
    as_table = [{
        "xuid": str(t["xuid"]), "shape": t["shape"], "locale": t["locale"],
        "title": "(others)" if t["title"] is None else str(t["title"]), "name": t["name"],
        "known": str(t["known"]), "unlocked": str(t["unlocked"]), "coverage": t["coverage"],
        "origin": t["origin"] or "-", "oldest": t["oldest"] or "-", "newest": t["newest"] or "-", "stale": "-",
        "why": "; ".join(f"{w['reason']}: {w['detail']}" for w in t["why"]) or "-",
    } for t in facts["titles"]]
    assert as_table == shown
    assert [(i["endpoint"], i["status"]) for i in facts["interactions"]] == [("achievement-detail", 404)]
    assert facts["stale"] == 0 and facts["max_age_seconds"] is None


@pytest.mark.e2e
def test_max_age_marks_stale_recordings_and_exits_1_only_when_some_are(recorded):
    cassettes, _ = recorded
    facts = json.loads(command("report", str(cassettes), "--json").stdout)
    newest = max(parse_now(t["newest"]) for t in facts["titles"] if t["newest"])

    far = command("report", str(cassettes), "--max-age", "30d", "--now", "2999-01-01T00:00:00Z")
    assert far.returncode == 1, far.stderr
    rows = {r["title"]: r for r in table(far.stdout, "titles")}
    assert {rows[str(t)]["stale"] for t in TITLES} == {"STALE"}
    assert rows["(others)"]["stale"] == "ok"  # nothing recorded, nothing old
    assert [h["stale"] for h in table(far.stdout, "exact interactions held for other paths")] == ["STALE"]
    far_json = json.loads(command("report", str(cassettes), "--max-age", "30d", "--now", "2999-01-01T00:00:00Z",
                                  "--json").stdout)
    assert far_json["stale"] == len(TITLES) + 1 and all(t["stale"] for t in far_json["titles"] if t["oldest"])

    soon = (newest + timedelta(hours=1, seconds=1)).isoformat().replace("+00:00", "Z")
    fresh = command("report", str(cassettes), "--max-age", "30d", "--now", soon)
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "STALE" not in fresh.stdout and {r["stale"] for r in table(fresh.stdout, "titles")} == {"ok"}
    # ages in other units: the recordings are just over an hour old (exactly the age is not stale)
    assert command("report", str(cassettes), "--max-age", "1h", "--now", soon).returncode == 1
    assert command("report", str(cassettes), "--max-age", "2h", "--now", soon).returncode == 0


def test_max_age_is_measured_against_the_injected_clock(tmp_path, capsys):
    path = tmp_path / "old.yaml"
    path.write_text(json.dumps({"xblreplay": 1, "interactions": [{
        "recorded_at": "2026-01-01T00:00:00Z",
        "request": {"method": "GET", "url": f"https://achievements.xboxlive.com/users/xuid({XUID})/history/titles"},
        "response": {"status": 503, "headers": {}, "body_text": "busy"}}]}))
    args = [str(tmp_path), "--max-age", "2w"]

    def run(now: datetime) -> int:
        parsed = _parser().parse_args(["report", *args])
        return report_cli.run_report(parsed, clock=lambda: now)

    assert run(datetime(2026, 1, 14, tzinfo=timezone.utc)) == 0
    assert run(datetime(2026, 1, 16, tzinfo=timezone.utc)) == 1
    out = capsys.readouterr().out
    assert "title-history" in out and "STALE" in out


def _parser():
    import argparse

    parser = argparse.ArgumentParser()
    report_cli.register(parser.add_subparsers(dest="command", required=True))
    return parser


@pytest.mark.parametrize("text, seconds", [("45s", 45), ("90m", 5400), ("12h", 43200), ("30d", 2592000),
                                           ("2w", 1209600), ("1.5h", 5400)])
def test_max_age_units(text, seconds):
    assert parse_age(text).total_seconds() == seconds


@pytest.mark.parametrize("bad", [["--max-age", "30"], ["--max-age", "3x"], ["--now", "yesterday"],
                                 ["--html", "out.html"]])
def test_bad_report_arguments_are_one_line_and_exit_2(bad):
    done = command("report", str(EXAMPLE), *bad)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr, done.stderr


def engine_items(xuid: int, title: int | None, contract: str, locale: str | None = None) -> list[dict]:
    """What replay answers for the listing, asked as a client would (every item in one page)."""
    replayer = Replayer.from_dir(Validator.from_rules(DEFAULT_RULES_DIR), EXAMPLE)
    headers = {"authorization": "XBL3.0 x=1;t", "x-xbl-contract-version": contract}
    if locale:
        headers["accept-language"] = locale
    query = f"titleId={title}&maxItems=1000" if title is not None else "maxItems=1000"
    _, answer = replayer.handle("GET", f"https://achievements.xboxlive.com/users/xuid({xuid})/achievements?{query}",
                                headers)
    assert answer.status == 200
    return answer.body["achievements"]


def test_show_prints_the_engines_answer_for_the_example_title():
    done = command("show", str(EXAMPLE), "--xuid", str(EXAMPLE_XUID), "--title", str(EXAMPLE_TITLE))
    assert done.returncode == 0, done.stderr
    rows = table(done.stdout, f"xuid {EXAMPLE_XUID} V2 en-US title {EXAMPLE_TITLE}")
    expected = engine_items(EXAMPLE_XUID, EXAMPLE_TITLE, "2")
    assert len(rows) == len(expected) > 20
    assert [(r["id"], r["name"], r["state"]) for r in rows] == \
        [(i["id"], i["name"], i["progressState"]) for i in expected]
    for r, i in zip(rows, expected):
        when = i["progression"]["timeUnlocked"]
        assert r["unlocked"] == ("-" if when.startswith("0001-") else when)
        assert r["gamerscore"] == next(w["value"] for w in i["rewards"] if w["type"] == "Gamerscore")
    by_id = {r["id"]: r for r in rows}
    assert (by_id["1"]["name"], by_id["1"]["state"]) == ("First Landing", "Achieved")
    assert (by_id["4"]["state"], by_id["4"]["progress"]) == ("InProgress", "3/5")


def test_show_follows_every_page_and_other_locales_and_shapes(monkeypatch, capsys):
    monkeypatch.setattr(show_module, "PAGE", 5)  # 23 items: five pages
    assert report_cli.main(["show", str(EXAMPLE), "--xuid", str(EXAMPLE_XUID), "--title", str(EXAMPLE_TITLE),
                            "--locale", "fr-FR"]) == 0
    rows = table(capsys.readouterr().out, f"xuid {EXAMPLE_XUID} V2 fr-FR title {EXAMPLE_TITLE}")
    assert [r["name"] for r in rows] == [i["name"] for i in engine_items(EXAMPLE_XUID, EXAMPLE_TITLE, "2", "fr-FR")]

    assert report_cli.main(["show", str(EXAMPLE), "--xuid", str(EXAMPLE_XUID), "--shape", "v1"]) == 0
    rows = table(capsys.readouterr().out, f"xuid {EXAMPLE_XUID} V1 en-US (every title)")
    expected = engine_items(EXAMPLE_XUID, None, "1")
    assert [(r["id"], r["name"], r["state"] == "Achieved") for r in rows] == \
        [(str(i["id"]), i["name"], i["unlocked"]) for i in expected]


def test_show_of_an_unknown_user_says_why_in_one_line():
    done = command("show", str(EXAMPLE), "--xuid", "42")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().splitlines() == ["xblreplay show: R9: no V2 dataset is recorded for xuid 42"]


@pytest.mark.parametrize("subcommand", [["report"], ["report", "--json"], ["show", "--xuid", "1"]])
def test_a_broken_cassette_is_one_line_with_file_and_line_and_exit_2(tmp_path, subcommand):
    good = (EXAMPLE / "example.yaml").read_text()
    (tmp_path / "good.yaml").write_text(good)
    broken = tmp_path / "sub" / "broken.yaml"
    broken.parent.mkdir()
    broken.write_text("xblreplay: 1\ndatasets:\n  - xuid: [unclosed\n")
    done = command(subcommand[0], str(tmp_path), *subcommand[1:])
    assert done.returncode == 2 and done.stdout == "", done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"{broken}:" in lines[0] and lines[0].startswith(f"xblreplay {subcommand[0]}: cassette ")
    line = int(lines[0].split(f"{broken}:")[1].split(":")[0])
    assert 3 <= line <= 4


def test_report_with_log_writes_the_html_report_of_a_validation_log(tmp_path):
    from xblreplay.model import Violation
    from xblreplay.vlog import ValidationLog

    log = ValidationLog(tmp_path / "run.jsonl")
    for i in range(3):
        log.write(method="GET", url=f"https://achievements.xboxlive.com/users/xuid({XUID})/achievements?maxItems=x",
                  mode="replay", endpoint="achievements", status=400, source="error", latency_ms=1.0,
                  time=1_800_000_000.0 + i,
                  violations=[Violation("R8", "query", "maxItems", "error", "maxItems must be an integer",
                                        "invalid-integer")])
    log.close()
    out = tmp_path / "run.html"
    done = command("report", str(EXAMPLE), "--log", str(tmp_path / "run.jsonl"), "--html", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and "# titles" not in done.stdout  # the HTML report instead of the table
    assert "invalid-integer" in out.read_text(encoding="utf-8")

    missing = command("report", "--log", str(tmp_path / "none.jsonl"), "--html", str(out))
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1, missing.stderr


def test_a_hand_written_title_marked_incomplete_is_partial_and_never_stale(tmp_path):
    doc = json.loads(json.dumps({"xblreplay": 1, "datasets": [{
        "xuid": 7, "complete": False, "titles": [{"id": 5, "name": "Draft", "achievements": [
            {"id": 1, "name": "One", "gamerscore": 5, "unlocked": "2020-01-01T00:00:00Z"}, {"id": 2, "name": "Two"}]}]}]}))
    (tmp_path / "draft.yaml").write_text(json.dumps(doc))
    done = command("report", str(tmp_path), "--json", "--max-age", "1d", "--now", "2999-01-01T00:00:00Z")
    assert done.returncode == 0, done.stderr
    rows = {t["title"]: t for t in json.loads(done.stdout)["titles"]}
    assert rows[5]["why"] == [{"reason": "declared partial", "detail": "hand-written with complete: false"}]
    assert (rows[5]["known"], rows[5]["unlocked"], rows[5]["origin"], rows[5]["stale"]) == (2, 1, "hand-written", False)
    assert rows[5]["files"] == [str(tmp_path / "draft.yaml")]
    assert [w["reason"] for w in rows[None]["why"]] == ["never listed"]
