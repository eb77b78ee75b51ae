"""Live call-pattern checks: findings about how a client calls the service (rule "call-pattern").

``CallPatterns.observe`` is called once per answered request and returns the findings it caused,
as they happen. Thresholds come from ``rules/limits.yaml``. Codes:

* ``burst-limit``, ``sustain-limit``, ``certification-limit`` -- more requests for one
  (xuid, title) in the window than the limit allows (certification is 10x sustain; reaching it
  fails certification, so it is an error, the rest are warnings). Every request counts,
  answered or throttled, whether or not the proxy throttles (R10 is separate).
* ``repeated-request`` -- the same request less than ``repeat_window_s`` after it was answered
  successfully (a retry after a failed answer -- status 0, 429 or any other >= 400 -- is not a
  repeat).
* ``polling`` -- the same request ``min_calls`` times in a row, each interval within
  ``tolerance`` x the mean interval of the mean.
* ``ignored-retry-after`` -- a request for an (xuid, title) sent before the ``Retry-After`` of an
  earlier 429 or 503 for that pair had elapsed.

Each finding is reported once per episode, on the first request that shows it; the later
requests of the episode that show it are counted, not reported again (:meth:`CallPatterns.episodes`,
the summary's ``call_pattern_episodes``). An episode of

* a limit lasts until its window is back within the limit;
* a repeat lasts until no repeat of the request has been seen for ``repeat_window_s`` (so a retry
  after a failed answer, which is not a repeat, does not end it);
* polling lasts until no regular series of the request has been seen for ``polling.quiet_s``
  (a loop under load, whose rhythm jitter breaks now and then, is one episode);
* an ignored Retry-After lasts as long as the Retry-After (the 429s the early requests earn
  extend it).

Memory. State that can no longer produce a finding is forgotten, so memory follows the active
clients (an idle pair still inside a Retry-After is kept without holding back the idle ones
behind it), and it is capped (``tracking`` in ``rules/limits.yaml``): at most ``max_callers``
(xuid, title) pairs and ``max_requests`` distinct requests are kept, the least recently seen
forgotten first. A forgotten pair or request starts afresh: a limit it was over may be reported
again as a new episode, its Retry-After and its repeat and polling history are forgotten. Each
pair keeps one array of request times (8 bytes a time) serving all three rate windows -- a window
is over its limit exactly when its (limit + 1)-th newest request is inside it, so the newest
(largest limit + 1) times inside the longest window are all it needs; each request keeps the
times of its last ``min_calls`` sends. A pair costs about 330 bytes and a request about 470 (its
key included), with one request each.
"""

from __future__ import annotations

import time
from array import array
from collections import Counter, OrderedDict
from itertools import pairwise
from dataclasses import dataclass
from typing import Any, Callable

from ..model import ERROR, WARNING, Violation
from .limits import SCHEMA, WINDOW_NAMES, rate_windows, tracking_caps
from .window import add_capped, exceeded, forget_idle, trim

RULE = "call-pattern"
CODES = tuple(f"{w}-limit" for w in WINDOW_NAMES) + ("repeated-request", "polling", "ignored-retry-after")
RETRY_STATUSES = (429, 503)
# How long a polling episode outlives its last regular series when limits.yaml gives no
# call_patterns.polling.quiet_s (the schema's default).
POLLING_QUIET_S = SCHEMA["properties"]["call_patterns"]["properties"]["polling"]["properties"]["quiet_s"]["default"]


def retry_after_seconds(header: str | None) -> float | None:
    """The seconds of a ``Retry-After`` header in its delay-seconds form (None: absent, or an
    HTTP date, which no answer here carries; digits other than ASCII ones, which float() refuses)."""
    return float(header) if header and header.isascii() and header.isdigit() else None


@dataclass(slots=True)
class _Pair:
    """Per (xuid, title): its recent request times (ascending, newest last), the rate windows it
    is over (bit i for window i), and the Retry-After episode."""

    times: array
    over: int = 0
    blocked_until: float = float("-inf")
    retry_reported: bool = False
    counts: dict[str, int] | None = None  # requests in each open episode, by code


@dataclass(slots=True)
class _Request:
    """Per (xuid, title, request key): the last few times it was sent (ascending, newest last)."""

    times: array
    ok: bool = True  # the last answer was a success (status 1..399)
    repeat_seen: float = float("-inf")  # when a repeat of it was last seen
    polling_seen: float = float("-inf")  # when a regular series of it was last seen
    counts: dict[str, int] | None = None  # requests in each open episode, by code

    def newest(self) -> float:
        return self.times[-1]


def _near(intervals: list[float], mean: float, spread: float) -> bool:
    """Whether every interval is within ``spread`` of the mean."""
    for interval in intervals:
        if not abs(interval - mean) <= spread:  # NaN too, as all(... <= ...) has it
            return False
    return True


def _name(pair_key: tuple[int, str]) -> str:
    """How a finding names an (xuid, title) pair."""
    return f"xuid({pair_key[0]}) title {pair_key[1]}"


class CallPatterns:
    """The call-pattern checks. ``observe`` is called once per answered request."""

    def __init__(self, limits: dict[str, Any], clock: Callable[[], float] = time.monotonic) -> None:
        patterns = limits["call_patterns"]
        polling = patterns["polling"]
        self._limits = rate_windows(limits)
        self._rate_codes = tuple(f"{w.name}-limit" for w in self._limits)
        self._repeat_window = patterns["repeat_window_s"]
        self._min_calls = polling["min_calls"]
        self._tolerance = polling["tolerance"]
        self._max_interval = polling["max_interval_s"]
        self._polling_quiet = polling.get("quiet_s", POLLING_QUIET_S)
        # state older than these can no longer take part in a finding
        self._pair_horizon = max(w.period for w in self._limits)
        self._pair_keep = max(w.limit for w in self._limits) + 1  # times a pair needs at most
        self._least_limit = min(w.limit for w in self._limits)
        self._request_horizon = max(self._repeat_window, self._max_interval)
        self._max_pairs, self._max_requests = tracking_caps(limits)
        self._clock = clock
        # least recently seen first
        self._pairs: OrderedDict[tuple[int, str], _Pair] = OrderedDict()
        self._requests: OrderedDict[tuple[int, str, str], _Request] = OrderedDict()
        self._counts: Counter[str] = Counter()  # episodes, by code
        self._seen = dict.fromkeys(CODES, 0)  # requests that showed a pattern, by code
        self._longest = dict.fromkeys(CODES, 0)  # requests in the longest episode, by code
        self.forgotten_at_cap = {"pairs": 0, "requests": 0}  # forgotten because a cap was reached

    def observe(self, xuid: int, title: str, request_key: str, status: int,
                retry_after: float | None) -> list[Violation]:
        """Record one answered request; returns the findings it starts.

        request_key identifies "the same request" (e.g. method and URL); status is the answer's
        status (0 when there was none); retry_after is its Retry-After in seconds, if any.
        """
        now = self._clock()
        pairs, requests = self._pairs, self._requests
        # most requests find nothing to forget: the least recently seen of each table is recent
        if (pairs and not next(iter(pairs.values())).times[-1] + self._pair_horizon > now) or \
                (requests and not next(iter(requests.values())).times[-1] + self._request_horizon > now):
            self._forget_idle(now)
        found: list[Violation] = []

        pair_key = (xuid, title)
        pair = pairs.get(pair_key)
        if pair is None:  # arrays are made holding their first time: no room to spare
            pair = _Pair(array("d", (now,)))
            self.forgotten_at_cap["pairs"] += add_capped(pairs, pair_key, pair, self._max_pairs)
        else:
            pairs.move_to_end(pair_key)
            pair.times.append(now)
        self._check_rates(pair, now, pair_key, found)
        if status in RETRY_STATUSES or now < pair.blocked_until:
            self._check_retry_after(pair, now, status, retry_after, pair_key, found)

        key = (xuid, title, request_key)
        request = requests.get(key)
        if request is None:
            request = _Request(array("d", (now,)))
            self.forgotten_at_cap["requests"] += add_capped(requests, key, request, self._max_requests)
        else:
            requests.move_to_end(key)
            self._check_request(request, now, request_key, found)
        request.ok = 0 < status < 400
        return found

    def summary(self) -> dict[str, int]:
        """How many times each finding was reported, one per episode (every code, zeros included)."""
        return {code: self._counts[code] for code in CODES}

    def episodes(self) -> dict[str, dict[str, int]]:
        """Per code that was reported: its episodes, the requests that showed it in them (the
        reported ones included) and the requests of the longest episode."""
        return {code: {"episodes": self._counts[code], "requests": self._seen[code], "longest": self._longest[code]}
                for code in CODES if self._counts[code]}

    def _episode(self, state: _Pair | _Request, code: str, new: bool) -> None:
        """Counts a request showing ``code`` in ``state``'s episode (a ``new`` one starts at 1, and
        is the one reported)."""
        counts = state.counts
        if counts is None:
            counts = state.counts = {}
        n = counts[code] = 1 if new else counts[code] + 1  # an episode starts new
        if new:  # its finding is reported
            self._counts[code] += 1
        self._seen[code] += 1
        if n > self._longest[code]:
            self._longest[code] = n

    def tracked(self) -> dict[str, int]:
        """How much state is kept: (xuid, title) pairs and distinct requests."""
        return {"pairs": len(self._pairs), "requests": len(self._requests)}

    def _check_rates(self, pair: _Pair, now: float, pair_key: tuple[int, str], found: list[Violation]) -> None:
        # Every request counts in every window. A window is over its limit exactly when the
        # (limit + 1)-th newest request is still inside it; older times than the longest window
        # or than the largest limit + 1 can serve no window and are dropped.
        times = pair.times  # now included
        trim(times, self._pair_horizon, self._pair_keep, now)
        if len(times) <= self._least_limit and not pair.over:
            return  # no window can be over its limit, and none was
        was, over = pair.over, exceeded(self._limits, times, now)
        pair.over = over
        if not over:
            return
        for i, (window, code) in enumerate(zip(self._limits, self._rate_codes)):
            bit = 1 << i
            if not over & bit:
                continue
            self._episode(pair, code, not was & bit)
            if not was & bit:
                name = _name(pair_key)
                found.append(Violation(
                    RULE, "traffic", name, ERROR if window.name == "certification" else WARNING,
                    f"more than {window.limit} requests in {window.period:g} s for {name} "
                    f"({window.name} limit)",
                    code,
                ))

    def _check_retry_after(self, pair: _Pair, now: float, status: int, retry_after: float | None,
                           pair_key: tuple[int, str], found: list[Violation]) -> None:
        early = now < pair.blocked_until
        if early:
            self._episode(pair, "ignored-retry-after", not pair.retry_reported)
        if early and not pair.retry_reported:
            name = _name(pair_key)
            found.append(Violation(
                RULE, "traffic", name, WARNING,
                f"request for {name} sent {pair.blocked_until - now:.3g} s before the Retry-After "
                f"of an earlier 429/503 had elapsed",
                "ignored-retry-after",
            ))
            pair.retry_reported = True
        if status in RETRY_STATUSES and retry_after is not None:
            if early:
                pair.blocked_until = max(pair.blocked_until, now + retry_after)
            else:
                pair.blocked_until, pair.retry_reported = now + retry_after, False

    def _check_request(self, request: _Request, now: float, key: str, found: list[Violation]) -> None:
        """A request sent before (a new one has nothing to find: it starts with its first time)."""
        times = request.times
        gap = now - times[-1]
        if gap < self._repeat_window and request.ok:
            new = now - request.repeat_seen >= self._repeat_window
            if new:
                found.append(Violation(
                    RULE, "traffic", key, WARNING,
                    f"the same request again {gap:.3g} s after a successful answer to it", "repeated-request",
                ))
            self._episode(request, "repeated-request", new)
            request.repeat_seen = now

        if gap > self._max_interval:
            del times[:]
        times.append(now)
        if len(times) > self._min_calls:
            del times[0]
        if len(times) == self._min_calls:
            intervals = [b - a for a, b in pairwise(times)]
            mean = sum(intervals) / len(intervals)
            if mean > 0 and _near(intervals, mean, self._tolerance * mean):
                new = now - request.polling_seen >= self._polling_quiet
                if new:
                    found.append(Violation(
                        RULE, "traffic", key, WARNING,
                        f"the same request {self._min_calls} times in a row, every {mean:.3g} s: a polling loop",
                        "polling",
                    ))
                self._episode(request, "polling", new)
                request.polling_seen = now

    def _forget_idle(self, now: float) -> None:
        moved = False
        while self._pairs:
            key, pair = next(iter(self._pairs.items()))
            if pair.times[-1] + self._pair_horizon > now:
                break
            if pair.blocked_until > now:
                # idle but still inside a Retry-After: it must not hold back the idle pairs behind
                # it, so it goes to the back of the line (one such move per call)
                if moved:
                    break
                self._pairs.move_to_end(key)
                moved = True
                continue
            self._pairs.popitem(last=False)
        forget_idle(self._requests, _Request.newest, self._request_horizon, now)
