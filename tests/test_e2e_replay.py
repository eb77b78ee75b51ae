"""End-to-end: a real mitmdump in replay mode on the shipped example cassette."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from proxyharness import REPO, XUID, Mitmdump, SilentListener, page_all, read_log

pytestmark = pytest.mark.e2e

EXAMPLE = REPO / "cassettes" / "example"
STARFALL = 1717113201


def example_title(title_id: int, locale: str = "en-US") -> list[dict]:
    """The compact achievements of one title, straight from the cassette file."""
    doc = yaml.safe_load((EXAMPLE / "example.yaml").read_text())
    for ds in doc["datasets"]:
        if ds["shape"] == "V2" and ds["locale"] == locale:
            for title in ds["titles"]:
                if title["id"] == title_id:
                    return title["achievements"]
    raise LookupError(title_id)


def test_r5_pages_a_whole_title_through_real_mitmdump_without_any_upstream_connection(tmp_path):
    expected = example_title(STARFALL)
    log = tmp_path / "validation.jsonl"
    with SilentListener() as upstream:
        with Mitmdump(tmp_path, achievements_mode="replay", achievements_cassettes=EXAMPLE,
                      achievements_upstream=upstream.url, achievements_log=log,
                      termlog_verbosity="debug") as proxy:
            items, infos = page_all(proxy, f"titleId={STARFALL}&maxItems=5")
            by_unlock, _ = page_all(proxy, f"titleId={STARFALL}&maxItems=5&orderBy=UnlockTime")
        out = proxy.stop()
    assert upstream.accepted == 0
    assert "server connect" not in out
    # R1/R4 Unordered = dataset order; R5 pages of 5, tokens are decimal offsets.
    assert [a["id"] for a in items] == [str(a["id"]) for a in expected]
    assert [a["name"] for a in items] == [a["name"] for a in expected]
    assert [i["continuationToken"] for i in infos] == ["5", "10", "15", "20", None]
    assert {i["totalRecords"] for i in infos} == {len(expected)}
    # R4 UnlockTime: unlocked, most recent first, then locked in dataset order.
    unlocked = sorted((a for a in expected if "unlocked" in a), key=lambda a: a["unlocked"], reverse=True)
    locked = [a for a in expected if "unlocked" not in a]
    assert [a["id"] for a in by_unlock] == [str(a["id"]) for a in unlocked + locked]
    entries, summary = read_log(log)
    assert all(e["source"] == "dataset" for e in entries)
    # R7: every synthesised body passed the response schema (no violations logged).
    assert summary["violations"] == 0, entries


def test_r6_r8_replay_answers_locale_contract_and_errors(tmp_path):
    with Mitmdump(tmp_path, achievements_mode="replay", achievements_cassettes=EXAMPLE) as proxy:
        fr = proxy.request(f"/users/xuid({XUID})/achievements?titleId={STARFALL}&maxItems=3",
                           {"Accept-Language": "fr-CA, en;q=0.5"})
        v1 = proxy.request(f"/users/xuid({XUID})/achievements?titleId=1297290392", contract=None)
        odd = proxy.request(f"/users/xuid({XUID})/achievements?titleId={STARFALL}", contract="5")
        bad = proxy.request(f"/users/xuid({XUID})/achievements?maxItems=0")
        other_user = proxy.request("/users/xuid(2533274800000099)/achievements?titleId=1")
    french = example_title(STARFALL, "fr-FR")
    assert fr.status == 200
    assert [a["name"] for a in fr.json()["achievements"]] == [a["name"] for a in french[:3]]
    assert v1.status == 200 and isinstance(v1.json()["achievements"][0]["id"], int)
    assert "version" in v1.json()
    assert odd.status == 200 and odd.json()["achievements"] == []
    assert odd.json()["pagingInfo"] == {"continuationToken": None, "totalRecords": 0}
    assert "x-xblreplay-warning" in odd.headers
    assert bad.status == 400
    assert bad.count("content-type") == 1 and fr.count("content-type") == 1 and other_user.count("content-type") == 1
    assert json.loads(bad.headers["x-xblreplay-violations"])[0]["name"] == "maxItems"
    # The AUTH userhash is bound to XUID in the example cassette: another xuid is refused.
    assert other_user.status == 403


@pytest.mark.parametrize("text, line, reason", [
    ("xblreplay: 1\ndatasets:\n  - xuid: 1\n    titles: [\n", 5, "YAML syntax error"),
    ("xblreplay: 1\ndatasets:\n  - xuid: 1\n    shape: V9\n    titles: []\n", 4, "V9"),
    ("xblreplay: 2\n", 1, "unknown cassette format version"),
    ("xblreplay: 1\nbindings: !!python/object/apply:os.system [echo hi]\n", 2, "Python object tag"),
])
def test_broken_cassette_stops_the_proxy_with_file_line_and_reason(tmp_path, text, line, reason):
    cassettes = tmp_path / "cassettes"
    cassettes.mkdir()
    broken = cassettes / "broken.yaml"
    broken.write_text(text)
    proxy = Mitmdump(tmp_path, achievements_mode="replay", achievements_cassettes=cassettes)
    proxy.confdir.mkdir(parents=True)
    done = subprocess.run(proxy.argv(), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    out = done.stdout + done.stderr
    assert done.returncode != 0
    (message,) = [entry for entry in out.splitlines() if f"{broken}:" in entry]
    assert f"{broken}:{line}:" in message and reason in message, out
    assert "Traceback" not in out
    assert broken.read_text() == text  # never overwritten
