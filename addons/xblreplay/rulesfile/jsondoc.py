"""JSON text from outside, bounded: :func:`load_json` reads a document no deeper than
``bounds.MAX_JSON_DEPTH`` levels, with no integer of more than ``bounds.MAX_INT_DIGITS`` digits and
no NaN or infinity, at the speed of ``json.loads``; what is refused is a :class:`Refused` with its
line.

json.loads recurses once per level and counts against the interpreter's recursion limit, so it
is run with the limit set just high enough for MAX_JSON_DEPTH levels above the caller's frames:
deeper text fails inside the parser as soon as it gets there, and the bound costs nothing on the
way. The frames json.loads itself needs are found by trial at the call (a few microseconds: two
tiny documents). An interpreter whose parser does not count against that limit (CPython 3.12 on)
gets its documents measured afterwards instead. The lock keeps two threads from interleaving the
change; json.loads holds the GIL, so no other thread runs Python code meanwhile.

Most documents are read by orjson instead, about twice as fast, when it gives the value json.loads
would: orjson reads an integer beyond 64 bits as a float, so text with a run of 19 digits or more
goes to json.loads; any text orjson refuses (NaN, lone surrogates, a BOM, too large a number)
goes to json.loads too, which reads or refuses it as before. orjson nests 1,024 levels, so the
depth is found from the text's brackets (:func:`_levels`) at C speed.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from typing import Any

import orjson

from ..bounds import MAX_INT_DIGITS, MAX_JSON_DEPTH, int_text_ok, too_deep
from .refused import NOT_FINITE, TOO_DEEP, Refused, int_reason

_LIMIT_LOCK = threading.Lock()
_extra = [3]  # frames json.loads adds above the caller's, as last found
_PROBE_OK = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
_PROBE_DEEP = b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)
# Any integer of more than MAX_INT_DIGITS digits is a run of that many digits plus one in the
# text: found at C speed by mapping every digit to "0" (and everything else to a space).
_DIGITS_TO_ZERO = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))
_LONG_RUN = b"0" * (MAX_INT_DIGITS + 1)
_CHUNK = 1 << 16  # small enough to stay in cache while it is translated and searched
_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')
# For orjson's reading: digits to "0" (a run of _WIDE of them may be an integer orjson cannot
# hold), brackets to "[" and "]", quotes kept, anything else a space.
_WIDE = b"0" * 19  # 18 digits always fit in 64 bits
_MARKS = bytes(48 if 48 <= b <= 57 else 91 if b in b"[{" else 93 if b in b"]}" else 34 if b == 34 else 32
               for b in range(256))
_MAX_PASSES = 16  # deeper text (rare) is measured on its value, in time linear in its size


class _LongInt(Exception):
    def __init__(self, text: str) -> None:
        self.text = text


class _Constant(Exception):
    def __init__(self, text: str) -> None:
        self.text = text


def _checked_int(text: str) -> int:
    if not int_text_ok(text):
        raise _LongInt(text)
    return int(text)


def _no_constant(text: str) -> float:
    """json.loads reads NaN and Infinity, which JSON does not have: refused."""
    raise _Constant(text)


def _frames() -> int:
    frame, n = sys._getframe(1), 0
    while frame is not None:
        n, frame = n + 1, frame.f_back
    return n


def _attempt(text: bytes, limit: int) -> Any:
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(limit)
    try:
        return json.loads(text, parse_constant=_no_constant)
    finally:
        sys.setrecursionlimit(old)


def _bounded_loads(text: bytes) -> tuple[Any, bool]:
    """(value, True) when parsed with the depth bound in force; (value, False) when the
    interpreter's parser cannot be bounded this way (the caller measures). RecursionError: deeper.
    The probes and the parse run at the same depth of the stack, so they see the same limit."""
    with _LIMIT_LOCK:
        base = _frames() + MAX_JSON_DEPTH
        for n, extra in enumerate((_extra[0], *range(1, 16))):
            try:
                _attempt(_PROBE_OK, base + extra)
            except RecursionError:
                continue  # too tight for MAX_JSON_DEPTH levels
            try:
                _attempt(_PROBE_DEEP, base + extra)
            except RecursionError:  # exactly MAX_JSON_DEPTH levels
                _extra[0] = extra
                return _attempt(text, base + extra), True
            if n:
                break  # the tightest limit that reads MAX_JSON_DEPTH levels reads more: no bound
        return json.loads(text, parse_constant=_no_constant), False


def _has_long_digit_run(text: bytes) -> bool:
    step = _CHUNK
    for start in range(0, len(text), step):
        if _LONG_RUN in text[start:start + step + MAX_INT_DIGITS].translate(_DIGITS_TO_ZERO):
            return True
    return False


def _marks(text: bytes) -> bytes | None:
    """The quotes and brackets of ``text`` with every escaped quote and backslash gone (None: a
    run of digits orjson may not read as json.loads does)."""
    if b"\\" in text:  # pairs read left to right, as a JSON string's escapes are
        text = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    parts, step, overlap = [], _CHUNK, len(_WIDE) - 1
    for start in range(0, len(text), step):
        marked = text[start:start + step + overlap].translate(_MARKS)
        if _WIDE in marked:
            return None
        parts.append(marked[:step].translate(None, b" 0"))
    return b"".join(parts)


def _levels(marks: bytes) -> int | None:
    """How deep the brackets of valid JSON text nest, from its :func:`_marks` (None: not found
    cheaply). When each string's two quotes are side by side, no string holds a bracket, and the
    rest is the nesting itself: each pass takes out the innermost pairs, one level."""
    if marks.count(b'""') * 2 != marks.count(b'"'):
        return None
    brackets, levels = marks.translate(None, b'"'), 0
    while brackets:
        if levels == _MAX_PASSES:
            return None
        brackets, levels = brackets.replace(b"[]", b""), levels + 1
    return levels


def _fast_read(text: bytes) -> tuple[Any, bool] | None:
    """orjson's value of ``text`` as for :func:`_read_json`; None: json.loads is to read it."""
    marks = _marks(text)
    if marks is None:
        return None
    levels = _levels(marks)
    del marks  # not held while orjson reads: its own form of the document is the load's peak
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if levels is not None and levels > MAX_JSON_DEPTH:
        raise RecursionError
    return value, levels is not None


def deep_offset(text: bytes) -> int | None:
    """Offset of the bracket that opens level MAX_JSON_DEPTH + 1 of JSON ``text`` (None: none)."""
    level = 0
    for m in _JSON_TOKENS.finditer(text):
        c = text[m.start()]
        if c in b"[{":
            level += 1
            if level > MAX_JSON_DEPTH:
                return m.start()
        elif c in b"]}":
            level -= 1
    return None


def _token_offset(text: bytes, token: str) -> int | None:
    """Offset of ``token`` standing as a value of its own in JSON ``text`` (not in a string)."""
    for m in re.finditer(rb"(?<![0-9.\"\w-])" + re.escape(token.encode()) + rb"(?![0-9\w])", text):
        return m.start()
    return None


def load_json(data: bytes, start: int = 0) -> Any:
    """The JSON value of ``data[start:]``, bounded (see the module's docstring). Raises ValueError
    when it is not JSON (:class:`Refused`, a ValueError too, for a bound, with its line in ``data``)."""
    text = data[start:] if start else data

    def refuse(offset: int | None, reason: str) -> Refused:
        return Refused(data.count(b"\n", 0, start + offset) + 1 if offset is not None else 0, reason)

    try:
        value, bounded = _read_json(text)
        if not bounded and too_deep(value):
            raise RecursionError
        return value
    except RecursionError:
        raise refuse(deep_offset(text), TOO_DEEP) from None
    except _LongInt as exc:
        digits = exc.text
        raise refuse(_token_offset(text, digits), int_reason(len(digits.lstrip("+-").lstrip("0")))) from None
    except _Constant as exc:
        raise refuse(_token_offset(text, exc.text), NOT_FINITE.format(exc.text)) from None


def _read_json(text: bytes) -> tuple[Any, bool]:
    """(value, whether its depth is known to be within the bound). RecursionError: too deep."""
    fast = _fast_read(text)
    if fast is not None:
        return fast
    if _has_long_digit_run(text):  # rare: digits in a string, or a refused integer
        return json.loads(text, parse_int=_checked_int, parse_constant=_no_constant), False
    try:
        return _bounded_loads(text)
    except RecursionError:
        if deep_offset(text) is not None:
            raise
        # The limit was tighter than the levels (frames the count above did not see): read it
        # with the interpreter's own limit and measure.
        return json.loads(text, parse_constant=_no_constant), False
