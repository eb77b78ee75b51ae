"""R10: fine-grained rate limiting per (xuid, title), with an injectable clock.

Two sliding windows are tracked together for every (xuid, title) pair: burst (100 requests per
15 s) and sustain (300 per 300 s); the numbers come from ``rules/limits.yaml``. A request is
rejected with 429 while either window is full.

Which requests count where:

* sustain counts **every** request, throttled or not (R10: "Throttled calls count toward the
  sustain window"). A client that keeps calling while throttled therefore keeps itself throttled
  on the sustain window.
* burst counts only the requests that were let through. achievements-api.md §4.2 says a request
  is rejected "until that window rolls over"; the burst window rolls over when the accepted
  requests that filled it age out, so the ``Retry-After`` of a burst rejection holds: a client
  that waits that long gets its next request through (unless sustain is also full).

``Retry-After`` is the whole number of seconds, rounded up, until the window frees a slot for
the next request; when both windows are full the longer wait is reported.

Memory. Each pair keeps its request times in compact arrays of floats (8 bytes a time): one array
of accepted requests, serving both windows, and a second one (every request, for sustain) only from
the pair's first rejection on; times that have left their windows are dropped in amortised O(1).
A pair whose newest request has left every window is forgotten, and at most
``tracking.max_callers`` pairs are kept (``rules/limits.yaml``): beyond that the least recently
seen pair is forgotten. A forgotten pair starts afresh, so a throttled pair forgotten at the cap
gets through before its ``Retry-After``; under the cap nothing changes. A pair that was never
throttled costs about 360 bytes with one request in its windows, its key included.
"""

from __future__ import annotations

import math
import time
from array import array
from bisect import bisect_left
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


from .. import DEFAULT_RULES_DIR, answers
from ..rulesfile import read_yaml
from ..model import Answer


DEFAULT_LIMITS = DEFAULT_RULES_DIR / "limits.yaml"

WINDOW_NAMES = ("burst", "sustain", "certification")

# How much per-caller state is kept at most, when limits.yaml says nothing (``tracking``).
DEFAULT_MAX_CALLERS = 10_000
DEFAULT_MAX_REQUESTS = 40_000


class LimitsError(ValueError):
    """rules/limits.yaml is missing, unreadable or malformed; str() names the file and the key."""


def load_limits(path: Path | str = DEFAULT_LIMITS) -> dict[str, Any]:
    """Read and check a limits file; returns the document (``rate_limits``, ``call_patterns``)."""
    doc = read_yaml(path, LimitsError, "limits file")

    def fail(where: str, why: str) -> None:
        raise LimitsError(f"{path}: {where}: {why}")

    def section(parent: Any, key: str, where: str) -> dict:
        value = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(value, dict):
            fail(where + key, "missing or not a mapping")
        return value

    def number(parent: dict, key: str, where: str, *, integer: bool = False, zero_ok: bool = False) -> None:
        value = parent.get(key)
        kinds = int if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or value < 0 or (value == 0 and not zero_ok):
            what = "an integer" if integer else "a number"
            fail(where + key, f"expected {what} {'>= 0' if zero_ok else '> 0'}, got {value!r}")

    if not isinstance(doc, dict):
        fail("top level", "expected a mapping")
    if doc.get("version") != 1:
        fail("version", f"expected 1, got {doc.get('version')!r}")
    rates = section(doc, "rate_limits", "")
    for name in WINDOW_NAMES:
        window = section(rates, name, "rate_limits.")
        number(window, "max_requests", f"rate_limits.{name}.", integer=True)
        number(window, "period_s", f"rate_limits.{name}.")
    patterns = section(doc, "call_patterns", "")
    number(patterns, "repeat_window_s", "call_patterns.")
    polling = section(patterns, "polling", "call_patterns.")
    number(polling, "min_calls", "call_patterns.polling.", integer=True)
    if polling["min_calls"] < 3:
        fail("call_patterns.polling.min_calls", "expected at least 3 (two intervals to compare)")
    number(polling, "tolerance", "call_patterns.polling.", zero_ok=True)
    number(polling, "max_interval_s", "call_patterns.polling.")
    # optional (limits files written before it load unchanged): the caps on per-caller state
    tracking = doc.setdefault("tracking", {})
    if not isinstance(tracking, dict):
        fail("tracking", "not a mapping")
    for key, default in (("max_callers", DEFAULT_MAX_CALLERS), ("max_requests", DEFAULT_MAX_REQUESTS)):
        tracking.setdefault(key, default)
        number(tracking, key, "tracking.", integer=True)
    return doc


def tracking_caps(limits: dict[str, Any]) -> tuple[int, int]:
    """(max_callers, max_requests) of a limits document; the defaults where it has none."""
    tracking = limits.get("tracking") or {}
    return (tracking.get("max_callers", DEFAULT_MAX_CALLERS),
            tracking.get("max_requests", DEFAULT_MAX_REQUESTS))


def add_capped(table: OrderedDict, key: Any, value: Any, cap: int) -> bool:
    """Put a new entry at the recent end of an LRU table; past ``cap`` entries the least recently
    seen is forgotten. True when one was."""
    table[key] = value
    if len(table) > cap:
        table.popitem(last=False)
        return True
    return False


def first_inside(times: array, period: float, now: float) -> int:
    """Index of the first of the ascending ``times`` still inside a window of ``period`` seconds
    ending at ``now`` (``t + period > now``, the comparison the windows use everywhere)."""
    if not times or times[0] + period > now:
        return 0
    return bisect_left(times, True, key=lambda t: t + period > now)


def drop_before(times: array, first: int) -> int:
    """Drop ``times[:first]`` once that is at least half of them (amortised O(1) per time);
    returns the index ``first`` has afterwards."""
    if first and 2 * first >= len(times):
        del times[:first]
        return 0
    return first


@dataclass(frozen=True, slots=True)
class _Window:
    name: str
    limit: int
    period: float


class _Caller:
    """One (xuid, title): ascending times of its accepted requests, and of all its requests once
    one has been rejected (until then the two are the same)."""

    __slots__ = ("accepted", "counted")

    def __init__(self, now: float) -> None:
        self.accepted = array("d", (now,))
        self.counted: array | None = None


class Throttle:
    """R10 rate limiter. ``check`` is called once per request, before it is answered."""

    def __init__(self, limits: dict[str, Any], clock: Callable[[], float] = time.monotonic) -> None:
        rates = limits["rate_limits"]
        self._burst, self._sustain = (
            _Window(name, rates[name]["max_requests"], rates[name]["period_s"]) for name in ("burst", "sustain")
        )
        self._horizon = max(self._burst.period, self._sustain.period)
        self._max_callers = tracking_caps(limits)[0]
        self._clock = clock
        # (xuid, title) -> its request times, least recently seen first.
        self._pairs: OrderedDict[tuple[int, str], _Caller] = OrderedDict()
        self.forgotten_at_cap = 0  # pairs forgotten because the cap was reached

    def __len__(self) -> int:
        """How many (xuid, title) pairs are being tracked."""
        return len(self._pairs)

    def check(self, xuid: int, title: str) -> Answer | None:
        """Count one request; None lets it through, an Answer (429) rejects it."""
        now = self._clock()
        self._forget_idle(now)
        key = (xuid, title)
        caller = self._pairs.get(key)
        if caller is None:  # the first request of a pair always fits (every limit is >= 1)
            self.forgotten_at_cap += add_capped(self._pairs, key, _Caller(now), self._max_callers)
            return None
        self._pairs.move_to_end(key)

        accepted, counted = caller.accepted, caller.counted
        burst, sustain = self._burst, self._sustain
        shared = counted is None  # accepted serves sustain too while no request was rejected
        first = drop_before(accepted, first_inside(accepted, self._horizon if shared else burst.period, now))
        if not shared:
            drop_before(counted, first_inside(counted, sustain.period, now))
        full = [w for w, times in ((burst, accepted), (sustain, accepted if shared else counted))
                if _inside(times, w, now) >= w.limit]
        if not full:
            accepted.append(now)
            if not shared:
                counted.append(now)
            return None
        if shared:  # the first rejection: from now on sustain keeps every request's time apart
            counted = caller.counted = array("d", accepted[first:])
        counted.append(now)
        # The slot frees when enough of the oldest entries have aged out that one more fits.
        wait, window, times = max(
            ((times[len(times) - w.limit] + w.period - now, w, times)
             for w, times in ((burst, accepted), (sustain, counted)) if w in full),
            key=lambda item: item[0],
        )
        current = len(times) - first_inside(times, window.period, now)
        return answers.throttled(xuid, title, window.name, window.period, window.limit, current, math.ceil(wait))

    def _forget_idle(self, now: float) -> None:
        while self._pairs:
            caller = next(iter(self._pairs.values()))
            newest = caller.accepted[-1] if caller.counted is None else caller.counted[-1]
            if newest + self._horizon > now:
                return
            self._pairs.popitem(last=False)


def _inside(times: array, window: _Window, now: float) -> int:
    """How many of the ascending ``times`` are inside ``window`` at ``now``, up to its limit
    (the full count is only needed for a rejection)."""
    n = len(times)
    if n >= window.limit and times[n - window.limit] + window.period > now:
        return window.limit
    return n - first_inside(times, window.period, now)
