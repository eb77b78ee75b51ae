"""The API contract (rules/achievements.openapi.yaml) is a valid OpenAPI 3.1 document and its
response schemas accept wire-faithful bodies and reject the R7 traps (spec §8)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

RULES = Path(__file__).resolve().parents[1] / "rules"
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
NEVER = "0001-01-01T00:00:00.0000000Z"
SCID = "00000000-0000-0000-0000-0000000004d2"


def v2_achievement(i: int = 1, *, unlocked: bool = True) -> dict:
    """A V2 achievement as captured on the wire (spec §2.1–2.8)."""
    return {
        "id": str(i),
        "serviceConfigId": SCID,
        "name": f"Achievement {i}",
        "titleAssociations": [{"name": "Sample Game", "id": 1234}],
        "progressState": "Achieved" if unlocked else "NotStarted",
        "progression": {
            "requirements": [{
                "id": "00000000-0000-0000-0000-000000000000",
                "current": "1" if unlocked else None,
                "target": "1",
                "operationType": "Sum",
                "valueType": "Integer",
                "ruleParticipationType": "Individual",
            }],
            "timeUnlocked": "2015-10-26T18:11:03.6689508Z" if unlocked else NEVER,
        },
        "mediaAssets": [{"name": "icon.png", "type": "Icon", "url": "https://images-eds-ssl.xboxlive.com/image?url=x"}],
        "platforms": ["Durango"],
        "isSecret": False,
        "description": "Done it.",
        "lockedDescription": "Do it.",
        "productId": "12345678-1234-1234-1234-123456789abc",
        "achievementType": "Persistent",
        "participationType": "Individual",
        "timeWindow": None,
        "rewards": [{"name": None, "description": None, "value": "10", "type": "Gamerscore",
                     "valueType": "Int", "mediaAsset": None}],
        "estimatedTime": "00:00:00",
        "deeplink": None,
        "isRevoked": False,
    }


def v2_body(n: int = 2, total: int | None = None, token: str | None = None) -> dict:
    return {
        "achievements": [v2_achievement(i + 1, unlocked=i % 2 == 0) for i in range(n)],
        "pagingInfo": {"continuationToken": token, "totalRecords": n if total is None else total},
    }


def v1_body() -> dict:
    """A V1 (Xbox 360-era) reply as captured (spec §2.9)."""
    item = {
        "id": 1, "titleId": 1297290392, "name": "First", "sequence": 0, "flags": 3342345,
        "unlockedOnline": True, "unlocked": True, "isSecret": False, "platform": 15,
        "gamerscore": 10, "imageId": 1, "description": "Done.", "lockedDescription": "Do.",
        "type": 1, "isRevoked": False, "timeUnlocked": "2010-01-02T03:04:05.0000000Z",
    }
    return {
        "achievements": [item],
        "pagingInfo": {"continuationToken": None, "totalRecords": 1},
        "version": NEVER,
    }


@pytest.fixture(scope="module")
def document() -> dict:
    with open(RULES / "achievements.openapi.yaml", encoding="utf-8") as f:
        return yaml.load(f, Loader=LOADER)


def schema_validator(document: dict, name: str) -> Draft202012Validator:
    root = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    Draft202012Validator.check_schema(document["components"]["schemas"][name])
    return Draft202012Validator(root)


@pytest.fixture(scope="module")
def v2(document: dict) -> Draft202012Validator:
    return schema_validator(document, "AchievementsResponseV2")


@pytest.fixture(scope="module")
def v1(document: dict) -> Draft202012Validator:
    return schema_validator(document, "AchievementsResponseV1")


def test_document_is_valid_openapi_31(document: dict) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_document_covers_every_endpoint_and_parameter(document: dict) -> None:
    """Spec §1.2/§1.3/§5: every documented parameter and header is in the contract."""
    paths = document["paths"]
    listing = paths["/users/xuid({xuid})/achievements"]["get"]["parameters"]
    names = {document_ref(document, p)["name"] for p in listing}
    assert names == {
        "xuid", "skipItems", "continuationToken", "maxItems", "titleId", "unlockedOnly",
        "possibleOnly", "types", "orderBy", "x-xbl-contract-version", "Accept-Language",
        "X-RequestedServiceVersion",
    }
    assert "get" in paths["/users/xuid({xuid})/achievements/{scid}/{achievementId}"]
    assert "post" in paths["/users/xuid({xuid})/achievements/{scid}/update"]
    history = paths["/users/xuid({xuid})/history/titles"]["get"]["parameters"]
    assert {document_ref(document, p)["name"] for p in history} >= {"skipItems", "continuationToken", "maxItems"}
    for item in paths.values():
        for op in item.values():
            assert {"400", "401", "403", "404", "429"} <= set(op["responses"])
    scheme = document["components"]["securitySchemes"]["xblToken"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Authorization")


def test_the_engines_orders_and_types_are_the_contracts(document: dict) -> None:
    """R3/R4: the orders and achievement types the engine implements are exactly the enums the
    contract documents, so neither can gain a value the other does not know."""
    from xblreplay.model import ORDERS, TYPES

    listing = document["paths"]["/users/xuid({xuid})/achievements"]["get"]["parameters"]
    params = {p["name"]: p for p in (document_ref(document, p) for p in listing)}
    assert tuple(params["orderBy"]["schema"]["enum"]) == ORDERS
    assert tuple(params["types"]["schema"]["items"]["enum"]) == TYPES


def document_ref(document: dict, obj: dict) -> dict:
    if "$ref" in obj:
        node = document
        for key in obj["$ref"][2:].split("/"):
            node = node[key]
        return node
    return obj


def test_r7_v2_schema_accepts_wire_bodies(v2: Draft202012Validator) -> None:
    assert not list(v2.iter_errors(v2_body(3, total=73, token="32")))
    challenge = v2_achievement(9, unlocked=False)
    challenge["achievementType"] = "Challenge"
    challenge["timeWindow"] = {"startDate": "2013-02-01T00:00:00Z", "endDate": "2100-07-01T00:00:00Z"}
    challenge["rarity"] = {"currentCategory": "Rare", "currentPercentage": 4.5}
    challenge["someFutureField"] = {"x": 1}  # objects stay open to new service fields
    assert not list(v2.iter_errors({"achievements": [challenge], "pagingInfo": {"continuationToken": None, "totalRecords": 1}}))


def _trap(path: list, value: object = None, *, delete: bool = False, add: tuple | None = None) -> dict:
    body = v2_body(1)
    node = body
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    if add:
        node[add[0]] = add[1]
    return body


# trap -> (body, JSON pointer of the instance the schema must blame)
R7_TRAPS = {
    "null requirements": (
        _trap(["achievements", 0, "progression", "requirements"], None),
        "/achievements/0/progression/requirements"),
    "platform string instead of platforms": (
        _trap(["achievements", 0, "platforms"], delete=True, add=("platform", "D")), "/achievements/0"),
    "totalItems instead of totalRecords": (
        _trap(["pagingInfo", "totalRecords"], delete=True, add=("totalItems", 1)), "/pagingInfo"),
    "string title association id": (
        _trap(["achievements", 0, "titleAssociations", 0, "id"], "1234"),
        "/achievements/0/titleAssociations/0/id"),
    "reward without mediaAsset": (
        _trap(["achievements", 0, "rewards", 0, "mediaAsset"], delete=True), "/achievements/0/rewards/0"),
    "null timeUnlocked": (
        _trap(["achievements", 0, "progression", "timeUnlocked"], None),
        "/achievements/0/progression/timeUnlocked"),
    "null estimatedTime": (_trap(["achievements", 0, "estimatedTime"], None), "/achievements/0/estimatedTime"),
    "null isRevoked": (_trap(["achievements", 0, "isRevoked"], None), "/achievements/0/isRevoked"),
    "missing timeWindow": (_trap(["achievements", 0, "timeWindow"], delete=True), "/achievements/0"),
}


@pytest.mark.parametrize("trap", sorted(R7_TRAPS))
def test_r7_v2_schema_rejects_trap(v2: Draft202012Validator, trap: str) -> None:
    body, pointer = R7_TRAPS[trap]
    blamed = {"".join(f"/{p}" for p in e.absolute_path) for e in v2.iter_errors(body)}
    assert blamed == {pointer}


def test_r7_locked_achievement_needs_never_sentinel(v2: Draft202012Validator) -> None:
    """R7: locked timeUnlocked is 0001-01-01T00:00:00.0000000Z; unlocked ones carry a real time."""
    locked = v2_body(2)
    locked["achievements"][1]["progression"]["timeUnlocked"] = "2020-01-01T00:00:00.0000000Z"
    assert list(v2.iter_errors(locked))
    unlocked = v2_body(1)
    unlocked["achievements"][0]["progression"]["timeUnlocked"] = NEVER
    assert list(v2.iter_errors(unlocked))


def test_v1_schema_accepts_capture_and_rejects_v2_traits(v1: Draft202012Validator, v2: Draft202012Validator) -> None:
    assert not list(v1.iter_errors(v1_body()))
    assert list(v2.iter_errors(v1_body()))  # a V1 body is not a V2 body
    string_id = v1_body()
    string_id["achievements"][0]["id"] = "1"
    assert list(v1.iter_errors(string_id))
    no_version = v1_body()
    del no_version["version"]
    assert list(v1.iter_errors(no_version))
    no_flags = v1_body()
    del no_flags["achievements"][0]["flags"]
    assert list(v1.iter_errors(no_flags))


def test_update_request_body_schema(document: dict) -> None:
    """Spec §5: action, serviceConfigId, titleId, userId, achievements[{id, percentComplete 1..100}]."""
    schema = schema_validator(document, "AchievementUpdateRequest")
    good = {"action": "progressUpdate", "serviceConfigId": SCID, "titleId": 1234,
            "userId": "2533274800000001", "achievements": [{"id": "1", "percentComplete": 100}]}
    assert not list(schema.iter_errors(good))
    for percent in (0, 101):
        bad = copy.deepcopy(good)
        bad["achievements"][0]["percentComplete"] = percent
        assert list(schema.iter_errors(bad))
    missing = dict(good)
    del missing["userId"]
    assert list(schema.iter_errors(missing))
