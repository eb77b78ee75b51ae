"""The column-wise proof of plain compact entries never accepts what the schema's compact rule
refuses, and a loaded cassette's proof is what its dataset is built from."""

from __future__ import annotations

import copy

import pytest

from xblreplay.cassette import plain as plain_mod
from xblreplay.cassette import schema as cassette_schema

GOOD = [
    {"id": 1, "name": "A", "gamerscore": 10, "unlocked": "2024-01-02T03:04:05.0000000Z"},
    {"id": 2, "progress": [1, 5], "icon": None, "secret": True, "description": "d"},
    {"id": 3, "type": "Challenge", "window": {"start": "2024-01-01T00:00:00Z", "end": "2024-02-01T00:00:00Z"}},
    {"id": 4, "rarity": {"currentCategory": "Rare", "currentPercentage": 2.5}, "unlocked": None},
]
BAD = [
    ("name", None), ("name", 3), ("gamerscore", -1), ("gamerscore", True), ("gamerscore", None),
    ("type", "Other"), ("type", None), ("type", ["Challenge"]), ("unlocked", "2024-13-02T03:04:05.0000000Z"),
    ("unlocked", "2024-01-02T24:04:05.0000000Z"), ("unlocked", ""), ("progress", None), ("progress", [1]),
    ("progress", [1, -5]), ("progress", [1, 2.0]), ("secret", 1), ("window", None), ("window", {"start": "x"}),
    ("window", {"start": "2024-01-01T00:00:00Z", "end": "2024-01-01T00:00:00Z", "x": 1}),
    ("rarity", {"currentCategory": "Rare", "currentPercentage": 101}), ("rarity", None),
    ("rarity", {"currentCategory": ["Rare"], "currentPercentage": 1}), ("icon", 5), ("extra", 1), ("id", -1),
    ("id", True),
]


def compact_ok():
    return cassette_schema._achievement_rules()["V2"][2].ok


def test_plain_entries_are_proven():
    assert all(map(compact_ok(), GOOD))
    proof = plain_mod.plain([GOOD[:2], GOOD[2:]])
    assert proof is not None and proof.ids == [1, 2, 3, 4]
    assert proof.columns["name"][1] is plain_mod.GAP and proof.columns["unlocked"][3] is None
    assert "lockedDescription" not in proof.columns


@pytest.mark.parametrize("key,value", BAD)
def test_what_the_schema_refuses_is_never_plain(key, value):
    entries = copy.deepcopy(GOOD)
    entries[2 if key == "window" else 0][key] = value
    assert not all(map(compact_ok(), entries))
    assert plain_mod.plain([entries]) is None


def test_a_window_of_a_persistent_entry_is_not_plain():
    entries = copy.deepcopy(GOOD)
    entries[2]["type"] = "Persistent"
    assert not compact_ok()(entries[2]) and plain_mod.plain([entries]) is None


def test_a_kept_proof_is_taken_once_and_only_for_the_same_lists():
    lists = [copy.deepcopy(GOOD), []]
    proof = plain_mod.plain(lists)
    plain_mod.keep([(lists, proof)])
    assert plain_mod.proven([copy.deepcopy(GOOD)]) is not proof  # equal lists, other objects: found again
    assert plain_mod.proven([lists[0]]) is proof  # the empty list is no entry
    assert plain_mod.proven([lists[0]]) is not proof  # taken: no longer kept


def test_a_proof_names_the_places_of_each_key_some_entry_lacks():
    proof = plain_mod.plain([GOOD[:2], GOOD[2:]])
    assert {k: list(v) for k, v in proof.places.items()} == {
        k: [i for i, e in enumerate(GOOD) if k in e] for k in proof.columns}
    full = [{"id": i, "name": "n"} for i in range(3)]
    assert plain_mod.plain([full]).places == {}  # every entry has a name: no places kept


def test_many_unlocked_times_are_proven_without_memory_for_each():
    import tracemalloc

    entries = [{"id": i, "unlocked": "2024-01-02T03:04:05.0000000Z"} for i in range(1, 20001)]
    plain_mod.plain([entries[:1]])  # the rules read and compiled beforehand
    tracemalloc.start()
    try:
        assert plain_mod.plain([entries]) is not None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # The columns, the places and the joined text are a few bytes an entry; a matcher keeping a
    # way back into each time would hold hundreds of bytes a time (16 MB here).
    assert peak < 4_000_000
    entries[-1]["unlocked"] = "2024-01-02T03:04:05.000000Z1"
    assert plain_mod.plain([entries]) is None
