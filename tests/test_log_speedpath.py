"""The validation log's kept forms: a URL, path or query piece written once and looked up after
reads exactly as one written afresh, under the same secrets only; the log's time reads as
datetime has it; the rate windows judged as one mask agree with each window."""

from __future__ import annotations

import gc
import random
from array import array
from datetime import datetime, timezone

from xblreplay import vlog
from xblreplay.proxy import state
from xblreplay.redact import allowlist, redact_url, request_secrets, secret_pattern
from xblreplay.traffic import DEFAULT_LIMITS, load_limits
from xblreplay.traffic.limits import rate_windows
from xblreplay.traffic.window import drop_before, exceeded, first_inside, trim

BASE = "https://achievements.xboxlive.com/users/xuid(2533274800000001)/achievements"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.dGVzdA.c2ln"


def headers(userhash: str = "3141592653589793238", **extra: str) -> dict[str, str]:
    return {"host": "achievements.xboxlive.com", "authorization": f"XBL3.0 x={userhash};{TOKEN}",
            "x-xbl-contract-version": "2", **extra}


def fresh(url: str, hdrs: dict[str, str]):
    """What the log writes for an exchange, found without any kept form."""
    secrets = secret_pattern(request_secrets(url, hdrs))
    return secrets, redact_url(url, secrets)


def test_a_kept_url_reads_as_one_written_afresh_for_each_client():
    a, b = headers(), headers("2718281828459045235")
    url = f"{BASE}?titleId=1&maxItems=10&continuationToken=2718281828459045235"
    for hdrs in (a, b, a, b):  # the same URL, alternating clients: b's userhash is in the query
        secrets, written = state.written_forms(url, hdrs)
        expected_secrets, expected = fresh(url, hdrs)
        assert written == expected
        assert secrets is expected_secrets
    assert "2718281828459045235" in state.written_forms(url, a)[1]
    assert "continuationToken=<redacted>" in state.written_forms(url, b)[1]


def test_a_query_with_secrets_of_its_own_is_written_under_them():
    blob = "Q" * 48
    url = f"{BASE}?titleId={blob[:12]}&zq={blob}"
    for _ in range(2):
        secrets, written = state.written_forms(url, headers())
        assert written == fresh(url, headers())[1] == f"{BASE}?titleId={blob[:12]}&zq=<redacted>"
        assert secrets is not state.written_forms(BASE, headers())[0]  # the query's secret added


def test_a_kept_piece_is_not_reused_under_other_secrets():
    url = f"{BASE}?titleId=1&maxItems=3141592653589793238"
    assert redact_url(url) == url  # no secrets: the value is kept (and so is its written form)
    pattern = secret_pattern(request_secrets(url, headers()))
    assert redact_url(url, pattern) == f"{BASE}?titleId=1&maxItems=<redacted>"
    assert redact_url(url) == url


def test_kept_forms_hold_no_secret_pattern_alive():
    pattern = secret_pattern({"authorization token": "a-secret-of-" + "".join(random.choices("abcdef", k=24))})
    mark = allowlist.pattern_mark(pattern)
    redact_url(f"{BASE}/kept-{id(pattern)}?titleId=1", pattern)
    assert mark() is pattern
    from xblreplay.redact import pattern as pattern_module
    pattern_module._pattern.cache_clear()  # the one cache that holds patterns
    del pattern
    gc.collect()
    assert mark() is None  # a new pattern gets a new mark: nothing kept under this one matches it


def test_the_last_clients_headers_change_with_any_value():
    first = state.written_forms(BASE, headers())[0]
    assert state.written_forms(BASE, headers())[0] is first
    other = state.written_forms(BASE, headers(cookie="session=abcdefgh12345678"))[0]
    assert other is not first and other.search("abcdefgh12345678")
    assert state.written_forms(BASE, headers())[0] is first


def test_long_headers_are_judged_each_time_and_not_kept():
    big = headers(**{"x-padding": "p " * 5000})
    url = f"{BASE}?titleId=7"
    assert state.written_forms(url, big) == fresh(url, big)
    assert url not in state._URLS or state._URLS[url][0] is not None


def test_the_time_is_the_one_datetime_gives():
    rng = random.Random(11)
    stamps = [0.0, 0.9999995, 0.0000005, 1.0000005, 1_800_000_000.9999995, -1.5, -0.0000005, -86400.9999996]
    stamps += [rng.uniform(-2e9, 4e9) for _ in range(20000)]
    stamps += [rng.randrange(0, 2 * 10**9) + (rng.randrange(10**6) + 0.5) / 1e6 for _ in range(20000)]
    for ts in stamps:
        dt = datetime.fromtimestamp(ts, timezone.utc)
        assert vlog.utc_stamp(ts) == dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z", ts


def test_now_is_stamped_between_the_clock_readings_around_it():
    before = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    stamp = vlog.utc_stamp()
    after = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    assert before <= stamp <= after


def test_the_windows_mask_and_trim_agree_with_each_window():
    windows = rate_windows(load_limits(DEFAULT_LIMITS))
    rng = random.Random(5)
    for _ in range(300):
        now = rng.uniform(0, 900)
        times = array("d", sorted(rng.uniform(0, now) for _ in range(rng.randint(1, 3500))) + [now])
        mask = exceeded(windows, times, now)
        assert mask == sum(1 << i for i, w in enumerate(windows) if w.exceeded(times, now))
        period, keep = max(w.period for w in windows), max(w.limit for w in windows) + 1
        expected = array("d", times)
        drop_before(expected, max(len(expected) - keep, first_inside(expected, period, now)))
        trim(times, period, keep, now)
        assert times == expected
