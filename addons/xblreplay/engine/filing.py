"""Filing item positions: per category and per title, each list of positions in dataset order
(4 bytes a position), so that a query reads only the lists of what it selects."""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections import deque
from itertools import accumulate, compress, repeat
from operator import itemgetter

from .categories import ALL_CATEGORIES, per_category
from .wire import _Meta

_IS = [bytes(int(b == c) for b in range(256)) for c in ALL_CATEGORIES]  # category byte -> 1 where it is c


def _lists(by_category: list[array], by_title: dict[int, list[array]], meta: _Meta) -> list[array]:
    c = meta.category
    lists = [by_category[c]]
    for t in meta.titles if len(meta.titles) < 2 else dict.fromkeys(meta.titles):
        per_title = by_title.get(t)
        if per_title is None:
            per_title = by_title[t] = per_category()
        lists.append(per_title[c])
    return lists


def file(by_category: list[array], by_title: dict[int, list[array]], pos: int, meta: _Meta, append: bool) -> None:
    """``pos`` filed under its category and titles (``append``: after every position filed)."""
    for lst in _lists(by_category, by_title, meta):
        if append:
            lst.append(pos)
        else:
            lst.insert(bisect_right(lst, pos), pos)


def unfile(by_category: list[array], by_title: dict[int, list[array]], pos: int, meta: _Meta) -> None:
    for lst in _lists(by_category, by_title, meta):
        lst.remove(pos)


def file_run(by_category: list[array], by_title: dict[int, list[array]], titles: list[int], first: int,
             sizes: list[int], categories: bytes) -> None:
    """New positions from ``first`` on: ``sizes[i]`` of them, one after another, of ``titles[i]``,
    with their ``categories`` (one byte each).

    Each category is found over the whole run at once, and each title's share of it cut out where
    the title's positions begin: a large dataset has tens of thousands of small titles."""
    per_title = []
    for t in titles:
        lists = by_title.get(t)
        if lists is None:
            lists = by_title[t] = per_category()
        per_title.append(lists)
    bounds = list(accumulate(sizes, initial=first))  # title i holds bounds[i] up to bounds[i + 1]
    span = range(first, bounds[-1])
    for c in ALL_CATEGORIES:
        n = categories.count(c)
        if not n:  # the categories found only: most runs have two or three
            continue
        positions = array("I", span if n == len(span) else compress(span, categories.translate(_IS[c])))
        by_category[c].extend(positions)
        cuts = list(map(bisect_left, repeat(positions), bounds))
        # Each title's share, empty ones too, appended at C speed: no step of Python per title.
        deque(map(array.extend, map(itemgetter(c), per_title), map(positions.__getitem__, map(slice, cuts, cuts[1:]))),
              maxlen=0)
