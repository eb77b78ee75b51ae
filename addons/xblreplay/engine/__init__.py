"""The dataset engine: semantic replay of GET /users/xuid({xuid})/achievements (R1–R7, R9).

Recorded pages and hand-written cassette datasets are merged into datasets keyed by
(xuid, shape, locale) (R1). A query is answered by applying the service's filters (R3),
ordering (R4) and paging (R5) to the dataset, so queries that were never recorded still get
a faithful answer. Coverage (R2) says whether the dataset proves the complete answer.

Speed: a query costs time proportional to its matching titles and its page, not to the whole
dataset. Each dataset keeps, per title and per category (type x unlocked), the item indices in
dataset order; a query's candidates are a concatenation of those lists, sorted by a precomputed
per-order rank array and cached (LRU), so following continuation tokens costs O(page).
Compact hand-written entries are expanded into wire objects only when a page shows them.

Answer bodies share item objects with the store: consumers treat them as read-only.
"""

from __future__ import annotations

import hashlib
import re
from bisect import bisect_right
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import chain
from typing import Any, Iterator, NamedTuple

from .. import answers
from ..bounds import int_text_ok
from ..model import ERROR, NEVER, TYPES, WARNING, AchievementsQuery, Answer, Violation

DEFAULT_LOCALE = "en-US"
LRU_SIZE = 64
ZERO_GUID = "00000000-0000-0000-0000-000000000000"

# Category bits of an item: bit 0 unlocked, bit 1 Challenge (R3 types x unlockedOnly).
UNLOCKED, CHALLENGE = 1, 2
ALL_CATEGORIES = (0, 1, 2, 3)

# V1 flag bits (Xbox 360 XACHIEVEMENT): type 1, show-unachieved, achieved online, achieved.
V1_TYPE, V1_SHOW, V1_ONLINE, V1_ACHIEVED = 0x1, 0x8, 0x10000, 0x20000

_TIME = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,7}))?Z\Z")
_NO_TITLE = 1 << 40  # sorts after every uint32 title id (R4 Title)
_NO_NUMBER = 1 << 70  # sorts after every numeric achievement id


def wire_time(value: Any) -> str | None:
    """An ISO time (string or datetime) in the wire form with 7 fractional digits, or None."""
    if isinstance(value, str):
        m = _TIME.match(value)
        if m:
            return f"{m[1]}.{(m[2] or '').ljust(7, '0')}Z"
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return value.strftime("%Y-%m-%dT%H:%M:%S") + f".{value.microsecond:06d}0Z"
    return None


def _time_key(value: Any) -> str:
    """A string that sorts in time order ("" when absent or malformed)."""
    t = wire_time(value)
    return t[:-1] if t else ""


def derived_scid(title_id: int) -> str:
    """The serviceConfigId used for a hand-written title without `scid`."""
    return f"{ZERO_GUID[:24]}{title_id:012x}"


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and int_text_ok(value):
        return int(value)
    return None  # not a number (a text of other digits, or longer than any value here can be)


# ---------------------------------------------------------------------------------------------
# Items: metadata of wire objects and compact entries, expansion, possibleOnly definitions


class _Meta(NamedTuple):  # a tuple: built once per item, the cheapest immutable record
    ident: tuple  # (serviceConfigId, id) in V2, (titleId, id) in V1 (R1)
    titles: tuple[int, ...]  # title association ids (V2) or (titleId,) (V1)
    number: int  # numeric id for R4 Title
    category: int  # UNLOCKED | CHALLENGE bits
    unlocked_at: str  # time key of the unlock ("" when locked)
    ends_at: str | None  # time key of timeWindow.endDate (R4 EndingSoon)


def _wire_meta(item: dict, shape: str) -> _Meta:
    number = _as_int(item.get("id"))
    number = _NO_NUMBER if number is None else number
    if shape == "V1":
        unlocked = item.get("unlocked") is True
        tid = _as_int(item.get("titleId"))
        return _Meta(
            (tid, number),
            () if tid is None else (tid,),
            number,
            UNLOCKED if unlocked else 0,
            _time_key(item.get("timeUnlocked")) if unlocked else "",
            None,
        )
    titles = tuple(
        t for t in (_as_int(ta.get("id")) for ta in item.get("titleAssociations") or () if isinstance(ta, dict))
        if t is not None
    )
    unlocked = item.get("progressState") == "Achieved"
    progression = item.get("progression") or {}
    window = item.get("timeWindow")
    challenge = str(item.get("achievementType", "")).lower() == "challenge"
    return _Meta(
        (str(item.get("serviceConfigId", "")).lower(), str(item.get("id"))),
        titles,
        number,
        (UNLOCKED if unlocked else 0) | (CHALLENGE if challenge else 0),
        _time_key(progression.get("timeUnlocked")) if unlocked else "",
        (_time_key(window.get("endDate")) or None) if isinstance(window, dict) else None,
    )


class _Compact:
    """A compact hand-written entry with its title context, expanded on first output."""

    __slots__ = ("entry", "title_id", "title_name", "scid", "sequence", "unlocked", "window")

    def __init__(self, entry: dict, title_id: int, title_name: str, scid: str, sequence: int) -> None:
        def bad(what: str) -> ValueError:
            return ValueError(f"title {title_id} achievement {entry.get('id')!r}: {what}")

        if _as_int(entry.get("id")) is None:
            raise bad("`id` must be a non-negative integer")
        if entry.get("type", "Persistent") not in TYPES:
            raise bad(f"`type` must be one of {', '.join(TYPES)}")
        self.unlocked = None
        if entry.get("unlocked") is not None:
            self.unlocked = wire_time(entry["unlocked"])
            if self.unlocked is None:
                raise bad("`unlocked` must be an ISO time")
            if self.unlocked == NEVER:
                self.unlocked = None
        progress = entry.get("progress")
        if progress is not None and not (
            isinstance(progress, list) and len(progress) == 2 and all(_as_int(p) is not None for p in progress)
        ):
            raise bad("`progress` must be [current, target]")
        self.window = None
        window = entry.get("window")
        if window is not None:
            if entry.get("type", "Challenge") != "Challenge":
                raise bad("a `window` needs type Challenge")
            bounds = (wire_time(window.get("start")), wire_time(window.get("end"))) if isinstance(window, dict) else ()
            if len(bounds) != 2 or None in bounds:
                raise bad("`window` must be {start, end} ISO times")
            self.window = {"startDate": bounds[0], "endDate": bounds[1]}
        self.entry, self.title_id, self.title_name, self.scid, self.sequence = (
            entry, title_id, title_name, scid, sequence)

    @property
    def challenge(self) -> bool:
        return self.entry.get("type", "Challenge" if self.window else "Persistent") == "Challenge"

    def meta(self, shape: str) -> _Meta:
        number = int(self.entry["id"])
        return _Meta(
            (self.scid, str(number)) if shape == "V2" else (self.title_id, number),
            (self.title_id,),
            number,
            (UNLOCKED if self.unlocked else 0) | (CHALLENGE if self.challenge else 0),
            self.unlocked[:-1] if self.unlocked else "",
            self.window["endDate"][:-1] if self.window else None,
        )

    def expand(self, shape: str) -> dict:
        return self._v2() if shape == "V2" else self._v1()

    def _v2(self) -> dict:
        e, number = self.entry, int(self.entry["id"])
        progress = e.get("progress")
        current, target = (str(progress[0]), str(progress[1])) if progress else (None, "1")
        if self.unlocked:
            state = "Achieved"
            if current is None:
                current = target
        else:
            state = "InProgress" if progress else "NotStarted"
        item = {
            "id": str(number),
            "serviceConfigId": self.scid,
            "name": str(e.get("name", f"Achievement {number}")),
            "titleAssociations": [{"name": self.title_name, "id": self.title_id}],
            "progressState": state,
            "progression": {
                "requirements": [{
                    "id": ZERO_GUID, "current": current, "target": target, "operationType": "Sum",
                    "valueType": "Integer", "ruleParticipationType": "Individual",
                }],
                "timeUnlocked": self.unlocked or NEVER,
            },
            "mediaAssets": [{"name": "Icon", "type": "Icon", "url": e.get("icon")}],
            "platforms": ["Durango"],
            "isSecret": bool(e.get("secret", False)),
            "description": str(e.get("description", "")),
            "lockedDescription": str(e.get("lockedDescription", e.get("description", ""))),
            "productId": f"{self.title_id:08x}-0000-0000-0000-{number:012x}",
            "achievementType": "Challenge" if self.challenge else "Persistent",
            "participationType": "Individual",
            "timeWindow": dict(self.window) if self.window else None,
            "rewards": [{
                "name": None, "description": None, "value": str(int(e.get("gamerscore", 0))),
                "type": "Gamerscore", "valueType": "Int", "mediaAsset": None,
            }],
            "estimatedTime": "00:00:00",
            "deeplink": None,
            "isRevoked": False,
        }
        if e.get("rarity") is not None:
            item["rarity"] = dict(e["rarity"])
        return item

    def _v1(self) -> dict:
        e, number = self.entry, int(self.entry["id"])
        unlocked = self.unlocked is not None
        item = {
            "id": number,
            "titleId": self.title_id,
            "name": str(e.get("name", f"Achievement {number}")),
            "sequence": self.sequence,
            "flags": V1_SHOW | V1_TYPE | (V1_ACHIEVED | V1_ONLINE if unlocked else 0),
            "unlockedOnline": unlocked,
            "unlocked": unlocked,
            "isSecret": bool(e.get("secret", False)),
            "platform": 15 if unlocked else 255,
            "gamerscore": int(e.get("gamerscore", 0)),
            "imageId": number,
            "description": str(e.get("description", "")),
            "lockedDescription": str(e.get("lockedDescription", e.get("description", ""))),
            "type": 1,
            "isRevoked": False,
            "timeUnlocked": self.unlocked or NEVER,
        }
        if e.get("rarity") is not None:
            item["rarity"] = dict(e["rarity"])
        return item


def _facts(item: dict | _Compact, shape: str, title: int) -> tuple[int, bool, str, str]:
    """(Gamerscore, InProgress, serviceConfigId, title name) of an item; a compact entry stays compact."""
    if isinstance(item, _Compact):
        in_progress = item.unlocked is None and item.entry.get("progress") is not None
        return (int(item.entry.get("gamerscore", 0)), in_progress and shape == "V2",
                item.scid if shape == "V2" else "", item.title_name)
    if shape == "V1":
        return _as_int(item.get("gamerscore")) or 0, False, "", ""
    score = sum(_as_int(r.get("value")) or 0 for r in item.get("rewards") or ()
                if isinstance(r, dict) and r.get("type") == "Gamerscore")
    name = next((str(ta.get("name") or "") for ta in item.get("titleAssociations") or ()
                 if isinstance(ta, dict) and _as_int(ta.get("id")) == title), "")
    return (score, item.get("progressState") == "InProgress", str(item.get("serviceConfigId", "")).lower(),
            name)


def without_rarity(item: dict) -> dict:
    """The item as contracts 1 and 2 carry it (R6): no ``rarity``."""
    return {k: v for k, v in item.items() if k != "rarity"} if "rarity" in item else item


def definition(item: dict, shape: str) -> dict:
    """R3 possibleOnly: a copy of the item without the user's data (the item is not touched)."""
    out = dict(item)
    if shape == "V1":
        out.update(unlocked=False, unlockedOnline=False, timeUnlocked=NEVER)
        if isinstance(item.get("flags"), int):
            out["flags"] = item["flags"] & ~(V1_ACHIEVED | V1_ONLINE)
        return out
    out["progressState"] = "NotStarted"
    progression = item.get("progression")
    if isinstance(progression, dict):
        requirements = progression.get("requirements") or []
        out["progression"] = dict(
            progression,
            timeUnlocked=NEVER,
            requirements=[dict(r, current=None) if isinstance(r, dict) else r for r in requirements],
        )
    return out


# ---------------------------------------------------------------------------------------------
# One dataset


@dataclass(frozen=True, slots=True)
class TitleStats:
    """Per-title aggregates of one dataset, for GET /users/xuid({xuid})/history/titles."""

    title_id: int
    name: str
    scid: str  # V2 serviceConfigId ("" in V1)
    achievements: int  # all achievements of the title
    earned: int  # achievements Achieved (V1: unlocked)
    progressed: bool  # some achievement InProgress
    gamerscore: int  # Gamerscore of the earned achievements
    max_gamerscore: int  # Gamerscore of all achievements of the title
    last_unlock: str  # wire time of the most recent unlock, NEVER when none


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    """Read-only summary of one dataset."""

    xuid: int
    shape: str
    locale: str
    size: int
    titles: tuple[int, ...]
    sources: tuple[str, ...]


def _merge_range(ranges: list[tuple[int, int]], start: int, end: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(ranges + [(start, end)]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


class _Dataset:
    def __init__(self, xuid: int, shape: str, locale: str) -> None:
        self.xuid, self.shape, self.locale = xuid, shape, locale
        self.items: list[dict | _Compact] = []  # dataset order (R1)
        self.meta: list[_Meta] = []
        self.index: dict[tuple, int] = {}  # identity -> position
        self.by_title: dict[int, list[list[int]]] = {}  # title -> per-category positions
        self.by_category: list[list[int]] = [[], [], [], []]
        self.multi_title = False  # some item belongs to several titles
        self.version: str | None = None  # V1 top-level version, as recorded
        self.title_names: dict[int, str] = {}  # names of hand-written titles (V1 items carry none)
        self.sources: list[str] = []
        # R2 coverage
        self.all_titles = False
        self.hand_complete = False
        self.covered: set[int] = set()
        self.ranges: dict[tuple, list[tuple[int, int]]] = {}
        self._invalidate()

    def _invalidate(self) -> None:
        self._cached = False  # set when any of the caches below is filled
        self._ranks: dict[str, list[int]] = {}
        self._windowed: tuple[list[str], list[int]] | None = None
        self._global: dict[tuple, list[int]] = {}
        self._lru: OrderedDict[tuple, list[int]] = OrderedDict()
        self._uncovered: list[int] | None = None
        self._stats: dict[int, TitleStats] = {}
        self._history: list[TitleStats] | None = None

    # -- building

    def merge(self, item: dict | _Compact, replace: bool = True, keep_rarity: bool = False) -> None:
        """R1: add an item, or replace the one with the same identity in its original position.
        ``keep_rarity``: the item comes from a page recorded under a contract without rarity
        (1 or 2), so the rarity known from a contract 3 or 4 recording stays (R6)."""
        meta = item.meta(self.shape) if isinstance(item, _Compact) else _wire_meta(item, self.shape)
        pos = self.index.get(meta.ident)
        if keep_rarity and pos is not None and isinstance(item, dict) and "rarity" not in item:
            old_item = self.items[pos]
            if isinstance(old_item, dict) and "rarity" in old_item:
                item = {**item, "rarity": old_item["rarity"]}
        if pos is None:
            pos = len(self.items)
            self.index[meta.ident] = pos
            self.items.append(item)
            self.meta.append(meta)
            self._file(pos, meta, append=True)
        elif replace:
            old = self.meta[pos]
            self.items[pos] = item
            self.meta[pos] = meta
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
        old, meta = self.meta[pos], _wire_meta(item, self.shape)
        self.items[pos], self.meta[pos] = item, meta
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
        by_title, c = self.by_title, meta.category
        lists = [self.by_category[c]]
        for t in meta.titles if len(meta.titles) < 2 else dict.fromkeys(meta.titles):
            per_title = by_title.get(t)
            if per_title is None:
                per_title = by_title[t] = [[], [], [], []]
            lists.append(per_title[c])
        return lists

    def _file(self, pos: int, meta: _Meta, append: bool) -> None:
        if len(meta.titles) > 1:
            self.multi_title = True
        for lst in self._lists(meta):
            if append:
                lst.append(pos)
            else:
                lst.insert(bisect_right(lst, pos), pos)

    def _unfile(self, pos: int, meta: _Meta) -> None:
        for lst in self._lists(meta):
            lst.remove(pos)

    def record_coverage(self, query: AchievementsQuery, body: dict) -> None:
        """R2: a listing not filtered by unlockedOnly/types whose pages cover [0, totalRecords)."""
        if query.unlocked_only or query.possible_only:
            return
        if query.types is not None and set(query.types) != set(TYPES):
            return
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
                self.covered.update(titles)
            self._invalidate()

    def _add_range(self, titles: tuple | None, order: str, total: int, start: int, end: int) -> bool:
        key = (titles, order, total)
        ranges = self.ranges[key] = _merge_range(self.ranges.get(key, []), start, end)
        return ranges[0][0] <= 0 and ranges[0][1] >= total

    # -- R2

    def missing(self, titles: tuple[int, ...] | None) -> list[int | None]:
        """Titles the answer depends on that are not proven complete (None: titles never seen)."""
        if self.all_titles:
            return []
        if titles is not None:
            return [t for t in titles if t not in self.covered]
        if self._uncovered is None:
            self._cached = True
            self._uncovered = [t for t in self.by_title if t not in self.covered]
        return self._uncovered + ([] if self.hand_complete else [None])

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
            parts = [self.by_category[c] for c in categories]
        else:
            parts = [self.by_title[t][c] for t in titles if t in self.by_title for c in categories]
        found = list(chain.from_iterable(parts))
        if self.multi_title and titles is not None and len(titles) > 1:
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
            if self.meta[i].category in categories and (wanted is None or not wanted.isdisjoint(self.meta[i].titles))
        ]
        if not active:
            return base
        first = set(active)
        return active + [i for i in base if i not in first]

    def _windows(self) -> tuple[list[str], list[int]]:
        """Items with a time window, by end date then dataset order: (end keys, positions)."""
        if self._windowed is None:
            self._cached = True
            pairs = sorted((m.ends_at, i) for i, m in enumerate(self.meta) if m.ends_at)
            self._windowed = ([e for e, _ in pairs], [i for _, i in pairs])
        return self._windowed

    def _rank(self, order: str) -> list[int]:
        rank = self._ranks.get(order)
        if rank is None:
            meta, n = self.meta, len(self.meta)
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
        """Titles with an achievement Achieved or InProgress: most recent unlock first, ties by title id."""
        if self._history is None:
            self._cached = True
            listed = [s for s in map(self.title_stats, sorted(self.by_title)) if s.earned or s.progressed]
            listed.sort(key=lambda s: s.last_unlock, reverse=True)  # stable: ties stay by title id
            self._history = listed
        return self._history

    def title_stats(self, title: int) -> TitleStats:
        stats = self._stats.get(title)
        if stats is not None:
            return stats
        count = earned = gamerscore = total = 0
        progressed, last, name, scid = False, "", self.title_names.get(title, ""), ""
        for pos in chain.from_iterable(self.by_title.get(title, ())):
            score, in_progress, item_scid, item_name = _facts(self.items[pos], self.shape, title)
            meta = self.meta[pos]
            progressed |= in_progress
            scid, name = scid or item_scid, name or item_name
            count += 1
            total += score
            if meta.category & UNLOCKED:
                earned += 1
                gamerscore += score
                last = max(last, meta.unlocked_at)
        stats = self._stats[title] = TitleStats(title, name, scid, count, earned, progressed, gamerscore, total,
                                                last + "Z" if last else NEVER)
        self._cached = True
        return stats

    def wire(self, pos: int) -> dict:
        item = self.items[pos]
        if isinstance(item, _Compact):
            item = self.items[pos] = item.expand(self.shape)
        return item

    def info(self) -> DatasetInfo:
        return DatasetInfo(self.xuid, self.shape, self.locale, len(self.items),
                           tuple(self.by_title), tuple(self.sources))


# ---------------------------------------------------------------------------------------------
# The store


def _primary(locale: str) -> str:
    return locale.split("-", 1)[0].lower()


def pick_locale(known: list[str], wanted: tuple[str, ...], what: str = "dataset") -> tuple[str, str]:
    """R6: of the ``known`` locales (first recorded first), the first ``wanted`` one, then a
    primary-language match, then the default (the first recorded); with a note when the
    default had to stand in."""
    lowered = {k.lower(): k for k in known}
    for locale in wanted:
        if locale.lower() in lowered:
            return lowered[locale.lower()], ""
    for locale in wanted:
        for k in known:
            if _primary(k) == _primary(locale):
                return k, ""
    note = f"no {what} in {', '.join(wanted)}; answered in the default locale {known[0]}" if wanted else ""
    return known[0], note


def _coverage_gap(ds: _Dataset, titles: tuple[int, ...] | None) -> str:
    """R2: why an answer over `titles` (None: all) may be partial, naming what is missing; "" if covered."""
    missing = ds.missing(titles)
    if not missing:
        return ""
    names = ", ".join(f"(xuid {ds.xuid}, titleId {'any other' if t is None else t})" for t in missing[:8])
    more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
    return f"R2: not recorded completely for {ds.shape} {ds.locale}: {names}{more}"


def _paging(ds: _Dataset, following: int, total: int) -> dict[str, Any]:
    """R5: pagingInfo (and the V1 top-level version) of a page that ends before `following`."""
    token = str(following) if following < total else None
    if ds.shape == "V2":
        return {"pagingInfo": {"continuationToken": token, "totalRecords": total}}
    version = ds.version or NEVER
    return {"pagingInfo": {"continuationToken": None if token is None else f"{token},{version}",
                           "totalRecords": total},
            "version": version}


def _progressed(item: dict, percent: int, stamp: str) -> dict | None:
    """A V2 item after a progressUpdate to `percent`, or None when nothing changes (304).

    100 unlocks: Achieved, timeUnlocked `stamp`, every requirement's current = its target.
    1-99: InProgress with the first requirement's current = target * percent / 100 rounded half
    up, only when that is above the stored current (an item without an integer target keeps
    no partial progress). An Achieved item never changes.
    """
    if item.get("progressState") == "Achieved":
        return None
    progression = item.get("progression") if isinstance(item.get("progression"), dict) else {}
    requirements = list(progression.get("requirements") or ())
    if percent >= 100:
        requirements = [dict(r, current=r.get("target")) if isinstance(r, dict) else r for r in requirements]
        return dict(item, progressState="Achieved",
                    progression=dict(progression, requirements=requirements, timeUnlocked=stamp))
    first = next((i for i, r in enumerate(requirements) if isinstance(r, dict)), None)
    target = None if first is None else _as_int(requirements[first].get("target"))
    if target is None:
        return None
    value = (target * percent + 50) // 100
    if value <= (_as_int(requirements[first].get("current")) or 0):
        return None
    requirements[first] = dict(requirements[first], current=str(value))
    return dict(item, progressState="InProgress", progression=dict(progression, requirements=requirements))


class DatasetStore:
    """Every dataset known to the proxy, and the engine that answers queries from them."""

    def __init__(self, *, strict_coverage: bool = False) -> None:
        self.strict_coverage = strict_coverage
        self._datasets: dict[tuple[int, str, str], _Dataset] = {}
        self._locales: dict[tuple[int, str], list[str]] = {}  # first recorded first (R6 default)
        self.updated: set[int] = set()  # xuids whose data progress updates changed in this run
        self._bindings: dict[str, int] = {}

    # -- building

    def _dataset(self, xuid: int, shape: str, locale: str) -> _Dataset:
        if shape not in ("V1", "V2"):
            raise ValueError(f"shape must be V1 or V2, not {shape!r}")
        key = (xuid, shape, locale)
        ds = self._datasets.get(key)
        if ds is None:
            ds = self._datasets[key] = _Dataset(xuid, shape, locale)
            self._locales.setdefault((xuid, shape), []).append(locale)
        return ds

    def add_listing(self, query: AchievementsQuery, locale: str, body: dict,
                    recorded_at: str | None = None) -> None:
        """R1: merge every item of a recorded 200 page (``query``: the recorded request, read by
        the validator); R2: record what it proves complete.

        A possibleOnly page carries definitions without user data: it adds unseen achievements
        but never replaces what is known. A page recorded under a contract without rarity (1 or
        2) keeps the rarity already known from contract 3 or 4 (R6).
        """
        shape = query.shape
        ds = self._dataset(int(query.xuid), shape, locale)
        source = f"recording {recorded_at}" if recorded_at else "recording"
        if source not in ds.sources:
            ds.sources.append(source)
        for item in body.get("achievements") or ():
            if isinstance(item, dict):
                ds.merge(item, replace=not query.possible_only, keep_rarity=not query.rarity)
        if shape == "V1" and isinstance(body.get("version"), str):
            ds.version = body["version"]
        ds.record_coverage(query, body)

    def add_hand_dataset(self, entry: dict, source: str = "") -> None:
        """A cassette `datasets:` item (docs/DESIGN.md); raises ValueError on a malformed entry."""
        shape = entry.get("shape", "V2")
        ds = self._dataset(int(entry["xuid"]), shape, str(entry.get("locale", DEFAULT_LOCALE)))
        complete = entry.get("complete", True) is not False
        if source not in ds.sources:
            ds.sources.append(source)
        full_key = "serviceConfigId" if shape == "V2" else "flags"
        for title in entry.get("titles") or ():
            tid = _as_int(title.get("id"))
            if tid is None:
                raise ValueError(f"title id must be a non-negative integer, not {title.get('id')!r}")
            name = str(title.get("name", f"Title {tid}"))
            ds.title_names[tid] = name
            scid = str(title.get("scid") or derived_scid(tid)).lower()
            for seq, a in enumerate(title.get("achievements") or ()):
                if not isinstance(a, dict):
                    raise ValueError(f"title {tid}: an achievement must be a mapping, not {a!r}")
                ds.merge(a if full_key in a else _Compact(a, tid, name, scid, seq))
            ds.by_title.setdefault(tid, [[], [], [], []])
            if complete:
                ds.covered.add(tid)
        ds.hand_complete |= complete
        ds._invalidate()

    def _coverage(self, ds: "_Dataset", titles: tuple[int, ...] | None, where: tuple[str, str],
                  reasons: list[str], violations: list[Violation]) -> Answer | None:
        """R2 for an answer over `titles` (None: all): with strict coverage the 404 to give;
        otherwise None, and a gap adds its reason and a `coverage` warning."""
        gap = _coverage_gap(ds, titles)
        if not gap:
            return None
        if self.strict_coverage:
            return answers.diagnostic("R2", "coverage", "path", where[1], gap)
        gap += "; answered from what is known"
        reasons.append(gap)
        violations.append(Violation("R2", where[0], where[1], WARNING, gap, code="coverage"))
        return None

    def add_binding(self, userhash_sha256: str, xuid: int) -> None:
        self._bindings[userhash_sha256.lower()] = int(xuid)

    # -- read-only views

    def datasets(self) -> Iterator[DatasetInfo]:
        for ds in self._datasets.values():
            yield ds.info()

    def coverage_report(self) -> list[dict[str, Any]]:
        """Per dataset: whether all titles are covered, and each known title's size and coverage."""
        return [
            {
                "xuid": ds.xuid, "shape": ds.shape, "locale": ds.locale, "all_titles": ds.all_titles,
                "titles": {
                    t: {"items": len(set(chain.from_iterable(lists))),
                        "complete": ds.all_titles or t in ds.covered}
                    for t, lists in ds.by_title.items()
                },
            }
            for ds in self._datasets.values()
        ]

    # -- answering

    def check_binding(self, userhash: str | None, xuid: int) -> Answer | None:
        """R8: 403 when the caller's userhash is bound to another xuid; None otherwise."""
        if userhash is None:
            return None
        bound = self._bindings.get(hashlib.sha256(userhash.encode("utf-8")).hexdigest())
        if bound is None or bound == xuid:
            return None
        return answers.bound_elsewhere(xuid)

    def _resolve(self, xuid: int, shape: str, locales: tuple[str, ...]) -> tuple[_Dataset | None, str]:
        """R6: the dataset of the locale :func:`pick_locale` chooses."""
        known = self._locales.get((xuid, shape))
        if not known:
            return None, ""
        locale, note = pick_locale(known, locales, "dataset")
        return self._datasets[(xuid, shape, locale)], note

    def _not_recorded(self, xuid: int, shape: str) -> Answer:
        others = sorted(s for (x, s) in self._locales if x == xuid)
        also = f" (recorded: {', '.join(others)})" if others else ""
        reason = f"R9: no {shape} dataset is recorded for xuid {xuid}{also}"
        return answers.diagnostic("R9", "no-dataset", "path", "xuid", reason)

    def answer(self, query: AchievementsQuery, now: datetime) -> Answer:
        """Answer a listing query from the datasets (R3–R7), with R2/R9 diagnostics."""
        if query.shape is None:  # R6: unsupported contract version
            return answers.unsupported_contract("achievements", query.contract)
        ds, locale_note = self._resolve(query.xuid, query.shape, query.locales)
        if ds is None:
            return self._not_recorded(query.xuid, query.shape)
        titles = None if query.title_ids is None else tuple(sorted(set(query.title_ids)))
        violations: list[Violation] = []
        reasons = [locale_note] if locale_note else []
        refused = self._coverage(ds, titles, ("query", "titleId"), reasons, violations)
        if refused is not None:
            return refused

        categories = ALL_CATEGORIES
        if query.types is not None:
            categories = tuple(c for c in categories if ("Challenge" if c & CHALLENGE else "Persistent") in query.types)
        possible = query.possible_only
        if query.unlocked_only and not possible:  # R3.4: possibleOnly wins
            categories = tuple(c for c in categories if c & UNLOCKED)
        order = "Unordered" if possible and query.order_by == "UnlockTime" else query.order_by
        found = ds.result(titles, categories, order, _time_key(now))

        # R5 paging
        start, total = query.start, len(found)
        positions = found[start:start + query.page_size]
        following = start + len(positions)
        items = [ds.wire(i) for i in positions]
        if possible:
            items = [definition(item, ds.shape) for item in items]
        if not query.rarity:  # R6: contracts 3 (V1) and 4 (V2) keep recorded rarity; 1 and 2 drop it
            items = [without_rarity(item) for item in items]
        body: dict[str, Any] = {"achievements": items, **_paging(ds, following, total)}
        return answers.from_dataset(body, reasons, violations)

    def answer_detail(self, xuid: int, scid: str, achievement_id: int | str, shape: str | None,
                      locales: tuple[str, ...] = (), rarity: bool = False) -> Answer:
        """One achievement in the list shape (the wire form of the detail endpoint); 404 when unknown."""
        shape = shape or "V2"
        ds, _ = self._resolve(int(xuid), shape, tuple(locales))
        if ds is None:
            return self._not_recorded(int(xuid), shape)
        scid = str(scid).lower()
        if shape == "V2":
            pos = ds.index.get((scid, str(achievement_id)))
        else:  # V1 items carry no SCID: the title comes from a V2 dataset or the derived SCID
            titles = {t for t in ds.by_title if derived_scid(t) == scid}
            for v2 in (d for (x, s, _), d in self._datasets.items() if x == ds.xuid and s == "V2"):
                known = v2.index.get((scid, str(achievement_id)))
                if known is not None:
                    titles.update(v2.meta[known].titles)
            number = _as_int(achievement_id)
            pos = next((ds.index[(t, number)] for t in titles if (t, number) in ds.index), None)
        if pos is None:
            reason = (f"R9: achievement {achievement_id} of {scid} is not recorded for xuid {xuid} "
                      f"({shape}, {ds.locale})")
            return answers.diagnostic("R9", "not-recorded", "path", "achievementid", reason)
        item = ds.wire(pos)
        if not rarity:
            item = without_rarity(item)
        body: dict[str, Any] = {"achievements": [item],
                                "pagingInfo": {"continuationToken": None, "totalRecords": 1}}
        if shape == "V1":
            body["version"] = ds.version or NEVER
        return answers.from_dataset(body)

    def answer_history(self, xuid: int, shape: str | None, locales: tuple[str, ...] = (),
                       start: int = 0, page_size: int = 32) -> Answer:
        """GET /users/xuid({xuid})/history/titles from the chosen locale's dataset (R6), paged as R5.

        The spec lists "titles in which the user unlocked or progressed achievements". Choice: a
        title is listed when at least one of its achievements is Achieved or InProgress (V1:
        unlocked); most recent lastUnlock first, ties by title id ascending. A title with progress
        but no unlock has lastUnlock 0001-01-01T00:00:00.0000000Z, so it comes after the others.
        V2 rows are UserTitle items (titleVersion "", titleType "LiveApp", platform "Durango").
        V1 rows: lastPlayed is the last unlock, titleType 1, platforms [1], and sequence numbers
        the listed titles from the oldest (1) to the most recent; the body has the top-level
        version. Coverage gaps (R2) are warned about (404 with strict coverage).
        """
        if shape is None:  # R6: unsupported contract version
            return answers.unsupported_contract("titles", None)
        ds, locale_note = self._resolve(int(xuid), shape, tuple(locales))
        if ds is None:
            return self._not_recorded(int(xuid), shape)
        reasons, violations = [locale_note] if locale_note else [], []
        refused = self._coverage(ds, None, ("path", "xuid"), reasons, violations)
        if refused is not None:
            return refused
        listed = ds.history()
        total = len(listed)
        page = listed[start:start + page_size]
        if shape == "V2":
            titles = [{
                "lastUnlock": s.last_unlock, "titleId": s.title_id, "titleVersion": "",
                "serviceConfigId": s.scid, "titleType": "LiveApp", "platform": "Durango",
                "name": s.name or self._title_name(ds, s.title_id), "earnedAchievements": s.earned,
                "currentGamerscore": s.gamerscore, "maxGamerscore": s.max_gamerscore,
            } for s in page]
        else:
            titles = [{
                "lastPlayed": s.last_unlock, "currentAchievements": s.earned,
                "currentGamerscore": s.gamerscore, "sequence": total - (start + i),
                "titleId": s.title_id, "titleType": 1, "platforms": [1],
                "name": s.name or self._title_name(ds, s.title_id),
                "totalAchievements": s.achievements,
                "totalGamerscore": s.max_gamerscore,
            } for i, s in enumerate(page)]
        return answers.from_dataset({"titles": titles, **_paging(ds, start + len(page), total)}, reasons,
                                    violations)

    def _title_name(self, ds: _Dataset, title: int) -> str:
        """A title's name from another dataset of the same xuid (its own locale first), or ""."""
        others = sorted((d for (x, _, _), d in self._datasets.items() if x == ds.xuid and d is not ds),
                        key=lambda d: d.locale != ds.locale)
        return next((d.title_stats(title).name for d in others if title in d.by_title
                     and d.title_stats(title).name), "")

    def apply_update(self, xuid: int, scid: str, body: dict, now: datetime) -> Answer:
        """POST /users/xuid({xuid})/achievements/{scid}/update (spec §5), on the stored progress.

        `body` is the schema-checked progressUpdate. Each achievement is changed in the V2
        dataset of every locale that has it (see `_progressed`); an unlock also unlocks the V1
        item with the same id in the achievement's title (unlocked, achieved flag bits,
        timeUnlocked = `now`). Answers: 200 (empty) when something changed, 304 (empty) when
        nothing did, 400 when userId or serviceConfigId contradicts the path, 404 (R9) when the
        xuid has no V2 dataset or an achievement of the body is not recorded; nothing is changed
        unless every achievement of the body is known.
        """
        xuid, scid = int(xuid), str(scid).lower()
        wrong = [(f"/{key}", f"{key} {body.get(key)!r} is not the {what} of the path {value}")
                 for key, same, what, value in (
                     ("userId", _as_int(body.get("userId")) == xuid, "xuid", xuid),
                     ("serviceConfigId", str(body.get("serviceConfigId", "")).lower() == scid, "scid", scid))
                 if not same]
        if wrong:
            found = [Violation("R8", "body", name, ERROR, message, "path-mismatch") for name, message in wrong]
            return answers.body_contradicts_path(found)
        v2 = [d for (x, s, _), d in self._datasets.items() if x == xuid and s == "V2"]
        if not v2:
            return self._not_recorded(xuid, "V2")
        planned = []
        for entry in body.get("achievements") or ():
            key = (scid, str(entry.get("id")))
            where = [(d, d.index[key]) for d in v2 if key in d.index]
            if not where:
                reason = f"R9: achievement {key[1]} of {scid} is not recorded for xuid {xuid} (V2, any locale)"
                return answers.diagnostic("R9", "not-recorded", "path", "achievementid", reason)
            planned.append((where, int(entry.get("percentComplete", 0))))
        stamp = wire_time(now)
        changed = False
        for where, percent in planned:
            for ds, pos in where:
                item = _progressed(ds.wire(pos), percent, stamp)
                if item is None:
                    continue
                ds.replace(pos, item)
                changed = True
                self.updated.add(int(xuid))
                if item["progressState"] == "Achieved":
                    self._unlock_v1(xuid, ds.meta[pos].titles, _as_int(item.get("id")), stamp)
        return answers.updated(changed)

    def _unlock_v1(self, xuid: int, titles: tuple[int, ...], number: int | None, stamp: str) -> None:
        for (x, shape, _), ds in self._datasets.items():
            if x != xuid or shape != "V1":
                continue
            for pos in (ds.index[(t, number)] for t in titles if (t, number) in ds.index):
                item = ds.wire(pos)
                if item.get("unlocked") is True:
                    continue
                flags = item.get("flags")
                ds.replace(pos, dict(item, unlocked=True, unlockedOnline=True, timeUnlocked=stamp,
                                     flags=flags | V1_ACHIEVED | V1_ONLINE if isinstance(flags, int) else flags))
