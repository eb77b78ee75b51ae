"""`xblreplay generate` as a real subprocess: the same arguments give the same bytes, the output
passes `xblreplay lint`, `xblreplay query` answers V1 and V2 pages from it that pass the strict
response schema, and the Python API writes the very bytes the CLI writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from proxyharness import REPO

from xblreplay import DEFAULT_RULES_DIR, synth
from xblreplay.contract import Validator

BIG = ["--users", "3", "--titles", "200", "--achievements", "10000"]


def xblreplay(*args: str, hashseed: str = "0") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "addons"), "PYTHONHASHSEED": hashseed}
    return subprocess.run([sys.executable, "-m", "xblreplay.cli", *args], capture_output=True,
                          text=True, timeout=300, env=env, cwd=REPO)


def tree(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` by its relative path, with its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def generated(out: Path, *args: str, hashseed: str = "0") -> Path:
    done = xblreplay("generate", "--out", str(out), *args, hashseed=hashseed)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no progress bar when stderr is not a terminal
    return out


def document(path: Path) -> dict:
    """A cassette of the JSON form, read as plain JSON (after its comment line)."""
    text = path.read_text(encoding="utf-8")
    return json.loads(text[text.index("\n{") + 1:])


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    return generated(tmp_path_factory.mktemp("synth") / "big", *BIG, "--seed", "1")


def test_the_same_arguments_twice_give_byte_identical_trees_and_another_seed_does_not(big, tmp_path):
    # Another process with another hash seed: nothing may depend on hash or dict/set ordering.
    again = tree(generated(tmp_path / "again", *BIG, "--seed", "1", hashseed="12345"))
    first = tree(big)
    assert sorted(first) == ["2533274900000001/en-US.yaml", "2533274900000002/en-US.yaml",
                             "2533274900000003/en-US.yaml"]
    assert again == first
    other = tree(generated(tmp_path / "other", *BIG, "--seed", "2"))
    assert sorted(other) == sorted(first)
    assert all(other[name] != first[name] for name in first)


def test_a_large_output_is_in_the_json_form_and_passes_lint(big):
    for data in tree(big).values():
        assert data.startswith(b"# xblreplay cassette, format v1, in YAML's JSON subset")
    done = xblreplay("lint", str(big))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "cassettes OK"


def test_a_small_output_is_block_yaml_and_passes_lint(tmp_path):
    out = generated(tmp_path / "small", "--users", "2", "--titles", "6", "--achievements", "120",
                    "--locales", "en-US,de-DE")
    files = tree(out)
    assert len(files) == 4
    for data in files.values():
        assert data.startswith(b"# xblreplay synthetic cassette") and b"\nxblreplay: 1\ndatasets:\n" in data
    assert xblreplay("lint", str(out)).returncode == 0
    forced = tree(generated(tmp_path / "forced", "--users", "2", "--titles", "6", "--achievements", "120",
                            "--locales", "en-US,de-DE", "--form", "json"))
    assert all(data.startswith(b"# xblreplay cassette, format v1") for data in forced.values())
    assert xblreplay("lint", str(tmp_path / "forced")).returncode == 0


def _query(cassettes: Path, contract: str, url: str) -> dict:
    done = xblreplay("query", "--cassettes", str(cassettes), "-H", f"x-xbl-contract-version: {contract}",
                     "-H", "accept-language: en-US", url)
    assert done.returncode == 0, done.stdout + done.stderr
    head, body = done.stdout[:done.stdout.index("\n{")], done.stdout[done.stdout.index("\n{") + 1:]
    assert head.startswith("HTTP 200  (dataset)")
    assert "# error" not in head and "# warning" not in head, head
    return json.loads(body)


def test_query_answers_v1_and_v2_pages_that_pass_the_strict_schema(big):
    doc = document(big / "2533274900000002" / "en-US.yaml")
    v2, v1 = (next(d for d in doc["datasets"] if d["shape"] == shape) for shape in ("V2", "V1"))
    validator = Validator.from_rules(DEFAULT_RULES_DIR)
    base = "https://achievements.xboxlive.com/users/xuid(2533274900000002)/achievements"
    for contract, dataset, schema in (("2", v2, "AchievementsResponseV2"), ("4", v2, "AchievementsResponseV2"),
                                      ("1", v1, "AchievementsResponseV1"), ("3", v1, "AchievementsResponseV1")):
        title = dataset["titles"][1]
        body = _query(big, contract, f"{base}?titleId={title['id']}&maxItems=10")
        assert list(validator.schema(schema).iter_errors(body)) == []
        assert body["pagingInfo"]["totalRecords"] == len(title["achievements"])
        assert [int(a["id"]) for a in body["achievements"]] == [a["id"] for a in title["achievements"][:10]]
        assert all(("rarity" in a) == (contract in ("3", "4")) for a in body["achievements"])
        # A page of the whole listing, every title mixed, ordered by unlock time.
        page = _query(big, contract, f"{base}?maxItems=100&orderBy=UnlockTime")
        assert list(validator.schema(schema).iter_errors(page)) == []
        assert page["pagingInfo"]["totalRecords"] == sum(len(t["achievements"]) for t in dataset["titles"])


def test_the_python_api_writes_the_bytes_the_cli_writes(big, tmp_path):
    report = synth.generate(synth.Spec(users=3, titles=200, achievements=10_000, seed=1), tmp_path / "api")
    assert tree(tmp_path / "api") == tree(big)
    assert report.json_form and report.entries == 30_000 and len(report.files) == 3
    knobs = ["--users", "2", "--titles", "7", "--achievements", "150", "--locales", "fr-FR,ja-JP",
             "--unlocked", "0.7", "--challenges", "0.3", "--secret", "0.2", "--v1-titles", "0.4",
             "--seed", "9", "--now", "2027-03-04T05:06:07Z"]
    cli = tree(generated(tmp_path / "cli", *knobs))
    spec = synth.Spec(users=2, titles=7, achievements=150, locales=("fr-FR", "ja-JP"), unlocked=0.7,
                      challenges=0.3, secret=0.2, v1_titles=0.4, seed=9, now="2027-03-04T05:06:07Z")
    synth.generate(spec, tmp_path / "api-small")
    assert tree(tmp_path / "api-small") == cli
    assert not spec.json_form


def test_a_forced_progress_bar_goes_to_stderr_and_never_into_the_files(tmp_path):
    args = ["--users", "2", "--titles", "5", "--achievements", "100"]
    done = xblreplay("generate", "--out", str(tmp_path / "shown"), *args, "--progress")
    assert done.returncode == 0, done.stderr
    # rich's bar: the 100 definitions of the catalogue, then 2 users x 100 entries.
    assert "300/300" in done.stderr and "━" in done.stderr and "done" in done.stderr
    assert tree(tmp_path / "shown") == tree(generated(tmp_path / "quiet", *args))


@pytest.mark.parametrize("args, message", [
    (["--unlocked", "1.5"], "unlocked must be a fraction from 0 to 1, got 1.5"),
    (["--titles", "50", "--achievements", "10"], "achievements (10) must be at least titles (50)"),
    (["--locales", "en-US,not a locale"], "locale 'not a locale' is not a language tag"),
    (["--now", "yesterday"], "now must be an ISO time"),
    (["--users", "0"], "users must be an integer from 1"),
])
def test_a_bad_knob_is_one_line_and_writes_nothing(tmp_path, args, message):
    done = xblreplay("generate", "--out", str(tmp_path / "out"), *args)
    assert done.returncode == 2
    assert done.stderr.startswith("xblreplay generate: ") and message in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no staging directory left behind


def test_an_output_directory_with_files_in_it_is_refused_untouched(tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "mine.yaml").write_text("xblreplay: 1\n")
    done = xblreplay("generate", "--out", str(out))
    assert done.returncode == 2 and "already exists and is not an empty directory" in done.stderr
    assert tree(out) == {"mine.yaml": b"xblreplay: 1\n"}
    empty = tmp_path / "empty"
    empty.mkdir()
    assert xblreplay("generate", "--out", str(empty)).returncode == 0
    assert sorted(tree(empty)) == ["2533274900000001/en-US.yaml"]


def test_help_says_how_achievements_are_spread():
    done = xblreplay("generate", "--help")
    text = " ".join(done.stdout.split())
    assert "--achievements K is the size of each user's full listing" in text
    assert "30,000 entries per locale" in text and f"{synth.JSON_FORM_ENTRIES:,} entries" in text
