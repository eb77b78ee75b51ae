"""An item array of JSON text laid out one element per line, every token kept as it stands.

A recorded body is kept as the service sent it (its key order, its number and string spellings);
whitespace between JSON tokens means nothing, so the body's ``achievements`` (or ``titles``)
array can be broken into lines at its element boundaries without touching a value. The text is
walked member by member: the C scanner of :mod:`json` skips a value (its result is thrown away,
numbers are never converted), and an element whose compact serialisation is the very text at its
place is passed over without scanning it at all (the common case: the service sends compact JSON).
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

# The members of a body whose elements each get their own line (a listing's items).
ITEM_KEYS = ("achievements", "titles")

# Values are scanned only to find where they end: numbers stay strings (no int() of a long one).
_SCANNER = json.JSONDecoder(parse_float=str, parse_int=str, parse_constant=str)
_WS = re.compile(r"[ \t\n\r]*")
# A JSON string, or a run of anything else that is not whitespace: the tokens of JSON text.
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[^" \t\n\r]+')


class NotLaidOut(ValueError):
    """The text is not the JSON object it was taken for: it stays on one line."""


def compact(text: str) -> str:
    """Valid JSON ``text`` without the whitespace between its tokens (each token as it is)."""
    return "".join(_TOKENS.findall(text))


def _skip(text: str, i: int) -> int:
    return _WS.match(text, i).end()


def _expect(text: str, i: int, char: str) -> None:
    if text[i:i + 1] != char:
        raise NotLaidOut(f"expected {char!r} at offset {i}")


def _scan(text: str, i: int) -> tuple[Any, int]:
    try:
        return _SCANNER.raw_decode(text, i)
    except (ValueError, RecursionError):
        raise NotLaidOut(f"no JSON value at offset {i}") from None


def _key(text: str, i: int) -> tuple[str, int]:
    """The member name at ``i`` and where its value starts."""
    _expect(text, i, '"')
    name, i = _scan(text, i)
    i = _skip(text, i)
    _expect(text, i, ":")
    return name, _skip(text, i + 1)


def _after_value(text: str, i: int) -> tuple[int, bool]:
    """After a member's value ending at ``i``: (where the next member starts, True), or (the
    offset of the object's ``}``, False)."""
    i = _skip(text, i)
    if text[i:i + 1] == ",":
        return _skip(text, i + 1), True
    _expect(text, i, "}")
    return i, False


def member_start(text: str, start: int, key: str) -> int:
    """Where the value of ``key`` starts in the object at ``text[start]``."""
    _expect(text, start, "{")
    i = _skip(text, start + 1)
    more = text[i:i + 1] != "}"
    while more:
        name, i = _key(text, i)
        if name == key:
            return i
        i, more = _after_value(text, _scan(text, i)[1])
    raise NotLaidOut(f"no member {key!r}")


def _compact_form(value: Any) -> str | None:
    """``value`` as compact JSON, for the self-delimiting kinds (a number's text could be a prefix)."""
    if not isinstance(value, (dict, list, str)):
        return None
    try:
        return orjson.dumps(value).decode("utf-8")
    except (orjson.JSONEncodeError, UnicodeDecodeError):
        return None


def _elements(text: str, i: int, values: list) -> tuple[list[tuple[int, int]], int]:
    """The (start, end) of each element of the array whose first element may start at ``i``, and
    the offset of its ``]``. ``values``: the array as parsed, to recognise elements without a scan."""
    spans: list[tuple[int, int]] = []
    i = _skip(text, i)
    if text[i:i + 1] == "]":
        return spans, i
    while True:
        known = _compact_form(values[len(spans)]) if len(spans) < len(values) else None
        end = i + len(known) if known is not None and text.startswith(known, i) else _scan(text, i)[1]
        spans.append((i, end))
        i = _skip(text, end)
        if text[i:i + 1] == "]":
            return spans, i
        _expect(text, i, ",")
        i = _skip(text, i + 1)


def lay_out(text: str, start: int, value: dict, pad: str, close: str) -> tuple[str, int]:
    """The JSON object at ``text[start]`` (parsed: ``value``) with the elements of its first item
    array on lines of their own (each after ``pad``; the array's ``]`` on a line after ``close``),
    and the offset just past the object. Every token stands as it was."""
    _expect(text, start, "{")
    i = _skip(text, start + 1)
    more = text[i:i + 1] != "}"
    parts, last = [], start
    while more:
        name, i = _key(text, i)
        items = value.get(name) if name in ITEM_KEYS and last == start else None
        if isinstance(items, list) and items and text[i:i + 1] == "[":
            spans, end = _elements(text, i + 1, items)
            parts += [text[last:i + 1], "\n", ",\n".join(pad + text[s:e] for s, e in spans), "\n", close]
            last, i = end, end + 1
        else:
            i = _scan(text, i)[1]
        i, more = _after_value(text, i)
    if last == start:
        raise NotLaidOut("no item array")
    parts.append(text[last:i + 1])
    return "".join(parts), i + 1
