"""R10 throttling (xblreplay.traffic.throttle) and the limits file, driven by a fake clock."""

import copy
import math

import pytest
import yaml

from xblreplay.traffic import (
    DEFAULT_LIMITS, DEFAULT_MAX_CALLERS, DEFAULT_MAX_REQUESTS, LimitsError, Throttle, load_limits,
)

XUID = 2533274800000001
TITLE = "1234"
LIMITS = load_limits()


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(burst=100, burst_s=15, sustain=300, sustain_s=300):
    limits = copy.deepcopy(LIMITS)
    limits["rate_limits"]["burst"] = {"max_requests": burst, "period_s": burst_s}
    limits["rate_limits"]["sustain"] = {"max_requests": sustain, "period_s": sustain_s}
    clock = FakeClock()
    return Throttle(limits, clock=clock), clock


def call_at(throttle, clock, t, xuid=XUID, title=TITLE):
    clock.now = t
    return throttle.check(xuid, title)


def test_r10_shipped_limits_match_spec_section_4_2():
    rates = LIMITS["rate_limits"]
    assert (rates["burst"]["max_requests"], rates["burst"]["period_s"]) == (100, 15)
    assert (rates["sustain"]["max_requests"], rates["sustain"]["period_s"]) == (300, 300)
    assert (rates["certification"]["max_requests"], rates["certification"]["period_s"]) == (3000, 300)


def test_r10_burst_101st_call_in_15s_is_429_with_retry_after():
    throttle, clock = make()
    times = [1000.0 + i * 0.1 for i in range(100)]
    assert all(call_at(throttle, clock, t) is None for t in times)
    now = 1010.3
    answer = call_at(throttle, clock, now)
    assert answer is not None and answer.status == 429 and answer.source == "throttle"
    expected = math.ceil(times[0] + 15 - now)  # the oldest call leaves the window then
    assert answer.headers == [("Retry-After", str(expected))]
    assert answer.body == {
        "version": 1, "currentRequests": 100, "maxRequests": 100, "periodInSeconds": 15, "limitType": "rate",
    }
    (v,) = answer.violations
    assert (v.rule, v.code, v.severity, v.location, v.name) == ("R10", "throttled", "error", "traffic", "burst")
    assert "R10" in answer.reason and str(expected) in answer.reason


def test_r10_burst_window_frees_exactly_on_time():
    throttle, clock = make()
    for _ in range(100):
        assert call_at(throttle, clock, 1000.0) is None
    assert call_at(throttle, clock, 1014.999) is not None
    assert call_at(throttle, clock, 1015.0) is None  # the 100 calls at t=1000 have aged out


def test_r10_waiting_retry_after_gets_the_next_call_through():
    throttle, clock = make()
    for i in range(100):
        call_at(throttle, clock, 1000.0 + i * 0.05)
    answer = call_at(throttle, clock, 1007.25)
    retry = int(dict(answer.headers)["Retry-After"])
    assert call_at(throttle, clock, 1007.25 + retry - 1) is not None
    assert call_at(throttle, clock, 1007.25 + retry) is None


def test_r10_throttled_calls_do_not_extend_the_burst_window():
    """Module choice: burst counts accepted calls only, so the window rolls over on time."""
    throttle, clock = make()
    for _ in range(100):
        call_at(throttle, clock, 1000.0)
    for t in range(1001, 1015):
        assert call_at(throttle, clock, t) is not None
    assert call_at(throttle, clock, 1015.0) is None


def test_r10_sustain_301st_call_in_300s_is_429():
    throttle, clock = make()
    times = [1000.0 + i * 0.9 for i in range(300)]  # 17 calls per 15 s: never near the burst limit
    assert all(call_at(throttle, clock, t) is None for t in times)
    now = 1280.5
    answer = call_at(throttle, clock, now)
    assert answer is not None
    assert answer.body["periodInSeconds"] == 300 and answer.body["maxRequests"] == 300
    assert answer.violations[0].name == "sustain"
    # this throttled call counts too, so two of the oldest calls must leave before one more fits
    assert dict(answer.headers)["Retry-After"] == str(math.ceil(times[1] + 300 - now))


def test_r10_throttled_calls_count_toward_sustain():
    throttle, clock = make()
    for i in range(300):
        assert call_at(throttle, clock, 1000.0 + i) is None
    throttled = call_at(throttle, clock, 1299.5)
    assert throttled is not None and throttled.body["currentRequests"] == 301
    # the call at t=1000 ages out at 1300, but the throttled call at 1299.5 still fills the window
    assert call_at(throttle, clock, 1300.0) is not None
    # the calls at 1000..1002 are out by 1302 and one more fits (the window holds 299 then)
    assert call_at(throttle, clock, 1301.5) is not None
    assert call_at(throttle, clock, 1303.0) is None


def test_r10_without_the_throttled_call_sustain_would_have_freed():
    """Control for the test above: the same schedule without the extra call goes through at 1300."""
    throttle, clock = make()
    for i in range(300):
        call_at(throttle, clock, 1000.0 + i)
    assert call_at(throttle, clock, 1300.0) is None


def test_r10_both_windows_full_reports_the_longer_wait():
    throttle, clock = make(burst=3, burst_s=10, sustain=3, sustain_s=60)
    for t in (1000.0, 1001.0, 1002.0):
        call_at(throttle, clock, t)
    answer = call_at(throttle, clock, 1003.0)
    assert answer.body["periodInSeconds"] == 60
    # sustain also counts this call: 1000 and 1001 must leave, at 1061
    assert dict(answer.headers)["Retry-After"] == str(math.ceil(1001.0 + 60 - 1003.0))


def test_r10_limits_are_per_xuid_and_title():
    throttle, clock = make(burst=2)
    call_at(throttle, clock, 1000.0)
    call_at(throttle, clock, 1000.0)
    assert call_at(throttle, clock, 1000.0) is not None
    assert call_at(throttle, clock, 1000.0, title="5678") is None
    assert call_at(throttle, clock, 1000.0, xuid=XUID + 1) is None


def test_r10_idle_pairs_are_forgotten():
    throttle, clock = make()
    for x in range(50):
        call_at(throttle, clock, 1000.0 + x * 0.01, xuid=x)
    assert len(throttle) == 50
    call_at(throttle, clock, 1000.0 + 299, xuid=999)
    assert len(throttle) == 51  # still inside the sustain window
    call_at(throttle, clock, 1000.0 + 301, xuid=999)
    assert len(throttle) == 1


# ------------------------------------------------------------------ load_limits errors

def write(tmp_path, doc) -> str:
    path = tmp_path / "limits.yaml"
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return str(path)


def shipped() -> dict:
    return yaml.safe_load(DEFAULT_LIMITS.read_text())


@pytest.mark.parametrize(
    "mutate, where",
    [
        (lambda d: d["rate_limits"].pop("burst"), "rate_limits.burst"),
        (lambda d: d["rate_limits"]["sustain"].update(max_requests=0), "rate_limits.sustain.max_requests"),
        (lambda d: d["rate_limits"]["burst"].update(max_requests=1.5), "rate_limits.burst.max_requests"),
        (lambda d: d["rate_limits"]["burst"].update(period_s="15s"), "rate_limits.burst.period_s"),
        (lambda d: d.update(version=2), "version"),
        (lambda d: d["call_patterns"]["polling"].update(min_calls=2), "call_patterns.polling.min_calls"),
        (lambda d: d["call_patterns"]["polling"].update(tolerance=-0.1), "call_patterns.polling.tolerance"),
        (lambda d: d["call_patterns"].pop("repeat_window_s"), "call_patterns.repeat_window_s"),
        (lambda d: d["call_patterns"]["polling"].update(quiet_s=0), "call_patterns.polling.quiet_s"),
        (lambda d: d.update(tracking=[10000]), "tracking"),
        (lambda d: d["tracking"].update(max_callers=0), "tracking.max_callers"),
        (lambda d: d["tracking"].update(max_callers=2.5), "tracking.max_callers"),
        (lambda d: d["tracking"].update(max_requests="many"), "tracking.max_requests"),
        (lambda d: d["tracking"].update(max_requests=None), "tracking.max_requests"),
    ],
)
def test_load_limits_names_the_bad_key(tmp_path, mutate, where):
    doc = shipped()
    mutate(doc)
    path = write(tmp_path, doc)
    with pytest.raises(LimitsError) as e:
        load_limits(path)
    assert str(e.value).startswith(f"{path}: {where}:")


def test_load_limits_tracking_is_optional_with_defaults(tmp_path):
    doc = shipped()
    defaults = {"max_callers": DEFAULT_MAX_CALLERS, "max_requests": DEFAULT_MAX_REQUESTS}
    assert doc["tracking"] == defaults
    del doc["tracking"]  # a limits file without the caps
    assert load_limits(write(tmp_path, doc))["tracking"] == defaults
    doc["tracking"] = {"max_callers": 7}  # one key given, the other defaulted
    assert load_limits(write(tmp_path, doc))["tracking"] == {"max_callers": 7, "max_requests": DEFAULT_MAX_REQUESTS}


def test_r10_pairs_beyond_max_callers_forget_the_least_recently_seen():
    limits = copy.deepcopy(LIMITS)
    limits["tracking"] = {"max_callers": 3, "max_requests": 3}
    clock = FakeClock()
    throttle = Throttle(limits, clock=clock)
    for x in (1, 2, 3):
        call_at(throttle, clock, 1000.0, xuid=x)
    call_at(throttle, clock, 1001.0, xuid=1)  # 2 is now the least recently seen
    call_at(throttle, clock, 1002.0, xuid=4)
    assert len(throttle) == 3 and throttle.forgotten_at_cap == 1
    # with a burst limit of 1: the forgotten pair (2) is let through again at once, a kept one is not
    limits["rate_limits"]["burst"] = {"max_requests": 1, "period_s": 15}
    throttle = Throttle(limits, clock=clock)
    for x in (1, 2, 3):
        call_at(throttle, clock, 1003.0, xuid=x)
    call_at(throttle, clock, 1004.0, xuid=1)  # throttled, and now the most recently seen
    call_at(throttle, clock, 1004.0, xuid=4)
    assert call_at(throttle, clock, 1005.0, xuid=2) is None
    assert call_at(throttle, clock, 1005.0, xuid=1) is not None


def test_load_limits_rejects_unreadable_and_non_yaml(tmp_path):
    with pytest.raises(LimitsError, match="cannot read"):
        load_limits(tmp_path / "absent.yaml")
    with pytest.raises(LimitsError, match="not valid YAML"):
        load_limits(write(tmp_path, "rate_limits: [unclosed"))
    with pytest.raises(LimitsError, match="top level"):
        load_limits(write(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(LimitsError, match="not valid YAML"):  # safe loading only
        load_limits(write(tmp_path, "version: !!python/object/apply:os.getcwd []\n"))
