"""R7 verdicts of served items: per dataset and per form an item is served in, whether the
injected item check found it valid, and what it found in those that are not.

The forms are those of a listing or detail answer (``store.answer``): the item in full, without
rarity (contracts 1 and 2, R6), as a possibleOnly definition (R3), and as a definition without
rarity. An item is checked the first time a page shows it in a form; its verdicts are forgotten
when it changes (a merge replacing it, a progress update). A verdict costs one byte per item and
form; only the findings of invalid items are kept beside them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .wire import definition, without_rarity

FULL, DEFINITION = 0, 2  # a form: one of these, + 1 without the recorded rarity (bit 0)
_UNCHECKED, _VALID, _INVALID = 0, 1, 2

# (shape, wire items, each a dict or its JSON text as bytes) -> per item, (pointer inside the
# item, message) of each schema finding; [] when valid
ItemCheck = Callable[[str, list[Any]], list[list[tuple[str, str]]]]
Findings = tuple[tuple[str, str], ...]


def form(possible_only: bool, rarity: bool) -> int:
    """The form items take in an answer: a definition for possibleOnly (R3), with or without
    the recorded rarity (R6)."""
    return (DEFINITION if possible_only else FULL) + (0 if rarity else 1)


def shown(item: dict, in_form: int, shape: str) -> dict:
    """``item`` in the form ``in_form`` (a copy when that differs; the item is not touched)."""
    if in_form >= DEFINITION:
        item = definition(item, shape)
    return without_rarity(item) if in_form & 1 else item


class Verdicts:
    """The verdicts of one dataset's items, by position."""

    __slots__ = ("_marks", "_findings")

    def __init__(self) -> None:
        self._marks = [bytearray() for _ in range(4)]  # per form: _UNCHECKED / _VALID / _INVALID
        self._findings: dict[tuple[int, int], Findings] = {}  # (form, position) of invalid items

    def known(self, in_form: int, pos: int) -> Findings | None:
        """What the check found in the item at ``pos`` shown in ``in_form``; None: not checked yet."""
        marks = self._marks[in_form]
        mark = marks[pos] if pos < len(marks) else _UNCHECKED
        if mark == _VALID:
            return ()
        return self._findings[(in_form, pos)] if mark == _INVALID else None

    def note(self, in_form: int, pos: int, found: Findings) -> None:
        """The check's findings in the item at ``pos`` shown in ``in_form`` (() when valid)."""
        marks = self._marks[in_form]
        if pos >= len(marks):
            marks.extend(bytes(pos + 1 - len(marks)))
        if found:
            self._findings[(in_form, pos)] = found
        marks[pos] = _INVALID if found else _VALID

    def forget(self, pos: int) -> None:
        """The item at ``pos`` changed: it is checked again when it is next served."""
        for in_form, marks in enumerate(self._marks):
            if pos < len(marks):
                if marks[pos] == _INVALID:
                    del self._findings[(in_form, pos)]
                marks[pos] = _UNCHECKED
