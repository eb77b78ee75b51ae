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

Each finding is reported once per episode: a limit once until its window is back within the
limit, a repeat once until the request rests for ``repeat_window_s``, polling once until the
rhythm breaks, an ignored Retry-After once per Retry-After (the 429s the early requests earn
extend it). State that can no longer produce a finding is forgotten, so memory follows the
active clients.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict, deque
from itertools import pairwise
from dataclasses import dataclass
from typing import Any, Callable

from .model import ERROR, WARNING, Violation

RULE = "call-pattern"
RATE_WINDOWS = ("burst", "sustain", "certification")
CODES = tuple(f"{w}-limit" for w in RATE_WINDOWS) + ("repeated-request", "polling", "ignored-retry-after")
RETRY_STATUSES = (429, 503)


@dataclass(slots=True)
class _Pair:
    """Per (xuid, title): recent request times per rate window, and the Retry-After episode."""

    times: tuple[deque[float], ...]
    over: list[bool]
    last: float = 0.0
    blocked_until: float = float("-inf")
    retry_reported: bool = False


@dataclass(slots=True)
class _Request:
    """Per (xuid, title, request key): the last few times it was sent."""

    times: deque[float]
    ok: bool = True  # the last answer was a success (status 1..399)
    repeating: bool = False
    polling: bool = False


@dataclass(frozen=True, slots=True)
class _Limit:
    name: str
    limit: int
    period: float


class CallPatterns:
    def __init__(self, limits: dict[str, Any], clock: Callable[[], float] = time.monotonic) -> None:
        rates, patterns = limits["rate_limits"], limits["call_patterns"]
        polling = patterns["polling"]
        self._limits = tuple(_Limit(n, rates[n]["max_requests"], rates[n]["period_s"]) for n in RATE_WINDOWS)
        self._repeat_window = patterns["repeat_window_s"]
        self._min_calls = polling["min_calls"]
        self._tolerance = polling["tolerance"]
        self._max_interval = polling["max_interval_s"]
        # state older than these can no longer take part in a finding
        self._pair_horizon = max(w.period for w in self._limits)
        self._request_horizon = max(self._repeat_window, self._max_interval)
        self._clock = clock
        self._pairs: OrderedDict[tuple[int, str], _Pair] = OrderedDict()
        self._requests: OrderedDict[tuple[int, str, str], _Request] = OrderedDict()
        self._counts: Counter[str] = Counter()

    def observe(self, xuid: int, title: str, request_key: str, status: int,
                retry_after: float | None) -> list[Violation]:
        """Record one answered request; returns the findings it starts.

        request_key identifies "the same request" (e.g. method and URL); status is the answer's
        status (0 when there was none); retry_after is its Retry-After in seconds, if any.
        """
        now = self._clock()
        self._forget_idle(now)
        found: list[Violation] = []
        pair_name = f"xuid({xuid}) title {title}"

        pair = self._pairs.get((xuid, title))
        if pair is None:
            pair = self._pairs[(xuid, title)] = _Pair(
                tuple(deque(maxlen=w.limit + 1) for w in self._limits), [False] * len(self._limits)
            )
        self._pairs.move_to_end((xuid, title))
        pair.last = now
        self._check_rates(pair, now, pair_name, found)
        self._check_retry_after(pair, now, status, retry_after, pair_name, found)

        key = (xuid, title, request_key)
        request = self._requests.get(key)
        if request is None:
            request = self._requests[key] = _Request(deque(maxlen=self._min_calls))
        self._requests.move_to_end(key)
        self._check_request(request, now, request_key, found)
        request.ok = 0 < status < 400

        self._counts.update(v.code for v in found)
        return found

    def summary(self) -> dict[str, int]:
        """How many times each finding was reported (every code, zeros included)."""
        return {code: self._counts[code] for code in CODES}

    def tracked(self) -> dict[str, int]:
        """How much state is kept: (xuid, title) pairs and distinct requests."""
        return {"pairs": len(self._pairs), "requests": len(self._requests)}

    def _check_rates(self, pair: _Pair, now: float, name: str, found: list[Violation]) -> None:
        # Each deque keeps at most limit + 1 times: the window is over its limit exactly when
        # all of them are still inside it.
        for i, (window, times) in enumerate(zip(self._limits, pair.times)):
            while times and times[0] + window.period <= now:
                times.popleft()
            times.append(now)
            over = len(times) > window.limit
            if over and not pair.over[i]:
                found.append(Violation(
                    RULE, "traffic", name, ERROR if window.name == "certification" else WARNING,
                    f"more than {window.limit} requests in {window.period:g} s for {name} "
                    f"({window.name} limit)",
                    f"{window.name}-limit",
                ))
            pair.over[i] = over

    def _check_retry_after(self, pair: _Pair, now: float, status: int, retry_after: float | None,
                           name: str, found: list[Violation]) -> None:
        early = now < pair.blocked_until
        if early and not pair.retry_reported:
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
        times = request.times
        gap = now - times[-1] if times else None
        repeat = gap is not None and gap < self._repeat_window and request.ok
        if repeat and not request.repeating:
            found.append(Violation(
                RULE, "traffic", key, WARNING,
                f"the same request again {gap:.3g} s after a successful answer to it", "repeated-request",
            ))
        request.repeating = repeat

        if gap is not None and gap > self._max_interval:
            times.clear()
        times.append(now)
        regular = False
        if len(times) == self._min_calls:
            intervals = [b - a for a, b in pairwise(times)]
            mean = sum(intervals) / len(intervals)
            regular = mean > 0 and all(abs(i - mean) <= self._tolerance * mean for i in intervals)
            if regular and not request.polling:
                found.append(Violation(
                    RULE, "traffic", key, WARNING,
                    f"the same request {self._min_calls} times in a row, every {mean:.3g} s: a polling loop",
                    "polling",
                ))
        request.polling = regular

    def _forget_idle(self, now: float) -> None:
        while self._pairs:
            pair = next(iter(self._pairs.values()))
            if pair.last + self._pair_horizon > now or pair.blocked_until > now:
                break
            self._pairs.popitem(last=False)
        while self._requests:
            request = next(iter(self._requests.values()))
            if request.times[-1] + self._request_horizon > now:
                break
            self._requests.popitem(last=False)
