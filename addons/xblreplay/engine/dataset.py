"""One dataset (xuid, shape, locale): its items in dataset order (R1), their identities, and the
ordered result of a query (R3/R4) with the caches that keep queries cheap.

Hand-written compact entries are rows of column arrays (compact.HandColumns), other items wire
objects by position. Positions are filed per title and per category (filing); a query's candidates
are a concatenation of those lists, sorted by a per-order rank (orders) and cached (LRU), so
following continuation tokens costs O(page). Every cache is dropped when the items change
(`_invalidate`), except by a progress update (`replace`), which drops only what it touches.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from itertools import chain, count
from typing import Any, Iterable, KeysView, Sequence

import orjson

from ..model import AchievementsQuery, compact_json
from . import filing, history, orders
from .categories import per_category
from .compact import HandColumns, Row, _Compact, read_titles
from .coverage import Coverage
from .expand import encoded_at, expand, facts, meta as row_meta
from .history import TitleStats, wire_facts
from .identity import Identities
from .verdicts import DEFINITION, Findings, ItemCheck, Verdicts, shown
from .wire import _Meta, _time_key, _wire_meta

LRU_SIZE = 64
# Expanded compact entries kept, most recently served first: pages asked again (a title's first
# page, a client refreshing) skip the expansion, while a sweep over every item holds no more
# than this many (GC and RSS stay flat).
EXPANDED_MAX = 512


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
        self._size = 0  # positions, in dataset order (R1)
        self._rows = HandColumns()  # compact entries by position (blank where a wire item is)
        self._wire: dict[int, dict] = {}  # position -> wire item (recorded, updated, full hand-written)
        self._wire_meta: dict[int, _Meta] = {}  # position -> what the engine reads from that item
        self._ids = Identities(shape)  # identity -> position
        self._by_title: dict[int, list[Sequence[int]]] = {}  # title -> per-category positions
        self._by_category = per_category()
        self._multi_title = False  # some item belongs to several titles
        self._title_names: dict[int, str] = {}  # names of hand-written titles (V1 items carry none)
        self._sources: list[str] = []
        self._coverage = Coverage()
        self._verdicts = Verdicts()  # R7, per item and form served
        self._expanded: OrderedDict[int, dict] = OrderedDict()  # position -> expansion, at most EXPANDED_MAX
        self.changes = 0  # how many times the items changed: an answer given before is stale
        self._invalidate()

    def _invalidate(self) -> None:
        self.changes += 1
        self._cached = False  # set when any of the caches below is filled
        self._ranks: dict[str, array] = {}
        self._windowed: tuple[list[str], Sequence[int]] | None = None
        self._global: dict[tuple, Sequence[int]] = {}
        self._lru: OrderedDict[tuple, Sequence[int]] = OrderedDict()
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
        self.changes += 1
        if self._coverage.record(query, body):
            self._invalidate()

    def add_titles(self, titles: Iterable[dict], complete: bool, source: str) -> None:
        """The titles of a hand-written dataset (ValueError when one is malformed); `complete`: they
        and the list of the user's titles are complete (R2).

        Titles whose entries are all plain compact entries with new identities are taken in whole,
        a run of them at once (see HandColumns.append_plain); any other is merged entry by entry."""
        self._add_source(source)
        added = []
        full_key = "serviceConfigId" if self.shape == "V2" else "flags"
        rows = self._rows
        run: list[tuple[int, int, Any, list]] = []  # (title row, id, identity key, entries) not yet added
        run_keys: set = set()

        def merge_entries(index: int, tid: int, _: Any, entries: Iterable) -> None:
            for seq, a in enumerate(entries):
                if not isinstance(a, dict):
                    raise ValueError(f"title {tid}: an achievement must be a mapping, not {a!r}")
                if full_key in a:
                    self.merge(a)
                else:
                    self._merge_row(_Compact.read(a, index, tid, seq))

        def add_run(run: list[tuple[int, int, Any, list]]) -> None:
            added = rows.append_plain([(index, entries) for index, _, _, entries in run])
            if added is None:  # some title is not plain: each on its own, in order
                for one in run:  # (an entry of a title before it may have taken its key)
                    add_run([one]) if len(run) > 1 and self._ids.free(one[2]) else merge_entries(*one)
                return
            numbers, categories = added
            sizes, first = [len(entries) for *_, entries in run], self._size
            self._size += len(numbers)
            self._ids.add_run([key for _, _, key, _ in run], numbers, sizes, first)
            filing.file_run(self._by_category, self._by_title, [tid for _, tid, _, _ in run], first, sizes, categories)

        def flush() -> None:
            add_run(run)
            run.clear()
            run_keys.clear()

        read, error = read_titles(titles, self.shape)  # the titles before a malformed one are added
        first = rows.add_titles([head for _, head in read])
        tids = rows.title_ids[first:].tolist()  # new int objects: the document is not kept alive by them
        self._title_names.update(zip(tids, map(rows.title_names.__getitem__, range(first, len(rows.title_ids)))))
        for index, tid, (title, (_, _, scid)) in zip(count(first), tids, read):
            entries = title.get("achievements") or ()
            key = scid if self.shape == "V2" else tid
            if key in run_keys:  # whether it is new depends on the run before it
                flush()
            if self._ids.free(key) and isinstance(entries, list):
                run.append((index, tid, key, entries))
                run_keys.add(key)
            else:
                flush()
                merge_entries(index, tid, key, entries)
            self._by_title.setdefault(tid, per_category())
            added.append(tid)
        flush()
        if error is not None:
            raise error
        self._coverage.add_titles(added, complete)
        self._invalidate()

    def _add_source(self, source: str) -> None:
        if source not in self._sources:
            self._sources.append(source)

    def merge(self, item: dict, replace: bool = True, keep_rarity: bool = False) -> None:
        """R1: add a wire item, or replace the one with the same identity in its original position.
        ``keep_rarity``: the item comes from a page recorded under a contract without rarity
        (1 or 2), so the rarity known from a contract 3 or 4 recording stays (R6)."""
        meta = _wire_meta(item, self.shape)
        pos = self._ids.get(meta.ident)
        if keep_rarity and pos is not None and "rarity" not in item:
            known = self.wire(pos)  # a hand-written entry's rarity is known as well
            if "rarity" in known:
                item = {**item, "rarity": known["rarity"]}
        self._put(pos, item, meta, replace)

    def _merge_row(self, row: Row) -> None:
        """R1 for a compact entry: a new row, or the expanded entry replacing the item it names."""
        meta = row_meta(self._rows, row, self.shape)
        pos = self._ids.get(meta.ident)
        if pos is None:
            self._rows.append(row)
            self._put(None, None, meta, True)
        else:
            self._put(pos, expand(self._rows, row, self.shape), meta, True)

    def _put(self, pos: int | None, item: dict | None, meta: _Meta, replace: bool) -> None:
        """``item`` (None: the compact row just appended) at ``pos`` (None: a new position)."""
        if pos is None:
            pos = self._size
            self._size += 1
            self._ids.add(meta.ident, pos)
            if item is not None:
                self._rows.placeholder()
                self._wire[pos], self._wire_meta[pos] = item, meta
            self._file(pos, meta, append=True)
        elif replace:
            old = self._meta(pos)
            self._wire[pos], self._wire_meta[pos] = item, meta
            self._verdicts.forget(pos)
            self._expanded.pop(pos, None)
            if (old.titles, old.category) != (meta.titles, meta.category):
                self._unfile(pos, old)
                self._file(pos, meta, append=False)
        else:
            return
        self.changes += 1
        if self._cached:
            self._invalidate()

    def _meta(self, pos: int) -> _Meta:
        return self._wire_meta.get(pos) or row_meta(self._rows, self._rows.row(pos), self.shape)

    def _category(self, pos: int) -> int:
        found = self._wire_meta.get(pos)
        return found.category if found else self._rows.flags(pos) & 3

    def replace(self, pos: int, item: dict) -> None:
        """Put an updated wire item at `pos` (same identity), dropping only the caches it affects.

        The title aggregates of its titles always go; when its category or unlock time changed,
        it is refiled, the UnlockTime rank goes and so do the cached results that hold either
        category. Title order, time windows and coverage do not depend on progress.
        """
        old, meta = self._meta(pos), _wire_meta(item, self.shape)
        self._wire[pos], self._wire_meta[pos] = item, meta
        self.changes += 1
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

    def _file(self, pos: int, meta: _Meta, append: bool) -> None:
        self._multi_title |= len(meta.titles) > 1
        filing.file(self._by_category, self._by_title, pos, meta, append)

    def _unfile(self, pos: int, meta: _Meta) -> None:
        filing.unfile(self._by_category, self._by_title, pos, meta)

    # -- reading

    def position(self, ident: tuple) -> int | None:
        """The position of the item with identity `ident` (R1), or None."""
        return self._ids.get(ident)

    def titles_of(self, pos: int) -> tuple[int, ...]:
        found = self._wire_meta.get(pos)
        return found.titles if found else (self._rows.title_of(pos),)

    def titles(self) -> KeysView[int]:
        """Every title an item or a hand-written entry names."""
        return self._by_title.keys()

    def wire(self, pos: int) -> dict:
        """The wire item at ``pos``. A compact entry is expanded when served (a few microseconds)
        and only the last EXPANDED_MAX expansions are kept: the dataset holds what it loaded, not
        every item a client ever paged to."""
        item = self._wire.get(pos)
        if item is not None:
            return item
        expanded = self._expanded
        wire = expanded.get(pos)
        if wire is not None:
            expanded.move_to_end(pos)
            return wire
        wire = expanded[pos] = expand(self._rows, self._rows.row(pos), self.shape)
        if len(expanded) > EXPANDED_MAX:
            expanded.popitem(last=False)
        return wire

    def served(self, positions: Sequence[int], in_form: int, check: ItemCheck | None
               ) -> tuple[list[orjson.Fragment], list[tuple[int, Findings]]]:
        """The items at ``positions`` in the form ``in_form`` (see verdicts), encoded, with (index
        in ``positions``, R7 findings) of each that ``check`` finds invalid (none when no check).
        A compact entry in full is written straight to its bytes (expand.encoded); the items not
        checked yet in their form are checked together, a compact one as the bytes sent."""
        shape, rows, wire, verdicts = self.shape, self._rows, self._wire, self._verdicts
        rarity = not in_form & 1
        items, invalid, fresh = [], [], []
        for index, pos in enumerate(positions):
            raw = item = None
            if in_form < DEFINITION and pos not in wire:
                raw = encoded_at(rows, pos, shape, rarity)
            if raw is None:
                item = shown(self.wire(pos), in_form, shape)
                raw = compact_json(item)
            items.append(orjson.Fragment(raw))
            if check is not None:
                found = verdicts.known(in_form, pos)
                if found is None:
                    fresh.append((index, pos, raw if item is None else item))
                elif found:
                    invalid.append((index, found))
        if fresh:
            for (index, pos, _), found in zip(fresh, check(shape, [f[2] for f in fresh])):
                verdicts.note(in_form, pos, tuple(found))
                if found:
                    invalid.append((index, tuple(found)))
            invalid.sort()
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
        return DatasetInfo(self.xuid, self.shape, self.locale, self._size,
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
               now: datetime | None) -> Sequence[int]:
        """The positions a query selects, in ``order`` (``now``: the clock EndingSoon reads)."""
        if order == "EndingSoon":
            ends, _ = self._windows()
            key: tuple = (titles, categories, order, bisect_right(ends, _time_key(now)))
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

    def _ordered(self, titles: tuple[int, ...] | None, categories: tuple[int, ...], order: str) -> Sequence[int]:
        if titles is None:
            parts = [self._by_category[c] for c in categories]
        else:
            parts = [self._by_title[t][c] for t in titles if t in self._by_title for c in categories]
        found = array("I", chain.from_iterable(parts))  # 4 bytes a position, cached
        if self._multi_title and titles is not None and len(titles) > 1:
            found = array("I", dict.fromkeys(found))
        if order != "Unordered":
            found = array("I", sorted(found, key=self._rank(order).__getitem__))
        elif len(parts) > 1:
            found = array("I", sorted(found))
        return found

    def _ending_soon(self, titles: tuple[int, ...] | None, categories: tuple[int, ...], cut: int) -> Sequence[int]:
        """R4 EndingSoon: windows ending after now, soonest first; then the rest in dataset order."""
        base = self.result(titles, categories, "Unordered", None)
        wanted = None if titles is None else set(titles)
        active = [
            i for i in self._windows()[1][cut:]
            if self._category(i) in categories and (wanted is None or not wanted.isdisjoint(self.titles_of(i)))
        ]
        if not active:
            return base
        first = set(active)
        return array("I", active + [i for i in base if i not in first])

    def _windows(self) -> tuple[list[str], Sequence[int]]:
        """Items with a time window, by end date then dataset order: (end keys, positions)."""
        if self._windowed is None:
            self._cached = True
            pairs = [(m.ends_at, i) for i, m in self._wire_meta.items() if m.ends_at]
            pairs += [(end[:-1], i) for i, (_, end) in self._rows.windows.items() if i not in self._wire]
            pairs.sort()
            self._windowed = ([e for e, _ in pairs], [i for _, i in pairs])
        return self._windowed

    def _rank(self, order: str) -> array:
        rank = self._ranks.get(order)
        if rank is None:
            rank = self._ranks[order] = orders.rank(order, self._size, self._by_category, self._title_keys,
                                                    self._unlock_key)
            self._cached = True
        return rank

    def _title_keys(self) -> list[tuple[int, int]]:
        """(first title, number) of every position (R4 Title)."""
        keys = self._rows.title_keys()
        for i, m in self._wire_meta.items():
            keys[i] = (m.titles[0] if m.titles else orders.NO_TITLE, m.number)
        return keys

    def _unlock_key(self, pos: int) -> str:
        found = self._wire_meta.get(pos)
        return found.unlocked_at if found else self._rows.unlocked(pos)[:-1]

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
                title, self._title_names.get(title, ""), self.shape, (self._facts(title, pos) for pos in positions))
            self._cached = True
        return stats

    def _facts(self, title: int, pos: int) -> tuple[int, bool, str, str, int, str]:
        """See expand.facts; ``title``: the title aggregated."""
        item = self._wire.get(pos)
        if item is None:
            return facts(self._rows, pos, self.shape)
        found = self._wire_meta[pos]
        return (*wire_facts(item, self.shape, title),
                found.category, found.unlocked_at)
