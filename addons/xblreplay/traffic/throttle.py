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

Memory. Each pair keeps its request times in compact arrays of doubles (8 bytes a time, byte arrays
the cyclic garbage collector does not walk): one of accepted requests, serving both windows, and a
second one (every request, for sustain) only from the pair's first rejection on; times that have
left their windows are dropped in amortised O(1). A pair whose newest request has left every
window is forgotten, and at most
``tracking.max_callers`` pairs are kept (``rules/limits.yaml``): beyond that the least recently
seen pair is forgotten. A forgotten pair starts afresh, so a throttled pair forgotten at the cap
gets through before its ``Retry-After``; under the cap nothing changes. A pair that was never
throttled costs about 350 bytes with one request in its windows, its key included.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from typing import Any, Callable

from .. import answers
from ..model import Answer
from .limits import rate_windows, tracking_caps
from .window import add, add_capped, drop_before, first_inside, forget_idle, newest, since, start


def _newest(caller: tuple[bytearray, bytearray | None]) -> float:
    """The time of a caller's newest request."""
    accepted, counted = caller
    return newest(accepted if counted is None else counted)


class Throttle:
    """R10 rate limiter. ``check`` is called once per request, before it is answered."""

    def __init__(self, limits: dict[str, Any], clock: Callable[[], float] = time.monotonic) -> None:
        self._burst, self._sustain = rate_windows(limits, ("burst", "sustain"))
        self._horizon = max(self._burst.period, self._sustain.period)
        self._max_callers = tracking_caps(limits)[0]
        self._clock = clock
        # (xuid, title) -> (accepted, counted): the ascending times (window.py) of its accepted
        # requests, and of all its requests once one has been rejected (None until then: the two
        # are the same), least recently seen first. A tuple of byte arrays, which the cyclic
        # garbage collector stops tracking once it has seen it.
        self._pairs: OrderedDict[tuple[int, str], tuple[bytearray, bytearray | None]] = OrderedDict()
        self.forgotten_at_cap = 0  # pairs forgotten because the cap was reached

    def __len__(self) -> int:
        """How many (xuid, title) pairs are being tracked."""
        return len(self._pairs)

    def check(self, xuid: int, title: str) -> Answer | None:
        """Count one request; None lets it through, an Answer (429) rejects it."""
        now = self._clock()
        forget_idle(self._pairs, _newest, self._horizon, now)
        key = (xuid, title)
        caller = self._pairs.get(key)
        if caller is None:  # the first request of a pair always fits (every limit is >= 1)
            self.forgotten_at_cap += add_capped(self._pairs, key, (start(now), None), self._max_callers)
            return None
        self._pairs.move_to_end(key)

        accepted, counted = caller
        burst, sustain = self._burst, self._sustain
        shared = counted is None  # accepted serves sustain too while no request was rejected
        first = drop_before(accepted, first_inside(accepted, self._horizon if shared else burst.period, now))
        if not shared:
            drop_before(counted, first_inside(counted, sustain.period, now))
        full = [w for w, times in ((burst, accepted), (sustain, accepted if shared else counted))
                if w.full(times, now)]
        if not full:
            add(accepted, now)
            if not shared:
                add(counted, now)
            return None
        if shared:  # the first rejection: from now on sustain keeps every request's time apart
            counted = since(accepted, first)
            self._pairs[key] = (accepted, counted)
        add(counted, now)
        wait, window, times = max(
            ((w.frees_in(times, now), w, times) for w, times in ((burst, accepted), (sustain, counted)) if w in full),
            key=lambda item: item[0],
        )
        return answers.throttled(xuid, title, window.name, window.period, window.limit, window.count(times, now),
                                 math.ceil(wait))
