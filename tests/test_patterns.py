"""Live call-pattern checks (xblreplay.traffic.patterns), driven by a fake clock."""

import copy

from xblreplay.traffic import CODES, CallPatterns, load_limits

XUID = 2533274800000001
TITLE = "1234"
LIMITS = load_limits()
BASE = f"GET https://achievements.xboxlive.com/users/xuid({XUID})/achievements?titleId={TITLE}"


class FakeClock:
    def __init__(self, now: float = 5000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(**polling):
    limits = copy.deepcopy(LIMITS)
    limits["call_patterns"]["polling"].update(polling)
    clock = FakeClock()
    return CallPatterns(limits, clock=clock), clock


def send(patterns, clock, t, key=BASE, status=200, retry_after=None, xuid=XUID, title=TITLE):
    clock.now = t
    return [v.code for v in patterns.observe(xuid, title, key, status, retry_after)]


def page(i: int) -> str:
    return f"{BASE}&maxItems=32&continuationToken={32 * i}"


def test_call_pattern_well_behaved_pager_triggers_nothing():
    patterns, clock = make()
    findings = [send(patterns, clock, 5000.0 + i * 0.4, key=BASE if i == 0 else page(i)) for i in range(6)]
    assert findings == [[]] * 6
    assert patterns.summary() == dict.fromkeys(CODES, 0)


def test_call_pattern_scripted_burst_reported_once_per_episode():
    limit = LIMITS["rate_limits"]["burst"]["max_requests"]
    patterns, clock = make()
    codes = [send(patterns, clock, 5000.0 + i * 0.05, key=page(i)) for i in range(limit + 20)]
    flagged = [i for i, c in enumerate(codes) if "burst-limit" in c]
    assert flagged == [limit]  # the first call over the limit, and only that one
    v = patterns.observe(XUID, TITLE, page(999), 200, None)
    assert not v  # still the same episode
    # once the window is back within the limit, a new burst is a new episode
    codes = [send(patterns, clock, 5100.0 + i * 0.05, key=page(i)) for i in range(limit + 1)]
    assert [i for i, c in enumerate(codes) if "burst-limit" in c] == [limit]
    assert patterns.summary()["burst-limit"] == 2


def test_call_pattern_burst_is_per_xuid_and_title():
    limit = LIMITS["rate_limits"]["burst"]["max_requests"]
    patterns, clock = make()
    for i in range(limit):
        send(patterns, clock, 5000.0, key=page(i))
    assert send(patterns, clock, 5000.0, key=page(limit), title="5678") == []
    assert send(patterns, clock, 5000.0, key=page(limit), xuid=XUID + 1) == []
    assert send(patterns, clock, 5000.0, key=page(limit)) == ["burst-limit"]


def test_call_pattern_sustain_limit_under_the_burst_rate():
    limit = LIMITS["rate_limits"]["sustain"]["max_requests"]
    patterns, clock = make()
    codes = [send(patterns, clock, 5000.0 + i * 0.9, key=page(i)) for i in range(limit + 5)]
    assert [i for i, c in enumerate(codes) if c] == [limit]
    assert codes[limit] == ["sustain-limit"]


def test_call_pattern_certification_limit_is_an_error():
    limit = LIMITS["rate_limits"]["certification"]["max_requests"]
    patterns, clock = make()
    found = []
    for i in range(limit + 1):
        clock.now = 5000.0 + i * 0.09  # 3001 calls in 270 s
        found += patterns.observe(XUID, TITLE, page(i), 200, None)
    cert = [v for v in found if v.code == "certification-limit"]
    assert len(cert) == 1 and cert[0].severity == "error"
    assert {v.severity for v in found if v.code != "certification-limit"} == {"warning"}
    assert {(v.rule, v.location) for v in found} == {("call-pattern", "traffic")}


def test_call_pattern_repeated_request_within_5s():
    patterns, clock = make()
    assert send(patterns, clock, 5000.0) == []
    assert send(patterns, clock, 5002.0) == ["repeated-request"]
    assert send(patterns, clock, 5004.0) == []  # same episode
    assert send(patterns, clock, 5010.0) == []  # rested more than 5 s: episode over
    assert send(patterns, clock, 5014.9) == ["repeated-request"]
    assert patterns.summary()["repeated-request"] == 2


def test_call_pattern_retry_after_a_failure_is_not_a_repeat():
    patterns, clock = make()
    assert send(patterns, clock, 5000.0, status=500) == []
    assert send(patterns, clock, 5001.0, status=0) == []  # connection dropped
    assert send(patterns, clock, 5002.0) == []
    assert send(patterns, clock, 5003.0) == ["repeated-request"]  # the last answer was a success


def test_call_pattern_polling_loop_flagged_once():
    patterns, clock = make(min_calls=5, tolerance=0.2)
    jitter = [0.0, 0.4, -0.5, 0.3, -0.2, 0.1, 0.0]
    codes = [send(patterns, clock, 5000.0 + 30 * i + j) for i, j in enumerate(jitter)]
    assert codes == [[], [], [], [], ["polling"], [], []]


def test_call_pattern_irregular_calls_are_not_polling():
    patterns, clock = make(min_calls=5, tolerance=0.2)
    times = [5000.0, 5030.0, 5045.0, 5090.0, 5100.0, 5160.0, 5170.0]
    assert [send(patterns, clock, t) for t in times] == [[]] * len(times)


def test_call_pattern_polling_tolerance_boundary():
    """Every interval within tolerance x mean of the mean: 10 s +/- 20 % passes, +/- 30 % does not."""
    for spread, expected in ((1.5, ["polling"]), (3.5, [])):
        patterns, clock = make(min_calls=5, tolerance=0.2)
        intervals = [10 + spread, 10 - spread, 10 + spread, 10 - spread]
        t = 5000.0
        codes = [send(patterns, clock, t)]
        for step in intervals:
            t += step
            codes.append(send(patterns, clock, t))
        assert codes[-1] == expected, spread


def test_call_pattern_polling_new_episode_after_the_rhythm_breaks():
    patterns, clock = make(min_calls=5, tolerance=0.2)
    times = [5000 + 20 * i for i in range(5)] + [5200] + [5200 + 20 * i for i in range(1, 5)]
    codes = [send(patterns, clock, float(t)) for t in times]
    assert [i for i, c in enumerate(codes) if c == ["polling"]] == [4, 9]


def test_call_pattern_ignored_retry_after():
    patterns, clock = make()
    assert send(patterns, clock, 5000.0, key=page(1), status=429, retry_after=5) == []
    assert send(patterns, clock, 5002.0, key=page(2), status=429, retry_after=5) == ["ignored-retry-after"]
    # the 429s earned while ignoring extend the episode (to 5011), so no second report at 5008
    assert send(patterns, clock, 5006.0, key=page(3), status=429, retry_after=5) == []
    assert send(patterns, clock, 5008.0, key=page(4)) == []
    assert send(patterns, clock, 5011.0, key=page(5)) == []
    assert patterns.summary()["ignored-retry-after"] == 1
    # a new Retry-After after the episode is a new episode
    assert send(patterns, clock, 5012.0, key=page(6), status=503, retry_after=10) == []
    assert send(patterns, clock, 5018.0, key=page(7)) == ["ignored-retry-after"]
    assert patterns.summary()["ignored-retry-after"] == 2


def test_call_pattern_honoured_retry_after_is_silent():
    patterns, clock = make()
    assert send(patterns, clock, 5000.0, status=503, retry_after=5) == []
    assert send(patterns, clock, 5001.0, title="5678", key=page(1)) == []  # another title is not blocked
    assert send(patterns, clock, 5005.0) == []  # exactly when allowed; a retry after a failure


def test_call_pattern_state_is_forgotten_when_idle():
    patterns, clock = make()
    for x in range(40):
        send(patterns, clock, 5000.0, xuid=x, key=f"GET /users/xuid({x})/achievements")
    assert patterns.tracked() == {"pairs": 40, "requests": 40}
    horizon = max(LIMITS["rate_limits"]["sustain"]["period_s"], LIMITS["call_patterns"]["polling"]["max_interval_s"])
    send(patterns, clock, 5000.0 + horizon, xuid=999)
    assert patterns.tracked() == {"pairs": 1, "requests": 1}


def test_call_pattern_a_long_retry_after_does_not_hold_back_idle_pairs():
    patterns, clock = make()
    horizon = max(LIMITS["rate_limits"][w]["period_s"] for w in ("burst", "sustain", "certification"))
    # the first pair seen is told to wait far longer than any window
    send(patterns, clock, 5000.0, status=503, retry_after=10 * horizon)
    for x in range(40):
        send(patterns, clock, 5001.0, xuid=x, key=f"GET /users/xuid({x})/achievements")
    send(patterns, clock, 5001.0 + horizon, xuid=999, key="GET /other")
    # the 40 idle pairs are gone; the blocked one stays while its Retry-After lasts
    assert patterns.tracked()["pairs"] == 2
    assert send(patterns, clock, 5002.0 + horizon, key=page(1)) == ["ignored-retry-after"]


def test_call_pattern_caps_forget_the_least_recently_seen():
    limits = copy.deepcopy(LIMITS)
    limits["tracking"] = {"max_callers": 3, "max_requests": 4}
    clock = FakeClock()
    patterns = CallPatterns(limits, clock=clock)
    for x in (1, 2, 3):
        send(patterns, clock, 5000.0, xuid=x, key=f"GET /x/{x}")
    assert send(patterns, clock, 5001.0, xuid=1, key="GET /x/1") == ["repeated-request"]
    send(patterns, clock, 5001.0, xuid=4, key="GET /x/4")  # pairs over the cap: 2 goes
    assert patterns.tracked() == {"pairs": 3, "requests": 4}
    send(patterns, clock, 5001.0, xuid=5, key="GET /x/5")  # and 3; requests over the cap: /x/2 goes
    assert patterns.tracked() == {"pairs": 3, "requests": 4}
    assert patterns.forgotten_at_cap == {"pairs": 2, "requests": 1}
    assert send(patterns, clock, 5002.0, xuid=2, key="GET /x/2") == []  # forgotten: no repeat
    assert send(patterns, clock, 5002.0, xuid=4, key="GET /x/4") == ["repeated-request"]  # kept


def test_retry_after_is_read_in_ascii_delay_seconds_only():
    from xblreplay.traffic import retry_after_seconds

    assert retry_after_seconds("12") == 12.0
    for value in (None, "", "²", "١٢", "1.5", "Wed, 21 Oct 2015 07:28:00 GMT"):
        assert retry_after_seconds(value) is None, value


# ------------------------------------------------------------------ episodes under load

def test_call_pattern_polling_under_jitter_is_one_counted_episode():
    """A loop whose rhythm jitter breaks now and then (as under load) is reported once; every
    later regular series of it is counted in the same episode."""
    patterns, clock = make(min_calls=5, tolerance=0.2)  # quiet_s as shipped
    t, codes = 5000.0, []
    for i in range(60):
        t += 1.0 if i % 9 else 2.5  # one late call in nine breaks the rhythm for four series
        codes.append(send(patterns, clock, t))
    flagged = [i for i, c in enumerate(codes) if "polling" in c]
    assert flagged == [4]
    regular = sum(1 for i in range(4, 60) if not any(j % 9 == 0 for j in range(i - 3, i + 1)))
    episode = patterns.episodes()["polling"]
    assert episode == {"episodes": 1, "requests": regular, "longest": regular}
    assert patterns.summary()["polling"] == 1


def test_call_pattern_polling_episode_ends_after_quiet_s():
    patterns, clock = make(min_calls=5, tolerance=0.2, quiet_s=60)
    times = [5000.0 + 10 * i for i in range(5)]  # regular at 5040
    times += [5100.0, 5110.0, 5120.0, 5130.0, 5140.0]  # regular again at 5140: 100 s later
    codes = [send(patterns, clock, t) for t in times]
    assert [i for i, c in enumerate(codes) if "polling" in c] == [4, 9]
    patterns, clock = make(min_calls=5, tolerance=0.2, quiet_s=120)  # the same calls, one episode
    codes = [send(patterns, clock, t) for t in times]
    assert [i for i, c in enumerate(codes) if "polling" in c] == [4]
    assert patterns.episodes()["polling"] == {"episodes": 1, "requests": 2, "longest": 2}


def test_call_pattern_repeat_episode_outlives_a_failed_retry():
    """A retry after a failed answer is not a repeat, and does not end the episode either: a
    client hammering one URL through intermittent 503s is reported once."""
    patterns, clock = make()
    assert send(patterns, clock, 5000.0) == []
    assert send(patterns, clock, 5000.1) == ["repeated-request"]
    assert send(patterns, clock, 5000.5, status=503) == []  # a repeat, counted
    assert send(patterns, clock, 5000.6) == []  # a retry after a failure: no repeat
    assert send(patterns, clock, 5001.5) == []  # a repeat again, the same episode
    assert patterns.summary()["repeated-request"] == 1
    assert patterns.episodes() == {"repeated-request": {"episodes": 1, "requests": 3, "longest": 3}}


def test_call_pattern_episodes_count_the_requests_of_each_limit_episode():
    limit = LIMITS["rate_limits"]["burst"]["max_requests"]
    patterns, clock = make()
    for i in range(limit + 20):  # the last 20 over the limit: one episode of 20
        send(patterns, clock, 5000.0 + i * 0.05, key=page(i))
    for i in range(limit + 5):  # a second episode of 5 requests
        send(patterns, clock, 5100.0 + i * 0.05, key=page(i))
    assert patterns.episodes()["burst-limit"] == {"episodes": 2, "requests": 25, "longest": 20}
    assert "polling" not in patterns.episodes()  # codes never reported are left out
