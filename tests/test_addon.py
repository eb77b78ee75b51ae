"""Fast unit tests of the addon's hooks with mitmproxy's taddons/tflow (the end-to-end path is
covered by tests/test_e2e_*.py with a real mitmdump)."""

from __future__ import annotations

import asyncio
import functools
import json

import pytest
from mitmproxy.test import taddons, tflow, tutils

from xblreplay.mitm.addon import Achievements
from proxyharness import AUTH, REPO, XUID

EXAMPLE = REPO / "cassettes" / "example"


def run_async(test):
    """A coroutine test run to completion by plain pytest (taddons needs a running loop)."""

    @functools.wraps(test)
    def run():
        asyncio.run(test())

    return run


def achievements_flow(path: str, headers: dict[str, str] | None = None, host: str = "achievements.xboxlive.com"):
    req = tutils.treq(host=host, port=443, path=path.encode())
    req.scheme = "https"
    req.headers.clear()
    req.headers["Host"] = host
    for k, v in (headers or {"Authorization": AUTH, "x-xbl-contract-version": "2"}).items():
        req.headers[k] = v
    return tflow.tflow(req=req, resp=True)


@run_async
async def test_other_hosts_pass_through_untouched():
    addon = Achievements()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, achievements_cassettes=str(EXAMPLE))
        f = achievements_flow("/users/xuid(1)/achievements", host="example.com")
        before = f.request.copy()
        await tctx.cycle(addon, f)
        assert f.response.content == b"message"  # tflow's canned response, not ours
        assert f.request.url == before.url and "xblreplay" not in f.metadata


@run_async
async def test_replay_answers_from_dataset():
    addon = Achievements()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, achievements_cassettes=str(EXAMPLE))
        f = achievements_flow(f"/users/xuid({XUID})/achievements?titleId=1829000002&maxItems=3")
        f.response = None
        await addon.request(f)
        assert f.response is not None and f.response.status_code == 200
        body = json.loads(f.response.content)
        assert len(body["achievements"]) == 3
        assert body["pagingInfo"]["continuationToken"] == "3"


@run_async
async def test_validate_strict_answers_r8_401_without_forwarding():
    addon = Achievements()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, achievements_mode="validate", achievements_strict=True,
                       achievements_cassettes=str(EXAMPLE))
        f = achievements_flow(f"/users/xuid({XUID})/achievements", {"x-xbl-contract-version": "2"})
        f.response = None
        await addon.request(f)
        assert f.response.status_code == 401
        assert "token_required" in f.response.headers["WWW-Authenticate"]
        assert json.loads(f.response.headers["X-Xblreplay-Violations"])[0]["rule"] == "R8"


def test_bad_mode_at_runtime_is_refused():
    addon = Achievements()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, achievements_cassettes=str(EXAMPLE))
        addon.running()
        with pytest.raises(Exception):
            tctx.configure(addon, achievements_rules="/nonexistent")
        # The old, valid configuration stays in force.
        assert addon.validator is not None and addon.broken is None


@run_async
async def test_an_internal_error_answers_500_and_never_forwards():
    addon = Achievements()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, achievements_cassettes=str(EXAMPLE))

        def broken(*args, **kwargs):
            raise KeyError("boom")

        addon.replayer.answer = broken
        f = achievements_flow(f"/users/xuid({XUID})/achievements?titleId=1829000002")
        f.response = None
        await addon.request(f)
        assert f.response is not None and f.response.status_code == 500
        assert "internal error" in f.response.headers["X-Xblreplay-Reason"]
        assert f.request.host == "achievements.xboxlive.com"  # not redirected anywhere


def test_pretty_host_reads_as_mitmproxy_reads_it():
    from xblreplay.mitm.translate import pretty_host

    hosts = ["achievements.xboxlive.com", "ACHIEVEMENTS.xboxlive.com:443", "achievements.xboxlive.com:8443",
             "[::1]:8080", "xn--bcher-kva.example", "bücher.example", "10.0.0.1", ""]
    for host in hosts * 2:  # the second read of each comes from the kept parse
        f = achievements_flow("/users/xuid(1)/achievements")
        if host:
            f.request.headers["Host"] = host
        else:
            del f.request.headers["Host"]
        assert pretty_host(f.request) == f.request.pretty_host, host
    f = achievements_flow("/users/xuid(1)/achievements")
    f.request.http_version, f.request.authority = "HTTP/2.0", "example.com:443"
    assert pretty_host(f.request) == f.request.pretty_host == "example.com"


def test_summary_counts_call_pattern_episodes_and_their_requests(tmp_path):
    from xblreplay.proxy import close_log

    async def run() -> dict:
        addon = Achievements()
        with taddons.context(addon) as tctx:
            tctx.configure(addon, achievements_cassettes=str(EXAMPLE), achievements_log=str(tmp_path / "log.jsonl"))
            path = f"/users/xuid({XUID})/achievements?titleId=1829000002&maxItems=3"
            for _ in range(4):  # one repeated-request episode: reported on the second, counted on 3
                f = achievements_flow(path)
                f.response = None
                await addon.request(f)
                addon.response(f)
            return close_log(addon.config)

    summary = asyncio.run(run())
    assert summary["call_patterns"]["repeated-request"] == 1
    assert summary["call_pattern_episodes"] == {"repeated-request": {"episodes": 1, "requests": 3, "longest": 3}}
    entries = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [[v["code"] for v in e.get("violations", ()) if v["rule"] == "call-pattern"] for e in entries[:4]] == [
        [], ["repeated-request"], [], []]
    assert entries[-1]["summary"]["call_pattern_episodes"] == summary["call_pattern_episodes"]
