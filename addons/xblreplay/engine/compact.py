"""Hand-written datasets (a cassette's `datasets:`): their titles read and checked, and their
compact achievement entries checked and held column-wise, one row per dataset position, expanded
into a wire object (V1 or V2) when a page shows one.

A title whose entries are all plain (the types a cassette's schema asks for, times already in the
wire form) is taken in whole, column by column; any other entry is read on its own (`row_of`),
which also says what is wrong with a malformed one. Rows of other items (recorded wire objects)
are blank placeholders, so that a row is a position.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from itertools import accumulate, chain, compress, repeat
from operator import eq, is_, is_not, itemgetter
from typing import Any, NamedTuple

from ..model import NEVER, TYPES
from .texts import Texts
from .wire import _as_int, derived_scid, wire_time

# Row flags: the category bits (categories.py), then which optional fields the entry had.
UNLOCKED, CHALLENGE, NAMED, LOCKED_TEXT, SECRET, PROGRESS, ICON = 1, 2, 4, 8, 16, 32, 64
_PLAIN_KEYS = frozenset(("id", "name", "description", "lockedDescription", "gamerscore", "type", "unlocked",
                         "progress", "secret", "window", "rarity", "icon"))
# Times already in the wire form (YYYY-MM-DDTHH:MM:SS.fffffffZ, 28 characters): where each
# punctuation mark stands, and the other places, which hold decimal digits.
_WIRE_TIME_MARKS = tuple((i, c) for i, c in enumerate("0000-00-00T00:00:00.0000000Z") if c != "0")
_WIRE_TIME_DIGITS = tuple(i for i, c in enumerate("0000-00-00T00:00:00.0000000Z") if c == "0")
_GAP = object()  # an absent key (None may be written)
_ALLOWED = {k: frozenset(types) | {type(_GAP)} for k, types in {
    "name": {str}, "description": {str}, "lockedDescription": {str}, "gamerscore": {int}, "type": {str},
    "unlocked": {str, type(None)}, "progress": {list, type(None)}, "secret": {bool}, "window": {dict, type(None)},
    "rarity": {dict, type(None)}, "icon": {str, type(None)}}.items()}
_GAP_TYPE = type(_GAP)
_KIND_VALUES = frozenset((_GAP, *TYPES))
_ID = itemgetter("id")
_CATEGORY_OF = bytes(f & (UNLOCKED | CHALLENGE) for f in range(256))  # flags -> category (categories.py)
_INT64 = 1 << 63


class Row(NamedTuple):
    """One compact entry, read and checked."""

    title: int  # index in the dataset's title table
    number: int
    seq: int  # its place in its title (V1 sequence)
    flags: int
    score: int
    progress: tuple[int, int] | None
    unlocked: str  # wire time, "" when locked
    window: tuple[str, str] | None  # wire times
    name: str
    description: str
    locked: str  # lockedDescription
    icon: Any
    rarity: dict | None


def read_title(title: dict, shape: str) -> tuple[int, str, str]:
    """(id, name, serviceConfigId) of a hand-written title; ValueError when its id is malformed."""
    tid = _as_int(title.get("id"))
    if tid is None:
        raise ValueError(f"title id must be a non-negative integer, not {title.get('id')!r}")
    name = str(title.get("name", f"Title {tid}"))
    return tid, name, str(title.get("scid") or derived_scid(tid)).lower()


class _Compact(NamedTuple):
    """A view of a compact entry held in a dataset's columns (nothing copied)."""

    rows: "HandColumns"
    row: int

    @staticmethod
    def read(entry: dict, title: int, tid: int, seq: int) -> Row:
        """A compact entry of title ``tid`` (row ``title`` of the title table) read as a row;
        ValueError naming what is malformed."""
        def bad(what: str) -> ValueError:
            return ValueError(f"title {tid} achievement {entry.get('id')!r}: {what}")

        number = _as_int(entry.get("id"))
        if number is None:
            raise bad("`id` must be a non-negative integer")
        if entry.get("type", "Persistent") not in TYPES:
            raise bad(f"`type` must be one of {', '.join(TYPES)}")
        unlocked = ""
        if entry.get("unlocked") is not None:
            unlocked = wire_time(entry["unlocked"]) or ""
            if not unlocked:
                raise bad("`unlocked` must be an ISO time")
            if unlocked == NEVER:
                unlocked = ""
        progress = entry.get("progress")
        if progress is not None:
            if not (isinstance(progress, list) and len(progress) == 2 and all(_as_int(p) is not None for p in progress)):
                raise bad("`progress` must be [current, target]")
            progress = (_as_int(progress[0]), _as_int(progress[1]))
        window = entry.get("window")
        if window is not None:
            if entry.get("type", "Challenge") != "Challenge":
                raise bad("a `window` needs type Challenge")
            bounds = (wire_time(window.get("start")), wire_time(window.get("end"))) if isinstance(window, dict) else ()
            if len(bounds) != 2 or None in bounds:
                raise bad("`window` must be {start, end} ISO times")
            window = bounds
        try:
            score = int(entry.get("gamerscore", 0))
        except (TypeError, ValueError):
            raise bad("`gamerscore` must be an integer") from None
        challenge = entry.get("type", "Challenge" if window else "Persistent") == "Challenge"
        flags = ((UNLOCKED if unlocked else 0) | (CHALLENGE if challenge else 0) | (NAMED if "name" in entry else 0)
                 | (LOCKED_TEXT if "lockedDescription" in entry else 0) | (SECRET if entry.get("secret", False) else 0)
                 | (PROGRESS if progress is not None else 0) | (ICON if isinstance(entry.get("icon"), str) else 0))
        rarity = entry.get("rarity")
        return Row(title, number, seq, flags, score, progress, unlocked, window,
                   str(entry["name"]) if "name" in entry else "", str(entry.get("description", "")),
                   str(entry.get("lockedDescription", "")), entry.get("icon"),
                   None if rarity is None else dict(rarity))


def _texts(values: list | None, types: set | None, m: int) -> list[str]:
    """A column of strings, absent values and null as "" (``types``: those of ``values``)."""
    if values is None:
        return [""] * m
    if types == {str}:
        return values
    return [v if type(v) is str else "" for v in values]


def _column(entries: list[dict], key: str) -> list:
    """The values of ``key`` in ``entries``, _GAP where it is absent (a key every entry has is
    read at C speed)."""
    try:
        return list(map(itemgetter(key), entries))
    except KeyError:
        return [e.get(key, _GAP) for e in entries]


def _where(values: list | None, kind: type) -> Iterator[tuple[int, Any]]:
    """(row, value) of the values of type ``kind`` in a column (a rare kind: found at C speed)."""
    if values is None:
        return iter(())
    rows = compress(range(len(values)), map(isinstance, values, repeat(kind)))
    return ((i, values[i]) for i in rows)


def _wire_times(times: list[str]) -> bool:
    """Whether every one of ``times`` is a time in the wire form (not NEVER): each 28 characters,
    checked column by column of their joined text (the run of them is long in a large title)."""
    if not times:
        return True
    if set(map(len, times)) != {28} or NEVER in times:
        return False
    text = "".join(times)
    return (all(text[i::28] == c * len(times) for i, c in _WIRE_TIME_MARKS)
            and "".join([text[i::28] for i in _WIRE_TIME_DIGITS]).isdecimal())


class HandColumns:
    """The compact rows of one dataset, column by column, and the table of its hand-written titles."""

    def __init__(self) -> None:
        self.title_ids = array("q")
        self.title_names = Texts()
        self.title_scids: list[str] = []
        self._title, self._number, self._seq, self._score = array("I"), array("q"), array("I"), array("q")
        self._flags = bytearray()
        self._progress = array("q")  # current, target per row
        self._unlocked, self._name, self._description, self._locked, self._icon = (
            Texts(), Texts(), Texts(), Texts(), Texts())
        self.windows: dict[int, tuple[str, str]] = {}  # row -> (start, end)
        self._odd: dict[int, dict[str, Any]] = {}  # row -> values the columns cannot hold

    def __len__(self) -> int:
        return len(self._flags)

    def add_title(self, tid: int, name: str, scid: str) -> int:
        self.title_ids.append(tid)
        self.title_names.extend([name])
        self.title_scids.append(scid)
        return len(self.title_ids) - 1

    def placeholder(self) -> None:
        """A blank row (the position holds another kind of item)."""
        self._append([Row(0, 0, 0, 0, 0, None, "", None, "", "", "", None, None)])

    def append(self, row: Row) -> None:
        self._append([row])

    def _append(self, rows: list[Row]) -> None:
        base = len(self)
        for i, row in enumerate(rows, base):
            odd = {k: v for k, v in (("number", row.number), ("score", row.score)) if not -_INT64 <= v < _INT64}
            if row.progress is not None and not all(-_INT64 <= p < _INT64 for p in row.progress):
                odd["progress"] = row.progress
            if row.icon is not None and not isinstance(row.icon, str):
                odd["icon"] = row.icon
            if row.rarity is not None:
                odd["rarity"] = row.rarity
            if odd:
                self._odd[i] = odd
            if row.window is not None:
                self.windows[i] = row.window
        fits = [r._replace(number=0 if "number" in self._odd.get(i, ()) else r.number,
                           score=0 if "score" in self._odd.get(i, ()) else r.score,
                           progress=None if "progress" in self._odd.get(i, ()) else r.progress)
                for i, r in enumerate(rows, base)]
        self._fill(fits)

    def _fill(self, rows: list[Row]) -> None:
        self._title.extend(r.title for r in rows)
        self._number.extend(r.number for r in rows)
        self._seq.extend(r.seq for r in rows)
        self._score.extend(r.score for r in rows)
        self._flags.extend(r.flags for r in rows)
        for r in rows:
            self._progress.extend(r.progress or (0, 0))
        self._unlocked.extend(r.unlocked for r in rows)
        self._name.extend(r.name for r in rows)
        self._description.extend(r.description for r in rows)
        self._locked.extend(r.locked for r in rows)
        self._icon.extend(r.icon if isinstance(r.icon, str) else "" for r in rows)

    def append_plain(self, titles: list[tuple[int, list]]) -> list[tuple[array, bytes]] | None:
        """The entries of each (title row, entries) appended, title after title, when they are all
        plain compact entries with ids distinct within their title: per title, its ids (in order)
        and its entries' categories (flag bits 0-1); None, and nothing appended, otherwise.

        The checks and columns run over the entries of every title at once: a large dataset has
        tens of thousands of small titles, and a step per title would cost more than the entries."""
        entries = list(chain.from_iterable([e for _, e in titles]))
        sizes = [len(e) for _, e in titles]
        m = len(entries)
        if not m:
            return [(array("q"), b"") for _ in titles]
        if set(map(type, entries)) != {dict}:
            return None
        keys = set().union(*entries)
        if not keys <= _PLAIN_KEYS:
            return None
        try:
            ids = list(map(_ID, entries))
            numbers = array("q", ids)
        except (KeyError, TypeError, OverflowError):
            return None
        ends = list(accumulate(sizes))
        spans = list(zip([0, *ends], ends))
        if (set(map(type, ids)) != {int} or min(numbers) < 0
                or any(len(set(ids[a:b])) != b - a for a, b in spans)):
            return None
        col = {k: _column(entries, k) for k in keys if k != "id"}
        types = {k: set(map(type, values)) for k, values in col.items()}
        if any(not found <= _ALLOWED[k] for k, found in types.items()):
            return None
        kinds = col.get("type")
        if kinds is not None and not set(kinds) <= _KIND_VALUES:
            return None
        unlocked = _texts(col.get("unlocked"), types.get("unlocked"), m)
        if not _wire_times(list(filter(None, unlocked))):
            return None
        windows = dict(_where(col.get("window"), dict))
        bounds = [w.get(b) for w in windows.values() for b in ("start", "end")]
        # The windows of many entries share a few times: each text read once.
        read = {t: wire_time(t) for t in set(bounds)}.__getitem__ if set(map(type, bounds)) <= {str} else wire_time
        windows = {i: (read(w.get("start")), read(w.get("end"))) for i, w in windows.items()}
        if any(None in pair for pair in windows.values()):
            return None
        if kinds is not None and any(kinds[i] not in (_GAP, "Challenge") for i in windows):
            return None
        lists = dict(_where(col.get("progress"), list))
        if any(len(p) != 2 or type(p[0]) is not int or type(p[1]) is not int for p in lists.values()):
            return None
        counts = array("q", bytes(16 * m))
        gamerscore = col.get("gamerscore")
        try:
            for i, (current, target) in lists.items():
                counts[2 * i], counts[2 * i + 1] = current, target
            if gamerscore is None:
                scores = array("q", bytes(8 * m))
            else:
                scores = array("q", gamerscore if _GAP_TYPE not in types["gamerscore"] else
                               [0 if s is _GAP else s for s in gamerscore])
        except OverflowError:
            return None
        # Each flag bit as one byte per row, 1 where set, shifted into place as one big integer.
        bits = [(map(bool, unlocked), UNLOCKED), (map(is_not, col.get("name", ()), repeat(_GAP)), NAMED),
                (map(is_not, col.get("lockedDescription", ()), repeat(_GAP)), LOCKED_TEXT),
                (map(is_, col.get("secret", ()), repeat(True)), SECRET),
                (map(isinstance, col.get("icon", ()), repeat(str)), ICON),
                (map(eq, kinds or (), repeat("Challenge")), CHALLENGE)]
        packed = sum(int.from_bytes(bytes(values), "little") * bit for values, bit in bits)
        flags = bytearray(packed.to_bytes(m, "little"))
        for i in lists:
            flags[i] |= PROGRESS
        for i in windows:
            if kinds is None or kinds[i] is _GAP:
                flags[i] |= CHALLENGE
        base = len(self)
        for i, r in _where(col.get("rarity"), dict):
            self._odd[base + i] = {"rarity": dict(r)}
        for i, pair in windows.items():
            self.windows[base + i] = pair
        self._title.extend(array("I", chain.from_iterable([repeat(t, n) for (t, _), n in zip(titles, sizes)])))
        self._number.extend(numbers)
        self._seq.extend(chain.from_iterable(map(range, sizes)))
        self._score.extend(scores)
        self._flags.extend(flags)
        self._progress.extend(counts)
        self._unlocked.extend(unlocked)
        for key, texts in (("name", self._name), ("description", self._description),
                           ("lockedDescription", self._locked), ("icon", self._icon)):
            texts.extend(_texts(col.get(key), types.get(key), m))
        categories = bytes(flags).translate(_CATEGORY_OF)
        return [(numbers[a:b], categories[a:b]) for a, b in spans]

    # -- reading a row

    def flags(self, row: int) -> int:
        return self._flags[row]

    def title_of(self, row: int) -> int:
        return self.title_ids[self._title[row]]

    def unlocked(self, row: int) -> str:
        return self._unlocked[row]

    def title_keys(self) -> list[tuple[int, int]]:
        """(title id, number) of every row (R4 Title)."""
        ids = self.title_ids or array("q", [0])  # placeholders name title row 0
        keys = [(ids[t], n) for t, n in zip(self._title, self._number)]
        for row, odd in self._odd.items():
            if "number" in odd:
                keys[row] = (keys[row][0], odd["number"])
        return keys

    def row(self, row: int) -> Row:
        # A text column holds "" where its flag is clear: only the texts the row has are read.
        flags = self._flags[row]
        odd = self._odd.get(row)
        if odd is None:
            return Row(self._title[row], self._number[row], self._seq[row], flags, self._score[row],
                       (self._progress[2 * row], self._progress[2 * row + 1]) if flags & PROGRESS else None,
                       self._unlocked[row] if flags & UNLOCKED else "", self.windows.get(row),
                       self._name[row] if flags & NAMED else "", self._description[row],
                       self._locked[row] if flags & LOCKED_TEXT else "", self._icon[row] if flags & ICON else None,
                       None)
        progress = odd.get("progress") or (
            (self._progress[2 * row], self._progress[2 * row + 1]) if flags & PROGRESS else None)
        return Row(self._title[row], odd.get("number", self._number[row]), self._seq[row], flags,
                   odd.get("score", self._score[row]), progress, self._unlocked[row], self.windows.get(row),
                   self._name[row], self._description[row], self._locked[row],
                   odd.get("icon", self._icon[row] if flags & ICON else None), odd.get("rarity"))
