"""A compact entry written straight to its bytes (engine.expand.encoded) is the very text the
proxy writes for its expanded wire object (model.compact_json), for every kind of row; pages built from those bytes read
back as the items; the answer a page asked again gets is the one given before, until the
dataset changes."""

from __future__ import annotations

import itertools
from datetime import datetime, timezone

import orjson
import pytest

from xblreplay.engine import DatasetStore
from xblreplay.engine.expand import encoded, encoded_at, expand
from xblreplay.engine.wire import without_rarity
from xblreplay.model import AchievementsQuery, compact_json

XUID = 2533274800000001
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
TEXTS = ["plain", "", "é ü 漢字 🎮", 'quote " back \\ slash', "tab\tnew\nline\x01ctl", "</script>"]


def entries() -> list[dict]:
    """One entry per combination of the optional parts a row can have."""
    out = []
    parts = itertools.product(
        (None, "2026-01-02T03:04:05Z", "2026-01-02T03:04:05.1234567Z"),  # unlocked
        (None, [0, 5], [7, 7]),  # progress
        (None, {"start": "2026-01-01T00:00:00Z", "end": "2027-01-01T00:00:00Z"}),  # window
        (False, True),  # secret
        (None, "https://images.example/icon.png"),  # icon
        (None, {"currentCategory": "Rare", "currentPercentage": 3.5}),  # rarity
    )
    for n, (unlocked, progress, window, secret, icon, rarity) in enumerate(parts, 1):
        entry: dict = {"id": n, "gamerscore": n % 50, "description": TEXTS[n % len(TEXTS)]}
        if n % 3:
            entry["name"] = TEXTS[(n + 1) % len(TEXTS)]
        if n % 4 == 0:
            entry["lockedDescription"] = TEXTS[(n + 2) % len(TEXTS)]
        for key, value in (("unlocked", unlocked), ("progress", progress), ("window", window),
                           ("icon", icon), ("rarity", rarity)):
            if value is not None:
                entry[key] = value
        if secret:
            entry["secret"] = True
        if window is not None:
            entry["type"] = "Challenge"
        out.append(entry)
    out.append({"id": 2**70, "gamerscore": 2**65, "name": "beyond 64 bits"})  # held beside the columns
    return out


def store(shape: str) -> DatasetStore:
    s = DatasetStore()
    s.add_hand_dataset({"xuid": XUID, "shape": shape, "titles": [
        {"id": 1829000002, "name": "Harbor \u00e9 \"quoted\"", "achievements": entries()}]})
    return s


@pytest.mark.parametrize("shape", ["V2", "V1"])
def test_encoded_rows_are_what_orjson_writes_for_the_expanded_item(shape):
    s = store(shape)
    (ds,) = s._datasets.values()
    cols = ds._rows
    written = 0
    for pos in range(len(cols)):
        row = cols.row(pos)
        for rarity in (True, False):
            raw = encoded(cols, row, shape, rarity)
            item = expand(cols, row, shape)
            if not rarity:
                item = without_rarity(item)
            if raw is None:  # left to expand: a row whose recorded rarity is kept, numbers beyond 64 bits
                assert (rarity and row.rarity is not None) or row.number >= 1 << 63
                continue
            assert raw == compact_json(item), (pos, rarity)
            written += 1
    assert written > len(cols)  # most rows, both forms


@pytest.mark.parametrize("shape", ["V2", "V1"])
def test_a_page_of_encoded_items_reads_back_as_the_expanded_items(shape):
    s = store(shape)
    (ds,) = s._datasets.values()
    answer = s.answer(AchievementsQuery(xuid=XUID, shape=shape, max_items=20, skip_items=3), NOW)
    assert answer.status == 200 and answer.page is not None
    expected = [without_rarity(ds.wire(pos)) for pos in range(3, 23)]
    assert answer.body["achievements"] == expected
    assert orjson.loads(answer.body_bytes()) == answer.body


def test_a_page_asked_again_is_the_same_answer_until_the_dataset_changes():
    s = store("V2")
    query = AchievementsQuery(xuid=XUID, shape="V2", max_items=5)
    first = s.answer(query, NOW)
    assert s.answer(AchievementsQuery(xuid=XUID, shape="V2", max_items=5), NOW) is first
    assert s.answer(AchievementsQuery(xuid=XUID, shape="V2", max_items=6), NOW) is not first
    s.add_hand_dataset({"xuid": XUID, "shape": "V2", "titles": [
        {"id": 1829000003, "name": "Later", "achievements": [{"id": 1, "name": "new"}]}]})
    again = s.answer(query, NOW)
    assert again is not first
    assert again.body["pagingInfo"]["totalRecords"] == first.body["pagingInfo"]["totalRecords"] + 1


def test_ending_soon_is_answered_afresh():
    s = store("V2")
    query = AchievementsQuery(xuid=XUID, shape="V2", order_by="EndingSoon")
    assert s.answer(query, NOW) is not s.answer(query, NOW)


def test_a_recorded_page_changing_an_item_is_seen_by_the_next_answer():
    s = DatasetStore()
    s.add_hand_dataset({"xuid": XUID, "shape": "V2", "titles": [
        {"id": 1829000002, "name": "Harbor", "achievements": [{"id": 1, "name": "first"}, {"id": 2}]}]})
    query = AchievementsQuery(xuid=XUID, shape="V2", max_items=5)
    first = s.answer(query, NOW)
    item = dict(first.body["achievements"][0], name="renamed")
    s.add_listing(AchievementsQuery(xuid=XUID, shape="V2", title_ids=(1829000002,), max_items=1), "en-US",
                  {"achievements": [item], "pagingInfo": {"continuationToken": "1", "totalRecords": 2}})
    again = s.answer(query, NOW)
    assert again is not first and again.body["achievements"][0]["name"] == "renamed"


RARITIES = [None, {"currentCategory": "Rare", "currentPercentage": 3.5},
            {"currentCategory": "Common", "currentPercentage": 0}, {"currentCategory": "Rare", "currentPercentage": 100.0},
            {"currentCategory": "Common", "currentPercentage": 87}, {"currentCategory": "Unset", "currentPercentage": 12.25}]


def plain_entries() -> list[dict]:
    """entries() but the one beyond 64 bits, unlock times in the wire form (7 digits)."""
    out = []
    for e in entries()[:-1]:
        if "unlocked" in e and len(e["unlocked"]) != 28:
            e = dict(e, unlocked="2026-01-02T03:04:05.1000000Z")
        out.append(e)
    return out


def plain_store(shape: str, rarities: list) -> DatasetStore:
    """Entries the column-wise proof takes whole (no entry held beside the columns)."""
    titles = []
    for t in range(3):
        achievements = [dict(e, rarity=rarities[n % len(rarities)]) if rarities[n % len(rarities)] else e
                        for n, e in enumerate(plain_entries()) if n % 3 == t]
        titles.append({"id": 1829000010 + t, "name": f"Title {t}", "achievements": achievements})
    s = DatasetStore()
    s.add_hand_dataset({"xuid": XUID, "shape": shape, "titles": titles})
    return s


@pytest.mark.parametrize("shape", ["V2", "V1"])
def test_plain_rows_with_a_rarity_are_written_as_the_expanded_item(shape):
    s = plain_store(shape, RARITIES)
    (ds,) = s._datasets.values()
    cols = ds._rows
    assert cols._odd == {}  # every entry held in the columns, rarity included
    wanted = [e.get("rarity") for t in range(3) for n, e in enumerate(plain_entries()) if n % 3 == t
              for e in [dict(e, rarity=RARITIES[n % len(RARITIES)]) if RARITIES[n % len(RARITIES)] else e]]
    with_rarity = 0
    for pos in range(len(cols)):
        row = cols.row(pos)
        assert row.rarity == wanted[pos]
        if row.rarity is not None:  # the percentage keeps its spelling: 0 stays an int, 100.0 a float
            assert type(row.rarity["currentPercentage"]) is type(wanted[pos]["currentPercentage"])
            with_rarity += 1
        for rarity in (True, False):
            item = expand(cols, row, shape)
            assert encoded_at(cols, pos, shape, rarity) == compact_json(item if rarity else without_rarity(item))
    assert with_rarity > len(cols) // 2


def test_a_rarity_written_in_another_key_order_is_kept_in_it():
    swapped = [None, {"currentPercentage": 3.5, "currentCategory": "Rare"}]
    s = plain_store("V2", swapped)
    (ds,) = s._datasets.values()
    cols = ds._rows
    pos = next(p for p in range(len(cols)) if cols.row(p).rarity is not None)
    item = expand(cols, cols.row(pos), "V2")
    assert list(item["rarity"]) == ["currentPercentage", "currentCategory"]
    assert encoded_at(cols, pos, "V2", True) in (None, compact_json(item))
