"""R2 coverage: what a dataset's recorded pages and hand-written titles prove complete, and why an
answer that depends on anything else may be partial."""

from __future__ import annotations

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

    def record(self, query: AchievementsQuery, body: dict) -> bool:
        """A recorded page: True when it completes a listing not filtered by unlockedOnly/types,
        i.e. that listing's pages now cover [0, totalRecords)."""
        if query.unlocked_only or query.possible_only:
            return False
        if query.types is not None and set(query.types) != set(TYPES):
            return False
        titles = tuple(sorted(set(query.title_ids))) if query.title_ids is not None else None
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
