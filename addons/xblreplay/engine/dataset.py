"""One dataset (xuid, shape, locale): its items in dataset order (R1), their index, and the ordered
result of a query (R3/R4) with the caches that keep queries cheap.

Per title and per category the dataset keeps the item positions in dataset order; a query's
candidates are a concatenation of those lists, sorted by a per-order rank array built once, and
cached (LRU), so following continuation tokens costs O(page). Every cache is dropped when the
items change (`_invalidate`), except by a progress update (`replace`), which drops only what
that item touches.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import OrderedDict
from dataclasses import dataclass
from itertools import chain
from typing import Any, Iterable, KeysView

from ..model import AchievementsQuery
from . import history
from .categories import UNLOCKED, per_category
from .compact import _Compact, hand_titles
from .coverage import Coverage
from .history import TitleStats
from .verdicts import ItemCheck, Verdicts, shown
from .wire import _Meta, _wire_meta

LRU_SIZE = 64
# Expanded compact entries kept, most recently served first: pages asked again (a title's first
# page, a client refreshing) skip the expansion, while a sweep over every item holds no more
# than this many (GC and RSS stay flat).
EXPANDED_MAX = 512
_NO_TITLE = 1 << 40  # sorts after every uint32 title id (R4 Title)


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    """Read-only summary of one dataset."""

    xuid: int
    shape: str
    locale: str
    size: int
    titles: tuple[int, ...]
    sources: tuple[str, ...]


class _Dataset:
    def __init__(self, xuid: int, shape: str, locale: str) -> None:
        self.xuid, self.shape, self.locale = xuid, shape, locale
        self.version: str | None = None  # V1 top-level version, as recorded
        self._items: list[dict | _Compact] = []  # dataset order (R1)
        self._meta: list[_Meta] = []
        self._index: dict[tuple, int] = {}  # identity -> position
        self._by_title: dict[int, list[list[int]]] = {}  # title -> per-category positions
        self._by_category = per_category()
        self._multi_title = False  # some item belongs to several titles
        self._title_names: dict[int, str] = {}  # names of hand-written titles (V1 items carry none)
        self._sources: list[str] = []
        self._coverage = Coverage()
        self._verdicts = Verdicts()  # R7, per item and form served
        self._expanded: OrderedDict[int, dict] = OrderedDict()  # position -> expansion, at most EXPANDED_MAX
        self._invalidate()

    def _invalidate(self) -> None:
        self._cached = False  # set when any of the caches below is filled
        self._ranks: dict[str, list[int]] = {}
        self._windowed: tuple[list[str], list[int]] | None = None
        self._global: dict[tuple, list[int]] = {}
        self._lru: OrderedDict[tuple, list[int]] = OrderedDict()
        self._uncovered: list[int | None] | None = None
        self._stats: dict[int, TitleStats] = {}
        self._history: list[TitleStats] | None = None

    # -- building

    def add_page(self, query: AchievementsQuery, body: dict, source: str) -> None:
        """A recorded 200 page of `query`: every item merged (R1), what it proves complete noted (R2).

        A possibleOnly page carries definitions without user data: it adds unseen achievements
        but never replaces what is known. A page recorded under a contract without rarity (1 or
        2) keeps the rarity already known from contract 3 or 4 (R6).
        """
        self._add_source(source)
        for item in body.get("achievements") or ():
            if isinstance(item, dict):
                self.merge(item, replace=not query.possible_only, keep_rarity=not query.rarity)
        if self.shape == "V1" and isinstance(body.get("version"), str):
            self.version = body["version"]
        if self._coverage.record(query, body):
            self._invalidate()

    def add_titles(self, titles: Iterable[dict], complete: bool, source: str) -> None:
        """The titles of a hand-written dataset (see compact.hand_titles; ValueError when one is
        malformed); `complete`: they and the list of the user's titles are complete (R2)."""
        self._add_source(source)
        added = []
        for tid, name, achievements in hand_titles(titles, self.shape):
            self._title_names[tid] = name
            for item in achievements:
                self.merge(item)
            self._by_title.setdefault(tid, per_category())
            added.append(tid)
        self._coverage.add_titles(added, complete)
        self._invalidate()

    def _add_source(self, source: str) -> None:
        if source not in self._sources:
            self._sources.append(source)

    def merge(self, item: dict | _Compact, replace: bool = True, keep_rarity: bool = False) -> None:
        """R1: add an item, or replace the one with the same identity in its original position.
        ``keep_rarity``: the item comes from a page recorded under a contract without rarity
        (1 or 2), so the rarity known from a contract 3 or 4 recording stays (R6)."""
        meta = item.meta(self.shape) if isinstance(item, _Compact) else _wire_meta(item, self.shape)
        pos = self._index.get(meta.ident)
        if keep_rarity and pos is not None and isinstance(item, dict) and "rarity" not in item:
            known = self.wire(pos)  # a hand-written entry's rarity is known as well
            if "rarity" in known:
                item = {**item, "rarity": known["rarity"]}
        if pos is None:
            pos = len(self._items)
            self._index[meta.ident] = pos
            self._items.append(item)
            self._meta.append(meta)
            self._file(pos, meta, append=True)
        elif replace:
            old = self._meta[pos]
            self._items[pos] = item
            self._meta[pos] = meta
            self._verdicts.forget(pos)
            self._expanded.pop(pos, None)
            if (old.titles, old.category) != (meta.titles, meta.category):
                self._unfile(pos, old)
                self._file(pos, meta, append=False)
        else:
            return
        if self._cached:
            self._invalidate()

    def replace(self, pos: int, item: dict) -> None:
        """Put an updated wire item at `pos` (same identity), dropping only the caches it affects.

        The title aggregates of its titles always go; when its category or unlock time changed,
        it is refiled, the UnlockTime rank goes and so do the cached results that hold either
        category. Title order, time windows and coverage do not depend on progress.
        """
        old, meta = self._meta[pos], _wire_meta(item, self.shape)
        self._items[pos], self._meta[pos] = item, meta
        self._verdicts.forget(pos)
        self._expanded.pop(pos, None)
        for t in meta.titles:
            self._stats.pop(t, None)
        self._history = None
        if (old.category, old.unlocked_at) == (meta.category, meta.unlocked_at):
            return
        if old.category != meta.category:
            self._unfile(pos, old)
            self._file(pos, meta, append=False)
        self._ranks.pop("UnlockTime", None)
        touched = {old.category, meta.category}
        for cache in (self._global, self._lru):
            for key in [k for k in cache if not touched.isdisjoint(k[1])]:
                del cache[key]

    def _lists(self, meta: _Meta) -> list[list[int]]:
        by_title, c = self._by_title, meta.category
        lists = [self._by_category[c]]
        for t in meta.titles if len(meta.titles) < 2 else dict.fromkeys(meta.titles):
            per_title = by_title.get(t)
            if per_title is None:
                per_title = by_title[t] = per_category()
            lists.append(per_title[c])
        return lists

    def _file(self, pos: int, meta: _Meta, append: bool) -> None:
        if len(meta.titles) > 1:
            self._multi_title = True
        for lst in self._lists(meta):
            if append:
                lst.append(pos)
            else:
                lst.insert(bisect_right(lst, pos), pos)

    def _unfile(self, pos: int, meta: _Meta) -> None:
        for lst in self._lists(meta):
            lst.remove(pos)

    # -- reading

    def position(self, ident: tuple) -> int | None:
        """The position of the item with identity `ident` (R1), or None."""
        return self._index.get(ident)

    def titles_of(self, pos: int) -> tuple[int, ...]:
        return self._meta[pos].titles

    def titles(self) -> KeysView[int]:
        """Every title an item or a hand-written entry names."""
        return self._by_title.keys()

    def wire(self, pos: int) -> dict:
        """The wire item at ``pos``. A compact entry is expanded when served (a few microseconds)
        and only the last EXPANDED_MAX expansions are kept: the dataset holds what it loaded, not
        every item a client ever paged to."""
        item = self._items[pos]
        if not isinstance(item, _Compact):
            return item
        expanded = self._expanded
        wire = expanded.get(pos)
        if wire is not None:
            expanded.move_to_end(pos)
            return wire
        wire = expanded[pos] = item.expand(self.shape)
        if len(expanded) > EXPANDED_MAX:
            expanded.popitem(last=False)
        return wire

    def served(self, positions: list[int], in_form: int, check: ItemCheck | None
               ) -> tuple[list[dict], list[tuple[int, tuple[tuple[str, str], ...]]]]:
        """The items at ``positions`` in the form ``in_form`` (see verdicts), with (index in
        ``positions``, R7 findings) of each that ``check`` finds invalid (none when no check)."""
        shape = self.shape
        items = [shown(self.wire(pos), in_form, shape) for pos in positions]
        if check is None:
            return items, []
        findings = self._verdicts.findings
        invalid = []
        for index, (pos, item) in enumerate(zip(positions, items)):
            found = findings(in_form, pos, item, shape, check)
            if found:
                invalid.append((index, found))
        return items, invalid

    def missing(self, titles: tuple[int, ...] | None) -> list[int | None]:
        """R2: titles the answer depends on that are not proven complete (None: titles never seen)."""
        if titles is not None:
            return self._coverage.missing(titles)
        if self._uncovered is None:
            self._cached = True
            self._uncovered = self._coverage.missing(self._by_title, unseen=True)
        return self._uncovered

    def info(self) -> DatasetInfo:
        return DatasetInfo(self.xuid, self.shape, self.locale, len(self._items),
                           tuple(self._by_title), tuple(self._sources))

    def coverage_report(self) -> dict[str, Any]:
        """Whether all titles are covered (R2), and each known title's size and coverage."""
        return {
            "xuid": self.xuid, "shape": self.shape, "locale": self.locale,
            "all_titles": self._coverage.all_titles,
            "titles": {
                t: {"items": len(set(chain.from_iterable(lists))), "complete": self._coverage.complete(t)}
                for t, lists in self._by_title.items()
            },
        }

    # -- R3/R4: the ordered result of a query, as item positions

    def result(self, titles: tuple[int, ...] | None, categories: tuple[int, ...], order: str,
               now_key: str) -> list[int]:
        if order == "EndingSoon":
            ends, _ = self._windows()
            key: tuple = (titles, categories, order, bisect_right(ends, now_key))
            cache: dict = self._lru
        else:
            key = (titles, categories, order)
            cache = self._global if titles is None else self._lru
        found = cache.get(key)
        self._cached = True
        if found is not None:
            if cache is self._lru:
                self._lru.move_to_end(key)
            return found
        found = self._ending_soon(titles, categories, key[3]) if order == "EndingSoon" else \
            self._ordered(titles, categories, order)
        cache[key] = found
        if len(self._lru) > LRU_SIZE:
            self._lru.popitem(last=False)
        return found

    def _ordered(self, titles: tuple[int, ...] | None, categories: tuple[int, ...], order: str) -> list[int]:
        if titles is None:
            parts = [self._by_category[c] for c in categories]
        else:
            parts = [self._by_title[t][c] for t in titles if t in self._by_title for c in categories]
        found = list(chain.from_iterable(parts))
        if self._multi_title and titles is not None and len(titles) > 1:
            found = list(dict.fromkeys(found))
        if order != "Unordered":
            found.sort(key=self._rank(order).__getitem__)
        elif len(parts) > 1:
            found.sort()
        return found

    def _ending_soon(self, titles: tuple[int, ...] | None, categories: tuple[int, ...], cut: int) -> list[int]:
        """R4 EndingSoon: windows ending after now, soonest first; then the rest in dataset order."""
        base = self.result(titles, categories, "Unordered", "")
        wanted = None if titles is None else set(titles)
        active = [
            i for i in self._windows()[1][cut:]
            if self._meta[i].category in categories and (wanted is None or not wanted.isdisjoint(self._meta[i].titles))
        ]
        if not active:
            return base
        first = set(active)
        return active + [i for i in base if i not in first]

    def _windows(self) -> tuple[list[str], list[int]]:
        """Items with a time window, by end date then dataset order: (end keys, positions)."""
        if self._windowed is None:
            self._cached = True
            pairs = sorted((m.ends_at, i) for i, m in enumerate(self._meta) if m.ends_at)
            self._windowed = ([e for e, _ in pairs], [i for _, i in pairs])
        return self._windowed

    def _rank(self, order: str) -> list[int]:
        rank = self._ranks.get(order)
        if rank is None:
            meta, n = self._meta, len(self._meta)
            if order == "Title":
                seq = sorted(range(n), key=lambda i: (meta[i].titles[0] if meta[i].titles else _NO_TITLE,
                                                      meta[i].number))
            else:  # UnlockTime: most recent first (stable: ties keep dataset order); then locked
                unlocked = [i for i in range(n) if meta[i].category & UNLOCKED]
                unlocked.sort(key=lambda i: meta[i].unlocked_at, reverse=True)
                seq = unlocked + [i for i in range(n) if not meta[i].category & UNLOCKED]
            rank = [0] * n
            for position, i in enumerate(seq):
                rank[i] = position
            self._ranks[order] = rank
            self._cached = True
        return rank

    # -- title history

    def history(self) -> list[TitleStats]:
        """The titles the history lists, in its order (see history.listed)."""
        if self._history is None:
            self._cached = True
            self._history = history.listed(map(self.title_stats, sorted(self._by_title)))
        return self._history

    def title_stats(self, title: int) -> TitleStats:
        stats = self._stats.get(title)
        if stats is None:
            positions = chain.from_iterable(self._by_title.get(title, ()))
            stats = self._stats[title] = history.title_stats(
                title, self._title_names.get(title, ""), self.shape,
                ((self._items[pos], self._meta[pos]) for pos in positions))
            self._cached = True
        return stats
