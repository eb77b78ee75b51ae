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
from collections import deque
from itertools import accumulate, chain, repeat
from operator import eq, is_, itemgetter
from typing import Any, Iterable, NamedTuple

import orjson

from ..cassette.plain import GAP, proven
from ..model import NEVER, TYPES
from .texts import Texts
from .wire import _as_int, derived_scid, wire_time

# Row flags: the category bits (categories.py), then which optional fields the entry had.
UNLOCKED, CHALLENGE, NAMED, LOCKED_TEXT, SECRET, PROGRESS, ICON = 1, 2, 4, 8, 16, 32, 64
_CATEGORY_OF = bytes(f & (UNLOCKED | CHALLENGE) for f in range(256))  # flags -> category (categories.py)
_INT64 = 1 << 63
_BLANK = {GAP: "", None: ""}  # value -> its text, by .get(value, value): a null or absent text is ""
_ZERO = {GAP: 0}  # likewise an absent gamerscore is 0
_CATEGORY = itemgetter("currentCategory")
_PERCENT = itemgetter("currentPercentage")


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


_new_row = tuple.__new__  # a Row from its fields without the keyword handling of Row(...)


def read_title(title: dict, shape: str) -> tuple[int, str, str]:
    """(id, name, serviceConfigId) of a hand-written title; ValueError when its id is malformed."""
    tid = _as_int(title.get("id"))
    if tid is None:
        raise ValueError(f"title id must be a non-negative integer, not {title.get('id')!r}")
    name = str(title.get("name", f"Title {tid}"))
    return tid, name, str(title.get("scid") or derived_scid(tid)).lower()


def read_titles(titles: Iterable[dict], shape: str) -> tuple[list[tuple[dict, tuple[int, str, str]]], ValueError | None]:
    """Each title with its :func:`read_title`, up to the first malformed one, and the ValueError
    that one raises (None: all read)."""
    read = []
    for title in titles:
        try:
            read.append((title, read_title(title, shape)))
        except ValueError as exc:
            return read, exc
    return read, None


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


def _marks(m: int, col: dict[str, list], places: dict[str, array], key: str) -> bytes:
    """One byte per row, 1 where column ``key`` has a value (nothing when no row has)."""
    if key not in col:
        return b""
    where = places.get(key)
    if where is None:
        return b"\x01" * m
    marks = bytearray(m)
    deque(map(marks.__setitem__, where, repeat(1)), maxlen=0)
    return marks


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
        # A plain entry's rarity by row: a code (0: none; else one, plus its category's index in
        # _rarity_names times two, plus one when the percentage was written as an integer) and
        # its percentage.
        self._rarity_code, self._rarity_pct = bytearray(), array("d")
        self._rarity_names: list[str] = []
        self._odd: dict[int, dict[str, Any]] = {}  # row -> values the columns cannot hold
        self._title_json: dict[int, tuple[bytes, bytes]] = {}  # title row -> its JSON texts, once asked

    def __len__(self) -> int:
        return len(self._flags)

    def add_titles(self, titles: list[tuple[int, str, str]]) -> int:
        """Title rows of each (id, name, scid), in order; the row of the first. The names go into
        their column at once (a dataset may have tens of thousands of titles)."""
        first = len(self.title_ids)
        self.title_ids.extend(array("q", [tid for tid, _, _ in titles]))
        self.title_names.extend([name for _, name, _ in titles])
        self.title_scids += [scid for _, _, scid in titles]
        return first

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
        self._rarity_code.extend(bytes(len(rows)))  # a row read on its own keeps its rarity beside
        self._rarity_pct.extend(array("d", bytes(8 * len(rows))))

    def append_plain(self, titles: list[tuple[int, list]]) -> tuple[array, bytes] | None:
        """The entries of each (title row, entries) appended, title after title, when they are all
        plain compact entries (:mod:`..cassette.plain`) with ids distinct within their title: the
        ids of the entries appended (in order) and their categories (flag bits 0-1, one byte an
        entry); None, and nothing appended, otherwise.

        The checks and columns run over the entries of every title at once: a large dataset has
        tens of thousands of small titles, and a step per title would cost more than the entries."""
        proof = proven([e for _, e in titles])
        if proof is None:
            return None
        # The proof's columns are let go of as they are read (the document still holds the values):
        # each is a list of eight bytes an entry, and the load's peak is while they are all held.
        ids, col, places = proof
        del proof
        sizes = list(map(len, [e for _, e in titles]))
        m = len(ids)
        ends = list(accumulate(sizes))
        if sum(map(len, map(set, map(ids.__getitem__, map(slice, [0, *ends[:-1]], ends))))) != m:
            return None  # an id twice in a title
        try:
            numbers = array("q", ids)
            del ids
            gamerscore = col.pop("gamerscore", None)
            scores = (array("q", bytes(8 * m)) if gamerscore is None else
                      array("q", map(_ZERO.get, gamerscore, gamerscore) if "gamerscore" in places else gamerscore))
            del gamerscore
            counts = array("q", bytes(16 * m))
            progress = col.pop("progress", None)
            for i in () if progress is None else places.get("progress", range(m)):
                counts[2 * i], counts[2 * i + 1] = progress[i]
        except OverflowError:
            return None
        kinds = col.pop("type", None)
        windows = {}
        if "window" in col:
            # The windows of many entries share a few times: each text read once.
            bounds = [(col["window"][i], i) for i in places.get("window", range(m))]
            read = {t: wire_time(t) for t in {t for w, _ in bounds for t in (w["start"], w["end"])}}
            if None in read.values():
                return None
            windows = {i: (read[w["start"]], read[w["end"]]) for w, i in bounds}
            del bounds, col["window"]
        unlocked = col.pop("unlocked", None)
        if unlocked is not None:
            unlocked = list(map(_BLANK.get, unlocked, unlocked))
        # Each flag bit as one byte per row, 1 where set, shifted into place as one big integer.
        bits = [(map(bool, unlocked or ()), UNLOCKED), (_marks(m, col, places, "name"), NAMED),
                (_marks(m, col, places, "lockedDescription"), LOCKED_TEXT),
                (map(is_, col.get("secret", ()), repeat(True)), SECRET),
                (map(isinstance, col.get("icon", ()), repeat(str)), ICON),
                (map(eq, kinds or (), repeat("Challenge")), CHALLENGE),
                (() if progress is None else _marks(m, {"progress": progress}, places, "progress"), PROGRESS)]
        packed = sum(int.from_bytes(bytes(values), "little") * bit for values, bit in bits)
        del bits, progress
        flags = bytearray(packed.to_bytes(m, "little"))
        for i in windows:
            if kinds is None or kinds[i] is GAP:
                flags[i] |= CHALLENGE
        del kinds
        base = len(self)
        self._rarity_columns(m, col.pop("rarity", None), places.get("rarity"))
        for i, pair in windows.items():
            self.windows[base + i] = pair
        self._title.extend(array("I", chain.from_iterable(map(repeat, [t for t, _ in titles], sizes))))
        self._number.extend(numbers)
        self._seq.extend(array("I", chain.from_iterable(map(range, sizes))))
        self._score.extend(scores)
        self._flags.extend(flags)
        self._progress.extend(counts)
        del scores, counts
        for key, texts in (("unlocked", self._unlocked), ("name", self._name), ("description", self._description),
                           ("lockedDescription", self._locked), ("icon", self._icon)):
            values = unlocked if key == "unlocked" else col.pop(key, None)
            if values is None:
                texts.blank(m)
            else:  # "" where a row has no text: absent, or a null icon
                texts.extend(values if key in ("name", "description", "lockedDescription") and key not in places
                             else list(map(_BLANK.get, values, values)))
            values = unlocked = None
        return numbers, bytes(flags).translate(_CATEGORY_OF)

    def _rarity_columns(self, m: int, rarity: list | None, where: array | None) -> None:
        """The rarity of ``m`` plain rows appended (``rarity``: each row's mapping, GAP where it
        has none; ``where``: the rows that have one, None for every row)."""
        codes, percents = bytearray(m), array("d", bytes(8 * m))
        if rarity is not None:
            found = rarity if where is None else list(map(rarity.__getitem__, where))
            names = self._rarity_names
            index = {name: n for n, name in enumerate(names)}
            for name in set(map(_CATEGORY, found)) - set(index):
                index[name] = len(names)
                names.append(name)
            values = list(map(_PERCENT, found))
            marks = bytes(1 + 2 * index[c] + (type(p) is int) for c, p in zip(map(_CATEGORY, found), values))
            if where is None:
                codes[:] = marks
                percents = array("d", values)
            else:
                deque(map(codes.__setitem__, where, marks), maxlen=0)
                deque(map(percents.__setitem__, where, values), maxlen=0)
        self._rarity_code.extend(codes)
        self._rarity_pct.extend(percents)

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
        plain = self.plain(row)
        if plain is not None:
            return _new_row(Row, (*plain, self.rarity(row)))
        flags = self._flags[row]
        odd = self._odd[row]
        progress = odd.get("progress") or (
            (self._progress[2 * row], self._progress[2 * row + 1]) if flags & PROGRESS else None)
        return Row(self._title[row], odd.get("number", self._number[row]), self._seq[row], flags,
                   odd.get("score", self._score[row]), progress, self._unlocked[row], self.windows.get(row),
                   self._name[row], self._description[row], self._locked[row],
                   odd.get("icon", self._icon[row] if flags & ICON else None), odd.get("rarity"))

    def plain(self, row: int) -> tuple | None:
        """The fields of ``row`` as a :class:`Row` has them, but its rarity (a plain tuple, as
        many a page reads), when its columns hold all of it; None for a row held beside them."""
        if row in self._odd:
            return None
        # A text column holds "" where its flag is clear: only the texts the row has are read.
        flags = self._flags[row]
        return (self._title[row], self._number[row], self._seq[row], flags, self._score[row],
                (self._progress[2 * row], self._progress[2 * row + 1]) if flags & PROGRESS else None,
                self._unlocked[row] if flags & UNLOCKED else "", self.windows.get(row),
                self._name[row] if flags & NAMED else "", self._description[row],
                self._locked[row] if flags & LOCKED_TEXT else "", self._icon[row] if flags & ICON else None)

    def rarity(self, row: int) -> dict | None:
        """The rarity of a plain row as the entry wrote it (None: it has none)."""
        code = self._rarity_code[row] - 1
        if code < 0:
            return None
        percent = self._rarity_pct[row]
        return {"currentCategory": self._rarity_names[code >> 1], "currentPercentage": int(percent) if code & 1 else percent}

    def rarity_json(self, row: int) -> bytes | None:
        """:meth:`rarity` as compact JSON, as orjson writes it."""
        rarity = self.rarity(row)
        return None if rarity is None else b'{"currentCategory":%s,"currentPercentage":%s}' % (
            orjson.dumps(rarity["currentCategory"]), orjson.dumps(rarity["currentPercentage"]))

    def title_json(self, title: int) -> tuple[bytes, bytes]:
        """(serviceConfigId, name) of title row ``title`` as JSON texts, written once: every item
        of a title repeats them. Kept as exact-size copies: orjson's bytes hold at least 4 KiB
        each, which a 1M dataset's titles would turn into 80 MB."""
        found = self._title_json.get(title)
        if found is None:
            found = self._title_json[title] = (bytes(memoryview(orjson.dumps(self.title_scids[title]))),
                                               bytes(memoryview(orjson.dumps(self.title_names[title]))))
        return found
