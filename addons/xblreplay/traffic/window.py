"""Sliding windows over request times, and the capped tables that keep them per caller.

A caller's request times are kept ascending (newest last) as native doubles in a ``bytearray``:
8 bytes a time, no object per time, and no object the cyclic garbage collector tracks (an
``array('d')`` is one it tracks, so thousands of callers' arrays made every full collection walk
them). Every function here also reads an ``array('d')`` (the same doubles, counted in items rather
than bytes). A time ``t`` is inside a window of ``period`` seconds ending at ``now`` when
``t + period > now``, the one comparison the rate limiter and the call-pattern checks both use.
Times that have left every window are dropped in amortised O(1) (:func:`drop_before`). The
per-caller state lives in LRU tables (``OrderedDict``, least recently seen first) held to a cap by
:func:`add_capped` and rid of idle entries by :func:`forget_idle`; their values are tuples of such
byte arrays and numbers, which the collector stops tracking once it has seen them.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections import OrderedDict
from dataclasses import dataclass
from struct import Struct
from typing import Any, Callable, Union

Times = Union[bytearray, array]

_DOUBLE = Struct("d")
_pack = _DOUBLE.pack
_read = _DOUBLE.unpack_from  # (times, byte offset) -> (time,); a negative offset counts from the end
# log2 of the bytes one time takes in len(times): a bytearray counts bytes, an array items
_SHIFT = {bytearray: 3, array: 0}


def start(now: float) -> bytearray:
    """The times of a caller whose first request is at ``now``."""
    return bytearray(_pack(now))


def add(times: bytearray, now: float) -> None:
    """Append ``now`` (the newest time) to a caller's times."""
    times += _pack(now)


def size(times: Times) -> int:
    """How many times there are."""
    return len(times) >> _SHIFT[type(times)]


def newest(times: Times) -> float:
    """The last (newest) of the times."""
    return _read(times, -8)[0]


def since(times: Times, first: int) -> Times:
    """A copy of ``times[first:]`` (of the same kind)."""
    return times[first << _SHIFT[type(times)]:]


@dataclass(frozen=True, slots=True)
class Window:
    """A rate limit: at most ``limit`` requests in any ``period`` seconds (``rate_limits.NAME``)."""

    name: str
    limit: int
    period: float

    def holds(self, times: Times, now: float, count: int) -> bool:
        """Whether at least ``count`` of the ascending ``times`` are inside at ``now``: exactly
        when the ``count``-th newest is (no count of the whole window is needed)."""
        n = size(times)
        return n >= count and _read(times, (n - count) << 3)[0] + self.period > now

    def full(self, times: Times, now: float) -> bool:
        """Whether one more request would be over the limit (``limit`` times inside)."""
        return self.holds(times, now, self.limit)

    def exceeded(self, times: Times, now: float) -> bool:
        """Whether more requests than the limit are inside (``limit + 1`` times)."""
        return self.holds(times, now, self.limit + 1)

    def count(self, times: Times, now: float) -> int:
        """How many of the ascending ``times`` are inside at ``now``."""
        return size(times) - first_inside(times, self.period, now)

    def frees_in(self, times: Times, now: float) -> float:
        """Seconds until a full window has room for one more request: until enough of the oldest
        times inside have aged out that ``limit - 1`` remain."""
        return _read(times, (size(times) - self.limit) << 3)[0] + self.period - now


def first_inside(times: Times, period: float, now: float) -> int:
    """Index of the first of the ascending ``times`` still inside a window of ``period`` seconds
    ending at ``now``."""
    if not times or _read(times)[0] + period > now:
        return 0
    return bisect_left(range(size(times)), True, key=lambda i: _read(times, i << 3)[0] + period > now)


def exceeded(windows: tuple[Window, ...], times: Times, now: float) -> int:
    """The windows over their limit at ``now``: bit i set when ``windows[i]`` is exceeded."""
    over = 0
    for i, window in enumerate(windows):
        if window.exceeded(times, now):
            over |= 1 << i
    return over


def trim(times: Times, period: float, keep: int, now: float) -> None:
    """Drop (amortised, :func:`drop_before`) the ascending ``times`` that can serve no window:
    those older than ``period`` seconds or than the ``keep`` newest. Most calls find none and
    return after two comparisons."""
    n = size(times)
    if n > keep or not _read(times)[0] + period > now:
        drop_before(times, max(n - keep, first_inside(times, period, now)))


def drop_before(times: Times, first: int) -> int:
    """Drop ``times[:first]`` once that is at least half of them (amortised O(1) per time);
    returns the index ``first`` has afterwards."""
    if first and 2 * first >= size(times):
        del times[:first << _SHIFT[type(times)]]
        return 0
    return first


def add_capped(table: OrderedDict, key: Any, value: Any, cap: int) -> bool:
    """Put a new entry at the recent end of an LRU table; past ``cap`` entries the least recently
    seen is forgotten. True when one was."""
    table[key] = value
    if len(table) > cap:
        table.popitem(last=False)
        return True
    return False


def forget_idle(table: OrderedDict, newest: Callable[[Any], float], horizon: float, now: float) -> None:
    """Forget the entries of an LRU table whose ``newest(entry)`` time has left a window of
    ``horizon`` seconds; the first entry still inside stops it (every later one was seen later)."""
    while table:
        if newest(next(iter(table.values()))) + horizon > now:
            return
        table.popitem(last=False)
