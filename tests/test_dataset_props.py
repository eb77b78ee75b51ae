"""Property tests of the dataset engine over generated datasets and queries (R1–R5, R7).

The expected result comes from the plain reference in test_dataset.py.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from test_dataset import NOW, VALIDATORS, XUID, all_pages, hand, hand_order, reference, v1_item, v2_item
from test_dataset import recorded
from xblreplay.engine import DatasetStore
from xblreplay.model import ORDERS, TYPES, AchievementsQuery

SETTINGS = settings(max_examples=150, deadline=None)
TITLES = (11, 12, 13)
# Few distinct times so that ties (broken by dataset order, R4) are common.
TIMES = [datetime(2024, 1, 1, tzinfo=timezone.utc) + timedelta(hours=h) for h in range(4)]
ENDS = [NOW + timedelta(days=d) for d in (-2, 1, 1, 3)]


@st.composite
def datasets(draw, shape: str) -> list[dict]:
    keys = draw(st.lists(st.tuples(st.sampled_from(TITLES), st.integers(0, 30)), unique=True, min_size=1, max_size=25))
    items = []
    for tid, n in keys:
        unlocked = draw(st.none() | st.sampled_from(TIMES))
        if shape == "V1":
            items.append(v1_item(tid, n, unlocked))
            continue
        challenge = draw(st.booleans())
        items.append(v2_item(
            tid, n, unlocked, "Challenge" if challenge else "Persistent",
            end=draw(st.sampled_from(ENDS)) if challenge else None,
            rarity=draw(st.none() | st.floats(0, 100)),
        ))
    return items


@st.composite
def queries(draw, shape: str) -> AchievementsQuery:
    return AchievementsQuery(
        xuid=XUID, shape=shape,
        title_ids=draw(st.sampled_from([None, None, (11,), (12, 13), (11, 99), (99,), (13, 11, 13)])),
        types=draw(st.sampled_from([None, None, frozenset({"Persistent"}), frozenset({"Challenge"}),
                                    frozenset(TYPES)])),
        unlocked_only=draw(st.booleans()), possible_only=draw(st.sampled_from([False, False, True])),
        order_by=draw(st.sampled_from(ORDERS)), skip_items=draw(st.integers(0, 2) | st.integers(0, 30)),
        max_items=draw(st.none() | st.integers(1, 8)), rarity=draw(st.booleans()),
    )


def check_paging(shape: str, items: list[dict], q: AchievementsQuery) -> None:
    store = DatasetStore()
    store.add_hand_dataset(hand(items, shape=shape))
    expected = reference(hand_order(items, shape), shape, q, NOW)
    bodies = all_pages(store, q)
    got = [a for b in bodies for a in b["achievements"]]
    assert got == expected[q.skip_items:]  # R5: token order = full result, no duplicates or gaps
    for body in bodies:
        assert body["pagingInfo"]["totalRecords"] == len(expected)  # R5 totalRecords
        assert len(body["achievements"]) <= q.page_size
        VALIDATORS[shape].validate(body)  # R7


@SETTINGS
@given(st.data())
def test_r5_v2_paging_invariant_and_schema(data):
    check_paging("V2", data.draw(datasets("V2")), data.draw(queries("V2")))


@SETTINGS
@given(st.data())
def test_r5_v1_paging_invariant_and_schema(data):
    check_paging("V1", data.draw(datasets("V1")), data.draw(queries("V1")))


@SETTINGS
@given(datasets("V2"), st.integers(1, 6), st.data())
def test_r1_r2_recorded_pages_rebuild_dataset_and_prove_coverage(items, size, data):
    """R1: pages merged in recording order give first-seen order; R2: all pages = complete."""
    store = DatasetStore()
    recording = data.draw(st.permutations(range(0, len(items), size) or [0]))
    for start in recording:
        token = str(start + size) if start + size < len(items) else None
        params = {"maxItems": str(size)} | ({"skipItems": str(start)} if start else {})
        store.add_listing(recorded(params), "en-US", {
            "achievements": copy.deepcopy(items[start:start + size]),
            "pagingInfo": {"continuationToken": token, "totalRecords": len(items)}})
    ans = store.answer(AchievementsQuery(xuid=XUID, shape="V2", max_items=1000, rarity=True), NOW)
    assert ans.body["achievements"] == [it for start in recording for it in items[start:start + size]]
    assert ans.violations == []
