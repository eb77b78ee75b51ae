"""R2 coverage: what a dataset's recorded pages and hand-written titles prove complete, and why an
answer that depends on anything else may be partial."""

from __future__ import annotations

import re
from typing import Iterable

from ..model import TYPES, AchievementsQuery


class Coverage:
    """The titles (or all titles) one dataset is proven to hold completely."""

    def __init__(self) -> None:
        self.all_titles = False  # an unfiltered listing was recorded completely
        self._hand_complete = False  # a hand-written entry claims every title of the user
        self._covered: set[int] = set()
        # recorded ranges [start, end) of each listing (titles, order, totalRecords)
        self._ranges: dict[tuple, list[tuple[int, int]]] = {}
        # why a title may be partial (see why): the filters of the filtered listings recorded,
        # per listing titles (None: all titles); the unfiltered listings recorded, complete or
        # not; hand-written titles marked `complete: false`
        self._filtered: dict[tuple | None, set[str]] = {}
        self._unfiltered: set[tuple | None] = set()
        self._declared: set[int] = set()

    def record(self, query: AchievementsQuery, body: dict) -> bool:
        """A recorded page: True when it completes a listing not filtered by unlockedOnly/types,
        i.e. that listing's pages now cover [0, totalRecords)."""
        titles = tuple(sorted(set(query.title_ids))) if query.title_ids is not None else None
        filters = _filters(query)
        if filters:
            self._filtered.setdefault(titles, set()).update(filters)
            return False
        self._unfiltered.add(titles)
        start = query.start
        paging = body.get("pagingInfo") or {}
        end = start + len(body.get("achievements") or ())
        total = paging.get("totalRecords")
        if paging.get("continuationToken") is None:  # the last page: it ends the result
            total = total if isinstance(total, int) else end
            complete = start == 0 or self._add_range(titles, query.order_by, total, start, end)
        else:
            complete = isinstance(total, int) and self._add_range(titles, query.order_by, total, start, end)
        if complete:
            if titles is None:
                self.all_titles = True
            else:
                self._covered.update(titles)
        return complete

    def _add_range(self, titles: tuple | None, order: str, total: int, start: int, end: int) -> bool:
        key = (titles, order, total)
        ranges = self._ranges[key] = _merge_range(self._ranges.get(key, []), start, end)
        return ranges[0][0] <= 0 and ranges[0][1] >= total

    def add_titles(self, titles: Iterable[int], complete: bool) -> None:
        """Hand-written titles; `complete`: they are complete, and so is the user's list of titles."""
        if complete:
            self._covered.update(titles)
        else:
            self._declared.update(titles)
        self._hand_complete |= complete

    def complete(self, title: int) -> bool:
        return self.all_titles or title in self._covered

    def missing(self, titles: Iterable[int], unseen: bool = False) -> list[int | None]:
        """Of `titles`, those not proven complete; with `unseen`, None too when titles never seen
        may exist."""
        if self.all_titles:
            return []
        out: list[int | None] = [t for t in titles if t not in self._covered]
        if unseen and not self._hand_complete:
            out.append(None)
        return out


    def listed(self) -> set[int]:
        """The titles recorded listings named by titleId (a title whose listing held nothing too)."""
        return {t for key in (*self._filtered, *self._unfiltered) if key is not None for t in key}

    def why(self, title: int | None) -> list[tuple[str, str]]:
        """Why `title` is not proven complete, as (reason, detail) pairs; [] when it is. `title`
        None: the user's titles never seen, which only a complete all-titles listing (or a
        hand-written dataset marked complete) rules out. Reasons: "filtered" (only listings
        filtered by unlockedOnly, possibleOnly or types were recorded), "truncated" (an
        unfiltered listing was recorded but not all its pages), "declared partial" (hand-written
        `complete: false`), "never listed" (no listing naming it or every title was recorded)."""
        if self.all_titles or (self._hand_complete if title is None else title in self._covered):
            return []
        names = (lambda key: key is None) if title is None else (lambda key: key is None or title in key)
        out = []
        filters = sorted({f for key, found in self._filtered.items() if names(key) for f in found})
        if filters:
            out.append(("filtered", ", ".join(filters)))
        if any(names(key) for key in self._unfiltered):
            held = [(_held(ranges, total), total) for (key, _, total), ranges in self._ranges.items() if names(key)]
            out.append(("truncated", "pages hold {} of {}".format(*max(held)) if held
                        else "a continuation token was not followed"))
        if title in self._declared:
            out.append(("declared partial", "hand-written with complete: false"))
        if not out:
            out.append(("never listed", "no complete listing of every title was recorded" if title is None
                        else "its items came with another title's listing"))
        return out


def _filters(query: AchievementsQuery) -> list[str]:
    """The R3 filters of a recorded listing that keep it from proving a title complete."""
    found = [name for name, on in (("unlockedOnly=true", query.unlocked_only),
                                   ("possibleOnly=true", query.possible_only)) if on]
    if query.types is not None and set(query.types) != set(TYPES):
        found.append("types=" + ",".join(sorted(query.types)))
    return found


def _held(ranges: list[tuple[int, int]], total: int) -> int:
    """How many of a listing's `total` items its recorded pages hold."""
    return sum(max(0, min(b, total) - a) for a, b in ranges)


def _merge_range(ranges: list[tuple[int, int]], start: int, end: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(ranges + [(start, end)]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def gap(missing: list[int | None], xuid: int, shape: str, locale: str) -> str:
    """Why an answer may be partial, naming what is `missing` (see Coverage.missing); "" if nothing is."""
    if not missing:
        return ""
    names = ", ".join(f"(xuid {xuid}, titleId {'any other' if t is None else t})" for t in missing[:8])
    more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
    return f"R2: not recorded completely for {shape} {locale}: {names}{more}"


_GAP_PAIR = re.compile(r"\(xuid (\d+), titleId (\d+|any other)\)")
_GAP_MORE = re.compile(r" and (\d+) more")


def gap_named(message: str) -> tuple[list[tuple[int, str]], int]:
    """What a :func:`gap` message names, read back (from a validation log): the (xuid, titleId)
    pairs it lists, titleId "any other" for titles never seen, and how many more it left out."""
    more = _GAP_MORE.search(message)
    return ([(int(x), t) for x, t in _GAP_PAIR.findall(message)], int(more.group(1)) if more else 0)
