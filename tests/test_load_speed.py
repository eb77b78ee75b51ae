"""What the fast ways of loading a large cassette must keep: orjson's reading of a JSON document
is json.loads's (same values, same refusals), a dataset whose titles the compiled title rule
passes gets the same schema findings, and titles taken a run at a time hold what titles merged
entry by entry hold."""

from __future__ import annotations

import json
import random

import pytest

from xblreplay.bounds import MAX_JSON_DEPTH
from xblreplay.cassette import schema
from xblreplay.engine.dataset import _Dataset
from xblreplay.engine.wire import derived_scid
from xblreplay.rulesfile import Refused, load_json
from xblreplay.rulesfile import jsondoc


def typed(value):
    """``value`` with the type of every number spelled out (1 and 1.0 and True differ)."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    return (type(value).__name__, value)


@pytest.mark.parametrize("text", [
    '{"a": [1, 2.5, -0.0, 1e5, true, null, "x"]}',
    '{"big": 18446744073709551615, "neg": -9223372036854775809, "wide": 99999999999999999999}',
    '{"nine": 1234567890123456789, "eighteen": 123456789012345678}',
    '{"brackets": "[[[{{", "closing": "]]]}}", "n": [[[]]]}',
    '{"escaped": "a\\"[b\\\\", "more": "\\\\\\"]", "u": "\\u005b\\ud83d\\ude00"}',
    '{"dup": 1, "other": 2, "dup": 3}',
    '{"time": "2024-01-02T03:04:05.0000000Z", "digits": "1234567890123456789012"}',
    '[' * MAX_JSON_DEPTH + ']' * MAX_JSON_DEPTH,
    '{"s": "' + '[' * 300 + '", "n": ' + '[' * (MAX_JSON_DEPTH - 1) + ']' * (MAX_JSON_DEPTH - 1) + '}',
])
def test_load_json_gives_what_json_loads_gives(text):
    assert typed(load_json(text.encode())) == typed(json.loads(text))


def test_orjson_reads_documents_without_wide_numbers():
    assert jsondoc._fast_read(b'{"id": 123456789012345678, "t": "[x"}') is not None
    assert jsondoc._fast_read(b'{"id": 1234567890123456789}') is None  # json.loads reads it


@pytest.mark.parametrize("text, line", [
    ("{\n" + '"a": "]]]]]]",\n"b": ' + "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1) + "}", 3),
    ('{"a": "\\"",\n"b":\n' + "[" * MAX_JSON_DEPTH + "{}" + "]" * MAX_JSON_DEPTH + "}", 3),
    ("[" * 10 + "\n" + "[" * (MAX_JSON_DEPTH - 9) + "]" * (MAX_JSON_DEPTH + 1), 2),
    # strings whose brackets, read as structure, would pair off every real level in one pass
    ('["]",' * (MAX_JSON_DEPTH + 1) + "0" + ',"["]' * (MAX_JSON_DEPTH + 1), 1),
])
def test_too_deep_is_refused_on_its_line(text, line):
    with pytest.raises(Refused) as exc:
        load_json(text.encode())
    assert exc.value.line == line
    assert "nested more than" in exc.value.reason


def test_nan_and_huge_numbers_are_read_as_before():
    with pytest.raises(Refused):
        load_json(b'{"a": NaN}')
    assert load_json(b'{"a": 1e400}') == {"a": float("inf")}


# --- schema: titles the compiled rule passes are left out of jsonschema's walk -----------------

GOOD_TITLE = {"id": 7, "name": "T", "scid": "00000000-0000-0000-0000-000000000007",
              "achievements": [{"id": 1, "name": "A"}]}
BAD_TITLES = [
    {"id": -1, "achievements": []},
    {"id": 4294967296, "achievements": []},
    {"id": True, "achievements": []},
    {"id": 1.0, "achievements": []},
    {"id": "7", "achievements": []},
    {"id": 7, "name": 5, "achievements": []},
    {"id": 7, "scid": "not-a-scid", "achievements": []},
    {"id": 7, "achievements": {}},
    {"id": 7},
    {"achievements": []},
    {"id": 7, "achievements": [], "nmae": "typo"},
    [],
    "title",
]


@pytest.mark.parametrize("title", [GOOD_TITLE, {"id": 0, "achievements": []},
                                   {"id": 4294967295, "achievements": [], "scid": "0" * 8 + "-0000-0000-0000-" + "a" * 12},
                                   *BAD_TITLES])
def test_the_compiled_title_rule_passes_only_what_jsonschema_passes(title):
    title_schema = {**schema._schema(), **schema._schema()["$defs"]["title"]}
    assert schema._title_ok()(title) == (not list(schema.strict_validator(title_schema).iter_errors(title)))


@pytest.mark.parametrize("bad", BAD_TITLES)
def test_findings_are_those_of_the_whole_envelope(bad, monkeypatch, tmp_path):
    doc = {"xblreplay": 1, "datasets": [
        {"xuid": 1, "titles": [GOOD_TITLE, GOOD_TITLE]},
        {"xuid": 2, "titles": [GOOD_TITLE, bad, GOOD_TITLE], "extra": 1},
        {"xuid": "x", "titles": [GOOD_TITLE]},
    ]}
    data = json.dumps(doc, indent=1).encode()
    found = schema.schema_errors(tmp_path / "c.yaml", data, doc)
    monkeypatch.setattr(schema, "_envelope", lambda d: d)
    assert [str(e) for e in found] == [str(e) for e in schema.schema_errors(tmp_path / "c.yaml", data, doc)]
    assert len(found) >= 3


# --- the engine: a run of plain titles taken at once ------------------------------------------

def entries(rng: random.Random, n: int, first: int = 1) -> list[dict]:
    out = []
    for i in range(first, first + n):
        e: dict = {"id": i, "name": f"A{i}"}
        if rng.random() < 0.7:
            e["gamerscore"] = rng.choice((0, 5, 10))
        roll = rng.random()
        if roll < 0.3:
            e["unlocked"] = f"2023-0{rng.randrange(1, 10)}-1{rng.randrange(10)}T10:00:00.{rng.randrange(10**7):07d}Z"
        elif roll < 0.4:
            e["unlocked"] = None
        elif roll < 0.55:
            e["progress"] = [rng.randrange(5), 5]
        if rng.random() < 0.1:
            e["window"] = {"start": "2026-11-01T00:00:00Z", "end": f"2026-12-{rng.randrange(10, 28)}T00:00:00Z"}
            if rng.random() < 0.5:
                e["type"] = "Challenge"
        elif rng.random() < 0.1:
            e["type"] = rng.choice(("Persistent", "Challenge"))
        for key, value in (("description", "d"), ("lockedDescription", "l"), ("secret", True), ("secret", False),
                           ("icon", "https://i/x.png"), ("icon", None),
                           ("rarity", {"currentCategory": "Rare", "currentPercentage": 2.5})):
            if rng.random() < 0.05:
                e[key] = value
        if rng.random() < 0.2:
            del e["name"]
        out.append(e)
    return out


def titles(seed: int) -> list[dict]:
    rng = random.Random(seed)
    found = [{"id": 100 + t, "name": f"T{t}", "achievements": entries(rng, rng.randrange(0, 12), rng.choice((1, 5)))}
             for t in range(30)]
    found[7]["achievements"][0:0] = [{"id": 99, "name": "wire", "serviceConfigId": "x"}] if found[7]["achievements"] else []
    found[11]["achievements"] = entries(rng, 3)[::-1]  # ids not in order
    found[12]["id"] = found[3]["id"]  # the same title again: merged into the first
    found[20]["achievements"] = found[20]["achievements"][:1] * 2  # an id twice
    return found


def state(ds: _Dataset) -> tuple:
    size = ds.info().size
    return ([ds.wire(p) for p in range(size)], [ds._rows.row(p) for p in range(size)],
            {t: [list(a) for a in lists] for t, lists in ds._by_title.items()}, [list(a) for a in ds._by_category])


def built_both_ways(shape: str, seed: int) -> tuple[_Dataset, _Dataset]:
    """The titles of ``seed`` taken at once, and the same merged entry by entry (a tuple of
    entries is never taken whole: every entry is merged on its own)."""
    at_once, one_by_one = _Dataset(1, shape, "en-US"), _Dataset(1, shape, "en-US")
    at_once.add_titles(titles(seed), True, "a")
    one_by_one.add_titles([{**t, "achievements": tuple(t["achievements"])} for t in titles(seed)], True, "a")
    return at_once, one_by_one


@pytest.mark.parametrize("shape", ["V1", "V2"])
@pytest.mark.parametrize("seed", range(6))
def test_titles_taken_at_once_hold_what_entries_merged_one_by_one_hold(shape, seed):
    at_once, one_by_one = built_both_ways(shape, seed)
    assert state(at_once) == state(one_by_one)
    assert at_once.info().size > 100


@pytest.mark.parametrize("shape", ["V1", "V2"])
@pytest.mark.parametrize("seed", range(4))
def test_titles_taken_at_once_find_each_identity_and_name_where_merged_entries_do(shape, seed):
    at_once, one_by_one = built_both_ways(shape, seed)
    names = {t["id"]: t["name"] for t in titles(seed)}  # a title named again: its last name
    for title in titles(seed):
        tid = title["id"]
        key = derived_scid(tid) if shape == "V2" else tid
        for number in range(0, 20):
            ident = (key, str(number) if shape == "V2" else number)
            assert at_once.position(ident) == one_by_one.position(ident)
        assert at_once._title_names[tid] == one_by_one._title_names[tid] == names[tid]
    assert sum(at_once.position((derived_scid(t["id"]) if shape == "V2" else t["id"], e["id"] if shape == "V1" else str(e["id"])))
               is not None for t in titles(seed) for e in t["achievements"]) > 100


def test_a_malformed_title_comes_after_the_titles_before_it():
    ds = _Dataset(1, "V2", "en-US")
    good = [{"id": 7, "name": "T", "achievements": [{"id": 1}, {"id": 2}]}, {"id": 8, "achievements": [{"id": 1}]}]
    with pytest.raises(ValueError, match="title id"):
        ds.add_titles([*good, {"id": "x", "achievements": [{"id": 1}]}, {"id": 9, "achievements": [{"id": 1}]}],
                      True, "a")
    assert ds.info().size == 3 and set(ds._by_title) == {7, 8}
    assert ds._title_names == {7: "T", 8: "Title 8"} and ds.position((derived_scid(8), "1")) == 2
