"""The dataset engine (addons/xblreplay/engine/), rule by rule (emulation-rules.md R1–R9).

Expected answers come from `reference()`, a plain filter/sort/slice written here over the same
wire objects the test builds, never from the engine's own output.
"""

from __future__ import annotations

import copy
import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlencode

import jsonschema
import pytest
import yaml

from xblreplay.engine import DatasetStore
from xblreplay.model import NEVER, AchievementsQuery
from xblreplay.contract.validator import Validator

RULES = Path(__file__).resolve().parents[1] / "rules" / "achievements.openapi.yaml"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
XUID = 2533274800000001

# ---------------------------------------------------------------------------------------------
# Helpers shared with test_dataset_props.py: wire builders, the reference, the response schema


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def scid_of(tid: int) -> str:
    return f"00000000-0000-0000-0000-{tid:012x}"


def v2_item(tid: int, n: int, unlocked: datetime | None = None, kind: str = "Persistent",
            end: datetime | None = None, rarity: float | None = None, name: str = "") -> dict:
    item = {
        "id": str(n), "serviceConfigId": scid_of(tid), "name": name or f"A{tid}-{n}",
        "titleAssociations": [{"name": f"T{tid}", "id": tid}],
        "progressState": "Achieved" if unlocked else "InProgress",
        "progression": {
            "requirements": [{"id": "r", "current": "1" if unlocked else "0", "target": "1",
                              "operationType": "Sum", "valueType": "Integer",
                              "ruleParticipationType": "Individual"}],
            "timeUnlocked": iso(unlocked) if unlocked else NEVER,
        },
        "mediaAssets": [{"name": "i.png", "type": "Icon", "url": "https://img.invalid/i.png"}],
        "platforms": ["Durango"], "isSecret": False, "description": "d", "lockedDescription": "ld",
        "productId": "p", "achievementType": kind, "participationType": "Individual",
        "timeWindow": {"startDate": iso(end - timedelta(days=30)), "endDate": iso(end)} if end else None,
        "rewards": [{"name": None, "description": None, "value": "10", "type": "Gamerscore",
                     "valueType": "Int", "mediaAsset": None}],
        "estimatedTime": "00:00:00", "deeplink": None, "isRevoked": False,
    }
    if rarity is not None:
        item["rarity"] = {"currentCategory": "Rare" if rarity < 10 else "Common", "currentPercentage": rarity}
    return item


def v1_item(tid: int, n: int, unlocked: datetime | None = None) -> dict:
    return {
        "id": n, "titleId": tid, "name": f"A{tid}-{n}", "sequence": n,
        "flags": 0x9 | (0x30000 if unlocked else 0), "unlockedOnline": bool(unlocked),
        "unlocked": bool(unlocked), "isSecret": False, "platform": 15, "gamerscore": 10, "imageId": n,
        "description": "d", "lockedDescription": "ld", "type": 1, "isRevoked": False,
        "timeUnlocked": iso(unlocked) if unlocked else NEVER,
    }


def by_title(items: list[dict], shape: str = "V2") -> dict[int, list[dict]]:
    titles: dict[int, list[dict]] = {}
    for it in items:
        titles.setdefault(_titles(it, shape)[0], []).append(it)
    return titles


def hand_order(items: list[dict], shape: str = "V2") -> list[dict]:
    """The dataset order of `hand(items)`: titles in first-seen order, items in list order."""
    return [it for group in by_title(items, shape).values() for it in group]


def hand(items: list[dict], shape: str = "V2", locale: str = "en-US", complete: bool = True,
         xuid: int = XUID) -> dict:
    """A cassette `datasets:` entry holding full wire objects."""
    titles = by_title(items, shape)
    return {"xuid": xuid, "shape": shape, "locale": locale, "complete": complete,
            "titles": [{"id": t, "name": f"T{t}", "achievements": a} for t, a in titles.items()]}


def _titles(it: dict, shape: str) -> list[int]:
    return [ta["id"] for ta in it["titleAssociations"]] if shape == "V2" else [it["titleId"]]


def _unlocked(it: dict, shape: str) -> bool:
    return it["progressState"] == "Achieved" if shape == "V2" else it["unlocked"]


def _parse(t: str) -> datetime:
    return datetime.strptime(t[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc)


def strip_user_data(it: dict, shape: str) -> dict:
    out = copy.deepcopy(it)
    if shape == "V1":
        out.update(unlocked=False, unlockedOnline=False, timeUnlocked=NEVER, flags=it["flags"] & ~0x30000)
    else:
        out["progressState"] = "NotStarted"
        out["progression"]["timeUnlocked"] = NEVER
        for r in out["progression"]["requirements"]:
            r["current"] = None
    return out


def reference(items: list[dict], shape: str, q: AchievementsQuery, now: datetime) -> list[dict]:
    """R3 filters, R4 orders and R6 rarity, written plainly: the full ordered result."""
    rows = list(enumerate(items))  # dataset order = list order
    if q.title_ids is not None:
        rows = [(i, it) for i, it in rows if set(_titles(it, shape)) & set(q.title_ids)]
    if q.types is not None:
        rows = [(i, it) for i, it in rows if it.get("achievementType", "Persistent") in q.types]
    if q.possible_only:
        rows = [(i, strip_user_data(it, shape)) for i, it in rows]
    elif q.unlocked_only:
        rows = [(i, it) for i, it in rows if _unlocked(it, shape)]

    def unlock_key(row):
        i, it = row
        if not _unlocked(it, shape):
            return (1, 0.0, i)
        t = it["progression"]["timeUnlocked"] if shape == "V2" else it["timeUnlocked"]
        return (0, -_parse(t).timestamp(), i)

    def ending_key(row):
        i, it = row
        window = it.get("timeWindow")
        if window and _parse(window["endDate"]) > now:
            return (0, _parse(window["endDate"]).timestamp(), i)
        return (1, 0.0, i)

    keys = {
        "Unordered": lambda row: row[0],
        "Title": lambda row: (_titles(row[1], shape)[0], int(row[1]["id"]), row[0]),
        "UnlockTime": unlock_key,
        "EndingSoon": ending_key,
    }
    out = [it for _, it in sorted(rows, key=keys[q.order_by])]
    if not q.rarity:
        out = [{k: v for k, v in it.items() if k != "rarity"} for it in out]
    return out


def all_pages(store: DatasetStore, q: AchievementsQuery, now: datetime = NOW) -> list[dict]:
    """Follow continuation tokens from q's start; return the bodies in order."""
    bodies = []
    while True:
        ans = store.answer(q, now)
        assert ans.status == 200
        bodies.append(ans.body)
        token = ans.body["pagingInfo"]["continuationToken"]
        if token is None:
            return bodies
        q = copy.copy(q)
        q.continuation_token, q.token_offset, q.skip_items = token, int(token.split(",")[0]), 0


_SCHEMA_DOC = yaml.load(RULES.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def schema_validator(shape: str) -> jsonschema.Draft202012Validator:
    """The R7 response schema from rules/achievements.openapi.yaml (components/schemas)."""
    schema = {"$ref": f"#/components/schemas/AchievementsResponse{shape}",
              "components": _SCHEMA_DOC["components"]}
    return jsonschema.Draft202012Validator(schema)


VALIDATORS = {"V1": schema_validator("V1"), "V2": schema_validator("V2")}


_VALIDATOR = Validator.from_rules(RULES.parent)


def recorded(params: dict[str, str], shape: str = "V2", rarity: bool = False) -> AchievementsQuery:
    """The query of a recorded listing, read by the validator as replay reads it."""
    contract = {("V2", False): "2", ("V2", True): "4", ("V1", False): "1", ("V1", True): "3"}[(shape, rarity)]
    url = f"/users/xuid({XUID})/achievements" + ("?" + urlencode(params) if params else "")
    check = _VALIDATOR.check_request("GET", url, {"authorization": "XBL3.0 x=h;t",
                                                  "x-xbl-contract-version": contract})
    assert check.ok and check.query is not None, check.violations
    return check.query


def q2(**kw) -> AchievementsQuery:
    kw.setdefault("xuid", XUID)
    kw.setdefault("shape", "V2")
    return AchievementsQuery(**kw)


# ---------------------------------------------------------------------------------------------
# A small mixed dataset

T1, T2, T3 = 1001, 1002, 1003
DAY = timedelta(days=1)


def sample_items() -> list[dict]:
    """The sample dataset, in its dataset order."""
    return hand_order(_sample())


def _sample() -> list[dict]:
    base = datetime(2024, 5, 1, tzinfo=timezone.utc)
    return [
        v2_item(T2, 7, unlocked=base + 3 * DAY),
        v2_item(T1, 3),
        v2_item(T1, 1, unlocked=base + 5 * DAY, rarity=4.5),
        v2_item(T2, 2, kind="Challenge", end=NOW + 2 * DAY),
        v2_item(T1, 9, kind="Challenge", end=NOW + 1 * DAY, unlocked=base + 3 * DAY),
        v2_item(T3, 4, kind="Challenge", end=NOW - 1 * DAY),
        v2_item(T2, 5, unlocked=base + 3 * DAY),  # same time as T2/7: tie by dataset order
        v2_item(T1, 2, kind="Challenge", end=NOW + 1 * DAY),  # same end as T1/9
    ]


@pytest.fixture
def store() -> DatasetStore:
    s = DatasetStore()
    s.add_hand_dataset(hand(sample_items()))
    return s


def ids(body: dict) -> list[str]:
    return [f"{a['titleAssociations'][0]['id']}/{a['id']}" for a in body["achievements"]]


# ---------------------------------------------------------------------------------------------
# R1


def test_r1_listing_merge_later_replaces_earlier_in_original_position():
    s = DatasetStore()
    a, b, c = v2_item(T1, 1), v2_item(T1, 2), v2_item(T1, 3)
    s.add_listing(recorded({"titleId": str(T1)}), "en-US",
                  {"achievements": [a, b], "pagingInfo": {"continuationToken": None, "totalRecords": 2}})
    b_later = v2_item(T1, 2, unlocked=datetime(2025, 1, 1, tzinfo=timezone.utc))
    s.add_listing(recorded({"titleId": str(T1)}), "en-US",
                  {"achievements": [c, b_later], "pagingInfo": {"continuationToken": None, "totalRecords": 2}})
    body = s.answer(q2(), NOW).body
    assert body["achievements"] == [a, b_later, c]


def test_r1_identity_is_scid_and_id_in_v2_title_and_id_in_v1():
    s = DatasetStore()
    same_id_other_title = [v2_item(T1, 1), v2_item(T2, 1)]
    s.add_hand_dataset(hand(same_id_other_title))
    s.add_hand_dataset(hand([v1_item(T1, 1), v1_item(T2, 1), v1_item(T1, 1, unlocked=NOW)], shape="V1"))
    assert s.answer(q2(), NOW).body["pagingInfo"]["totalRecords"] == 2
    v1 = s.answer(q2(shape="V1"), NOW).body
    assert [(a["titleId"], a["id"], a["unlocked"]) for a in v1["achievements"]] == [(T1, 1, True), (T2, 1, False)]


def test_r1_compact_v2_entries_expand_to_strict_wire_objects():
    s = DatasetStore()
    s.add_hand_dataset({"xuid": XUID, "titles": [{"id": 1234, "name": "Sample Game", "achievements": [
        {"id": 1, "name": "First Steps", "gamerscore": 10, "unlocked": "2024-01-02T03:04:05Z"},
        {"id": 2, "name": "Collector", "gamerscore": 20, "progress": [3, 5]},
        {"id": 3, "name": "Weekend Event", "type": "Challenge",
         "window": {"start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"}},
        {"id": 4, "rarity": {"currentCategory": "Rare", "currentPercentage": 3.5}},
    ]}]})
    body = s.answer(q2(rarity=True), NOW).body
    VALIDATORS["V2"].validate(body)
    first, second, third, fourth = body["achievements"]
    assert first["serviceConfigId"] == "00000000-0000-0000-0000-0000000004d2"  # derived from 1234
    assert first["id"] == "1" and first["progressState"] == "Achieved"
    assert first["progression"]["timeUnlocked"] == "2024-01-02T03:04:05.0000000Z"
    assert first["rewards"][0]["value"] == "10"
    assert first["titleAssociations"] == [{"name": "Sample Game", "id": 1234}]
    assert second["progressState"] == "InProgress"
    assert (second["progression"]["requirements"][0]["current"], second["progression"]["requirements"][0]["target"]) == ("3", "5")
    assert second["progression"]["timeUnlocked"] == NEVER
    assert third["achievementType"] == "Challenge" and third["timeWindow"]["endDate"].startswith("2026-12-01")
    assert fourth["progressState"] == "NotStarted" and fourth["progression"]["requirements"][0]["current"] is None
    assert fourth["rarity"]["currentPercentage"] == 3.5 and "rarity" not in first


def test_r1_compact_v2_uses_title_scid_lowercased():
    s = DatasetStore()
    s.add_hand_dataset({"xuid": XUID, "titles": [{"id": 5, "scid": "ABCDEF01-0000-0000-0000-000000000005",
                                                   "achievements": [{"id": 1}]}]})
    assert s.answer(q2(), NOW).body["achievements"][0]["serviceConfigId"] == "abcdef01-0000-0000-0000-000000000005"


def test_r1_compact_v1_entries_expand_with_flags():
    s = DatasetStore()
    s.add_hand_dataset({"xuid": XUID, "shape": "V1", "titles": [{"id": 77, "name": "Old", "achievements": [
        {"id": 1, "gamerscore": 5, "unlocked": datetime(2020, 1, 1, tzinfo=timezone.utc)},
        {"id": 2, "gamerscore": 15},
    ]}]})
    body = s.answer(q2(shape="V1"), NOW).body
    VALIDATORS["V1"].validate(body)
    unlocked, locked = body["achievements"]
    assert unlocked["flags"] == 0x8 | 0x1 | 0x20000 | 0x10000 and unlocked["unlocked"] is True
    assert unlocked["timeUnlocked"] == "2020-01-01T00:00:00.0000000Z"
    assert locked["flags"] == 0x8 | 0x1 and locked["unlocked"] is False and locked["timeUnlocked"] == NEVER
    assert (unlocked["id"], unlocked["titleId"], locked["gamerscore"]) == (1, 77, 15)


def test_r1_full_wire_objects_in_hand_dataset_used_as_is(store):
    assert store.answer(q2(rarity=True, max_items=100), NOW).body["achievements"] == sample_items()


@pytest.mark.parametrize("bad", [
    {"id": "x"}, {"id": 1, "type": "Bogus"}, {"id": 1, "unlocked": "yesterday"},
    {"id": 1, "progress": [1]}, {"id": 1, "type": "Persistent", "window": {"start": "2026-01-01T00:00:00Z",
                                                                          "end": "2026-02-01T00:00:00Z"}},
])
def test_r1_malformed_compact_entry_is_rejected(bad):
    with pytest.raises(ValueError):
        DatasetStore().add_hand_dataset({"xuid": XUID, "titles": [{"id": 1, "achievements": [bad]}]})


# ---------------------------------------------------------------------------------------------
# R2 coverage and R9 diagnostics


def _page(items, token, total):
    return {"achievements": items, "pagingInfo": {"continuationToken": token, "totalRecords": total}}


def test_r2_whole_unfiltered_listing_covers_its_title():
    s = DatasetStore()
    s.add_listing(recorded({"titleId": str(T1)}), "en-US", _page([v2_item(T1, 1)], None, 1))
    assert s.answer(q2(title_ids=(T1,)), NOW).violations == []
    other = s.answer(q2(title_ids=(T2,)), NOW)
    assert [v.code for v in other.violations] == ["coverage"] and str(T2) in other.reason


def test_r2_all_pages_of_a_paged_listing_prove_completeness_in_any_recording_order():
    s = DatasetStore()
    items = [v2_item(T1, n) for n in range(5)]
    s.add_listing(recorded({"titleId": str(T1), "maxItems": "2", "continuationToken": "2"}), "en-US",
                  _page(items[2:4], "4", 5))
    s.add_listing(recorded({"titleId": str(T1), "maxItems": "2"}), "en-US", _page(items[:2], "2", 5))
    assert s.answer(q2(title_ids=(T1,)), NOW).violations  # offset 4 still missing
    s.add_listing(recorded({"titleId": str(T1), "skipItems": "4"}), "en-US", _page(items[4:], None, 5))
    ans = s.answer(q2(title_ids=(T1,)), NOW)
    assert ans.violations == [] and ans.body["pagingInfo"]["totalRecords"] == 5


@pytest.mark.parametrize("params", [{"unlockedOnly": "true"}, {"types": "Challenge"}, {"maxItems": "1"}])
def test_r2_filtered_or_truncated_listing_is_not_coverage(params):
    s = DatasetStore()
    token = "1" if "maxItems" in params else None
    s.add_listing(recorded(dict(params, titleId=str(T1))), "en-US", _page([v2_item(T1, 1)], token, 2))
    ans = s.answer(q2(title_ids=(T1,)), NOW)
    assert ans.status == 200 and [v.rule for v in ans.violations] == ["R2"]


def test_r2_listing_without_title_covers_every_title():
    s = DatasetStore()
    s.add_listing(recorded({}), "en-US", _page([v2_item(T1, 1)], None, 1))
    ans = s.answer(q2(title_ids=(T3,)), NOW)
    assert ans.violations == [] and ans.body["pagingInfo"]["totalRecords"] == 0


def test_r2_title_listing_does_not_cover_a_query_over_all_titles():
    s = DatasetStore()
    s.add_listing(recorded({"titleId": str(T1)}), "en-US", _page([v2_item(T1, 1)], None, 1))
    assert [v.code for v in s.answer(q2(), NOW).violations] == ["coverage"]


def test_r2_incomplete_hand_dataset_warns_and_strict_answers_404_naming_xuid_and_title():
    entry = hand([v2_item(T1, 1)], complete=False)
    lenient, strict = DatasetStore(), DatasetStore(strict_coverage=True)
    lenient.add_hand_dataset(entry)
    strict.add_hand_dataset(entry)
    ans = lenient.answer(q2(title_ids=(T1,)), NOW)
    assert ans.status == 200 and ans.body["pagingInfo"]["totalRecords"] == 1
    assert ans.violations[0].severity == "warning" and ans.reason
    denied = strict.answer(q2(title_ids=(T1,)), NOW)
    assert denied.status == 404
    assert str(XUID) in denied.reason and str(T1) in denied.reason
    assert denied.body["errorMessage"] == denied.reason and ("X-Xblreplay-Reason", denied.reason) in denied.headers
    assert strict.answer(q2(title_ids=(T1,)), NOW).violations[0].code == "coverage"


def test_r9_no_dataset_for_xuid_is_404_with_reason_never_an_empty_page(store):
    for q in (q2(xuid=42), q2(shape="V1")):
        ans = store.answer(q, NOW)
        assert ans.status == 404 and ans.reason and set(ans.body) == {"errorCode", "errorMessage"}
        assert any(name == "X-Xblreplay-Reason" for name, _ in ans.headers)
        assert ans.violations[0].code == "no-dataset"


# ---------------------------------------------------------------------------------------------
# R3 filters, R4 orders, R5 paging against the reference


QUERIES = [
    dict(), dict(title_ids=(T1,)), dict(title_ids=(T2, T3)), dict(title_ids=(99,)),
    dict(types=frozenset({"Challenge"})), dict(types=frozenset({"Persistent"}), title_ids=(T2,)),
    dict(unlocked_only=True), dict(possible_only=True), dict(possible_only=True, unlocked_only=True),
]


@pytest.mark.parametrize("order", ["Unordered", "Title", "UnlockTime", "EndingSoon"])
@pytest.mark.parametrize("filters", QUERIES)
def test_r3_r4_filters_and_orders_match_reference(store, order, filters):
    q = q2(order_by=order, max_items=100, **filters)
    assert store.answer(q, NOW).body["achievements"] == reference(sample_items(), "V2", q, NOW)


def test_r4_title_order_by_title_then_numeric_id(store):
    got = ids(store.answer(q2(order_by="Title"), NOW).body)
    assert got == sorted(got, key=lambda s: tuple(int(x) for x in s.split("/")))


def test_r4_unlock_time_ties_keep_dataset_order(store):
    got = ids(store.answer(q2(order_by="UnlockTime"), NOW).body)
    # T1/1 is newest; T2/7, T2/5, T1/9 share a time and keep dataset order (titles grouped)
    assert got[:4] == [f"{T1}/1", f"{T2}/7", f"{T2}/5", f"{T1}/9"]


def test_r4_ending_soon_depends_on_now(store):
    early = ids(store.answer(q2(order_by="EndingSoon"), NOW - 10 * DAY).body)
    late = ids(store.answer(q2(order_by="EndingSoon"), NOW + 1.5 * DAY).body)
    assert early[:4] == [f"{T3}/4", f"{T1}/9", f"{T1}/2", f"{T2}/2"]
    assert late[0] == f"{T2}/2" and late[1:] == [i for i in ids(store.answer(q2(), NOW).body) if i != f"{T2}/2"]


def test_r3_possible_only_strips_user_data_on_a_copy(store):
    body = store.answer(q2(possible_only=True, unlocked_only=True), NOW).body
    assert len(body["achievements"]) == len(sample_items())
    assert all(a["progressState"] == "NotStarted" and a["progression"]["timeUnlocked"] == NEVER
               for a in body["achievements"])
    assert all(r["current"] is None for a in body["achievements"] for r in a["progression"]["requirements"])
    assert store.answer(q2(rarity=True), NOW).body["achievements"] == sample_items()  # dataset untouched


def test_r3_possible_only_v1_clears_unlock_bits():
    s = DatasetStore()
    s.add_hand_dataset(hand([v1_item(T1, 1, unlocked=NOW)], shape="V1"))
    item = s.answer(q2(shape="V1", possible_only=True), NOW).body["achievements"][0]
    assert (item["unlocked"], item["unlockedOnline"], item["timeUnlocked"], item["flags"]) == (False, False, NEVER, 0x9)


@pytest.mark.parametrize("order", ["Unordered", "UnlockTime"])
@pytest.mark.parametrize("size,skip", [(1, 0), (3, 0), (3, 2), (32, 0), (5, 7)])
def test_r5_pages_in_token_order_equal_the_full_result(store, order, size, skip):
    q = q2(order_by=order, max_items=size, skip_items=skip)
    bodies = all_pages(store, q)
    expected = reference(sample_items(), "V2", q, NOW)
    assert [a for b in bodies for a in b["achievements"]] == expected[skip:]
    assert all(b["pagingInfo"]["totalRecords"] == len(expected) for b in bodies)
    assert all(len(b["achievements"]) <= size for b in bodies)


def test_r5_token_is_decimal_offset_and_null_at_the_end(store):
    first = store.answer(q2(max_items=3), NOW).body["pagingInfo"]
    assert first["continuationToken"] == "3"
    last = store.answer(q2(max_items=3, token_offset=6, continuation_token="6"), NOW).body["pagingInfo"]
    assert last["continuationToken"] is None


def test_r5_default_page_size_is_32():
    s = DatasetStore()
    s.add_hand_dataset(hand([v2_item(T1, n) for n in range(40)]))
    body = s.answer(q2(), NOW).body
    assert len(body["achievements"]) == 32 and body["pagingInfo"] == {"continuationToken": "32", "totalRecords": 40}


@pytest.mark.parametrize("start", [8, 9, 1000])
def test_r5_start_at_or_past_end_is_empty_with_true_total(store, start):
    for q in (q2(skip_items=start), q2(token_offset=start, continuation_token=str(start))):
        ans = store.answer(q, NOW)
        assert ans.status == 200
        assert ans.body == {"achievements": [], "pagingInfo": {"continuationToken": None,
                                                               "totalRecords": len(sample_items())}}


def test_r5_token_wins_over_skip_items(store):
    body = store.answer(q2(skip_items=5, token_offset=1, continuation_token="1", max_items=1), NOW).body
    assert body["achievements"] == reference(sample_items(), "V2", q2(), NOW)[1:2]


def test_r5_v1_token_carries_the_reply_version():
    s = DatasetStore()
    version = "2018-03-28T01:28:51.8070000Z"
    s.add_listing(recorded({}, shape="V1"), "en-US", {"achievements": [v1_item(T1, n) for n in range(3)],
                                            "pagingInfo": {"continuationToken": None, "totalRecords": 3},
                                            "version": version})
    body = s.answer(q2(shape="V1", max_items=2), NOW).body
    assert body["version"] == version and body["pagingInfo"]["continuationToken"] == f"2,{version}"
    VALIDATORS["V1"].validate(body)


# ---------------------------------------------------------------------------------------------
# R6, R7


def test_r6_unsupported_contract_is_empty_200_with_warning(store):
    ans = store.answer(q2(shape=None, contract="5"), NOW)
    assert ans.status == 200
    assert ans.body == {"achievements": [], "pagingInfo": {"continuationToken": None, "totalRecords": 0}}
    assert [(v.rule, v.code, v.severity) for v in ans.violations] == [("R6", "contract-version", "warning")]


def test_r6_contract_3_is_contract_1_with_recorded_rarity():
    """R6: contract 3 answers the V1 dataset with the rarity recorded under it; contract 1 drops
    it; nothing else differs."""
    s = DatasetStore()
    items = [v1_item(T1, n) for n in range(3)]
    items[0]["rarity"] = {"currentCategory": "Common", "currentPercentage": 54.56}
    items[2]["rarity"] = {"currentCategory": "Unset", "currentPercentage": 0}
    version = "2026-10-08T18:27:06.2470000Z"
    s.add_listing(recorded({}, shape="V1"), "en-US", {"achievements": items, "version": version,
                                            "pagingInfo": {"continuationToken": None, "totalRecords": 3}})
    one = s.answer(q2(shape="V1", contract="1"), NOW).body
    three = s.answer(q2(shape="V1", contract="3", rarity=True), NOW).body
    assert [a.get("rarity") for a in three["achievements"]] == [items[0]["rarity"], None, items[2]["rarity"]]
    assert not any("rarity" in a for a in one["achievements"])
    stripped = [{k: v for k, v in a.items() if k != "rarity"} for a in three["achievements"]]
    assert {**three, "achievements": stripped} == one
    VALIDATORS["V1"].validate(three)  # R7: the V1 schema accepts rarity as python-xbox parses it
    VALIDATORS["V1"].validate(one)


def test_r1_r6_a_page_without_rarity_keeps_the_rarity_recorded_under_contract_3():
    s = DatasetStore()
    rare = v1_item(T1, 1)
    rare["rarity"] = {"currentCategory": "Rare", "currentPercentage": 4.5}
    page = lambda item: {"achievements": [item], "version": NEVER,
                         "pagingInfo": {"continuationToken": None, "totalRecords": 1}}
    s.add_listing(recorded({}, shape="V1", rarity=True), "en-US", page(rare))
    later = {**v1_item(T1, 1), "name": "Renamed"}  # re-recorded under contract 1: no rarity field
    s.add_listing(recorded({}, shape="V1"), "en-US", page(later))
    (item,) = s.answer(q2(shape="V1", rarity=True), NOW).body["achievements"]
    assert item == {**later, "rarity": rare["rarity"]}
    s.add_listing(recorded({}, shape="V1", rarity=True), "en-US", page(later))  # contract 3: no rarity now
    (item,) = s.answer(q2(shape="V1", rarity=True), NOW).body["achievements"]
    assert item == later


def test_r6_rarity_only_with_contract_4(store):
    plain = store.answer(q2(title_ids=(T1,)), NOW).body["achievements"]
    rare = store.answer(q2(title_ids=(T1,), rarity=True), NOW).body["achievements"]
    assert not any("rarity" in a for a in plain)
    assert [a["id"] for a in rare if "rarity" in a] == ["1"]


def test_r6_locale_exact_then_primary_language_then_first_recorded():
    s = DatasetStore()
    for locale in ("en-US", "fr-CA", "de-DE"):
        s.add_hand_dataset(hand([v2_item(T1, 1, name=f"name-{locale}")], locale=locale))

    def name(*locales):
        return s.answer(q2(locales=locales), NOW).body["achievements"][0]["name"]

    assert name("de-DE", "fr-CA") == "name-de-DE"
    assert name("fr-FR", "de-DE") == "name-de-DE"  # an exact match anywhere in the list wins first
    assert name("fr-FR", "it-IT") == "name-fr-CA"
    assert name("fr") == "name-fr-CA"
    assert name("ja-JP") == "name-en-US" and name() == "name-en-US"


@pytest.mark.parametrize("filters", QUERIES)
def test_r7_bodies_pass_the_response_schema(store, filters):
    for order in ("Unordered", "EndingSoon"):
        for rarity in (False, True):
            VALIDATORS["V2"].validate(store.answer(q2(order_by=order, rarity=rarity, **filters), NOW).body)


# ---------------------------------------------------------------------------------------------
# R8 binding, detail endpoint, read-only views


def test_r8_binding_mismatch_is_403_and_unknown_userhash_passes(store):
    store.add_binding(hashlib.sha256(b"uhs-1").hexdigest(), XUID)
    assert store.check_binding("uhs-1", XUID) is None
    assert store.check_binding("uhs-unknown", 7) is None
    assert store.check_binding(None, 7) is None
    denied = store.check_binding("uhs-1", 7)
    assert denied.status == 403 and denied.body["errorCode"] == 8377 and denied.reason
    assert "uhs-1" not in repr(denied)


def test_detail_returns_one_item_in_list_shape_or_404(store):
    item = next(a for a in sample_items() if a["serviceConfigId"] == scid_of(T1) and a["id"] == "1")
    ans = store.answer_detail(XUID, scid_of(T1).upper(), 1, "V2", ())
    assert ans.body == {"achievements": [{k: v for k, v in item.items() if k != "rarity"}],
                        "pagingInfo": {"continuationToken": None, "totalRecords": 1}}
    missing = store.answer_detail(XUID, scid_of(T1), 999, "V2", ())
    assert missing.status == 404 and missing.reason


def test_read_only_views_report_datasets_and_coverage(store):
    store.add_listing(recorded({"titleId": str(T1), "unlockedOnly": "true"}), "fr-FR",
                      _page([v2_item(T1, 1, unlocked=NOW)], None, 1))
    infos = {(i.locale, i.size) for i in store.datasets()}
    assert infos == {("en-US", len(sample_items())), ("fr-FR", 1)}
    report = {r["locale"]: r for r in store.coverage_report()}
    assert report["en-US"]["titles"][T1] == {"items": 4, "complete": True}
    assert report["fr-FR"]["titles"][T1]["complete"] is False


def test_a_coverage_gap_names_what_reading_it_back_finds():
    from xblreplay.engine.coverage import gap, gap_named

    missing = [1829000000 + n for n in range(10)] + [None]
    assert gap_named(gap(missing, 2533274800000001, "V2", "en-US")) == (
        [(2533274800000001, str(t)) for t in missing[:8]], 3)
    assert gap_named(gap([None], 7, "V1", "fr-FR")) == ([(7, "any other")], 0)
