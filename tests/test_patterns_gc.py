"""The per-caller traffic state costs the cyclic garbage collector nothing per caller: once a
collection has seen it, however many (xuid, title) pairs and requests the call-pattern checks and
the rate limiter keep, the objects the collector tracks stay as many as before (each one tracked
would be walked by every full collection, pausing the proxy longer the more callers it has seen).
The byte-array times the state keeps read as the array('d') of the same times."""

from __future__ import annotations

import copy
import gc
import random
from array import array

import pytest

from xblreplay.traffic import CallPatterns, Throttle
from xblreplay.traffic.limits import rate_windows
from xblreplay.traffic.window import (
    add, drop_before, exceeded, first_inside, newest, since, size, start, trim,
)

from test_robust_memory import FIRST_XUID, LIMITS, TITLE, FakeClock


def tracked_growth(feed) -> int:
    """How many more objects the collector tracks after ``feed()`` (and one collection) than before."""
    gc.collect()
    before = len(gc.get_objects())
    kept = feed()
    gc.collect()
    grown = len(gc.get_objects()) - before
    del kept
    return grown


PAIRS, REQUESTS = 2_000, 10_000


def test_call_patterns_full_of_paging_clients_track_no_object_per_pair_or_request():
    def feed():
        clock = FakeClock()
        patterns = CallPatterns(LIMITS, clock=clock)
        for i in range(REQUESTS):  # a new URL each time, as a paging client sends
            clock.now += 0.001
            xuid = FIRST_XUID + i % PAIRS
            patterns.observe(xuid, TITLE, f"GET /users/xuid({xuid})/achievements?skipItems={i}", 200, None)
        assert patterns.tracked() == {"pairs": PAIRS, "requests": REQUESTS}
        return patterns

    assert tracked_growth(feed) < 50


def test_call_patterns_in_episodes_of_every_kind_track_no_object_per_pair_or_request():
    limits = copy.deepcopy(LIMITS)
    limits["rate_limits"]["burst"] = {"max_requests": 3, "period_s": 10}

    def feed():
        clock = FakeClock()
        patterns = CallPatterns(limits, clock=clock)
        codes = set()
        for i in range(REQUESTS):  # every request repeated and polled, every pair over burst, 429s
            clock.now += 0.5 if i % PAIRS == 0 else 0.0
            xuid = FIRST_XUID + i % PAIRS
            status, retry = (429, 30.0) if i % 7 == 0 else (200, None)
            codes |= {v.code for v in patterns.observe(xuid, TITLE, f"GET /x/{xuid}", status, retry)}
        assert codes == {"burst-limit", "repeated-request", "polling", "ignored-retry-after"}
        assert patterns.tracked() == {"pairs": PAIRS, "requests": PAIRS}
        return patterns

    assert tracked_growth(feed) < 50


def test_the_rate_limiter_with_throttled_and_free_callers_tracks_no_object_per_caller():
    limits = copy.deepcopy(LIMITS)
    limits["rate_limits"]["burst"] = {"max_requests": 2, "period_s": 10}

    def feed():
        clock = FakeClock()
        throttle = Throttle(limits, clock=clock)
        rejected = 0
        for i in range(REQUESTS):  # half the callers send 3 quick requests: their third is rejected
            clock.now += 0.001
            caller = i % PAIRS if i < 2 * PAIRS or i % 2 else (i % PAIRS) | 1
            rejected += throttle.check(FIRST_XUID + caller, TITLE) is not None
        assert len(throttle) == PAIRS and rejected > 0
        return throttle

    assert tracked_growth(feed) < 50


# ------------------------------------------------------------- byte-array times read as arrays

def random_times(rng: random.Random, now: float) -> list[float]:
    return sorted(rng.uniform(0, now) for _ in range(rng.randint(1, 400))) + [now]


def as_bytes(times: list[float]) -> bytearray:
    kept = start(times[0])
    for t in times[1:]:
        add(kept, t)
    return kept


@pytest.mark.parametrize("seed", range(3))
def test_byte_array_times_read_and_trim_as_the_array_of_the_same_times(seed):
    rng = random.Random(seed)
    windows = rate_windows(LIMITS)
    for _ in range(200):
        now = rng.uniform(1, 900)
        values = random_times(rng, now)
        kept, same = as_bytes(values), array("d", values)
        assert (size(kept), newest(kept)) == (len(values), values[-1])
        assert exceeded(windows, kept, now) == exceeded(windows, same, now)
        period = rng.choice((1.0, 15.0, 300.0, now / 2))
        assert first_inside(kept, period, now) == first_inside(same, period, now) \
            == sum(1 for t in values if not t + period > now)
        for w in windows:
            assert w.count(kept, now) == w.count(same, now) == sum(1 for t in values if t + w.period > now)
            if size(kept) >= w.limit:
                assert w.frees_in(kept, now) == w.frees_in(same, now)
        first = rng.randrange(len(values))
        assert array("d", bytes(since(kept, first))) == same[first:]
        assert drop_before(kept, first) == drop_before(same, first)
        assert array("d", bytes(kept)) == same
        keep = rng.randint(1, 50)
        trim(kept, period, keep, now)
        trim(same, period, keep, now)
        assert array("d", bytes(kept)) == same
