"""Memory per caller is bounded: the rate limiter (Throttle) and the call-pattern checks
(CallPatterns) keep at most ``tracking.max_callers`` (xuid, title) pairs and
``tracking.max_requests`` requests however many distinct callers come, hold flat memory past the
cap, and behave exactly as before for callers under it. The end-to-end test sends distinct xuids
through a real replaying mitmdump with throttling and a validation log on and reads its RSS.

Expectations come from the test's inputs: the caps written into the limits, the numbers of
requests sent, and plain reference models of the windows (R10: burst counts accepted requests,
sustain every request; call patterns: a window is over its limit when it holds more requests
than the limit), evaluated here from every time a caller sent."""

from __future__ import annotations

import copy
import gc
import http.client
import math
import random
import shutil
import ssl
import threading
import tracemalloc
from pathlib import Path

import pytest

from proxyharness import HOST, REPO, Mitmdump, read_log
from xblreplay.traffic import DEFAULT_MAX_CALLERS, DEFAULT_MAX_REQUESTS, CallPatterns, Throttle, load_limits

LIMITS = load_limits()
TITLE = "1717113201"
FIRST_XUID = 2535000000000000


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def limits_with(max_callers: int, max_requests: int | None = None, **rates) -> dict:
    limits = copy.deepcopy(LIMITS)
    limits["tracking"] = {"max_callers": max_callers, "max_requests": max_requests or 4 * max_callers}
    for name, (count, period) in rates.items():
        limits["rate_limits"][name] = {"max_requests": count, "period_s": period}
    return limits


def request_key(xuid: int) -> str:
    """A request key as the addon makes them (request.request_key)."""
    return f"GET /users/xuid({xuid})/achievements?maxitems=5&titleid={TITLE} contract=2"


# ------------------------------------------------------------------------------ the caps

def test_shipped_caps_are_the_documented_defaults():
    assert LIMITS["tracking"] == {"max_callers": DEFAULT_MAX_CALLERS, "max_requests": DEFAULT_MAX_REQUESTS}
    assert DEFAULT_MAX_CALLERS == 10_000 and DEFAULT_MAX_REQUESTS == 40_000


def test_throttle_never_tracks_more_than_the_cap_over_100k_callers_in_one_window():
    cap = LIMITS["tracking"]["max_callers"]
    clock = FakeClock()
    throttle = Throttle(LIMITS, clock=clock)
    n = 100_000
    most = 0
    for i in range(n):
        clock.now = 1000.0 + i * 1e-4  # 10 s in all: inside the burst window, nothing is idle
        assert throttle.check(FIRST_XUID + i, TITLE) is None  # each caller's first request
        most = max(most, len(throttle))
    assert most == cap and len(throttle) == cap
    assert throttle.forgotten_at_cap == n - cap


def test_call_patterns_never_track_more_than_the_caps_over_100k_callers_in_one_window():
    caps = LIMITS["tracking"]
    clock = FakeClock()
    patterns = CallPatterns(LIMITS, clock=clock)
    n = 100_000
    most_pairs = most_requests = 0
    for i in range(n):
        clock.now = 1000.0 + i * 1e-4
        xuid = FIRST_XUID + i
        # two distinct requests per caller, so the request cap is reached too
        assert patterns.observe(xuid, TITLE, request_key(xuid), 200, None) == []
        assert patterns.observe(xuid, TITLE, request_key(xuid) + "&skipitems=5", 200, None) == []
        tracked = patterns.tracked()
        most_pairs, most_requests = max(most_pairs, tracked["pairs"]), max(most_requests, tracked["requests"])
    assert (most_pairs, most_requests) == (caps["max_callers"], min(caps["max_requests"], 2 * n))
    assert patterns.tracked() == {"pairs": caps["max_callers"], "requests": min(caps["max_requests"], 2 * n)}
    assert patterns.forgotten_at_cap == {"pairs": n - caps["max_callers"],
                                         "requests": max(0, 2 * n - caps["max_requests"])}


def traced_after(feed, checkpoints: list[int]) -> list[int]:
    """tracemalloc's traced memory after feeding ``checkpoints[i]`` distinct callers (in order)."""
    gc.collect()
    tracemalloc.start()
    try:
        seen, done = [], 0
        for upto in checkpoints:
            for i in range(done, upto):
                feed(i)
            done = upto
            gc.collect()
            seen.append(tracemalloc.get_traced_memory()[0])
        return seen
    finally:
        tracemalloc.stop()


CAP = 2_000
MANY = 200_000  # 100 times the cap


def test_throttle_memory_is_flat_past_the_cap():
    clock = FakeClock()
    throttle = Throttle(limits_with(CAP), clock=clock)

    def feed(i: int) -> None:
        clock.now = 1000.0 + i * 5e-5
        throttle.check(FIRST_XUID + i, str(int(TITLE)))

    at_cap, at_many = traced_after(feed, [CAP, MANY])
    assert len(throttle) == CAP
    # growing with the callers would make this 100x; the structures' own slack allows a little
    assert at_many < 1.25 * at_cap, (at_cap, at_many)


def test_call_patterns_memory_is_flat_past_the_caps():
    clock = FakeClock()
    patterns = CallPatterns(limits_with(CAP, 2 * CAP), clock=clock)

    def feed(i: int) -> None:
        clock.now = 1000.0 + i * 5e-5
        xuid = FIRST_XUID + i
        patterns.observe(xuid, str(int(TITLE)), request_key(xuid), 404, None)

    at_cap, at_many = traced_after(feed, [2 * CAP, MANY])  # both caps full at the first checkpoint
    assert patterns.tracked() == {"pairs": CAP, "requests": 2 * CAP}
    assert at_many < 1.25 * at_cap, (at_cap, at_many)


# ---------------------------------------------------------- behaviour under the cap is unchanged

def test_a_caller_under_the_cap_gets_its_429_on_the_101st_request_in_15s_among_many_others():
    limits = limits_with(1000)
    burst = limits["rate_limits"]["burst"]
    clock = FakeClock()
    throttle = Throttle(limits, clock=clock)
    hot, others = FIRST_XUID, iter(range(FIRST_XUID + 1, FIRST_XUID + 10**6))
    times = [1000.0 + i * 0.1 for i in range(burst["max_requests"])]
    for t in times:
        clock.now = t
        assert throttle.check(hot, TITLE) is None
        for _ in range(5):  # 500 other callers meanwhile: with the hot one, under the cap of 1000
            assert throttle.check(next(others), TITLE) is None
    assert len(throttle) == 1 + 5 * len(times) <= 1000
    clock.now = 1000.0 + 14.5
    answer = throttle.check(hot, TITLE)
    assert answer is not None and answer.status == 429
    assert answer.headers == [("Retry-After", str(math.ceil(times[0] + burst["period_s"] - clock.now)))]
    assert answer.body["currentRequests"] == burst["max_requests"]


def test_at_the_cap_a_forgotten_throttled_caller_starts_afresh():
    """The documented price of the cap: the least recently seen caller is forgotten, and a
    throttled caller that was forgotten gets through before its Retry-After."""
    cap = 50
    limits = limits_with(cap)
    clock = FakeClock()
    throttle = Throttle(limits, clock=clock)
    hot = FIRST_XUID
    for _ in range(limits["rate_limits"]["burst"]["max_requests"]):
        throttle.check(hot, TITLE)
    assert throttle.check(hot, TITLE) is not None  # throttled
    for i in range(1, cap):  # cap - 1 others: the hot caller is still tracked
        throttle.check(hot + i, TITLE)
    assert throttle.check(hot, TITLE) is not None
    for i in range(cap, 2 * cap):  # cap others after it: it is the least recently seen, forgotten
        throttle.check(hot + i, TITLE)
    assert len(throttle) == cap
    assert throttle.check(hot, TITLE) is None


def test_call_patterns_under_the_cap_report_the_burst_at_the_cap_a_forgotten_pair_starts_afresh():
    cap = 300
    limits = limits_with(cap)
    limit = limits["rate_limits"]["burst"]["max_requests"]
    clock = FakeClock()
    patterns = CallPatterns(limits, clock=clock)
    hot = FIRST_XUID
    others = iter(range(hot + 1, hot + 10**6))

    def hot_call(i: int) -> list[str]:
        return [v.code for v in patterns.observe(hot, TITLE, f"{request_key(hot)}&skipitems={i}", 200, None)]

    codes = []
    for i in range(limit + 1):
        codes.append(hot_call(i))
        patterns.observe(next(others), TITLE, "GET /other", 200, None)  # 101 others: under the cap
    assert [i for i, c in enumerate(codes) if c] == [limit] and codes[limit] == ["burst-limit"]
    assert hot_call(limit + 1) == []  # the same episode
    for _ in range(cap):  # the hot pair becomes the least recently seen and is forgotten
        patterns.observe(next(others), TITLE, "GET /other", 200, None)
    assert patterns.tracked()["pairs"] == cap
    assert hot_call(limit + 2) == []  # afresh: one request in its window


# Reference models, written from the rules and evaluated from every time a caller sent.

def reference_throttle(limits: dict, schedule: list[tuple[float, int]]) -> list[tuple]:
    rates = limits["rate_limits"]
    (lb, pb), (ls, ps) = ((rates[n]["max_requests"], rates[n]["period_s"]) for n in ("burst", "sustain"))
    accepted: dict[int, list[float]] = {}
    every: dict[int, list[float]] = {}
    out = []
    for now, caller in schedule:
        acc, all_ = accepted.setdefault(caller, []), every.setdefault(caller, [])
        burst_in = [t for t in acc if t + pb > now]
        sustain_in = [t for t in all_ if t + ps > now]
        all_.append(now)
        if len(burst_in) < lb and len(sustain_in) < ls:
            acc.append(now)
            out.append(None)
            continue
        sustain_in.append(now)
        waits = []
        if len(burst_in) >= lb:
            waits.append((burst_in[len(burst_in) - lb] + pb - now, "burst", len(burst_in)))
        if len(sustain_in) > ls:
            waits.append((sustain_in[len(sustain_in) - ls] + ps - now, "sustain", len(sustain_in)))
        wait, name, current = max(waits, key=lambda w: w[0])  # burst first on a tie
        out.append((429, str(math.ceil(wait)), name, current))
    return out


def random_schedule(rng: random.Random, callers: int, n: int) -> list[tuple[float, int]]:
    """Runs of quick requests (some at the same instant) between pauses of whole and half
    seconds, so windows fill, overflow and roll over exactly on their boundaries."""
    now, schedule = 1000.0, []
    while len(schedule) < n:
        for _ in range(rng.randint(3, 40)):
            now += rng.choice((0.0, 0.0, 0.05, 0.1, 0.25, 0.5))
            schedule.append((now, rng.randrange(callers)))
        now += rng.choice((0.5, 1.0, 2.0, 3.0, 7.0, 15.0))
    return schedule[:n]


@pytest.mark.parametrize("seed", range(6))
def test_throttle_matches_the_reference_windows_on_random_schedules(seed):
    rng = random.Random(seed)
    limits = limits_with(1000, burst=(rng.randint(2, 6), rng.choice((2, 3, 5))),
                         sustain=(rng.randint(6, 15), rng.choice((20, 30, 60))))
    schedule = random_schedule(rng, callers=2, n=1500)
    clock = FakeClock()
    throttle = Throttle(limits, clock=clock)
    got = []
    for now, caller in schedule:
        clock.now = now
        answer = throttle.check(caller, TITLE)
        got.append(None if answer is None else (answer.status, dict(answer.headers)["Retry-After"],
                                                answer.violations[0].name, answer.body["currentRequests"]))
    expected = reference_throttle(limits, schedule)
    assert got == expected
    assert any(g is not None and g[2] == "burst" for g in got) and any(g and g[2] == "sustain" for g in got)


def reference_rate_findings(limits: dict, schedule: list[tuple[float, int]]) -> list[list[str]]:
    windows = [(n, limits["rate_limits"][n]["max_requests"], limits["rate_limits"][n]["period_s"])
               for n in ("burst", "sustain", "certification")]
    sent: dict[int, list[float]] = {}
    over: dict[tuple[int, str], bool] = {}
    out = []
    for now, caller in schedule:
        times = sent.setdefault(caller, [])
        times.append(now)
        codes = []
        for name, limit, period in windows:
            now_over = sum(1 for t in times if t + period > now) > limit
            if now_over and not over.get((caller, name)):
                codes.append(f"{name}-limit")
            over[(caller, name)] = now_over
        out.append(codes)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_call_pattern_rate_findings_match_the_reference_windows_on_random_schedules(seed):
    rng = random.Random(100 + seed)
    limits = limits_with(1000, burst=(rng.randint(2, 5), rng.choice((2, 3))),
                         sustain=(rng.randint(5, 10), rng.choice((10, 20))),
                         certification=(rng.randint(12, 30), rng.choice((20, 40))))
    schedule = random_schedule(rng, callers=2, n=1500)
    clock = FakeClock()
    patterns = CallPatterns(limits, clock=clock)
    got = []
    for i, (now, caller) in enumerate(schedule):
        clock.now = now
        # a new request key each time, so repeat and polling findings stay out of it
        found = patterns.observe(caller, TITLE, f"GET /r/{i}", 200, None)
        got.append([v.code for v in found])
    expected = reference_rate_findings(limits, schedule)
    assert got == expected
    assert {c for codes in got for c in codes} == {"burst-limit", "sustain-limit", "certification-limit"}


# ------------------------------------------------------------------ end to end, a real mitmdump

E2E_CAP = 200
E2E_REQUESTS = 6_000  # 30 times the cap
E2E_CHECKPOINT = 1_500  # RSS is read here (the cap exceeded several times over) and at the end
E2E_CONNECTIONS = 3
E2E_MAX_GROWTH_MB = 6.0  # unbounded state at ~5.7 KB a caller would add some 25 MB for 4,500 more


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def send_distinct(proxy: Mitmdump, first: int, count: int, statuses: dict[int, int]) -> None:
    """``count`` GETs, one xuid each from ``first``, over a few keep-alive HTTPS connections."""
    lock = threading.Lock()
    xuids = iter(range(first, first + count))
    errors: list[BaseException] = []

    def run() -> None:
        ctx = ssl.create_default_context(cafile=str(proxy.ca))
        conn = http.client.HTTPSConnection("127.0.0.1", proxy.port, context=ctx, timeout=20)
        conn.set_tunnel(HOST, 443)
        headers = {"Authorization": "XBL3.0 x=2718281828459045235;anytoken",
                   "x-xbl-contract-version": "2", "Accept-Language": "en-US"}
        try:
            while True:
                with lock:
                    xuid = next(xuids, None)
                if xuid is None:
                    return
                conn.request("GET", f"/users/xuid({xuid})/achievements?titleId={TITLE}&maxItems=5",
                             headers=headers)
                resp = conn.getresponse()
                resp.read()
                assert not resp.will_close, "the proxy closed a keep-alive connection"
                with lock:
                    statuses[resp.status] = statuses.get(resp.status, 0) + 1
        except BaseException as e:  # noqa: BLE001 -- reported below
            errors.append(e)
        finally:
            conn.close()

    threads = [threading.Thread(target=run) for _ in range(E2E_CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[0]
    assert not any(t.is_alive() for t in threads)


@pytest.mark.e2e
def test_e2e_replaying_proxy_rss_stays_flat_over_many_distinct_callers(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules)
    text = (rules / "limits.yaml").read_text()
    text = text.replace(f"max_callers: {DEFAULT_MAX_CALLERS}", f"max_callers: {E2E_CAP}")
    text = text.replace(f"max_requests: {DEFAULT_MAX_REQUESTS}", f"max_requests: {E2E_CAP}")
    (rules / "limits.yaml").write_text(text)
    assert load_limits(rules / "limits.yaml")["tracking"] == {"max_callers": E2E_CAP, "max_requests": E2E_CAP}
    log = tmp_path / "validation.jsonl"
    statuses: dict[int, int] = {}
    with Mitmdump(tmp_path, achievements_mode="replay", achievements_cassettes=REPO / "cassettes" / "example",
                  achievements_throttle=True, achievements_log=log, achievements_rules=rules) as proxy:
        pid = proxy.proc.pid
        send_distinct(proxy, FIRST_XUID, E2E_CHECKPOINT, statuses)
        at_checkpoint = rss_mb(pid)
        send_distinct(proxy, FIRST_XUID + E2E_CHECKPOINT, E2E_REQUESTS - E2E_CHECKPOINT, statuses)
        at_end = rss_mb(pid)
    entries, summary = read_log(log)
    # every caller is new: no request is throttled, every one is answered and logged
    assert sum(statuses.values()) == E2E_REQUESTS and 429 not in statuses
    assert len(entries) == E2E_REQUESTS and summary is not None and summary["requests"] == E2E_REQUESTS
    assert at_end - at_checkpoint < E2E_MAX_GROWTH_MB, (at_checkpoint, at_end)
    # The caps were reached and said so: once in the event log, counted in the exit summary.
    output = proxy.stop()
    assert output.count("callers are active: the least recently seen are forgotten") == 1, output[-2000:]
    forgotten = summary["forgotten_at_cap"]
    assert forgotten["throttle"] == E2E_REQUESTS - E2E_CAP
    assert forgotten["pairs"] == E2E_REQUESTS - E2E_CAP and forgotten["requests"] >= E2E_REQUESTS - E2E_CAP
