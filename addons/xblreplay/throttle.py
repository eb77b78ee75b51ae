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

Each pair keeps a deque of timestamps per window (amortised O(1) per call). A pair whose newest
request has left every window is forgotten, so memory follows the pairs that are active.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


from . import DEFAULT_RULES_DIR
from .rulesfile import read_yaml
from .model import ERROR, Answer, Violation


DEFAULT_LIMITS = DEFAULT_RULES_DIR / "limits.yaml"

WINDOW_NAMES = ("burst", "sustain", "certification")


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
    return doc


@dataclass(frozen=True, slots=True)
class _Window:
    name: str
    limit: int
    period: float
    counts_throttled: bool


class Throttle:
    """R10 rate limiter. ``check`` is called once per request, before it is answered."""

    def __init__(self, limits: dict[str, Any], clock: Callable[[], float] = time.monotonic) -> None:
        rates = limits["rate_limits"]
        self._windows = tuple(
            _Window(name, rates[name]["max_requests"], rates[name]["period_s"], name == "sustain")
            for name in ("burst", "sustain")
        )
        self._horizon = max(w.period for w in self._windows)
        self._clock = clock
        # (xuid, title) -> one deque of timestamps per window, least recently used first.
        self._pairs: OrderedDict[tuple[int, str], tuple[deque[float], ...]] = OrderedDict()

    def __len__(self) -> int:
        """How many (xuid, title) pairs are being tracked."""
        return len(self._pairs)

    def check(self, xuid: int, title: str) -> Answer | None:
        """Count one request; None lets it through, an Answer (429) rejects it."""
        now = self._clock()
        self._forget_idle(now)
        key = (xuid, title)
        queues = self._pairs.get(key)
        if queues is None:
            queues = self._pairs[key] = tuple(deque() for _ in self._windows)
        self._pairs.move_to_end(key)

        full = []
        for window, times in zip(self._windows, queues):
            while times and times[0] + window.period <= now:
                times.popleft()
            if len(times) >= window.limit:
                full.append((window, times))
        for window, times in zip(self._windows, queues):
            if not full or window.counts_throttled:
                times.append(now)
        if not full:
            return None
        # The slot frees when enough of the oldest entries have aged out that one more fits.
        wait, window, times = max(
            ((times[len(times) - window.limit] + window.period - now, window, times) for window, times in full),
            key=lambda item: item[0],
        )
        return self._answer(xuid, title, window, len(times), math.ceil(wait))

    def _forget_idle(self, now: float) -> None:
        while self._pairs:
            queues = next(iter(self._pairs.values()))
            newest = max(times[-1] for times in queues if times)
            if newest + self._horizon > now:
                return
            self._pairs.popitem(last=False)

    @staticmethod
    def _answer(xuid: int, title: str, window: _Window, current: int, retry_after: int) -> Answer:
        message = (
            f"{window.name} limit reached for xuid({xuid}) and title {title}: {current} requests in "
            f"the last {window.period:g} s (limit {window.limit}); retry after {retry_after} s"
        )
        return Answer(
            status=429,
            source="throttle",
            headers=[("Retry-After", str(retry_after))],
            body={
                "version": 1,
                "currentRequests": current,
                "maxRequests": window.limit,
                "periodInSeconds": math.ceil(window.period),
                "limitType": "rate",
            },
            violations=[Violation("R10", "traffic", window.name, ERROR, message, "throttled")],
            reason="R10: " + message,
        )
