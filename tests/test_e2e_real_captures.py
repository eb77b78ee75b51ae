"""End-to-end with bodies captured from the live service (tests/data/real, PROVENANCE.md there).

Each real body is served by a local upstream at the URL the public client that captured it
requests, with the contract version that client sends, and recorded through a real mitmdump in
record mode. A recording is lossless: nothing in these bodies is a secret, so every value reaches
the cassette exactly as the service sent it (long ids, `<guid>.png` asset names, `…_persona`
reward values included); replay gives back exactly what was recorded for a recorded request; and
semantic answers over the recorded data (other page sizes, offsets, orders, filters, contract
versions: R1, R3–R6) carry the service's field values untouched.

What is removed from a body is only what is verifiably a secret: the request's own credentials,
and real credentials such as a JWT (first segment decodes to a JSON header with `alg`) or an
`XBL3.0 x=…;…` authorization value. Each removal is reported with its JSON pointer in the
validation log entry (`"redactions": [{"path", "what"}]`) and counted in the exit summary
(`"redactions": N`).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from proxyharness import (XUID, Mitmdump, Reply, SilentListener, Upstream, cassette_documents,
                          printed_summary, read_log)

pytestmark = pytest.mark.e2e

DATA = Path(__file__).parent / "data" / "real"
SERVICE = "https://achievements.xboxlive.com"
# The xbox-webapi captures come from one account, python-xbox's own captures from another; they
# are recorded under two xuids so that each dataset holds one account's data only.
XUID_WEBAPI = XUID
XUID_PYXBOX = XUID + 1
PROBE_XUID = XUID + 2

H5 = 219630713  # Halo 5: Guardians (the Xbox One captures)
H5_SCID = "1370999b-fca2-4c53-8ec5-73493bcb67e5"
HEXIC = 1297290392  # the Xbox 360 title of the 360 "all" and "earned" captures
RECENT_UNLOCKS = "achievements?unlockedOnly=true&orderBy=UnlockTime&maxItems=32"  # python-xbox


@dataclass(frozen=True)
class Capture:
    file: str  # in tests/data/real
    xuid: int
    path: str  # after /users/xuid(N)/, with the query exactly as the client library sends it
    contract: str  # the x-xbl-contract-version the client library sends

    @property
    def url_path(self) -> str:
        return f"/users/xuid({self.xuid})/{self.path}"

    @property
    def body(self) -> bytes:
        return (DATA / self.file).read_bytes()

    def json(self) -> dict:
        return json.loads(self.body)


CAPTURES = {
    # xbox-webapi 2.1: contract 2 for Xbox One calls, 1 for Xbox 360 calls.
    "one_gameprogress": Capture("achievements_one_gameprogress.json", XUID_WEBAPI, f"achievements?titleId={H5}", "2"),
    "one_details": Capture("achievements_one_details.json", XUID_WEBAPI, f"achievements/{H5_SCID}/39", "2"),
    "one_recent_progress": Capture("achievements_one_recent_progress.json", XUID_WEBAPI, "history/titles", "2"),
    "360_all": Capture("achievements_360_all.json", XUID_WEBAPI, f"titleachievements?titleId={HEXIC}", "1"),
    "360_earned": Capture("achievements_360_earned.json", XUID_WEBAPI, f"achievements?titleId={HEXIC}", "1"),
    "360_recent_progress": Capture("achievements_360_recent_progress.json", XUID_WEBAPI, "history/titles", "1"),
    # python-xbox 0.4.0: contract 4 for Xbox One calls, 3 for Xbox 360 calls.
    "360_recent_unlocks": Capture("achievements_360_recent_unlocks.json", XUID_PYXBOX, RECENT_UNLOCKS, "3"),
    "one_recent_unlocks": Capture("achievements_one_recent_unlocks.json", XUID_PYXBOX, RECENT_UNLOCKS, "4"),
}
BY_REQUEST = {(c.url_path, c.contract): c for c in CAPTURES.values()}
USERHASH = {x: str(secrets.randbelow(9 * 10**18) + 10**18) for x in (XUID_WEBAPI, XUID_PYXBOX, PROBE_XUID)}


def credentials(xuid: int, sent: list[str]) -> dict[str, str]:
    """Fresh Authorization (the account's userhash, a random token) and Signature headers; the
    secrets go to `sent`."""
    token = secrets.token_urlsafe(48)
    signature = base64.b64encode(os.urandom(76)).decode()
    sent += [USERHASH[xuid], token, signature]
    return {"Authorization": f"XBL3.0 x={USERHASH[xuid]};{token}", "Signature": signature}


def serve_captures(method: str, path: str, headers: dict[str, str], body: bytes):
    capture = BY_REQUEST.get((path, headers.get("x-xbl-contract-version")))
    if method != "GET" or capture is None:
        return 404, {"Content-Type": "application/json"}, b'{"errorCode":404,"errorMessage":"no capture"}'
    return 200, {"Content-Type": "application/json; charset=utf-8"}, capture.body


def changed_paths(a, b, path: str = "") -> set[str]:
    """JSON pointers where `b` differs from `a` (a key present on one side only counts)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: set[str] = set()
        for k in a.keys() | b.keys():
            p = f"{path}/{str(k).replace('~', '~0').replace('/', '~1')}"
            out |= {p} if k not in a or k not in b else changed_paths(a[k], b[k], p)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return set().union(*(changed_paths(x, y, f"{path}/{i}") for i, (x, y) in enumerate(zip(a, b))))
    return set() if type(a) is type(b) and a == b else {path or "/"}


def recorded_interactions(cassettes: Path) -> list[dict]:
    return [i for _, doc in cassette_documents(cassettes) for i in doc.get("interactions") or ()]


def recorded_path(interaction: dict) -> str:
    url = urlsplit(interaction["request"]["url"])
    assert f"{url.scheme}://{url.netloc}" == SERVICE, interaction["request"]["url"]
    return url.path + (f"?{url.query}" if url.query else "")


# --------------------------------------------------------------------------------------------
# Recording and replaying the real captures (two mitmdump runs for the whole module)


@dataclass
class Run:
    work: Path
    cassettes: Path
    log: Path
    output: str = ""
    replies: dict = field(default_factory=dict)
    sent: list[str] = field(default_factory=list)  # every secret the client sent
    accepted: int = 0  # connections the upstream stand-in accepted (replay)


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Run:
    work = tmp_path_factory.mktemp("real-record")
    run = Run(work, work / "cassettes", work / "record.jsonl")
    with Upstream(serve_captures) as up:
        with Mitmdump(work, achievements_mode="record", achievements_upstream=up.url,
                      achievements_cassettes=run.cassettes, achievements_log=run.log) as proxy:
            for key, c in CAPTURES.items():
                run.replies[key] = proxy.request(c.url_path, credentials(c.xuid, run.sent), contract=c.contract)
        run.output = proxy.stop()
    assert len(up.requests) == len(CAPTURES), run.output
    return run


def expected_items(capture: Capture, query: str, contract: str) -> list[dict]:
    """R3–R5 applied to the items of one real capture (in recorded order, R1), as full wire
    objects; rarity only under contracts 3 and 4 (R6)."""
    items = capture.json()["achievements"]
    v2 = "serviceConfigId" in items[0]
    q = {k.lower(): v for k, v in parse_qsl(query)}

    def title(a):
        return a["titleAssociations"][0]["id"] if v2 else a["titleId"]

    def unlocked(a):
        return a["progressState"] == "Achieved" if v2 else a["unlocked"] is True

    def when(a):
        return a["progression"]["timeUnlocked"] if v2 else a["timeUnlocked"]

    rows = list(items)
    if "titleid" in q:
        rows = [a for a in rows if title(a) in {int(t) for t in q["titleid"].split(",")}]
    if "types" in q:
        rows = [a for a in rows if a["achievementType"].lower() in {t.lower() for t in q["types"].split(",")}]
    if q.get("unlockedonly", "").lower() == "true":
        rows = [a for a in rows if unlocked(a)]
    order = q.get("orderby", "unordered").lower()
    if order == "title":
        rows = sorted(rows, key=lambda a: (title(a), int(a["id"])))
    elif order == "unlocktime":
        rows = sorted((a for a in rows if unlocked(a)), key=when, reverse=True) + [a for a in rows if not unlocked(a)]
    token = q.get("continuationtoken")
    start = int(token.split(",")[0]) if token else int(q.get("skipitems", 0))
    rows = rows[start:start + int(q.get("maxitems", 32))]
    if contract in ("1", "2"):
        rows = [{k: v for k, v in a.items() if k != "rarity"} for a in rows]
    return rows


# (capture whose items answer, query, contract, coverage proven by the recording)
SEMANTIC = [
    ("one_gameprogress", f"titleId={H5}&maxItems=5", "2", False),
    ("one_gameprogress", f"titleId={H5}&skipItems=10&maxItems=7", "2", False),
    ("one_gameprogress", f"titleId={H5}&maxItems=10&continuationToken=20", "2", False),
    ("one_gameprogress", f"titleId={H5}&orderBy=UnlockTime&maxItems=14", "2", False),
    ("one_gameprogress", f"titleId={H5}&orderBy=Title&maxItems=50", "2", False),
    ("one_gameprogress", f"titleId={H5}&unlockedOnly=true", "2", False),
    ("one_gameprogress", f"titleId={H5}&types=Persistent&skipItems=29&maxItems=3", "2", False),
    ("one_gameprogress", f"titleId={H5}&orderBy=unlocktime&skipItems=12&maxItems=8", "4", False),
    ("one_recent_unlocks", "titleId=1828326430", "4", False),
    ("one_recent_unlocks", "titleId=2079757188&orderBy=Title", "4", False),
    ("one_recent_unlocks", "titleId=2079757188,1828326430&orderBy=UnlockTime&maxItems=3", "2", False),
    ("360_recent_unlocks", "titleId=1297287339", "3", False),
    ("360_recent_unlocks", "titleId=1161890141&orderBy=Title", "3", False),
    ("360_recent_unlocks", "titleId=1297287339&orderBy=Title&maxItems=2", "1", False),
    ("360_recent_unlocks", "orderBy=UnlockTime&skipItems=1&maxItems=3", "3", False),
    ("360_earned", f"titleId={HEXIC}&unlockedOnly=true&orderBy=UnlockTime", "1", True),
]


def semantic_path(key: str, query: str) -> str:
    return f"/users/xuid({CAPTURES[key].xuid})/achievements?{query}"


@pytest.fixture(scope="module")
def replay(recording: Run) -> Run:
    run = Run(recording.work, recording.cassettes, recording.work / "replay.jsonl")
    with SilentListener() as silent:
        with Mitmdump(recording.work, achievements_mode="replay", achievements_cassettes=recording.cassettes,
                      achievements_upstream=silent.url, achievements_log=run.log) as proxy:
            for key, c in CAPTURES.items():
                run.replies[key] = proxy.request(c.url_path, credentials(c.xuid, run.sent), contract=c.contract)
            for key, query, contract, _ in SEMANTIC:
                run.replies[(key, query, contract)] = proxy.request(
                    semantic_path(key, query), credentials(CAPTURES[key].xuid, run.sent), contract=contract)
        run.output = proxy.stop()
    run.accepted = silent.accepted
    return run


def test_record_passes_every_real_answer_through_unchanged(recording):
    for key, c in CAPTURES.items():
        reply = recording.replies[key]
        assert reply.status == 200, (key, reply.body[:300], recording.output[-3000:])
        assert reply.body == c.body, key


def test_record_real_bodies_reach_disk_without_any_redaction(recording):
    files = [p for p in recording.cassettes.rglob("*") if p.is_file()]
    assert files, recording.output[-3000:]
    blob = b"".join(p.read_bytes() for p in files)
    assert b"<redacted>" not in blob, [
        (str(p.relative_to(recording.cassettes)), p.read_bytes().count(b"<redacted>"))
        for p in files if b"<redacted>" in p.read_bytes()]
    for secret in recording.sent:
        assert secret.encode() not in blob
    assert "not recorded" not in recording.output, recording.output[-3000:]


def test_record_cassettes_hold_every_real_body_as_served(recording):
    seen: dict[str, int] = {}
    for interaction in recorded_interactions(recording.cassettes):
        request, response = interaction["request"], interaction["response"]
        contract = str((request.get("headers") or {}).get("x-xbl-contract-version"))
        capture = BY_REQUEST.get((recorded_path(interaction), contract))
        assert capture is not None, (request["url"], contract)
        key = next(k for k, c in CAPTURES.items() if c is capture)
        seen[key] = seen.get(key, 0) + 1
        assert response["status"] == 200, key
        assert "body" in response, (key, sorted(response))
        served = capture.json()
        assert response["body"] == served, (key, sorted(changed_paths(served, response["body"]))[:20])
    assert seen == {k: 1 for k in CAPTURES}


def test_record_log_reports_no_redaction_for_real_bodies(recording):
    entries, summary = read_log(recording.log)
    assert len(entries) == len(CAPTURES)
    for entry in entries:
        assert not entry.get("redactions"), (entry["url"], entry.get("redactions"))
    assert summary is not None and summary.get("redactions", 0) == 0, summary


def test_replay_of_real_captures_opens_no_connection(replay):
    assert replay.accepted == 0, replay.output[-3000:]


@pytest.mark.parametrize("key", list(CAPTURES))
def test_replay_answers_each_recorded_request_exactly_as_recorded(replay, key):
    reply = replay.replies[key]
    assert reply.status == 200, (reply.status, reply.headers, reply.body[:300])
    served = CAPTURES[key].json()
    got = reply.json()
    assert got == served, (reply.headers.get("x-xblreplay-reason"), sorted(changed_paths(served, got))[:20])


@pytest.mark.parametrize("key,query,contract,covered", SEMANTIC,
                         ids=[f"{k}-c{c}-{q}" for k, q, c, _ in SEMANTIC])
def test_semantic_answers_over_real_data_keep_every_field(replay, key, query, contract, covered):
    """R1, R3–R6: another page size, offset, order, filter or contract over the recorded items
    answers the items the rules select, each one field for field as the service sent it."""
    reply: Reply = replay.replies[(key, query, contract)]
    assert reply.status == 200, (reply.status, reply.headers, reply.body[:300])
    body = reply.json()
    want = expected_items(CAPTURES[key], query, contract)
    ident = (lambda a: (a.get("titleId"), a["id"]))
    assert [ident(a) for a in body["achievements"]] == [ident(a) for a in want]
    for got, item in zip(body["achievements"], want):
        assert got == item, (ident(item), sorted(changed_paths(item, got)))
    if contract in ("1", "3"):  # V1: the recorded top-level version (R5's token form uses it)
        assert body["version"] == CAPTURES[key].json()["version"]
        token = body["pagingInfo"]["continuationToken"]
        assert token is None or token.endswith("," + body["version"]), token
    # R2: a query over titles the recording did not prove complete says so
    assert ("x-xblreplay-warning" in reply.headers) is not covered, reply.headers


# --------------------------------------------------------------------------------------------
# A body holding secrets: only the verifiable ones are removed, each reported with its path

def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def foreign_jwt() -> str:
    """A JWS whose first segment decodes to a JSON header with `alg` (not this request's)."""
    header = b64url(json.dumps({"alg": "RS256", "kid": secrets.token_hex(8), "typ": "JWT"}).encode())
    payload = b64url(json.dumps({"sub": str(XUID + 99), "exp": 4102444800}).encode())
    return f"{header}.{payload}.{b64url(os.urandom(64))}"


HEX64 = hashlib.sha256(b"xblreplay probe").hexdigest()
NOT_A_JWT = "Say eyJhbGciOi to the guard, then whisper eyJhbGciOiQuestComplete."
PERSONA = "afef6035-74c3-4c32-9c31-33853cad886e_persona"
ASSET_NAME = "80d93993-c58a-44c0-8863-6e4d0b4ee5fc.png"
# JSON pointer of each removal -> what it was (the names the README documents)
REMOVED_WHAT = {"/achievements/0/description": "authorization token",
                "/achievements/1/description": "JWT",
                "/achievements/2/description": "XBL authorization"}
REMOVED = set(REMOVED_WHAT)
PROBE_PATH = f"/users/xuid({PROBE_XUID})/achievements?titleId={H5}"


def probe_body(own_token: str, jwt: str, xbl: str) -> dict:
    """Four achievements built from the real detail capture: item 0 echoes the request's own
    token, item 1 holds a JWT, item 2 an XBL3.0 authorization value (both not this request's),
    item 3 only look-alikes that are not secrets."""
    base = CAPTURES["one_details"].json()["achievements"][0]
    descriptions = [f"Unlocked with {own_token} on the first try.", f"Share code {jwt} with a friend.",
                    f"Debug: Authorization {xbl}", NOT_A_JWT]
    items = []
    for n, description in enumerate(descriptions):
        item = copy.deepcopy(base)
        item["id"], item["description"] = str(40 + n), description
        items.append(item)
    items[3]["mediaAssets"][0]["name"] = ASSET_NAME
    items[3]["rewards"] += [
        {"name": "Persona Item: Lumberjack Shirt", "description": "Persona Item: Lumberjack Shirt",
         "value": PERSONA, "type": "InApp", "valueType": "String",
         "mediaAsset": {"name": "6a235992-c538-4819-ba3c-312642eaa3f1", "type": "Icon",
                        "url": "https://images-eds-ssl.xboxlive.com/image?url=27S1DHqE.cHkmFg4nspsdxAkEFLSAvnePeWDzN4Y"}},
        {"name": "Checksum", "description": None, "value": HEX64, "type": "Art", "valueType": "String",
         "mediaAsset": None},
    ]
    return {"achievements": items, "pagingInfo": {"continuationToken": None, "totalRecords": len(items)}}


def test_only_verified_secrets_are_removed_from_a_body_and_each_is_reported(tmp_path):
    jwt = foreign_jwt()
    xbl_token = secrets.token_urlsafe(40)
    xbl = f"XBL3.0 x={secrets.randbelow(9 * 10**18) + 10**18};{xbl_token}"
    served: list[dict] = []

    def handler(method, path, headers, body):
        if path != PROBE_PATH:
            return 404, {}, b""
        own_token = headers["authorization"].split(";", 1)[1]
        served.append(probe_body(own_token, jwt, xbl))
        return 200, {"Content-Type": "application/json"}, json.dumps(served[-1]).encode()

    sent: list[str] = []
    cassettes, log = tmp_path / "cassettes", tmp_path / "validation.jsonl"
    with Upstream(handler) as up:
        with Mitmdump(tmp_path, achievements_mode="record", achievements_upstream=up.url,
                      achievements_cassettes=cassettes, achievements_log=log) as proxy:
            reply = proxy.request(PROBE_PATH, credentials(PROBE_XUID, sent), contract="2")
        output = proxy.stop()
    assert reply.status == 200, output[-3000:]
    assert reply.json() == served[0]  # the client gets the service's answer; only the disk is cleaned
    secret_values = [*sent, jwt, xbl, xbl_token]

    # On disk: exactly the three secret-holding descriptions differ from what was served; the
    # look-alikes (GUID asset name, persona reward value, 64-hex value, eyJ text) are untouched.
    files = [p for p in cassettes.rglob("*") if p.is_file()]
    blob = b"".join(p.read_bytes() for p in files)
    for secret in secret_values:
        assert secret.encode() not in blob
    recorded = [i for i in recorded_interactions(cassettes) if recorded_path(i) == PROBE_PATH]
    assert len(recorded) == 1, (files, output[-3000:])
    body = recorded[0]["response"]["body"]
    assert changed_paths(served[0], body) == REMOVED
    # only the secret is cut out of its text, replaced by the documented marker
    assert [a["description"] for a in body["achievements"][:3]] == [
        "Unlocked with <redacted> on the first try.", "Share code <redacted> with a friend.",
        "Debug: Authorization <redacted>"]
    kept = body["achievements"][3]
    assert kept["description"] == NOT_A_JWT
    assert kept["mediaAssets"][0]["name"] == ASSET_NAME
    assert [r["value"] for r in kept["rewards"][1:]] == [PERSONA, HEX64]

    # Reported: the log entry of the request names each removal by JSON path, the summary (log
    # and printed) counts them, and no secret value appears in the log or the proxy's output.
    entries, summary = read_log(log)
    probe = [e for e in entries if f"xuid({PROBE_XUID})" in e["url"]]
    assert len(probe) == 1, entries
    redactions = probe[0].get("redactions")
    assert isinstance(redactions, list), probe[0]
    assert sorted((r["path"], r["what"]) for r in redactions) == sorted(REMOVED_WHAT.items()), redactions
    by_what = {what: 1 for what in REMOVED_WHAT.values()}
    assert summary is not None, log.read_text()[-2000:]
    assert (summary.get("redactions"), summary.get("redactions_by_what")) == (len(REMOVED), by_what), summary
    printed = printed_summary(output)
    assert printed is not None, output[-2000:]
    assert (printed.get("redactions"), printed.get("redactions_by_what")) == (len(REMOVED), by_what), printed
    text = log.read_text() + output
    for secret in secret_values:
        assert secret not in text
