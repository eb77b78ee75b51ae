"""One reading of a request, end to end through real mitmdump processes: what recording keeps
(coverage, caller bindings, exact interactions) is what replay reads back.

* R2: ``titleId=1&titleId=2`` is the service's ``titleId=1,2``: recording it covers both titles.
* R8: an ``xbl3.0`` (lowercase scheme) Authorization passes validation and binds the caller.
* Exact replay keys count the contract version and Accept-Language, as recording does.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

import pytest

import refservice
from proxyharness import XUID, Mitmdump, SilentListener, Upstream, read_log

pytestmark = pytest.mark.e2e

BASE = f"/users/xuid({XUID})/achievements"
TITLES = {101: 5, 202: 4}


def joined_titles_handler(items: list[dict]):
    """The service's binder joins a repeated parameter with commas; refservice reads one value."""
    def serve(method, path, headers, body):
        parts = urlsplit(path)
        pairs = parse_qsl(parts.query)
        titles = ",".join(v for k, v in pairs if k == "titleId")
        rest = [(k, v) for k, v in pairs if k != "titleId"]
        query = "&".join([f"titleId={titles}"] * bool(titles) + [f"{k}={v}" for k, v in rest])
        answer = refservice.answer(items, f"{parts.path}?{query}")
        return 200, {"Content-Type": "application/json"}, json.dumps(answer).encode()
    return serve


def test_r2_repeated_title_id_records_coverage_of_every_title(tmp_path):
    items = refservice.make_dataset(3, TITLES)
    cassettes = tmp_path / "cassettes"
    with Upstream(joined_titles_handler(items)) as up:
        with Mitmdump(tmp_path, achievements_mode="record", achievements_upstream=up.url,
                      achievements_cassettes=cassettes) as proxy:
            recorded = proxy.request(f"{BASE}?titleId=101&titleId=202&maxItems=100")
    assert recorded.status == 200 and recorded.json()["pagingInfo"]["totalRecords"] == 9
    # Replay with strict coverage: a query for either title alone is proven complete.
    with SilentListener() as silent:
        with Mitmdump(tmp_path, achievements_mode="replay", achievements_cassettes=cassettes,
                      achievements_upstream=silent.url, achievements_strict_coverage=True) as proxy:
            replies = {t: proxy.request(f"{BASE}?titleId={t}&orderBy=Title") for t in TITLES}
    assert silent.accepted == 0
    for title, reply in replies.items():
        assert reply.status == 200, (title, reply.body)
        assert "x-xblreplay-warning" not in reply.headers
        assert reply.json() == refservice.answer(items, f"{BASE}?titleId={title}&orderBy=Title")


def test_r8_lowercase_scheme_binds_the_caller_when_recorded(tmp_path):
    items = refservice.make_dataset(4, {101: 3})
    cassettes = tmp_path / "cassettes"
    auth = "xbl3.0 x=7777777777777777777;eyJhbGciOiJSUzI1NiJ9.dGVzdA.c2ln"
    with Upstream(refservice.handler(items)) as up:
        with Mitmdump(tmp_path, achievements_mode="record", achievements_upstream=up.url,
                      achievements_cassettes=cassettes, achievements_log=tmp_path / "record.jsonl") as proxy:
            assert proxy.request(f"{BASE}?titleId=101", auth=auth).status == 200
    entries, _ = read_log(tmp_path / "record.jsonl")
    assert entries[0]["violations"] == []  # the scheme is case-insensitive, as HTTP's are
    docs = [json.loads(p.read_text().split("\n", 1)[1]) for p in cassettes.rglob("*.yaml")]
    assert [b["xuid"] for d in docs for b in d.get("bindings", [])] == [XUID]
    with Mitmdump(tmp_path, achievements_mode="replay", achievements_cassettes=cassettes) as proxy:
        own = proxy.request(f"{BASE}?titleId=101", auth=auth)
        other = proxy.request("/users/xuid(2533274800000099)/achievements?titleId=101", auth=auth)
    assert own.status == 200
    assert other.status == 403, other.body  # the recorded binding refuses another xuid


def test_exact_replay_keys_count_contract_version_and_language(tmp_path):
    """A path no dataset answers is replayed from the exact interaction: a V1 and a V2 (and a
    French) recording of one URL stay apart, in the recording and in replay."""
    path = f"/users/xuid({XUID})/titleachievements?titleId=101"

    def serve(method, p, headers, body):
        reply = {"contract": headers.get("x-xbl-contract-version"), "lang": headers.get("accept-language")}
        return 200, {"Content-Type": "application/json"}, json.dumps(reply).encode()

    variants = [("1", "en-US"), ("2", "en-US"), ("2", "fr-FR")]
    cassettes = tmp_path / "cassettes"
    with Upstream(serve) as up:
        with Mitmdump(tmp_path, achievements_mode="record", achievements_upstream=up.url,
                      achievements_cassettes=cassettes) as proxy:
            for contract, lang in variants:
                assert proxy.request(path, {"Accept-Language": lang}, contract=contract).status == 200
    with SilentListener() as silent:
        with Mitmdump(tmp_path, achievements_mode="replay", achievements_cassettes=cassettes,
                      achievements_upstream=silent.url) as proxy:
            replies = {v: proxy.request(path, {"Accept-Language": v[1]}, contract=v[0]) for v in variants}
            unknown = proxy.request(path, {"Accept-Language": "de-DE"}, contract="2")
    assert silent.accepted == 0
    for (contract, lang), reply in replies.items():
        assert reply.status == 200, reply.body
        assert reply.json() == {"contract": contract, "lang": lang}
    # R6 for exact interactions: an Accept-Language never recorded gets the first recorded one, and says so.
    assert unknown.status == 200 and unknown.json() == {"contract": "2", "lang": "en-US"}
    assert "default locale en-US" in unknown.headers["x-xblreplay-reason"]
