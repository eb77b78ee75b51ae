"""End-to-end: the public Python client libraries, unmodified, against a replaying mitmdump.

A local upstream serves a synthetic but realistic account (two Xbox One titles in the V2 shape,
two Xbox 360 titles in the V1 shape, 75 achievements in the big ones so that every listing pages
at the default 32) under contracts 1–4: `rarity` objects under 4 (V2) and 3 (V1), V1 tokens of
the form `"<offset>,<version>"` (R5), and, as the live service does, a V1 `…/achievements` list
that holds only earned achievements while `…/titleachievements` lists them all. A record-mode
mitmdump driven by plain HTTPS requests pages every listing to the end (contracts 1 and 2 with the
service's default page, 3 and 4 with `maxItems=20`, so the contract 3/4 calls of python-xbox are
queries that were never recorded), plus title history, `titleachievements` and some details.

Then a replay-mode mitmdump (its upstream a listener that must accept nothing) serves:
* **python-xbox** (`pythonxbox`, 0.4.0): every achievements method of its provider, contract 4 for
  Xbox One calls and 3 for Xbox 360 calls;
* **xbox-webapi** (`xbox.webapi`, 2.1): every achievements method of its provider, contract 2 and 1.
Both libraries are built without any login: their authentication manager takes a plain
`httpx.AsyncClient` through the proxy (trusting its CA) and long-lived fake tokens. Neither
library takes a continuation token as an argument; both pass `extra_params` to the query, and
that is how every listing is followed to its end here.

Every page must parse into the library's models and equal, as JSON, what the service answered for
the same request (R1–R6); title history is compared on the fields the achievements data defines.
The recording sends `Accept-Language: en-US`, as a title does; neither library sends the header,
so every replayed answer, recorded interactions included, comes from the default locale (R6).
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import re
import ssl
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
import pytest

from proxyharness import XUID, Mitmdump, SilentListener, Upstream, read_log

pytestmark = pytest.mark.e2e

VERSION = "2026-10-08T18:27:06.2470000Z"  # the V1 replies' top-level version
NEVER = "0001-01-01T00:00:00.0000000Z"
USERHASH = "2535471212839104521"
TOKEN = "eyJlbmMiOiJBMTI4Q0JDK0hTMjU2IiwiYWxnIjoiUlNBLU9BRVAifQ.fake.fake.fake.fake"
ONE = {1717113301: ("Starfall Odyssey", 75), 1717113302: ("Harbor Run", 9)}  # Xbox One, V2
X360 = {1297290501: ("Hexic Arcade", 75), 1297290502: ("Lumines Live", 12)}  # Xbox 360, V1
DEFAULT_PAGE = 32


def wire_time(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}0Z"


def guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def image_url(rng: random.Random) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._"
    return "https://images-eds-ssl.xboxlive.com/image?url=" + "".join(rng.choice(alphabet) for _ in range(140))


def rarity(rng: random.Random) -> dict:
    pct = round(rng.uniform(0.1, 90.0), 2)
    return {"currentCategory": "Rare" if pct < 10 else "Common", "currentPercentage": pct}


@dataclass
class Item:
    wire: dict  # the wire object without rarity
    title: int
    unlocked: bool
    when: str  # unlock time ("" when locked)
    gamerscore: int
    rarity: dict
    in_progress: bool = False

    def out(self, with_rarity: bool) -> dict:
        return {**self.wire, "rarity": self.rarity} if with_rarity else self.wire


class Service:
    """The synthetic service: answers like the live one for the requests the libraries send."""

    def __init__(self, seed: int = 20261201) -> None:
        rng = random.Random(seed)
        self.scid = {tid: guid(rng) for tid in ONE}
        self.v2: list[Item] = []
        self.v1: list[Item] = []
        # Distinct unlock times everywhere, so every UnlockTime order is total. The first title of
        # each platform has the most recent unlocks: title history then lists titles in the same
        # order by title id (the live V2 history capture's order) and by last unlock (replay's).
        for n, tid in enumerate([*ONE, *X360]):
            base = datetime(2026, 9, 1, tzinfo=timezone.utc) - timedelta(days=200 * (n % 2))
            count = (ONE | X360)[tid][1]
            minutes = rng.sample(range(150 * 24 * 60), count)
            times = [wire_time(base - timedelta(minutes=m, microseconds=rng.randrange(10**6))) for m in minutes]
            for number in range(1, count + 1):
                if tid in ONE:
                    self.v2.append(self._v2(rng, tid, number, times[number - 1]))
                else:
                    self.v1.append(self._v1(rng, tid, number, times[number - 1]))

    def _v2(self, rng: random.Random, tid: int, number: int, when: str) -> Item:
        state = rng.choices(["Achieved", "InProgress", "NotStarted"], [5, 2, 3])[0]
        challenge = number % 17 == 0
        target = rng.choice([5, 10, 100]) if state == "InProgress" else rng.choice([1, 1, 5])
        current = (str(target) if state == "Achieved" else
                   str(rng.randint(1, target - 1)) if state == "InProgress" else None)
        gamerscore = 0 if challenge else rng.choice([5, 10, 15, 20, 50])
        rewards = [] if challenge else [{"name": None, "description": None, "value": str(gamerscore),
                                         "type": "Gamerscore", "mediaAsset": None, "valueType": "Int"}]
        if number % 7 == 0:
            rewards.append({"name": "Persona Item: Flight Jacket", "description": "Persona Item: Flight Jacket",
                            "value": f"{guid(rng)}_persona", "type": "InApp",
                            "mediaAsset": {"name": guid(rng), "type": "Icon", "url": image_url(rng)},
                            "valueType": "String"})
        name = ONE[tid][0]
        wire = {
            "id": str(number), "serviceConfigId": self.scid[tid], "name": f"{name} #{number}",
            "titleAssociations": [{"name": name, "id": tid}],
            "progressState": state,
            "progression": {"requirements": [{"id": guid(rng), "current": current, "target": str(target),
                                              "operationType": "Sum", "valueType": "Integer",
                                              "ruleParticipationType": "Individual"}],
                            "timeUnlocked": when if state == "Achieved" else NEVER},
            "mediaAssets": [{"name": f"{guid(rng)}.png", "type": "Icon", "url": image_url(rng)}],
            "platforms": ["Durango"], "isSecret": number % 13 == 0,
            "description": f"Did thing {number} in {name}.", "lockedDescription": f"Do thing {number}.",
            "productId": guid(rng), "achievementType": "Challenge" if challenge else "Persistent",
            "participationType": "Individual",
            "timeWindow": ({"startDate": "2026-01-01T00:00:00.0000000Z", "endDate": "2099-01-01T00:00:00.0000000Z"}
                           if challenge else None),
            "rewards": rewards, "estimatedTime": "00:00:00", "deeplink": None, "isRevoked": False,
        }
        return Item(wire, tid, state == "Achieved", when if state == "Achieved" else "", gamerscore,
                    rarity(rng), state == "InProgress")

    def _v1(self, rng: random.Random, tid: int, number: int, when: str) -> Item:
        unlocked = rng.random() < (0.7 if number % 2 else 0.8)
        kind = rng.randint(1, 7)
        gamerscore = rng.choice([5, 10, 15, 20, 30])
        wire = {
            "id": number, "titleId": tid, "name": f"{X360[tid][0]} {number}", "sequence": number,
            "flags": kind | 0x8 | (0x30000 if unlocked else 0), "unlockedOnline": unlocked, "unlocked": unlocked,
            "isSecret": number % 11 == 0, "platform": 15 if unlocked else 255, "gamerscore": gamerscore,
            "imageId": number + 2, "description": f"Did {number}.", "lockedDescription": f"Do {number}.",
            "type": kind, "isRevoked": False,
            "timeUnlocked": when if unlocked else "2008-11-15T00:00:00.0000000Z",
        }
        return Item(wire, tid, unlocked, when if unlocked else "", gamerscore, rarity(rng))

    # -- answers

    def answer(self, method: str, target: str, contract: str | None) -> tuple[int, dict | None]:
        parts = urlsplit(target)
        q = {k.lower(): v for k, v in parse_qsl(parts.query)}
        m = re.fullmatch(r"/users/xuid\((\d+)\)/(achievements|titleachievements|history/titles)"
                         r"(?:/([0-9a-f-]{36})/(\d+))?", parts.path)
        if method != "GET" or m is None:
            return 404, None
        if int(m[1]) != XUID:
            return 403, {"errorCode": 8377, "errorMessage": "XUID specified in the claim does not match URI XUID."}
        v2 = contract in ("2", "4")
        if contract not in ("1", "2", "3", "4", None):
            return 200, {"achievements": [], "pagingInfo": {"continuationToken": None, "totalRecords": 0}}
        with_rarity = contract in ("3", "4")
        if m[2] == "history/titles":
            return 200, self._history(v2, q)
        if m[3] is not None:  # detail
            found = [i for i in self.v2 if i.wire["serviceConfigId"] == m[3] and i.wire["id"] == m[4]]
            if not v2 or not found:
                return 404, None
            return 200, {"achievements": [found[0].out(with_rarity)],
                         "pagingInfo": {"continuationToken": None, "totalRecords": 1}}
        if m[2] == "titleachievements":
            if v2:
                return 404, None
            rows = [i for i in self.v1 if str(i.title) == q.get("titleid")]
        elif v2:
            rows = self._filtered(self.v2, q)
        else:  # the V1 achievements list holds earned achievements only
            rows = self._filtered([i for i in self.v1 if i.unlocked], q)
        return 200, self._page([i.out(with_rarity) for i in rows], q, v2, "achievements")

    @staticmethod
    def _filtered(items: list[Item], q: dict) -> list[Item]:
        rows = list(items)
        if "titleid" in q:
            rows = [i for i in rows if i.title in {int(t) for t in q["titleid"].split(",")}]
        if "types" in q:
            kinds = {t.lower() for t in q["types"].split(",")}
            rows = [i for i in rows if i.wire.get("achievementType", "Persistent").lower() in kinds]
        if q.get("unlockedonly", "").lower() == "true":
            rows = [i for i in rows if i.unlocked]
        order = q.get("orderby", "unordered").lower()
        if order == "title":
            rows.sort(key=lambda i: (i.title, int(i.wire["id"])))
        elif order == "unlocktime":
            rows = sorted((i for i in rows if i.unlocked), key=lambda i: i.when, reverse=True) + \
                   [i for i in rows if not i.unlocked]
        return rows

    @staticmethod
    def _page(rows: list[dict], q: dict, v2: bool, key: str) -> dict:
        token = q.get("continuationtoken")
        start = int(token.split(",")[0]) if token else int(q.get("skipitems", 0))
        size = int(q.get("maxitems", DEFAULT_PAGE))
        page = rows[start:start + size]
        following = start + len(page)
        nxt = (str(following) if v2 else f"{following},{VERSION}") if following < len(rows) else None
        body = {key: page, "pagingInfo": {"continuationToken": nxt, "totalRecords": len(rows)}}
        if not v2:
            body["version"] = VERSION
        return body

    def _history(self, v2: bool, q: dict) -> dict:
        titles = ONE if v2 else X360
        rows = []
        for tid, (name, _count) in titles.items():
            items = [i for i in (self.v2 if v2 else self.v1) if i.title == tid]
            earned = [i for i in items if i.unlocked]
            if not earned and not any(i.in_progress for i in items):
                continue
            last = max((i.when for i in earned), default=NEVER)
            score, total = sum(i.gamerscore for i in earned), sum(i.gamerscore for i in items)
            if v2:
                rows.append({"lastUnlock": last, "titleId": tid, "serviceConfigId": self.scid[tid],
                             "titleType": "DGame", "platform": "Durango", "name": name,
                             "earnedAchievements": len(earned), "currentGamerscore": score, "maxGamerscore": total})
            else:
                rows.append({"lastPlayed": last, "currentAchievements": len(earned), "currentGamerscore": score,
                             "sequence": 1 + len(rows), "titleId": tid, "titleType": 1, "platforms": [1],
                             "name": name, "totalAchievements": len(items), "totalGamerscore": total})
        rows.sort(key=lambda r: r["lastUnlock" if v2 else "lastPlayed"], reverse=True)
        return self._page(rows, q, v2, "titles")

    def handler(self):
        def serve(method, path, headers, body):
            status, out = self.answer(method, path, headers.get("x-xbl-contract-version"))
            return status, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(out).encode() if out else b""
        return serve


# History rows are compared on the fields the achievements data defines; title type, platform
# codes, V1 sequence numbers and V2 titleVersion are not in it.
HISTORY_FIELDS = {
    True: ("titleId", "name", "serviceConfigId", "lastUnlock", "earnedAchievements", "currentGamerscore",
           "maxGamerscore"),
    False: ("titleId", "name", "lastPlayed", "currentAchievements", "currentGamerscore", "totalAchievements",
            "totalGamerscore"),
}


# --------------------------------------------------------------------------------------------
# Recording with plain HTTPS requests


def follow(proxy: Mitmdump, path: str, contract: str) -> int:
    """Pages `path` to its end, following continuation tokens; returns the request count."""
    n, token = 0, None
    while True:
        sep = "&" if "?" in path else "?"
        reply = proxy.request(path + (f"{sep}continuationToken={quote(token, safe='')}" if token else ""),
                              {"Authorization": f"XBL3.0 x={USERHASH};{TOKEN}"}, contract=contract)
        n += 1
        assert reply.status == 200, (path, contract, reply.status, reply.body[:300])
        token = reply.json()["pagingInfo"]["continuationToken"]
        if token is None:
            return n


def record(service: Service, work: Path, cassettes: Path) -> None:
    base = f"/users/xuid({XUID})"
    with Upstream(service.handler()) as up:
        with Mitmdump(work, achievements_mode="record", achievements_upstream=up.url,
                      achievements_cassettes=cassettes) as proxy:
            sent = 0
            for contract in ("1", "2", "3", "4"):
                v2 = contract in ("2", "4")
                size = "" if contract in ("1", "2") else "maxItems=20"
                for tid in (ONE if v2 else X360):
                    sent += follow(proxy, f"{base}/achievements?titleId={tid}" + (f"&{size}" if size else ""), contract)
                    if not v2:
                        sent += follow(proxy, f"{base}/titleachievements?titleId={tid}", contract)
                sent += follow(proxy, f"{base}/achievements" + (f"?{size}" if size else ""), contract)
                sent += follow(proxy, f"{base}/history/titles", contract)
                if v2:
                    for item in service.v2[::9]:
                        sent += follow(proxy, f"{base}/achievements/{item.wire['serviceConfigId']}/{item.wire['id']}",
                                       contract)
        out = proxy.stop()
    assert len(up.requests) == sent, out[-3000:]


# --------------------------------------------------------------------------------------------
# Driving the libraries


@dataclass
class Exchange:
    method: str
    path: str  # path and query as sent (the query as the library encoded it)
    contract: str | None
    headers: dict[str, str]
    status: int
    body: object


@dataclass
class Drive:
    exchanges: list[Exchange] = field(default_factory=list)
    results: dict[str, list] = field(default_factory=dict)  # method name -> parsed pages
    errors: list[str] = field(default_factory=list)  # every failed call: method, arguments, error


def http_session(proxy: Mitmdump, drive: Drive) -> "httpx.AsyncClient":
    async def on_response(response):
        await response.aread()
        request = response.request
        try:
            body = response.json()
        except ValueError:
            body = response.content
        drive.exchanges.append(Exchange(request.method, request.url.raw_path.decode(),
                                        request.headers.get("x-xbl-contract-version"),
                                        dict(request.headers), response.status_code, body))

    return httpx.AsyncClient(proxy=f"http://127.0.0.1:{proxy.port}",
                             verify=ssl.create_default_context(cafile=str(proxy.ca)),
                             event_hooks={"response": [on_response]}, timeout=20)


def fake_login(auth_mgr, models) -> None:
    """Long-lived tokens instead of a login: the manager never refreshes anything."""
    now = datetime.now(timezone.utc)
    far = datetime(2099, 1, 1, tzinfo=timezone.utc)
    auth_mgr.oauth = models.OAuth2TokenResponse(token_type="bearer", expires_in=10**9, scope="Xboxlive.signin",
                                                access_token="fake", refresh_token="fake", user_id="fake")
    auth_mgr.user_token = models.XAUResponse(issue_instant=now, not_after=far, token="fake",
                                             display_claims={"xui": [{"uhs": USERHASH}]})
    auth_mgr.xsts_token = models.XSTSResponse(
        issue_instant=now, not_after=far, token=TOKEN,
        display_claims={"xui": [{"uhs": USERHASH, "xid": str(XUID), "gtg": "Replayer", "agg": "Adult",
                                 "prv": "", "usr": ""}]})


async def all_pages(drive: Drive, name: str, call, *args, **kwargs) -> None:
    """Calls a provider method and follows its continuation tokens to the end (extra_params)."""
    pages, token = [], None
    try:
        while True:
            extra = {"extra_params": {"continuationToken": token}} if token else {}
            page = await call(*args, **kwargs, **extra)
            pages.append(page)
            token = page.paging_info.continuation_token
            if not token or len(pages) > 20:
                break
    except Exception as exc:  # recorded per method; the test names every failing method
        drive.errors.append(f"{name}{args}: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
    drive.results.setdefault(name, []).extend(pages)


async def drive_library(package: str, proxy: Mitmdump, service: Service) -> Drive:
    """Every achievements method of the library at ``package`` (python-xbox: ``pythonxbox``;
    xbox-webapi: ``xbox.webapi``), paging followed; the recent-unlocks calls where it has them."""
    import importlib

    XboxLiveClient = importlib.import_module(f"{package}.api.client").XboxLiveClient
    models = importlib.import_module(f"{package}.authentication.models")
    AuthenticationManager = importlib.import_module(f"{package}.authentication.manager").AuthenticationManager

    drive = Drive()
    async with http_session(proxy, drive) as session:
        auth_mgr = AuthenticationManager(session, "", "", "")
        fake_login(auth_mgr, models)
        api = XboxLiveClient(auth_mgr).achievements
        xuid = str(XUID)

        async def each(method: str, *args) -> None:
            await all_pages(drive, method, getattr(api, method), xuid, *args)

        for tid in ONE:
            await each("get_achievements_xboxone_gameprogress", tid)
        for item in service.v2[::9]:
            await each("get_achievements_detail_item", item.wire["serviceConfigId"], item.wire["id"])
        await each("get_achievements_xboxone_recent_progress_and_info")
        for tid in X360:
            await each("get_achievements_xbox360_all", tid)
            await each("get_achievements_xbox360_earned", tid)
        await each("get_achievements_xbox360_recent_progress_and_info")
        for method in ("get_achievements_xboxone_recent_unlocks", "get_achievements_xbox360_recent_unlocks"):
            if hasattr(api, method):  # python-xbox only
                await each(method)
    return drive


LIBRARIES = {"pythonxbox": (functools.partial(drive_library, "pythonxbox"), {"one": "4", "360": "3"}),
             "xbox.webapi": (functools.partial(drive_library, "xbox.webapi"), {"one": "2", "360": "1"})}


@dataclass
class Session:
    service: Service
    drives: dict[str, Drive]
    accepted: int
    log: Path
    output: str


@pytest.fixture(scope="module")
def replayed(tmp_path_factory) -> Session:
    work = tmp_path_factory.mktemp("clients")
    cassettes = work / "cassettes"
    service = Service()
    record(service, work, cassettes)
    log = work / "replay.jsonl"
    drives = {}
    with SilentListener() as silent:
        with Mitmdump(work, achievements_mode="replay", achievements_cassettes=cassettes,
                      achievements_upstream=silent.url, achievements_log=log) as proxy:
            for name, (drive, _) in LIBRARIES.items():
                drives[name] = asyncio.run(drive(proxy, service))
        output = proxy.stop()
    return Session(service, drives, silent.accepted, log, output)


# --------------------------------------------------------------------------------------------
# What each library sends (documented here and checked)

def expected_requests(library: str, service: Service) -> set[tuple[str, str, str]]:
    """(path without the query's continuation token, query names in order, contract) of every
    call the library makes; `…?` + params is how both libraries build their listing URLs."""
    contracts = LIBRARIES[library][1]
    base = f"/users/xuid({XUID})"
    out = {(f"{base}/achievements", "titleId", contracts["one"]),
           (f"{base}/history/titles", "", contracts["one"]),
           (f"{base}/titleachievements", "titleId", contracts["360"]),
           (f"{base}/achievements", "titleId", contracts["360"]),
           (f"{base}/history/titles", "", contracts["360"])}
    out |= {(f"{base}/achievements/{i.wire['serviceConfigId']}/{i.wire['id']}", "", contracts["one"])
            for i in service.v2[::9]}
    if library == "pythonxbox":
        out |= {(f"{base}/achievements", "unlockedOnly,orderBy,maxItems", c) for c in contracts.values()}
    return out


@pytest.mark.parametrize("library", list(LIBRARIES))
def test_clients_send_the_requests_their_source_shows(replayed, library):
    seen = set()
    for ex in replayed.drives[library].exchanges:
        parts = urlsplit(ex.path)
        names = [k for k, _ in parse_qsl(parts.query) if k != "continuationToken"]
        seen.add((parts.path, ",".join(names), ex.contract))
        assert ex.headers.get("authorization") == f"XBL3.0 x={USERHASH};{TOKEN}"
        assert "accept-language" not in ex.headers  # neither library sends one: R6 default locale
    assert seen == expected_requests(library, replayed.service)


def test_clients_replay_opens_no_connection(replayed):
    assert replayed.accepted == 0, replayed.output[-3000:]
    entries, summary = read_log(replayed.log)
    assert entries and all(e["source"] != "upstream" for e in entries)


@pytest.mark.parametrize("library", list(LIBRARIES))
def test_every_achievements_method_parses_every_page(replayed, library):
    drive = replayed.drives[library]
    failing = [f"{ex.status} {ex.path} (contract {ex.contract}): {ex.body!r:.300}"
               for ex in drive.exchanges if ex.status != 200]
    assert not drive.errors and not failing, "\n".join([*drive.errors, *failing])


@pytest.mark.parametrize("library", list(LIBRARIES))
def test_every_page_equals_the_services_answer(replayed, library):
    """R1–R6: each replayed page (recorded or never recorded) is the service's own answer."""
    mismatches = []
    for ex in replayed.drives[library].exchanges:
        status, want = replayed.service.answer(ex.method, ex.path, ex.contract)
        if "/history/titles" in ex.path:
            continue  # compared field by field below
        if (ex.status, ex.body) != (status, want):
            mismatches.append(f"{ex.status} {ex.path} (contract {ex.contract}): {describe(want, ex.body)}")
    assert not mismatches, "\n".join(mismatches)


def describe(want, got) -> str:
    if not isinstance(want, dict) or not isinstance(got, dict):
        return f"{want!r:.200} != {got!r:.200}"
    notes = []
    for key in sorted(want.keys() | got.keys()):
        a, b = want.get(key), got.get(key)
        if a == b:
            continue
        if key in ("achievements", "titles") and isinstance(a, list) and isinstance(b, list):
            ids = lambda rows: [r.get("titleId", None) if key == "titles" else r.get("id") for r in rows]
            if ids(a) != ids(b):
                notes.append(f"{key} ids {ids(a)} != {ids(b)}")
            else:
                diff = sorted({k for x, y in zip(a, b) for k in x.keys() | y.keys() if x.get(k) != y.get(k)})
                notes.append(f"{key} fields differ: {diff}")
        else:
            notes.append(f"{key}: {a!r:.120} != {b!r:.120}")
    return "; ".join(notes)


@pytest.mark.parametrize("library", list(LIBRARIES))
def test_title_history_matches_the_achievements_data(replayed, library):
    problems = []
    for ex in replayed.drives[library].exchanges:
        if "/history/titles" not in ex.path:
            continue
        _, want = replayed.service.answer(ex.method, ex.path, ex.contract)
        v2 = ex.contract in ("2", "4")
        fields = HISTORY_FIELDS[v2]
        got = ex.body if isinstance(ex.body, dict) else {}
        pick = lambda body: [{f: row.get(f) for f in fields} for row in body.get("titles") or ()]
        for n, (a, b) in enumerate(zip(pick(want), pick(got))):
            problems += [f"contract {ex.contract} row {n} {f}: service {a[f]!r}, replay {b[f]!r}"
                         for f in fields if a[f] != b[f]]
        if len(pick(got)) != len(pick(want)) or got.get("pagingInfo") != want["pagingInfo"]:
            problems.append(f"contract {ex.contract}: rows {len(pick(want))} vs {len(pick(got))}, "
                            f"pagingInfo {want['pagingInfo']} vs {got.get('pagingInfo')}")
        if not v2 and got.get("version") != VERSION:
            problems.append(f"contract {ex.contract}: version {got.get('version')!r}")
    assert not problems, "\n".join(problems)


def collected(replayed, library: str, name: str) -> list:
    return [a for page in replayed.drives[library].results.get(name, []) for a in page.achievements]


def has_rarity(model) -> bool:
    """xbox-webapi's models have no rarity field at all; python-xbox's keep it when it is sent."""
    return getattr(model, "rarity", None) is not None


# The libraries' own view: every listing followed to its end yields each recorded achievement
# once, with the service's ids, counts and order, and rarity exactly under contracts 3 and 4 (R6).

@pytest.mark.parametrize("library", list(LIBRARIES))
def test_models_xboxone_game_progress_and_details(replayed, library):
    service, contracts = replayed.service, LIBRARIES[library][1]
    one = collected(replayed, library, "get_achievements_xboxone_gameprogress")
    assert [(a.service_config_id, a.id) for a in one] == \
        [(i.wire["serviceConfigId"], i.wire["id"]) for i in service.v2]
    assert [a.progress_state for a in one] == [i.wire["progressState"] for i in service.v2]
    assert all(has_rarity(a) == (contracts["one"] == "4") for a in one)
    if contracts["one"] == "4":
        assert [a.rarity.current_percentage for a in one] == [i.rarity["currentPercentage"] for i in service.v2]
    pages = replayed.drives[library].results["get_achievements_xboxone_gameprogress"]
    assert [(len(p.achievements), p.paging_info.total_records) for p in pages] == [(32, 75), (32, 75), (11, 75), (9, 9)]
    details = collected(replayed, library, "get_achievements_detail_item")
    assert [(a.id, a.name) for a in details] == [(i.wire["id"], i.wire["name"]) for i in service.v2[::9]]
    assert all(has_rarity(a) == (contracts["one"] == "4") for a in details)


@pytest.mark.parametrize("library", list(LIBRARIES))
def test_models_xbox360_all(replayed, library):
    service, contracts = replayed.service, LIBRARIES[library][1]
    every = collected(replayed, library, "get_achievements_xbox360_all")
    assert [(a.title_id, a.id) for a in every] == [(i.title, i.wire["id"]) for i in service.v1]
    assert all(has_rarity(a) == (contracts["360"] == "3") for a in every)


@pytest.mark.parametrize("library", list(LIBRARIES))
def test_models_xbox360_earned(replayed, library):
    service, contracts = replayed.service, LIBRARIES[library][1]
    earned = collected(replayed, library, "get_achievements_xbox360_earned")
    want = [i for i in service.v1 if i.unlocked]
    assert [(a.title_id, a.id) for a in earned] == [(i.title, i.wire["id"]) for i in want]
    assert all(a.unlocked for a in earned)
    assert all(has_rarity(a) == (contracts["360"] == "3") for a in earned)
    if contracts["360"] == "3":
        assert [a.rarity.current_category for a in earned] == [i.rarity["currentCategory"] for i in want]


def test_models_recent_unlocks_python_xbox(replayed):
    """python-xbox only: unlockedOnly=true&orderBy=UnlockTime&maxItems=32 without titleId, never
    recorded as such, answered from the datasets across titles (R3, R4, R6)."""
    service = replayed.service
    recent = collected(replayed, "pythonxbox", "get_achievements_xboxone_recent_unlocks")
    want = sorted((i for i in service.v2 if i.unlocked), key=lambda i: i.when, reverse=True)
    assert [(a.service_config_id, a.id) for a in recent] == [(i.wire["serviceConfigId"], i.wire["id"]) for i in want]
    assert [a.rarity.current_percentage for a in recent] == [i.rarity["currentPercentage"] for i in want]
    recent360 = collected(replayed, "pythonxbox", "get_achievements_xbox360_recent_unlocks")
    want360 = sorted((i for i in service.v1 if i.unlocked), key=lambda i: i.when, reverse=True)
    assert [(a.title_id, a.id) for a in recent360] == [(i.title, i.wire["id"]) for i in want360]
    assert [a.rarity.current_percentage for a in recent360] == [i.rarity["currentPercentage"] for i in want360]
