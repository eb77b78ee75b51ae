"""Replayer: loading cassettes into datasets and interactions, recorded latency for fault profiles."""

from __future__ import annotations

import pytest

from xblreplay import DEFAULT_RULES_DIR, cassette
from xblreplay.engine import DatasetStore
from xblreplay.faults import FaultInjector, parse_profile
from xblreplay.replay import Replayer
from xblreplay.contract.validator import Validator

XUID = 2533274800000001
HOST = "https://achievements.xboxlive.com"
AUTH = {"authorization": "XBL3.0 x=1;t", "x-xbl-contract-version": "2"}


def interaction(path: str, latency: float, status: int = 404) -> dict:
    return {"recorded_at": "2026-11-27T12:00:00Z",
            "request": {"method": "GET", "url": HOST + path, "headers": {"x-xbl-contract-version": "2"}},
            "response": {"status": status, "body": {"errorCode": 404, "errorMessage": "x"}, "latency_ms": latency}}


def replayer() -> Replayer:
    validator = Validator.from_rules(DEFAULT_RULES_DIR)
    rp = Replayer(validator, DatasetStore())
    rp.add_document({"xblreplay": 1, "interactions": [
        interaction(f"/users/xuid({XUID})/achievements?titleId=1", 40.0),
        interaction(f"/users/xuid({XUID})/achievements?titleId=2", 100.0),
        interaction(f"/users/xuid({XUID})/achievements?titleId=3", 70.0),
        interaction(f"/users/xuid({XUID})/history/titles", 9.0),
    ]})
    return rp


def test_recorded_latency_is_the_interactions_own_else_the_endpoint_median():
    rp = replayer()
    own = HOST + f"/users/xuid({XUID})/achievements?titleId=2"
    other = HOST + f"/users/xuid({XUID})/achievements?titleId=77&maxItems=5"
    detail = HOST + f"/users/xuid({XUID})/achievements/00000000-0000-0000-0000-000000000001/5"
    assert rp.recorded_latency(rp.validator.check_request("GET", own, AUTH)) == 100.0
    assert rp.recorded_latency(rp.validator.check_request("GET", other, AUTH)) == 70.0  # median 40/70/100
    assert rp.recorded_latency(rp.validator.check_request("GET", detail, AUTH)) is None


def test_recorded_latency_feeds_a_recorded_multiple_profile():
    """A `recorded: 3` profile delays a replayed request by three times what was recorded."""
    rp = replayer()
    url = HOST + f"/users/xuid({XUID})/history/titles"
    check = rp.validator.check_request("GET", url, AUTH)
    faults = FaultInjector(parse_profile({"latency": {"recorded": 3}, "faults": []}))
    assert faults.decide(check.endpoint, rp.recorded_latency(check)).delay_s == pytest.approx(0.027)


def page(ids: list[int], start: int, total: int, title: int = 1) -> dict:
    nxt = start + len(ids)
    return {"achievements": [{"id": str(i), "serviceConfigId": "00000000-0000-4000-8000-000000000001",
                              "titleAssociations": [{"name": "T", "id": title}], "progressState": "NotStarted",
                              "name": f"A{i}"} for i in ids],
            "pagingInfo": {"continuationToken": str(nxt) if nxt < total else None, "totalRecords": total}}


def listing(query: str, body: dict) -> dict:
    return {"recorded_at": "2026-11-27T12:00:00Z",
            "request": {"method": "GET", "url": f"{HOST}/users/xuid({XUID})/achievements?{query}",
                        "headers": {"x-xbl-contract-version": "2", "accept-language": "en-US"}},
            "response": {"status": 200, "body": body}}


def test_r1_pages_merge_in_paging_order_whatever_the_file_order(tmp_path):
    """R1: files keep interactions in URL order ('…Token=100' before '…Token=20'); dataset order
    still follows the pages. Listings with and without titleId recorded in the same second mix."""
    validator = Validator.from_rules(DEFAULT_RULES_DIR)
    ids = list(range(1, 131))
    pages = [listing("titleId=1&maxItems=10" + (f"&continuationToken={s}" if s else ""),
                     page(ids[s:s + 10], s, len(ids))) for s in range(0, 130, 10)]
    pages.sort(key=lambda i: i["request"]["url"])  # the order a file keeps them in
    everything = listing("maxItems=200", page(ids, 0, len(ids)))
    (tmp_path / "c.yaml").write_bytes(cassette.dump({"xblreplay": 1, "interactions": pages + [everything]}))
    rp = Replayer.from_dir(validator, tmp_path)
    url = f"{HOST}/users/xuid({XUID})/achievements?titleId=1&maxItems=200"
    check, answer = rp.handle("GET", url, AUTH)
    assert answer.status == 200
    assert [a["id"] for a in answer.body["achievements"]] == [str(i) for i in ids]


def test_an_engine_refusal_of_a_hand_written_dataset_names_file_and_line(tmp_path):
    """Whatever the schema check lets through and the engine still refuses stops the load with
    FILE:LINE (the dataset's own line), never a bare ValueError."""
    path = tmp_path / "hand.yaml"
    path.write_text("xblreplay: 1\n# a comment\ndatasets:\n  - xuid: 1\n    titles:\n      - {id: 5, achievements: [just text]}\n")
    import yaml
    rp = Replayer(Validator.from_rules(DEFAULT_RULES_DIR), DatasetStore())
    with pytest.raises(cassette.CassetteError) as info:
        rp.add_document(yaml.safe_load(path.read_text()), source=str(path))
    assert (info.value.file, info.value.line) == (str(path), 4)
    assert info.value.reason.startswith("datasets/0: title 5: an achievement must be a mapping")
