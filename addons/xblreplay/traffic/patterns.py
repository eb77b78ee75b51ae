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
times of its last ``min_calls`` sends. A pair costs about 330 bytes and a request about 420 (its
key included), with one request each. None of it is an object the cyclic garbage collector keeps
tracking (below): a full collection only passes over the two tables' entries.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from itertools import pairwise
from operator import itemgetter
from typing import Any, Callable

from ..model import ERROR, WARNING, Violation
from .limits import SCHEMA, WINDOW_NAMES, rate_windows, tracking_caps
from .window import add, add_capped, exceeded, forget_idle, newest, size, start, trim

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


NEVER = float("-inf")

# The state kept per (xuid, title) pair and per request is tuples of numbers and byte arrays,
# replaced when a number changes: the cyclic garbage collector stops tracking such a tuple once it
# has seen it, so a full collection only passes over the tables' entries (an object of a class
# here, or an array, would each be one more tracked object for every collection to examine).
#
# Flat tuples: one holding another the collector has not yet seen would stay tracked a collection
# longer.
#
# A pair: (times, over, blocked_until, retry_reported, *counts) -- its recent request times
# (window.py: ascending, newest last), the rate windows it is over (bit i for window i), the end
# of its Retry-After and whether ignoring it was reported, and the requests in each open episode
# (one count per rate window, then ignored-retry-after).
_TIMES, _OVER, _BLOCKED_UNTIL, _RETRY_REPORTED, _COUNTS = range(5)
# A request: (ok, repeat_seen, polling_seen, repeats, polls, *sent) -- whether the last answer was
# a success (status 1..399), when a repeat of it and a regular series of it were last seen, the
# requests in its open repeated-request and polling episodes, and the times of its last few
# sends (ascending, newest last).
_OK, _REPEAT_SEEN, _POLLING_SEEN, _REPEATS, _POLLS, _SENT = range(6)
_newest_send = itemgetter(-1)


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
        self._retry_count = _COUNTS + len(self._limits)  # where a pair's ignored-retry-after count is
        self._no_counts = (0,) * (len(self._limits) + 1)  # a pair's counts: rate windows, then Retry-After
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
        self._pairs: OrderedDict[tuple[int, str], tuple] = OrderedDict()
        self._requests: OrderedDict[tuple[int, str, str], tuple] = OrderedDict()
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
        if (pairs and not newest(next(iter(pairs.values()))[_TIMES]) + self._pair_horizon > now) or \
                (requests and not next(iter(requests.values()))[-1] + self._request_horizon > now):
            self._forget_idle(now)
        found: list[Violation] = []

        pair_key = (xuid, title)
        pair = pairs.get(pair_key)
        if pair is None:
            pair = (start(now), 0, NEVER, False, *self._no_counts)
            self.forgotten_at_cap["pairs"] += add_capped(pairs, pair_key, pair, self._max_pairs)
        else:
            pairs.move_to_end(pair_key)
            add(pair[_TIMES], now)
        state = self._check_rates(pair, now, pair_key, found)
        if status in RETRY_STATUSES or now < state[_BLOCKED_UNTIL]:
            state = self._check_retry_after(state, now, status, retry_after, pair_key, found)
        if state is not pair:
            pairs[pair_key] = state

        key = (xuid, title, request_key)
        request = requests.get(key)
        ok = 0 < status < 400
        if request is None:
            self.forgotten_at_cap["requests"] += add_capped(
                requests, key, (ok, NEVER, NEVER, 0, 0, now), self._max_requests)
        else:
            requests.move_to_end(key)
            requests[key] = self._check_request(request, now, request_key, ok, found)
        return found

    def summary(self) -> dict[str, int]:
        """How many times each finding was reported, one per episode (every code, zeros included)."""
        return {code: self._counts[code] for code in CODES}

    def episodes(self) -> dict[str, dict[str, int]]:
        """Per code that was reported: its episodes, the requests that showed it in them (the
        reported ones included) and the requests of the longest episode."""
        return {code: {"episodes": self._counts[code], "requests": self._seen[code], "longest": self._longest[code]}
                for code in CODES if self._counts[code]}

    def _episode(self, code: str, n: int, new: bool) -> int:
        """Counts a request showing ``code`` in an episode that had ``n`` requests so far (a
        ``new`` one starts at 1, and is the one reported); returns the episode's count now."""
        n = 1 if new else n + 1
        if new:  # its finding is reported
            self._counts[code] += 1
        self._seen[code] += 1
        if n > self._longest[code]:
            self._longest[code] = n
        return n

    def tracked(self) -> dict[str, int]:
        """How much state is kept: (xuid, title) pairs and distinct requests."""
        return {"pairs": len(self._pairs), "requests": len(self._requests)}

    def _check_rates(self, pair: tuple, now: float, pair_key: tuple[int, str], found: list[Violation]) -> tuple:
        """The pair's state after its rate windows took the request at ``now`` (``pair`` itself
        when no number changed)."""
        # Every request counts in every window. A window is over its limit exactly when the
        # (limit + 1)-th newest request is still inside it; older times than the longest window
        # or than the largest limit + 1 can serve no window and are dropped.
        times, was = pair[_TIMES], pair[_OVER]  # now included in times
        trim(times, self._pair_horizon, self._pair_keep, now)
        if not was and size(times) <= self._least_limit:
            return pair  # no window can be over its limit, and none was
        over = exceeded(self._limits, times, now)
        if over == was == 0:
            return pair
        state = list(pair)
        state[_OVER] = over
        for i, (window, code) in enumerate(zip(self._limits, self._rate_codes)):
            bit = 1 << i
            if not over & bit:
                continue
            state[_COUNTS + i] = self._episode(code, state[_COUNTS + i], not was & bit)
            if not was & bit:
                name = _name(pair_key)
                found.append(Violation(
                    RULE, "traffic", name, ERROR if window.name == "certification" else WARNING,
                    f"more than {window.limit} requests in {window.period:g} s for {name} "
                    f"({window.name} limit)",
                    code,
                ))
        return tuple(state)

    def _check_retry_after(self, pair: tuple, now: float, status: int, retry_after: float | None,
                           pair_key: tuple[int, str], found: list[Violation]) -> tuple:
        """The pair's state after a 429/503 answer or a request inside its Retry-After."""
        state = list(pair)
        blocked_until, reported = pair[_BLOCKED_UNTIL], pair[_RETRY_REPORTED]
        early = now < blocked_until
        if early:
            at = self._retry_count
            state[at] = self._episode("ignored-retry-after", state[at], not reported)
        if early and not reported:
            name = _name(pair_key)
            found.append(Violation(
                RULE, "traffic", name, WARNING,
                f"request for {name} sent {blocked_until - now:.3g} s before the Retry-After "
                f"of an earlier 429/503 had elapsed",
                "ignored-retry-after",
            ))
            reported = True
        if status in RETRY_STATUSES and retry_after is not None:
            if early:
                blocked_until = max(blocked_until, now + retry_after)
            else:
                blocked_until, reported = now + retry_after, False
        state[_BLOCKED_UNTIL], state[_RETRY_REPORTED] = blocked_until, reported
        return tuple(state)

    def _check_request(self, request: tuple, now: float, key: str, ok: bool, found: list[Violation]) -> tuple:
        """A request sent before (a new one has nothing to find: it starts with its first time);
        returns its state after the send at ``now``, whose answer's success is ``ok``."""
        repeat_seen, polling_seen = request[_REPEAT_SEEN], request[_POLLING_SEEN]
        repeats, polls = request[_REPEATS], request[_POLLS]
        gap = now - request[-1]
        if gap < self._repeat_window and request[_OK]:
            new = now - repeat_seen >= self._repeat_window
            if new:
                found.append(Violation(
                    RULE, "traffic", key, WARNING,
                    f"the same request again {gap:.3g} s after a successful answer to it", "repeated-request",
                ))
            repeats = self._episode("repeated-request", repeats, new)
            repeat_seen = now

        # the last min_calls sends, now included; a gap over max_interval_s starts a new series
        if gap > self._max_interval:
            sent: tuple[float, ...] = (now,)
        else:
            first = len(request) - self._min_calls + 1
            sent = request[first if first > _SENT else _SENT:] + (now,)
        if len(sent) == self._min_calls:
            intervals = [b - a for a, b in pairwise(sent)]
            mean = sum(intervals) / len(intervals)
            if mean > 0 and _near(intervals, mean, self._tolerance * mean):
                new = now - polling_seen >= self._polling_quiet
                if new:
                    found.append(Violation(
                        RULE, "traffic", key, WARNING,
                        f"the same request {self._min_calls} times in a row, every {mean:.3g} s: a polling loop",
                        "polling",
                    ))
                polls = self._episode("polling", polls, new)
                polling_seen = now
        return (ok, repeat_seen, polling_seen, repeats, polls) + sent

    def _forget_idle(self, now: float) -> None:
        moved = False
        while self._pairs:
            key, pair = next(iter(self._pairs.items()))
            if newest(pair[_TIMES]) + self._pair_horizon > now:
                break
            if pair[_BLOCKED_UNTIL] > now:
                # idle but still inside a Retry-After: it must not hold back the idle pairs behind
                # it, so it goes to the back of the line (one such move per call)
                if moved:
                    break
                self._pairs.move_to_end(key)
                moved = True
                continue
            self._pairs.popitem(last=False)
        forget_idle(self._requests, _newest_send, self._request_horizon, now)
