"""End-to-end: record through a real mitmdump from a real local upstream, then replay offline
queries that were never recorded and compare them with the upstream's own answers."""

from __future__ import annotations

import secrets

import pytest

import refservice
from proxyharness import VARIED_QUERIES, XUID, Mitmdump, SilentListener, Upstream

pytestmark = pytest.mark.e2e

TITLES = {1111: 23, 2222: 141, 3333: 9}  # 2222 pages past offset 100
BASE = f"/users/xuid({XUID})/achievements"


def record_all(proxy: Mitmdump, auth_for) -> int:
    """Page every title unfiltered with maxItems=10, following tokens; returns the request count."""
    n = 0
    for tid in TITLES:
        token = None
        while True:
            path = f"{BASE}?titleId={tid}&maxItems=10" + (f"&continuationToken={token}" if token else "")
            reply = proxy.request(path, auth_for(n))
            n += 1
            assert reply.status == 200, reply.body
            token = reply.json()["pagingInfo"]["continuationToken"]
            if token is None:
                break
    return n


NEVER_RECORDED = VARIED_QUERIES


def test_r1_r2_record_then_replay_answers_unrecorded_queries_like_the_upstream(tmp_path):
    items = refservice.make_dataset(7, TITLES)
    cassettes = tmp_path / "cassettes"
    tokens: list[str] = []

    def auth_for(n: int) -> dict[str, str]:
        token, signature, cookie = (secrets.token_urlsafe(48) for _ in range(3))
        tokens.extend([token, signature, cookie])
        return {"Authorization": f"XBL3.0 x=3141592653589793238;{token}", "Signature": signature,
                "Cookie": f"session={cookie}"}

    set_cookie = secrets.token_hex(24)
    with Upstream(refservice.handler(items, {"Set-Cookie": f"srv={set_cookie}"})) as up:
        with Mitmdump(tmp_path, achievements_mode="record", achievements_upstream=up.url,
                      achievements_cassettes=cassettes) as proxy:
            sent = record_all(proxy, auth_for)
        out = proxy.stop()
    assert len(up.requests) == sent, out

    # Secrets never reach disk: none of the random tokens, signatures or cookies.
    files = [p for p in cassettes.rglob("*") if p.is_file()]
    assert files, out
    blob = b"".join(p.read_bytes() for p in files)
    for secret in tokens + [set_cookie]:
        assert secret.encode() not in blob

    # The upstream is gone; replay answers from the cassettes alone.
    with SilentListener() as silent:
        with Mitmdump(tmp_path, achievements_mode="replay", achievements_cassettes=cassettes,
                      achievements_upstream=silent.url) as proxy:
            replies = {q: proxy.request(f"{BASE}?{q}") for q in NEVER_RECORDED}
    assert silent.accepted == 0
    for query, reply in replies.items():
        assert reply.status == 200, (query, reply.body)
        assert reply.json() == refservice.answer(items, f"{BASE}?{query}"), query
        assert "x-xblreplay-warning" not in reply.headers, (query, reply.headers)
