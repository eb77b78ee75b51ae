"""Plain compact achievement entries, proven column by column: entries the cassette schema's
compact rule accepts, in the form the engine holds without reading each one (integer ids, times
already in the wire form), found with a few passes at C speed over all entries of a dataset.

The proof gives the columns it read (:class:`Plain`), which are what a dataset is built from: the
schema check of a loaded cassette keeps the last proof, and the dataset build of the same entry
lists takes it (:func:`proven`) instead of reading a million entries again. Entries that are not
plain are not necessarily wrong: the compiled schema rules then judge them one by one.
"""

from __future__ import annotations

import functools
from array import array
import json
import re
from collections.abc import Callable, Sequence
from itertools import chain, compress, repeat
from operator import is_, is_not, itemgetter
from typing import Any, NamedTuple

from .. import DEFAULT_RULES_DIR
from ..model import NEVER

_NONE = type(None)
GAP = type("Gap", (), {"__slots__": (), "__repr__": lambda self: "GAP"})()  # an absent key (null may be written)
_ID = itemgetter("id")
_PAIR = itemgetter(0, 1)
_BOUNDS = itemgetter("start", "end")
_RARITY_KEYS = ("currentCategory", "currentPercentage")
_RARITY = itemgetter(*_RARITY_KEYS)
# The properties of a compact entry this proof knows; a schema with others is never proven plain.
_KNOWN = frozenset(("id", "name", "description", "lockedDescription", "gamerscore", "type", "unlocked",
                    "progress", "secret", "window", "rarity", "icon"))
_FRACTION = r"(\.[0-9]{1,7})?Z$"  # the end of the schema's isoTime pattern: 7 digits in the wire form


class Plain(NamedTuple):
    """The columns of plain entries: ``ids`` of every entry, and per other key present in any
    entry its value by entry (GAP where absent; a key no entry has is left out); ``places``: per
    key that some entry lacks, the places of the entries that have it."""

    ids: list[int]
    columns: dict[str, list]
    places: dict[str, array]


def present(values: list) -> array:
    """The places of a column that hold a value (four bytes each, not an int object each)."""
    return array("I", compress(range(len(values)), map(is_not, values, repeat(GAP))))


def _given(values: list) -> list:
    """The values of a column, without nulls."""
    return list(compress(values, map(is_not, values, repeat(None))))


def _at(values: list, places: array | None) -> list:
    """The values of a column at ``places`` (None: every value)."""
    return values if places is None else list(map(values.__getitem__, places))


def _column(entries: list[dict], key: str) -> tuple[list, bool]:
    """The values of ``key`` by entry, GAP where absent, and whether every entry has it (a key
    every entry has is read without a default, twice as fast)."""
    try:
        return list(map(itemgetter(key), entries)), True
    except KeyError:
        return list(map(dict.get, entries, repeat(key), repeat(GAP))), False


@functools.cache
def read_rules() -> dict[str, Any] | None:
    """What the schema's compact entry asks, read from rules/cassette.schema.json (None: a
    definition this proof does not mirror, so nothing is proven plain)."""
    defs = json.loads((DEFAULT_RULES_DIR / "cassette.schema.json").read_text(encoding="utf-8"))["$defs"]
    node = defs["compactAchievement"]
    props = node.get("properties", {})
    pattern = defs["isoTime"]["pattern"]
    if (set(props) != _KNOWN or node.get("required") != ["id"] or node.get("additionalProperties") is not False
            or not pattern.startswith("^") or not pattern.endswith(_FRACTION)):
        return None
    rarity = props["rarity"]["properties"]
    return {
        "id_min": props["id"]["anyOf"][0]["minimum"],
        "score_min": props["gamerscore"]["minimum"],
        "count_min": defs["count"]["minimum"],
        "types": frozenset(props["type"]["enum"]) | {GAP},
        "categories": frozenset(rarity["currentCategory"]["enum"]),
        "percent": (rarity["currentPercentage"]["minimum"], rarity["currentPercentage"]["maximum"]),
        # Times of exactly 28 characters, one after another in a joined text, each one the schema's.
        # Possessive: the matcher keeps no way back into each time matched, which would cost it
        # hundreds of bytes a time (333 MB over 400,000 times) and can only reject what is not one.
        "time": re.compile(pattern).search,
        "times": re.compile("(?:" + pattern[1:-len(_FRACTION)] + r"\.[0-9]{7}Z)*+"),
    }


def _types(values: Sequence, allowed: set) -> bool:
    return set(map(type, values)) <= allowed


def _ints(values: list, least: int) -> bool:
    return not values or (set(map(type, values)) == {int} and min(values) >= least)


def _times(values: list, rules: dict) -> bool:
    return not values or (set(map(type, values)) == {str} and set(map(len, values)) == {28}
                          and NEVER not in values and rules["times"].fullmatch("".join(values)) is not None)


def _pairs(values: list, keys: Callable, n: int = 2) -> list | None:
    """The values of ``keys`` of each mapping of ``values``, when each is a mapping of exactly them."""
    try:
        return list(map(keys, values)) if set(map(len, values)) <= {n} else None
    except (KeyError, TypeError):
        return None


def plain(lists: Sequence[list]) -> Plain | None:
    """The columns of the entries of ``lists`` when every one is plain, else None."""
    rules = read_rules()
    entries = list(chain.from_iterable(lists))
    if rules is None or not _types(entries, {dict}):
        return None
    keys = set().union(*entries)
    if not keys <= _KNOWN:
        return None
    try:
        ids = list(map(_ID, entries))
    except KeyError:
        return None
    if not _ints(ids, rules["id_min"]):
        return None
    columns, places = {}, {}
    for key in sorted(keys - {"id"}):
        columns[key], every = _column(entries, key)
        if not every:
            places[key] = present(columns[key])
    gap = type(GAP)
    for key, allowed in (("name", {str, gap}), ("description", {str, gap}), ("lockedDescription", {str, gap}),
                         ("icon", {str, _NONE, gap}), ("secret", {bool, gap})):
        if key in columns and not _types(columns[key], allowed):
            return None
    kinds = columns.get("type")
    if kinds is not None:
        found = _at(kinds, places.get("type"))
        if not (_types(found, {str}) and set(found) <= rules["types"]):
            return None
    if "gamerscore" in columns and not _ints(_at(columns["gamerscore"], places.get("gamerscore")), rules["score_min"]):
        return None
    if "unlocked" in columns and not _times(_given(_at(columns["unlocked"], places.get("unlocked"))), rules):
        return None
    if "progress" in columns:
        lists_ = _at(columns["progress"], places.get("progress"))
        if not _types(lists_, {list}):
            return None
        counts = _pairs(lists_, _PAIR)
        if counts is None or not _ints(list(chain.from_iterable(counts)), rules["count_min"]):
            return None
    if "window" in columns:
        rows = places.get("window", range(len(ids)))
        windows = _at(columns["window"], places.get("window"))
        bounds = _pairs(windows, _BOUNDS) if _types(windows, {dict}) else None
        times = set(chain.from_iterable(bounds or [(None,)]))  # many windows share a few times
        if bounds is None or not _types(times, {str}) or None in map(rules["time"], times):
            return None
        if kinds is not None and any(kinds[i] is not GAP and kinds[i] != "Challenge" for i in rows):
            return None  # the schema's dependentSchemas: an entry with a window is a Challenge
    if "rarity" in columns:
        found = _at(columns["rarity"], places.get("rarity"))
        pairs = _pairs(found, _RARITY) if _types(found, {dict}) else None
        low, high = rules["percent"]
        # in this key order, which is the order a page writes them in
        if pairs is None or set(map(tuple, found)) != {_RARITY_KEYS} or not all(type(c) is str and c in rules["categories"] and type(p) in (int, float) and low <= p <= high
                                    for c, p in pairs):
            return None
    return Plain(ids, columns, places)


_kept: list[tuple[list, Plain]] = []  # proofs of the last file loaded: (its non-empty lists, the proof)


def keep(proofs: list[tuple[list, Plain]]) -> None:
    """The proofs of a file's datasets, kept for :func:`proven` instead of those of the file before."""
    _kept[:] = [([x for x in lists if x], proof) for lists, proof in proofs]


def proven(lists: Sequence[list]) -> Plain | None:
    """:func:`plain` of ``lists``: a kept proof when it is of these very lists (then no longer
    kept), else found now."""
    full = [x for x in lists if x]
    for n, (kept, proof) in enumerate(_kept):
        if len(kept) == len(full) and all(map(is_, kept, full)):
            del _kept[n]
            return proof
    return plain(lists)
