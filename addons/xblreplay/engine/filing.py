"""Filing item positions: per category and per title, each list of positions in dataset order
(4 bytes a position), so that a query reads only the lists of what it selects."""

from __future__ import annotations

from array import array
from bisect import bisect_right
from itertools import compress, repeat
from operator import eq

from .categories import per_category
from .wire import _Meta


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


def file_block(by_category: list[array], by_title: dict[int, list[array]], title: int, first: int,
               categories: list[int]) -> None:
    """New positions from ``first`` on, all of ``title``, with their ``categories``."""
    per_title = by_title.get(title)
    if per_title is None:
        per_title = by_title[title] = per_category()
    span = range(first, first + len(categories))
    for c in sorted(set(categories)):  # the categories found only: a title has one or two, mostly
        positions = array("I", span if len(categories) == categories.count(c) else
                          compress(span, map(eq, categories, repeat(c))))
        by_category[c].extend(positions)
        per_title[c].extend(positions)
