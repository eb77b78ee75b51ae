"""Cassette format v1: loading, errors located by file and line, directory loading, lint."""

from __future__ import annotations

import os
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xblreplay import cassette
from xblreplay.cassette import CassetteError
from xblreplay.cassette import load as cassette_load
from xblreplay.cassette import schema as cassette_schema

VALID = textwrap.dedent(
    """\
    xblreplay: 1
    recorded_at: "2026-11-27T12:00:00Z"
    bindings:
      - userhash_sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        xuid: 2533274800000001
    interactions:
      - recorded_at: 2026-11-27T12:00:00Z
        request:
          method: GET
          url: "https://achievements.xboxlive.com/users/xuid(2533274800000001)/achievements?titleId=1&maxItems=5"
          headers: {x-xbl-contract-version: "2", accept-language: en-US}
        response:
          status: 200
          headers: {content-type: application/json}
          body: {achievements: [], pagingInfo: {continuationToken: null, totalRecords: 0}}
          latency_ms: 85.2
    datasets:
      - xuid: "2533274800000001"
        shape: V2
        locale: en-US
        complete: true
        titles:
          - id: 1234
            name: Sample Game
            scid: 00000000-0000-0000-0000-0000000004d2
            achievements:
              - {id: 1, name: First Steps, gamerscore: 10, unlocked: 2024-01-02T03:04:05.0000000Z}
              - {id: 2, name: Collector, gamerscore: 20, progress: [3, 5]}
    """
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_valid_cassette_loads_with_times_as_strings(tmp_path):
    doc = cassette.load_file(write(tmp_path / "a.yaml", VALID))
    assert doc["interactions"][0]["response"]["status"] == 200
    assert doc["interactions"][0]["recorded_at"] == "2026-11-27T12:00:00Z"  # unquoted time stays a string
    title = doc["datasets"][0]["titles"][0]
    assert title["achievements"][0]["unlocked"] == "2024-01-02T03:04:05.0000000Z"  # 7 fraction digits kept
    assert title["achievements"][1]["progress"] == [3, 5]


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line containing needle (computed from the test input)."""
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def error_of(path: Path) -> CassetteError:
    with pytest.raises(CassetteError) as info:
        cassette.load_file(path)
    assert str(info.value) == f"{path}:{info.value.line}: {info.value.reason}"
    return info.value


@pytest.mark.parametrize(
    ("mutation", "needle", "reason"),
    [
        (("      status: 200", "      status: 200\n      stauts: 201"), "stauts",
         "unknown key 'stauts' (did you mean 'status'?)"),
        (("xblreplay: 1", "xblreplay: 1\nextra: true"), "extra", "unknown key 'extra'"),
        (("      status: 200", "      status: ok"), "status: ok", "'ok' is not of type 'integer'"),
        (("    shape: V2", "    shape: V3"), "shape: V3", "is not one of"),
        (("- id: 1234", "- id: -5"), "id: -5", "minimum"),
        (("- {id: 2, name", "- {ident: 2, name"), "ident: 2", "unknown key 'ident' (did you mean 'id'?)"),
        (("- {id: 2, name", "- {name"), "- {name: Collector", "has no 'id'"),
        (("latency_ms: 85.2", "latency_ms: -1"), "latency_ms", "minimum"),
        (("  - userhash_sha256", "  - userhash_sha25"), "userhash_sha25", "userhash_sha25"),
    ],
)
def test_schema_violation_reports_line_of_offending_node(tmp_path, mutation, needle, reason):
    text = VALID.replace(*mutation)
    assert text != VALID
    err = error_of(write(tmp_path / "bad.yaml", text))
    assert err.line == line_of(text, needle)
    assert reason in err.reason


def test_achievement_check_agrees_with_full_schema(tmp_path):
    """The fast achievement check refuses exactly the entries the schema's rules refuse."""
    text = VALID.replace("- {id: 2, name", "- [not, a, mapping]\n          - {ident: 2, name")
    doc = cassette_load._parse(tmp_path / "x.yaml", text.encode())
    full = {tuple(e.absolute_path)[:6] for e in cassette_schema._validators()[0].iter_errors(doc)}
    fast = {tuple(p)[:6] for p, _ in cassette_schema._achievement_errors(doc)}
    assert full == fast and len(fast) == 2


# --- compact achievement entries ----------------------------------------------------------------

COMPACT = textwrap.dedent(
    """\
    xblreplay: 1
    datasets:
      - xuid: 2533274800000001
        shape: {shape}
        titles:
          - id: 1234
            achievements:
              - {{id: 7, name: Fine, gamerscore: 5}}
              - {entry}
    """
)


def compact(tmp_path: Path, entry: str, shape: str = "V2") -> tuple[Path, str]:
    text = COMPACT.format(shape=shape, entry=entry)
    return write(tmp_path / "hand.yaml", text), text


def test_hand_written_typo_and_bad_time_are_found_by_lint_and_load(tmp_path):
    path, text = compact(tmp_path, '{id: 1, unlocked: "yesterday", gamerscoer: 10}')
    line = line_of(text, "gamerscoer")
    errors = cassette.lint(path)
    assert [(e.file, e.line) for e in errors] == [(str(path), line)] * 2
    typo, time = (e.reason for e in errors)
    assert "unknown key 'gamerscoer' (did you mean 'gamerscore'?)" in typo
    assert "'yesterday' is not an ISO time" in time and "unlocked" in time
    err = error_of(path)  # load stops at the same place, with FILE:LINE
    assert err.line == line and "gamerscoer" in err.reason and "+1 more" in err.reason


@pytest.mark.parametrize(
    ("entry", "key", "reason"),
    [
        ("{id: 1, nmae: A}", "nmae", "unknown key 'nmae' (did you mean 'name'?)"),
        ("{name: A}", "", "has no 'id'"),
        ("{id: -1}", "id", "is not a non-negative integer"),
        ("{id: 1.0}", "id", "is not a non-negative integer"),
        ("{id: one}", "id", "is not a non-negative integer"),
        ("{id: 1, name: 5}", "name", "expected a string, not an integer 5"),
        ("{id: 1, gamerscore: ten}", "gamerscore", "expected an integer"),
        ("{id: 1, gamerscore: -5}", "gamerscore", "less than the minimum of 0"),
        ("{id: 1, type: persistent}", "type", "not one of Persistent, Challenge"),
        ("{id: 1, unlocked: '2024-01-02'}", "unlocked", "not an ISO time"),
        ("{id: 1, unlocked: '2024-13-02T03:04:05Z'}", "unlocked", "not an ISO time"),
        ("{id: 1, unlocked: '2024-01-02T03:04:05+01:00'}", "unlocked", "not an ISO time"),
        ("{id: 1, unlocked: '2024-01-02T03:04:05.12345678Z'}", "unlocked", "not an ISO time"),
        ("{id: 1, progress: [3]}", "progress", "[current, target]"),
        ("{id: 1, progress: [3, -5]}", "progress", "[current, target]"),
        ("{id: 1, progress: '3/5'}", "progress", "[current, target]"),
        ("{id: 1, secret: 'no'}", "secret", "expected a boolean"),
        ("{id: 1, type: Challenge, window: {start: '2024-01-01T00:00:00Z'}}", "window", "has no 'end'"),
        ("{id: 1, type: Challenge, window: {start: '2024-01-01T00:00:00Z', end: soon}}", "end", "not an ISO time"),
        ("{id: 1, type: Challenge, window: {start: '2024-01-01T00:00:00Z', end: '2024-02-01T00:00:00Z', ned: 1}}",
         "ned", "unknown key 'ned'"),
        ("{id: 1, type: Persistent, window: {start: '2024-01-01T00:00:00Z', end: '2024-02-01T00:00:00Z'}}",
         "type", "an entry with a window is a Challenge"),
        ("{id: 1, rarity: {currentCategory: rare, currentPercentage: 3}}", "currentCategory", "Unset, Rare, Common"),
        ("{id: 1, rarity: {currentCategory: Rare, currentPercentage: 101}}", "currentPercentage",
         "more than the maximum of 100"),
        ("{id: 1, rarity: {currentCategory: Rare}}", "rarity", "has no 'currentPercentage'"),
        ("{id: 1, icon: 5}", "icon", "not a string or null"),
        ("[1, 2]", "", "an achievement is a mapping, not a list"),
    ],
)
def test_compact_entry_problems_are_located_and_named(tmp_path, entry, key, reason):
    path, text = compact(tmp_path, entry)
    err = error_of(path)
    assert err.line == line_of(text, entry)
    assert reason in err.reason, err.reason
    assert err.reason.startswith("datasets/0/titles/0/achievements/1" + (f"/" if key else ":"))
    assert key in err.reason.split(":")[0]
    assert [str(e) for e in cassette.lint(path)][0] == str(err).split(" (+")[0]


@pytest.mark.parametrize(
    "entry",
    [
        "{id: 1, name: A, description: d, lockedDescription: l, gamerscore: 0, type: Persistent, secret: false}",
        "{id: '12', unlocked: 2024-01-02T03:04:05Z, icon: 'https://example.invalid/i.png'}",
        "{id: 1, unlocked: '2024-01-02T03:04:05.1Z', progress: [5, 5]}",
        "{id: 1, unlocked: null, icon: null}",
        "{id: 1, unlocked: '0001-01-01T00:00:00.0000000Z'}",
        "{id: 1, window: {start: '2024-01-01T00:00:00Z', end: '2024-02-01T00:00:00.0000000Z'}}",
        "{id: 1, rarity: {currentCategory: Unset, currentPercentage: 0}}",
        "{id: 1, rarity: {currentCategory: Common, currentPercentage: 87.5}}",
    ],
)
def test_valid_compact_entries_load(tmp_path, entry):
    path, _ = compact(tmp_path, entry)
    assert cassette.lint(path) == []
    cassette.load_file(path)


def test_full_wire_objects_are_allowed_as_written(tmp_path):
    v2 = "{id: '1', serviceConfigId: 00000000-0000-0000-0000-0000000004d2, anything: [goes], progressState: X}"
    assert cassette.lint(compact(tmp_path, v2)[0]) == []
    assert cassette.lint(compact(tmp_path, "{id: 1, flags: 3, titleId: 1234, whatever: 1}", shape="V1")[0]) == []
    err = error_of(compact(tmp_path, "{flags: 3, titleId: 1234}", shape="V1")[0])
    assert "has no 'id'" in err.reason
    # A wire object of the other shape is a compact entry of this one: named as such.
    err = error_of(compact(tmp_path, "{id: 1, flags: 3}")[0])
    assert "unknown key 'flags'" in err.reason and "set `shape: V1`" in err.reason
    err = error_of(compact(tmp_path, "{id: '1', serviceConfigId: x}", shape="V1")[0])
    assert "unknown key 'serviceConfigId'" in err.reason and "set `shape: V2`" in err.reason


def test_compact_keys_are_the_keys_the_engine_reads():
    """The schema's compact keys are exactly those the engine expands (V1 and V2)."""
    import inspect
    import re

    from xblreplay.engine import compact as dataset

    source = inspect.getsource(dataset._Compact)
    read = set(re.findall(r"\b(?:e|entry|self\.entry)(?:\.get\(|\[)\"(\w+)\"", source))
    props = cassette_schema._schema()["$defs"]["compactAchievement"]["properties"]
    assert read == set(props)


def test_schema_keywords_outside_the_compiled_subset_are_refused():
    compiler = cassette_schema._Compiler({})
    with pytest.raises(ValueError, match="'format' is not supported"):
        compiler.predicate({"type": "string", "format": "date-time"})
    assert compiler.predicate({"enum": [1, "a"]})(1) and not compiler.predicate({"enum": [1]})(True)
    assert not compiler.predicate({"type": "integer"})(1.0) and compiler.predicate({"type": "number"})(1.5)
    assert compiler.predicate({"pattern": "^a"})(5) and not compiler.predicate({"pattern": "^a"})("b")


def test_bad_yaml_reports_syntax_line(tmp_path):
    text = VALID.replace("    shape: V2", "    shape: [V2")
    err = error_of(write(tmp_path / "bad.yaml", text))
    assert "YAML syntax error" in err.reason
    assert line_of(text, "shape: [V2") <= err.line <= line_of(text, "shape: [V2") + 2


def test_python_object_tag_is_refused_with_line(tmp_path):
    text = VALID.replace("    locale: en-US", "    locale: !!python/object/apply:os.system ['echo hi']")
    err = error_of(write(tmp_path / "evil.yaml", text))
    assert err.line == line_of(text, "python/object")
    assert "!!python/object/apply:os.system" in err.reason and "not allowed" in err.reason


@pytest.mark.parametrize("version", ["2", "0", "'1'", "true"])
def test_unknown_version_is_an_error(tmp_path, version):
    text = "# cassette\n" + VALID.replace("xblreplay: 1", f"xblreplay: {version}")
    err = error_of(write(tmp_path / "v.yaml", text))
    assert err.line == line_of(text, "xblreplay:")
    assert "version" in err.reason


@pytest.mark.parametrize("text", ["", "interactions: []\n", "- 1\n"])
def test_not_a_cassette(tmp_path, text):
    err = error_of(write(tmp_path / "n.yaml", text))
    assert "xblreplay: 1" in err.reason


def test_load_dir_sorted_skipping_hidden_and_temp(tmp_path):
    names = ["b/z.yml", "a.yaml", "b/a.yaml", "c/d/e.yaml"]
    for name in names:
        write(tmp_path / name, VALID)
    write(tmp_path / ".git/x.yaml", "broken: [")
    write(tmp_path / "b/.a.yaml.x1y2.tmp", "broken: [")
    write(tmp_path / "b/.partial.yaml", "broken: [")
    write(tmp_path / "notes.txt", "broken: [")
    got = [p.relative_to(tmp_path).as_posix() for p, _ in cassette.load_dir(tmp_path)]
    assert got == sorted(names)


def test_load_dir_first_error_raises(tmp_path):
    write(tmp_path / "a.yaml", VALID)
    bad = write(tmp_path / "b.yaml", "xblreplay: 3\n")
    with pytest.raises(CassetteError) as info:
        cassette.load_dir(tmp_path)
    assert info.value.file == str(bad)


def test_load_dir_missing_or_not_a_dir(tmp_path):
    with pytest.raises(CassetteError, match="does not exist"):
        cassette.load_dir(tmp_path / "nope")
    with pytest.raises(CassetteError, match="not a directory"):
        cassette.load_dir(write(tmp_path / "f.yaml", VALID))


@pytest.mark.skipif(os.geteuid() == 0, reason="permissions do not apply to root")
def test_load_dir_unreadable(tmp_path):
    locked = tmp_path / "locked"
    write(locked / "a.yaml", VALID)
    locked.chmod(0)
    try:
        with pytest.raises(CassetteError, match="cannot read directory"):
            cassette.load_dir(tmp_path)
    finally:
        locked.chmod(0o755)


def test_lint_collects_all_errors(tmp_path):
    write(tmp_path / "ok.yaml", VALID)
    two = VALID.replace("xblreplay: 1", "xblreplay: 1\nextra: 1").replace("status: 200", "status: 2000")
    write(tmp_path / "a.yaml", two)
    write(tmp_path / "b/c.yaml", "xblreplay: 1\ninteractions: [\n")
    write(tmp_path / "d.yml", "xblreplay: 9\n")
    errors = cassette.lint(tmp_path)
    got = sorted((Path(e.file).relative_to(tmp_path).as_posix(), e.line) for e in errors)
    assert got == sorted([("a.yaml", line_of(two, "extra")), ("a.yaml", line_of(two, "status: 2000")),
                          ("b/c.yaml", 3), ("d.yml", 1)])
    assert cassette.lint(tmp_path / "ok.yaml") == []
    assert [e.reason for e in cassette.lint(tmp_path / "missing")] == ["cassette directory does not exist"]


def test_dump_round_trips_canonically(tmp_path):
    doc = cassette.load_file(write(tmp_path / "a.yaml", VALID))
    data = cassette.dump(doc)
    cassette.write_atomic(tmp_path / "b.yaml", doc)
    assert cassette.load_file(tmp_path / "b.yaml") == doc
    assert cassette.dump(cassette.load_file(tmp_path / "b.yaml")) == data


def test_large_cassette_parsed_once(tmp_path, monkeypatch):
    monkeypatch.setenv("XBLREPLAY_CACHE_DIR", str(tmp_path / "cache"))
    entries = "".join(f"- {{id: {n}, name: A{n}, unlocked: 2024-01-02T03:04:05Z}}\n          " for n in range(8000))
    text = VALID.replace("- {id: 2, name: Collector, gamerscore: 20, progress: [3, 5]}\n", entries.rstrip(" "))
    path = write(tmp_path / "big.yaml", text)
    assert path.stat().st_size >= cassette.CACHE_MIN_BYTES
    first = cassette.load_file(path)
    assert len(first["datasets"][0]["titles"][0]["achievements"]) == 8001

    def no_parse(*_args):
        raise AssertionError("parsed again")

    monkeypatch.setattr(cassette_load, "_parse", no_parse)
    assert cassette.load_file(path) == first
    # Changed bytes are a new key: parsed (and validated) again.
    write(path, text.replace("name: A7999", "nme: A7999"))
    with pytest.raises(AssertionError, match="parsed again"):
        cassette.load_file(path)


def test_json_subset_cassette_reads_as_the_same_document(tmp_path):
    """YAML's JSON subset (the bulk form) loads to exactly what the YAML form loads to."""
    import json

    doc = cassette.load_file(write(tmp_path / "a.yaml", VALID))
    as_json = "# bulk form\n# written as JSON\n" + json.dumps(doc, indent=1)
    assert cassette.load_file(write(tmp_path / "b.yaml", as_json)) == doc
    # A flow mapping that is YAML but not JSON still loads, through YAML.
    flow = '{xblreplay: 1, datasets: []}\n'
    assert cassette.load_file(write(tmp_path / "c.yaml", flow)) == {"xblreplay": 1, "datasets": []}


def test_json_subset_cassette_errors_keep_their_line(tmp_path):
    text = '{\n "xblreplay": 1,\n "datasets": [\n  {"xuid": 1, "shape": "V3", "titles": []}\n ]\n}\n'
    with pytest.raises(CassetteError) as err:
        cassette.load_file(write(tmp_path / "bad.yaml", text))
    assert err.value.line == 4 and "V3" in err.value.reason


def test_written_cassettes_are_yaml_and_json_alike(tmp_path):
    """The canonical written form is in YAML's JSON subset: both parsers read the same document,
    including characters YAML does not allow raw."""
    import json

    import yaml

    doc = cassette.load_file(write(tmp_path / "a.yaml", VALID))
    doc["interactions"][0]["response"]["body"]["note"] = "caf\u00e9 \u2603 \x85 \x7f \ufeff \u2028 \U0001f600"
    data = cassette.dump(doc)
    assert yaml.load(data, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) == doc
    assert json.loads(data[data.index(b"{"):]) == doc
    # Header, braces, a line per top-level key, a line per interaction and its closing bracket;
    # a dataset and each of its titles open and close on lines of their own, around a line an entry.
    datasets = 1 + sum(2 + sum(2 + len(t["achievements"]) for t in d["titles"]) for d in doc["datasets"])
    assert data.count(b"\n") == 4 + len(doc) + len(doc["interactions"]) + datasets


# Values that are valid for some compact key and invalid for others.
_TIME_VALUES = ["2024-01-02T03:04:05.0000000Z", "2024-01-02T03:04:05Z", "0001-01-01T00:00:00.0000000Z",
                "2024-02-30T10:00:00.5Z", "yesterday", "2024-01-02", "2024-01-02T03:04:05+00:00"]
_VALUES = st.one_of(
    st.sampled_from([None, True, False, 0, 1, 7, -1, 1.0, 2.5, 101, "", "x", "12", "Persistent", "Challenge",
                     "Rare", [], [3, 5], [3], [1, -2], ["1", "2"], [0, 0], {}] + _TIME_VALUES),
    st.fixed_dictionaries({}, optional={"start": st.sampled_from(_TIME_VALUES[:2] + [5]),
                                        "end": st.sampled_from(_TIME_VALUES[1:3] + ["soon"]),
                                        "x": st.just(1)}),
    st.fixed_dictionaries({}, optional={"currentCategory": st.sampled_from(["Unset", "Rare", "Common", "rare"]),
                                        "currentPercentage": st.sampled_from([0, 3.2, 100, 100.5, -1, "3"])}),
)
_KEYS = ["id", "name", "description", "lockedDescription", "gamerscore", "type", "unlocked", "progress",
         "secret", "window", "rarity", "icon", "gamerscoer", "serviceConfigId", "flags"]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["V1", "V2"]),
       st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=6) | st.sampled_from([None, 3, "a", [1]]))
def test_fast_check_equals_the_schema_and_what_it_passes_the_engine_serves(shape, entry):
    """The compiled rules accept exactly what jsonschema accepts under cassette.schema.json; every
    compact entry they accept is built and expanded by the engine into an answer that passes the
    strict response schema (R7), so a loaded cassette never fails later without a line."""
    from test_dataset import VALIDATORS
    from xblreplay.engine import DatasetStore
    from xblreplay.model import AchievementsQuery

    if isinstance(entry, dict) and entry.get("id") is None:
        entry["id"] = 1
    doc = {"xblreplay": 1, "datasets": [{"xuid": 1, "shape": shape, "titles": [{"id": 5, "achievements": [entry]}]}]}
    fast = [m for _, m in cassette_schema._achievement_errors(doc)]
    full = list(cassette_schema._validators()[0].iter_errors(doc))
    assert bool(fast) == bool(full), (fast, [e.message for e in full])
    key = "flags" if shape == "V1" else "serviceConfigId"
    if fast or key in entry:
        return
    store = DatasetStore()
    store.add_hand_dataset(doc["datasets"][0], source="x.yaml")
    now = datetime(2024, 1, 15, tzinfo=timezone.utc)
    for rarity in (False, True):
        for possible in (False, True):
            query = AchievementsQuery(xuid=1, shape=shape, rarity=rarity, possible_only=possible)
            answer = store.answer(query, now)
            assert answer.status == 200 and len(answer.body["achievements"]) == 1
            VALIDATORS[shape].validate(answer.body)


# --- writing: locks and temp files leave nothing behind ------------------------------------------

def tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("kind", ["Recorder", "RecorderProcess"])
def test_recording_leaves_only_cassettes_in_the_tree(tmp_path, kind):
    import json

    from xblreplay import recording as recorder

    url = "https://achievements.xboxlive.com/users/xuid(2533274800000001)/achievements"
    rec = getattr(recorder, kind)(tmp_path)
    for n in range(30):
        body = json.dumps({"achievements": [{"id": str(n), "titleAssociations": [{"id": 1}]}],
                           "pagingInfo": {"continuationToken": None, "totalRecords": 1}}).encode()
        rec.record("GET", f"{url}?titleId={1 + n % 3}&skipItems={n}", {"x-xbl-contract-version": "2"}, 200,
                   {"content-type": "application/json"}, body, "application/json", 1.0, "2026-11-27T12:00:00Z")
        if n % 10 == 9:
            assert rec.flush(10)
    rec.close()
    assert not rec.errors
    assert tree(tmp_path) == [f"recorded/2533274800000001/{t}.yaml" for t in (1, 2, 3)]


def test_write_and_its_failures_leave_no_temp_or_lock_file(tmp_path, monkeypatch):
    path = tmp_path / "c" / "hand.yaml"
    doc = cassette.load_file(write(tmp_path / "src.yaml", VALID))
    cassette.write_atomic(path, doc)
    with cassette.file_lock(path):
        pass
    assert tree(path.parent) == ["hand.yaml"]
    # A write that fails half-way (disk full, a kill signal turned into an exception) removes its temp.
    doc["recorded_at"] = "2026-11-28T00:00:00Z"

    def full(_fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError):
        cassette.write_atomic(path, doc)
    monkeypatch.undo()
    assert tree(path.parent) == ["hand.yaml"]
    assert cassette.load_file(path)["recorded_at"] == "2026-11-27T12:00:00Z"


def test_a_killed_writers_temp_files_go_with_the_next_write_in_the_directory(tmp_path):
    left = [tmp_path / ".other.yaml.k3x_9ab2.tmp", tmp_path / ".hand.yaml.abcdefgh.tmp"]
    for p in left:
        p.write_text("xblreplay: 1\ninteractions: [")  # what a kill -9 in the middle of a write leaves
    (tmp_path / ".notes.tmp").write_text("not ours")
    cassette.write_atomic(tmp_path / "hand.yaml", {"xblreplay": 1})
    assert tree(tmp_path) == [".notes.tmp", "hand.yaml"]


def test_the_lock_holds_other_processes_off_the_directory(tmp_path):
    """file_lock is a flock on the cassette's directory: another process writing any cassette of
    that directory waits for it; a cassette elsewhere does not."""
    import subprocess
    import sys
    import time

    held = tmp_path / "c" / "a.yaml"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom xblreplay import cassette\n"
         f"with cassette.file_lock({str(held)!r}):\n    print('held', flush=True)\n    time.sleep(1.5)\n"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(Path(cassette.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])})
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        cassette.write_atomic(tmp_path / "elsewhere" / "b.yaml", {"xblreplay": 1})
        assert time.monotonic() - t0 < 1.0
        cassette.write_atomic(tmp_path / "c" / "b.yaml", {"xblreplay": 1})
        assert time.monotonic() - t0 >= 1.0
    finally:
        holder.wait(10)
    assert tree(tmp_path / "c") == ["b.yaml"]
