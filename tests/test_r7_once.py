"""R7 of replayed items: each item is checked once per form it is served in, its verdict kept
(a corrupted item is reported on every page that shows it) and forgotten when the item changes;
compact entries are not stored expanded; the fast schema path agrees with jsonschema; the fast
serialisation writes what json.dumps writes."""

from __future__ import annotations

import copy
import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from xblreplay.contract.schema_errors import FastSchema, schema_errors
from xblreplay.contract.validator import Validator
from xblreplay.engine import DatasetStore
from xblreplay.model import EP_LIST, AchievementsQuery, Answer, RequestCheck
from xblreplay.proxy.responses import judge
from xblreplay.proxy.state import FlowState, Reply
from xblreplay.replay import Replayer

REPO = Path(__file__).resolve().parents[1]
REAL = REPO / "tests" / "data" / "real"
XUID = 2533274800000001
TITLE = 1829000002
SCID = "a1b2c3d4-0000-4000-8000-00006d04b6c2"
AUTH = "XBL3.0 x=3141592653589793238;token"
HOST = "https://achievements.xboxlive.com"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator.from_rules(REPO / "rules")


def wire_item(number: int) -> dict:
    """A valid V2 wire item, written out here (not by the engine)."""
    return {
        "id": str(number), "serviceConfigId": SCID, "name": f"Wire {number}",
        "titleAssociations": [{"name": "Harbor", "id": TITLE}],
        "progressState": "NotStarted",
        "progression": {"requirements": [{"id": "00000000-0000-0000-0000-000000000000", "current": None,
                                          "target": "1", "operationType": "Sum", "valueType": "Integer",
                                          "ruleParticipationType": "Individual"}],
                        "timeUnlocked": "0001-01-01T00:00:00.0000000Z"},
        "mediaAssets": [{"name": "Icon", "type": "Icon", "url": None}], "platforms": ["Durango"],
        "isSecret": False, "description": "", "lockedDescription": "",
        "productId": "00000000-0000-0000-0000-000000000000", "achievementType": "Persistent",
        "participationType": "Individual", "timeWindow": None,
        "rewards": [{"name": None, "description": None, "value": "5", "type": "Gamerscore",
                     "valueType": "Int", "mediaAsset": None}],
        "estimatedTime": "00:00:00", "deeplink": None, "isRevoked": False,
        "rarity": {"currentCategory": "Rare", "currentPercentage": 3.5},
    }


def dataset(corrupt: bool = True) -> dict:
    """Items 1-4 compact, 5 a wire item (valid), 6 a wire item whose progressState is not one
    the schema allows (when ``corrupt``), 7-8 compact."""
    bad = wire_item(6)
    if corrupt:
        bad["progressState"] = "Bogus"
    achievements = [{"id": n, "name": f"A{n}", "gamerscore": 5} for n in range(1, 5)]
    achievements += [wire_item(5), bad]
    achievements += [{"id": n, "name": f"A{n}", "gamerscore": 5, "progress": [1, 4]} for n in (7, 8)]
    return {"xuid": XUID, "shape": "V2", "locale": "en-US",
            "titles": [{"id": TITLE, "name": "Harbor", "scid": SCID, "achievements": achievements}]}


class Counting:
    """The validator's item check, counting the items it is asked about (by id and rarity)."""

    def __init__(self, validator: Validator) -> None:
        self.validator, self.asked = validator, Counter()

    def __call__(self, shape: str, items: list) -> list[list[tuple[str, str]]]:
        for item in items:
            item = json.loads(item) if isinstance(item, bytes) else item
            self.asked[(item["id"], "rarity" in item, item.get("progressState"))] += 1
        return self.validator.items_errors(shape, items)


def replayer(validator: Validator, corrupt: bool = True) -> tuple[Replayer, Counting]:
    counting = Counting(validator)
    store = DatasetStore(item_check=counting)
    store.add_hand_dataset(dataset(corrupt))
    return Replayer(validator, store, now=lambda: NOW), counting


def get(rp: Replayer, query: str, contract: str = "2"):
    headers = {"authorization": AUTH, "x-xbl-contract-version": contract, "accept-language": "en-US"}
    return rp.handle("GET", f"{HOST}/users/xuid({XUID})/achievements?{query}", headers)


def r7(violations) -> list[tuple]:
    return [(v.rule, v.location, v.name, v.code) for v in violations]


def test_a_corrupted_item_is_reported_on_every_page_that_shows_it(validator):
    rp, counting = replayer(validator)
    for _ in range(2):
        check, answer = get(rp, "skipItems=4&maxItems=3")
        assert answer.status == 200 and answer.items_checked
        assert [a["id"] for a in answer.body["achievements"]] == ["5", "6", "7"]
        found = validator.check_response(check, 200, {}, answer.body, answer)
        # what the whole-body check names, the same violations: item 6 is at index 1 of the page
        assert found == validator.check_response(check, 200, {}, answer.body)
        assert found and all(v.name.startswith("/achievements/1") for v in found)
        assert {(v.rule, v.location, v.code, v.severity) for v in found} == {
            ("R7", "response", "response-schema", "error")}
    assert counting.asked[("6", False, "Bogus")] == 1  # remembered, not checked again


def test_the_same_item_at_another_index_is_named_by_its_new_place(validator):
    rp, _ = replayer(validator)
    check, answer = get(rp, "skipItems=5&maxItems=2")
    found = validator.check_response(check, 200, {}, answer.body, answer)
    assert found and all(v.name.startswith("/achievements/0") for v in found)
    assert found == validator.check_response(check, 200, {}, answer.body)


def test_a_valid_item_is_checked_once_per_form(validator):
    rp, counting = replayer(validator, corrupt=False)
    for _ in range(3):
        check, answer = get(rp, "maxItems=100")
        assert validator.check_response(check, 200, {}, answer.body, answer) == []
    assert set(counting.asked.values()) == {1} and len(counting.asked) == 8
    get(rp, "maxItems=100", contract="4")  # with rarity: item 5 is another form
    assert counting.asked[("5", True, "NotStarted")] == 1
    assert sum(counting.asked.values()) == 16
    get(rp, "maxItems=100&possibleOnly=true")  # definitions
    get(rp, "maxItems=100&possibleOnly=true")
    assert sum(counting.asked.values()) == 24


def test_a_progress_update_has_the_item_checked_again(validator):
    rp, counting = replayer(validator, corrupt=False)
    get(rp, "maxItems=100")
    body = {"action": "progressUpdate", "serviceConfigId": SCID, "titleId": TITLE, "userId": str(XUID),
            "achievements": [{"id": "7", "percentComplete": 100}]}
    headers = {"authorization": AUTH, "x-xbl-contract-version": "2", "content-type": "application/json"}
    _, updated = rp.handle("POST", f"{HOST}/users/xuid({XUID})/achievements/{SCID}/update", headers,
                           json.dumps(body).encode())
    assert updated.status == 200
    get(rp, "maxItems=100")
    assert counting.asked[("7", False, "Achieved")] == 1
    assert counting.asked[("8", False, "InProgress")] == 1  # untouched: not checked again


def test_a_recorded_page_replacing_an_item_has_it_checked_again(validator):
    rp, counting = replayer(validator)
    get(rp, "maxItems=100")
    assert counting.asked[("6", False, "Bogus")] == 1
    query = AchievementsQuery(xuid=XUID, shape="V2", max_items=100, rarity=True)
    rp.store.add_listing(query, "en-US", {"achievements": [wire_item(6)],
                                          "pagingInfo": {"continuationToken": None, "totalRecords": 1}})
    check, answer = get(rp, "maxItems=100")
    assert validator.check_response(check, 200, {}, answer.body, answer) == []  # the repaired item
    assert counting.asked[("6", False, "NotStarted")] == 1


def test_detail_answers_carry_their_items_findings(validator):
    rp, counting = replayer(validator)
    headers = {"authorization": AUTH, "x-xbl-contract-version": "2"}
    for _ in range(2):
        check, answer = rp.handle("GET", f"{HOST}/users/xuid({XUID})/achievements/{SCID}/6", headers)
        assert answer.status == 200 and answer.items_checked
        found = validator.check_response(check, 200, {}, answer.body, answer)
        assert found and found == validator.check_response(check, 200, {}, answer.body)
    assert counting.asked[("6", False, "Bogus")] == 1


def test_the_proxy_response_check_reports_the_corrupted_item(validator):
    rp, counting = replayer(validator)
    config = SimpleNamespace(settings=SimpleNamespace(check_responses=True, max_body=1 << 20),
                             validator=validator, recorder=None, faults=None, replayer=rp)
    seen = []
    for _ in range(2):
        check, answer = get(rp, "skipItems=4&maxItems=3")
        state = FlowState(check=check, method="GET", url="", headers={}, started=0.0, source="dataset",
                          answer=answer)
        reply = Reply(200, {}, answer.body_bytes(), streamed=False, ended=None)
        assert judge(config, state, reply, lambda: reply.raw) is None
        seen.append(r7(v for v in state.violations if v.rule == "R7"))
    assert seen[0] and seen[0] == seen[1]
    assert seen[0] == r7(validator.check_response(check, 200, {}, json.loads(reply.raw)))
    assert counting.asked[("6", False, "Bogus")] == 1


def test_an_answer_whose_body_is_not_the_one_checked_is_checked_whole(validator):
    rp, _ = replayer(validator)
    check, answer = get(rp, "skipItems=4&maxItems=3")
    other = copy.deepcopy(answer.body)
    other["achievements"][0]["isSecret"] = "no"
    found = validator.check_response(check, 200, {}, other, answer)
    assert "/achievements/0/isSecret" in {v.name for v in found}


def test_compact_entries_are_not_stored_expanded(validator):
    rp, _ = replayer(validator)
    for start in range(0, 8, 2):
        assert get(rp, f"skipItems={start}&maxItems=2")[1].status == 200
    (ds,) = rp.store._datasets.values()
    assert sorted(ds._wire) == [4, 5]  # wire objects: the two recorded items only; the rest stay rows


# -- the fast schema path agrees with jsonschema


def real_bodies() -> list[tuple[str, dict]]:
    return [(p.name, json.loads(p.read_text())) for p in sorted(REAL.glob("*.json"))
            if "achievements" in json.loads(p.read_text())]


def shape_of(body: dict) -> str:
    return "V1" if "version" in body else "V2"


def schemas(validator: Validator, shape: str) -> tuple[FastSchema, FastSchema]:
    whole = validator.schema(f"AchievementsResponse{shape}").schema
    item = {**whole["properties"]["achievements"]["items"], "components": whole.get("components", {})}
    return FastSchema(whole), FastSchema(item)


def corruptions(item: dict) -> list[dict]:
    """Items the schema refuses, or may: each key dropped, each value of another type, nested
    values replaced, and values no JSON parser would hand over."""
    out = []
    for key in item:
        out.append({k: v for k, v in item.items() if k != key})
        for wrong in (None, 7, "x", [], {}, True, 2 ** 70, 1.5):
            out.append({**item, key: wrong})
    out.append({**item, "id": "12\udcff"})
    for key, value in item.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            for inner in value[0]:
                out.append({**item, key: [{**value[0], inner: {"nested": [1]}}]})
    return out


def test_fast_and_python_schemas_agree_on_real_bodies_and_corrupted_items(validator):
    bodies = real_bodies()
    assert len(bodies) >= 5
    compared = Counter()
    for name, body in bodies:
        whole, item_schema = schemas(validator, shape_of(body))
        assert whole.valid(body) == whole.schema.is_valid(body) is True, name
        for item in body["achievements"][:5]:
            assert item_schema.valid(item) and item_schema.schema.is_valid(item)
            for bad in corruptions(item):
                fast, python = item_schema.valid(bad), item_schema.schema.is_valid(bad)
                compared[(fast, python)] += 1
                assert fast == python, (name, bad)
                assert item_schema.errors(bad) == schema_errors(item_schema.schema, bad)
                wrapped = {**body, "achievements": [bad]}
                assert whole.valid(wrapped) == whole.schema.is_valid(wrapped), name
    assert compared[(False, False)] > 100 and compared[(True, True)] > 10


@pytest.mark.parametrize("change", [{"id": "123\n"}, {"estimatedTime": "٠٠:٠٠:٠٠"}, {5: "a key that is not a string"}])
def test_where_the_validators_differ_python_decides(validator, change):
    """Python's re lets $ match before a final newline and \\d match any Unicode digit; the
    Rust engine does neither, and cannot read a key that is not a string: it refuses, and the
    verdict and findings are Python's (here: valid)."""
    _, item_schema = schemas(validator, "V2")
    item = {**wire_item(1), **change}
    assert not item_schema.valid(item) and item_schema.schema.is_valid(item)
    assert item_schema.errors(item) == schema_errors(item_schema.schema, item) == []


# -- serialisation


@pytest.mark.parametrize("name", [p.name for p in sorted(REAL.glob("*.json"))])
def test_body_bytes_is_json_dumps_on_real_bodies(name):
    body = json.loads((REAL / name).read_text())
    assert Answer(200, body).body_bytes() == json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


@pytest.mark.parametrize("body", [
    {"a": 0.00012}, {"a": 1e16, "b": 1e22}, {"a": 12.5, "b": [0.1, 100.0, -0.0, 5e-324]},
    {"big": 2 ** 70}, {"neg": -(2 ** 64)}, {1: "int key"}, {"é": "ü\u2028</script>"},
    {"text": "looks like 0.00001, e-5] and 1e-7}"},
])
def test_body_bytes_is_json_dumps_on_awkward_values(body):
    assert Answer(200, body).body_bytes() == json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


@pytest.mark.parametrize("body", [{"a": 1.5e-5}, {"a": [-3e-7, 2.5e-9]}, 1e-6, [1e-5, 0.00001234]])
def test_body_bytes_of_floats_below_1e_4_is_the_same_json_value(body):
    """Such floats are the one spelling orjson and json.dumps differ on (0.000015 for 1.5e-05):
    the value read back is the same number, of the same type."""
    out = Answer(200, body).body_bytes()
    assert out != json.dumps(body, separators=(",", ":")).encode()  # the documented difference
    assert json.loads(out) == body and json.dumps(json.loads(out)) == json.dumps(body)


def test_body_bytes_refuses_a_lone_surrogate_as_before():
    with pytest.raises(UnicodeEncodeError):
        Answer(200, {"a": "\udcff"}).body_bytes()


def test_a_recorded_page_from_the_service_is_checked_whole(validator):
    (name, body), *_ = [(n, b) for n, b in real_bodies() if shape_of(b) == "V2"]
    check = RequestCheck(EP_LIST, query=AchievementsQuery(xuid=XUID, shape="V2"))
    assert validator.check_response(check, 200, {}, body) == [], name
    bad = copy.deepcopy(body)
    bad["achievements"][-1]["progressState"] = "Bogus"
    found = validator.check_response(check, 200, {}, bad)
    assert r7(found) == [("R7", "response", f"/achievements/{len(bad['achievements']) - 1}/progressState",
                          "response-schema")]


def test_items_checked_together_get_what_each_gets_alone(validator):
    good, bad = wire_item(1), wire_item(2)
    bad["progressState"], bad["isSecret"] = "Bogus", "no"
    huge = dict(wire_item(3), id=str(2**70))
    items = [good, json.dumps(bad).encode(), bad, json.dumps(good).encode(), huge]
    together = validator.items_errors("V2", items)
    alone = [validator.item_errors("V2", json.loads(i) if isinstance(i, bytes) else i) for i in items]
    assert together == alone
    assert [bool(f) for f in together] == [False, True, True, False, False]
    assert validator.items_errors("V2", [good, json.dumps(good).encode()]) == [[], []]


def test_a_compact_item_written_from_the_template_that_fails_the_schema_is_reported(validator):
    # V1 ids stop at 4294967295 (the contract): an id of 2**40 fits the columns and the byte
    # template, so the page is written without a dict, and its check still names the item.
    entry = {"xuid": XUID, "shape": "V1", "titles": [{"id": TITLE, "name": "Harbor", "achievements": [
        {"id": 1, "name": "fine"}, {"id": 2**40, "name": "too large for V1"}]}]}
    store = DatasetStore()
    store.add_hand_dataset(entry)
    rp = Replayer(validator, store, now=lambda: NOW)
    check, answer = get(rp, "maxItems=10", contract="1")
    assert answer.status == 200 and answer.page is not None and answer.items_checked
    found = validator.check_response(check, 200, {}, answer.page, answer)
    assert [v.name for v in found] == ["/achievements/1/id"]
    assert found == validator.check_response(check, 200, {}, answer.body)
