"""Title history and progress updates answered from the datasets (achievements-api.md §5), through
the Replayer. Expected values are derived here from the cassette data, never from the engine."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from xblreplay.engine import DatasetStore
from xblreplay.replay import Replayer
from xblreplay.contract.validator import Validator

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "cassettes" / "example"
XUID = 2533274800000001
AUTH = "XBL3.0 x=3141592653589793238;token"
STARFALL, HARBOR, RACER = 1717113201, 1829000002, 1297290392
SCID = "a1b2c3d4-0000-4000-8000-00006659fa71"
NEVER = "0001-01-01T00:00:00.0000000Z"
NOW = datetime(2026, 11, 27, 12, 0, 0, 123456, tzinfo=timezone.utc)
NOW_WIRE = "2026-11-27T12:00:00.1234560Z"  # 7-digit fraction, written out by hand
HOST = "https://achievements.xboxlive.com"


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator.from_rules(REPO / "rules")


@pytest.fixture
def replayer(validator) -> Replayer:
    return Replayer.from_dir(validator, EXAMPLE, now=lambda: NOW)


def example_datasets() -> list[dict]:
    return yaml.safe_load((EXAMPLE / "example.yaml").read_text())["datasets"]


def get(rp: Replayer, path: str, contract: str | None = "2", language: str = "en-US"):
    headers = {"authorization": AUTH, "accept-language": language}
    if contract is not None:
        headers["x-xbl-contract-version"] = contract
    return rp.handle("GET", HOST + path, headers)


def post_update(rp: Replayer, updates: list[tuple[int, int]], *, scid: str = SCID, user: int = XUID,
                xuid: int = XUID, title: int = STARFALL):
    body = {"action": "progressUpdate", "serviceConfigId": scid, "titleId": title, "userId": str(user),
            "achievements": [{"id": str(i), "percentComplete": pct} for i, pct in updates]}
    headers = {"authorization": AUTH, "x-xbl-contract-version": "2", "content-type": "application/json"}
    return rp.handle("POST", f"{HOST}/users/xuid({xuid})/achievements/{scid}/update", headers,
                     json.dumps(body).encode())


def listing(rp: Replayer, query: str, language: str = "en-US") -> dict:
    check, answer = get(rp, f"/users/xuid({XUID})/achievements?{query}", language=language)
    assert answer.status == 200, answer.body
    assert rp.validator.check_response(check, 200, {}, answer.body) == []  # R7
    return answer.body


def item(rp: Replayer, title: int, number: int, language: str = "en-US") -> dict:
    items = listing(rp, f"titleId={title}&maxItems=100", language)["achievements"]
    return next(a for a in items if a["id"] == str(number))


def expected_history(titles: list[dict]) -> list[dict]:
    """The history rows of hand-written titles: titles with an unlock or progress, latest unlock first."""
    rows = []
    for t in titles:
        done = [a for a in t["achievements"] if "unlocked" in a]
        moving = [a for a in t["achievements"] if "progress" in a and "unlocked" not in a]
        if not done and not moving:
            continue
        rows.append({"titleId": t["id"], "name": t["name"], "earned": len(done),
                     "score": sum(a.get("gamerscore", 0) for a in done),
                     "max": sum(a.get("gamerscore", 0) for a in t["achievements"]),
                     "total": len(t["achievements"]),
                     "last": max((a["unlocked"] for a in done), default=NEVER)})
    rows.sort(key=lambda r: r["titleId"])
    rows.sort(key=lambda r: r["last"], reverse=True)
    return rows


# ---------------------------------------------------------------------------------------------
# GET /users/xuid({xuid})/history/titles


def test_history_v2_aggregates_come_from_the_dataset(replayer):
    en = next(d for d in example_datasets() if d["shape"] == "V2" and d["locale"] == "en-US")
    expected = expected_history(en["titles"])
    check, answer = get(replayer, f"/users/xuid({XUID})/history/titles")
    assert answer.status == 200
    body = answer.body
    assert replayer.validator.schema("TitleHistoryResponse").is_valid(body)
    assert body["pagingInfo"] == {"continuationToken": None, "totalRecords": len(expected)}
    assert [t["titleId"] for t in body["titles"]] == [STARFALL, HARBOR]
    for row, want in zip(body["titles"], expected):
        assert row == {
            "lastUnlock": want["last"], "titleId": want["titleId"], "titleVersion": "",
            "serviceConfigId": next(t["scid"] for t in en["titles"] if t["id"] == want["titleId"]),
            "titleType": "LiveApp", "platform": "Durango", "name": want["name"],
            "earnedAchievements": want["earned"], "currentGamerscore": want["score"],
            "maxGamerscore": want["max"],
        }


def test_history_v1_rows_and_version(replayer):
    v1 = next(d for d in example_datasets() if d["shape"] == "V1")
    (want,) = expected_history(v1["titles"])
    _, answer = get(replayer, f"/users/xuid({XUID})/history/titles", contract=None)
    assert answer.status == 200
    assert answer.body["titles"] == [{
        "lastPlayed": want["last"], "currentAchievements": want["earned"],
        "currentGamerscore": want["score"], "sequence": 1, "titleId": RACER, "titleType": 1,
        "platforms": [1], "name": "Classic Racer", "totalAchievements": want["total"],
        "totalGamerscore": want["max"],
    }]
    assert answer.body["version"] == NEVER
    assert answer.body["pagingInfo"] == {"continuationToken": None, "totalRecords": 1}


def test_r6_history_uses_the_requested_locale(replayer):
    _, answer = get(replayer, f"/users/xuid({XUID})/history/titles", language="fr-FR")
    assert [t["titleId"] for t in answer.body["titles"]] == [STARFALL]  # fr-FR has only Starfall


def many_titles_doc() -> dict:
    """Nine titles: unlock-time ties, one with progress only, one never touched."""
    last = ["2026-05-01T00:00:00.0000000Z", "2026-05-01T00:00:00.0000000Z", "2026-01-01T00:00:00.0000000Z",
            None, "2026-09-09T09:09:09.9000000Z", "2026-05-01T00:00:00.0000000Z", "2025-01-01T00:00:00.0000000Z",
            "untouched", "2026-09-09T09:09:09.9000000Z"]
    titles = []
    for n, when in enumerate(last):
        tid = 900 - n * 7  # ids not in unlock or list order
        achievements = [{"id": 1, "gamerscore": 5}, {"id": 2, "gamerscore": 10, "progress": [1, 4]}]
        if when == "untouched":
            achievements = [{"id": 1, "gamerscore": 5}]
        elif when:
            achievements.append({"id": 3, "gamerscore": 15, "unlocked": when})
        titles.append({"id": tid, "name": f"Title {tid}", "achievements": achievements})
    return {"xblreplay": 1, "datasets": [{"xuid": XUID, "shape": "V2", "locale": "en-US", "titles": titles}]}


def test_r5_history_pages_concatenate_to_the_full_ordered_list(validator):
    doc = many_titles_doc()
    rp = Replayer(validator, DatasetStore(), now=lambda: NOW)
    rp.add_document(doc)
    expected = [r["titleId"] for r in expected_history(doc["datasets"][0]["titles"])]
    assert len(expected) == 8  # the untouched title is not listed
    for size in (1, 2, 3, 5, 8, 9):
        seen, token, infos = [], None, []
        for _ in range(20):
            query = f"maxItems={size}" + (f"&continuationToken={token}" if token else "")
            _, answer = get(rp, f"/users/xuid({XUID})/history/titles?{query}")
            assert answer.status == 200
            seen += [t["titleId"] for t in answer.body["titles"]]
            infos.append(answer.body["pagingInfo"])
            token = answer.body["pagingInfo"]["continuationToken"]
            if token is None:
                break
        assert seen == expected, size
        assert {i["totalRecords"] for i in infos} == {8}
        assert [i["continuationToken"] for i in infos[:-1]] == [str(size * k) for k in range(1, len(infos))]
    _, skipped = get(rp, f"/users/xuid({XUID})/history/titles?skipItems=6")
    assert [t["titleId"] for t in skipped.body["titles"]] == expected[6:]
    _, past = get(rp, f"/users/xuid({XUID})/history/titles?skipItems=50")
    assert past.body == {"titles": [], "pagingInfo": {"continuationToken": None, "totalRecords": 8}}
    # The default page size is 32 (R5): everything fits, no token.
    _, default = get(rp, f"/users/xuid({XUID})/history/titles")
    assert default.body["pagingInfo"]["continuationToken"] is None and len(default.body["titles"]) == 8


def test_r8_history_of_another_xuid_than_the_bound_one_is_refused(replayer):
    _, answer = get(replayer, "/users/xuid(2533274800000099)/history/titles")
    assert answer.status == 403


# ---------------------------------------------------------------------------------------------
# POST /users/xuid({xuid})/achievements/{scid}/update


def test_update_unlock_comes_first_in_unlocked_by_unlock_time(replayer):
    query = f"titleId={STARFALL}&unlockedOnly=true&orderBy=UnlockTime"
    before = listing(replayer, query)  # fills the ordered-result caches first
    listing(replayer, f"titleId={STARFALL}&orderBy=UnlockTime")
    get(replayer, f"/users/xuid({XUID})/history/titles")
    assert "6" not in [a["id"] for a in before["achievements"]]

    _, answer = post_update(replayer, [(6, 100)])
    assert (answer.status, answer.body) == (200, None)

    after = listing(replayer, query)
    first = after["achievements"][0]
    assert first["id"] == "6" and first["progressState"] == "Achieved"
    assert first["progression"]["timeUnlocked"] == NOW_WIRE
    req = first["progression"]["requirements"][0]
    assert req["current"] == req["target"]
    assert [a["id"] for a in after["achievements"][1:]] == [a["id"] for a in before["achievements"]]
    assert after["pagingInfo"]["totalRecords"] == before["pagingInfo"]["totalRecords"] + 1
    # Every locale holds the same achievement (R1 datasets per locale).
    assert item(replayer, STARFALL, 6, "fr-FR")["progression"]["timeUnlocked"] == NOW_WIRE
    # The full UnlockTime order puts it first too; locked ones no longer include it.
    full = listing(replayer, f"titleId={STARFALL}&orderBy=UnlockTime")["achievements"]
    assert full[0]["id"] == "6"
    # Title history shows the new progress.
    en = next(d for d in example_datasets() if d["shape"] == "V2" and d["locale"] == "en-US")
    starfall = next(t for t in en["titles"] if t["id"] == STARFALL)
    _, history = get(replayer, f"/users/xuid({XUID})/history/titles")
    row = history.body["titles"][0]
    assert row["titleId"] == STARFALL and row["lastUnlock"] == NOW_WIRE
    assert row["earnedAchievements"] == sum("unlocked" in a for a in starfall["achievements"]) + 1
    assert row["currentGamerscore"] == sum(a["gamerscore"] for a in starfall["achievements"]
                                           if "unlocked" in a or a["id"] == 6)


def test_update_304_when_already_unlocked_or_not_above_stored(replayer):
    assert post_update(replayer, [(6, 100)])[1].status == 200
    repeat = post_update(replayer, [(6, 100)])[1]
    assert (repeat.status, repeat.body) == (304, None)
    assert post_update(replayer, [(1, 100)])[1].status == 304  # unlocked in the cassette
    assert post_update(replayer, [(1, 50)])[1].status == 304
    assert post_update(replayer, [(4, 60)])[1].status == 304  # 5 * 60% = 3, stored 3 of 5
    assert item(replayer, STARFALL, 6)["progression"]["timeUnlocked"] == NOW_WIRE


def test_update_partial_progress_sets_in_progress(replayer):
    _, answer = post_update(replayer, [(4, 80), (17, 41)])  # 3/5 -> 4/5, 40/100 -> 41/100
    assert answer.status == 200
    four, seventeen = item(replayer, STARFALL, 4), item(replayer, STARFALL, 17)
    assert four["progressState"] == "InProgress"
    assert four["progression"]["requirements"][0]["current"] == "4"
    assert four["progression"]["timeUnlocked"] == NEVER
    assert seventeen["progression"]["requirements"][0]["current"] == "41"
    # 12/25 -> 25 * 60% = 15.
    assert post_update(replayer, [(9, 60)])[1].status == 200
    assert item(replayer, STARFALL, 9)["progression"]["requirements"][0]["current"] == "15"
    unlocked = listing(replayer, f"titleId={STARFALL}&unlockedOnly=true")["achievements"]
    assert not {"4", "9", "17"} & {a["id"] for a in unlocked}


def test_update_partial_then_complete_unlocks(replayer):
    assert post_update(replayer, [(10, 100)])[1].status == 200
    ten = item(replayer, STARFALL, 10)
    assert ten["progressState"] == "Achieved"
    assert ten["progression"]["requirements"][0]["current"] == ten["progression"]["requirements"][0]["target"]


def test_r9_update_of_unknown_achievement_scid_or_xuid_is_404(replayer):
    for updates, scid, xuid in (([(99, 100)], SCID, XUID),
                                ([(1, 100)], "a1b2c3d4-0000-4000-8000-0000000000ff", XUID),
                                ([(1, 100)], SCID, 2533274800000099)):
        _, answer = post_update(replayer, updates, scid=scid, xuid=xuid, user=xuid)
        assert answer.status == 404
        assert answer.violations and answer.violations[0].rule == "R9"
        assert dict(answer.headers)["X-Xblreplay-Reason"].startswith("R9")
    # Nothing is applied when one achievement of the body is unknown.
    assert post_update(replayer, [(6, 100), (99, 100)])[1].status == 404
    assert item(replayer, STARFALL, 6)["progressState"] == "NotStarted"


def test_r8_update_with_another_user_id_is_400(replayer):
    _, answer = post_update(replayer, [(6, 100)], user=XUID + 1)
    assert answer.status == 400
    assert answer.body["errorCode"] == 4000
    found = json.loads(dict(answer.headers)["X-Xblreplay-Violations"])
    assert found[0]["rule"] == "R8" and found[0]["name"] == "/userId"
    assert item(replayer, STARFALL, 6)["progressState"] == "NotStarted"


def test_update_also_unlocks_the_v1_item_of_the_title(validator):
    title = {"id": 4242, "name": "Both Eras", "scid": "00000000-0000-0000-0000-000000001092",
             "achievements": [{"id": 1, "gamerscore": 10}, {"id": 2, "gamerscore": 20}]}
    doc = {"xblreplay": 1, "datasets": [
        {"xuid": XUID, "shape": "V2", "titles": [title]},
        {"xuid": XUID, "shape": "V1", "titles": [title]},
    ]}
    rp = Replayer(validator, DatasetStore(), now=lambda: NOW)
    rp.add_document(doc)
    assert post_update(rp, [(2, 100)], scid=title["scid"], title=4242)[1].status == 200
    _, v1 = get(rp, f"/users/xuid({XUID})/achievements?titleId=4242&orderBy=UnlockTime", contract=None)
    first = v1.body["achievements"][0]
    assert (first["id"], first["unlocked"], first["timeUnlocked"]) == (2, True, NOW_WIRE)
    assert first["flags"] & 0x20000 and first["flags"] & 0x10000
    assert v1.body["achievements"][1]["unlocked"] is False
    _, history = get(rp, f"/users/xuid({XUID})/history/titles", contract=None)
    assert history.body["titles"][0]["currentGamerscore"] == 20


def test_update_leaves_every_query_as_a_store_built_with_the_unlock(validator):
    """Cache invalidation: after warming the caches, an unlock answers every query like a store
    loaded from a cassette that already has the unlock."""
    updated = Replayer.from_dir(validator, EXAMPLE, now=lambda: NOW)
    doc = yaml.safe_load((EXAMPLE / "example.yaml").read_text())
    for ds in doc["datasets"]:
        for t in ds["titles"]:
            for a in t["achievements"]:
                if t["id"] == STARFALL and a["id"] == 6 and ds["shape"] == "V2":
                    a["unlocked"] = NOW_WIRE
    fresh = Replayer(validator, DatasetStore(), now=lambda: NOW)
    fresh.add_document(doc)
    queries = [f"{t}unlockedOnly={u}&orderBy={o}&maxItems=7"
               for t in ("", f"titleId={STARFALL}&", f"titleId={STARFALL},{HARBOR}&")
               for u in ("true", "false") for o in ("Unordered", "Title", "UnlockTime", "EndingSoon")]
    queries += ["types=Challenge", "types=Persistent&unlockedOnly=true", "possibleOnly=true"]
    for q in queries:
        listing(updated, q)
    get(updated, f"/users/xuid({XUID})/history/titles")
    assert post_update(updated, [(6, 100)])[1].status == 200
    for q in queries:
        for language in ("en-US", "fr-FR"):
            assert listing(updated, q, language) == listing(fresh, q, language), q
    assert get(updated, f"/users/xuid({XUID})/history/titles")[1].body == \
        get(fresh, f"/users/xuid({XUID})/history/titles")[1].body
