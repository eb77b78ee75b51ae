"""A column of strings held as one joined text and the end offset of each, so that a million
names cost their characters and eight bytes each rather than a Python object each."""

from __future__ import annotations

from array import array
from itertools import accumulate
from typing import Iterable


class Texts:
    """Strings by row, appended in row order."""

    __slots__ = ("_ends", "_parts", "_text")

    def __init__(self) -> None:
        self._ends = array("q")  # end offset of each row in the joined text
        self._parts: list[str] = []  # appended since the text was last joined
        self._text = ""

    def __len__(self) -> int:
        return len(self._ends)

    def extend(self, values: Iterable[str]) -> None:
        """Appends one row per string (each must be a str)."""
        values = values if type(values) is list else list(values)
        base = self._ends[-1] if self._ends else 0
        text = "".join(values)
        if not text and len(values) > 1:  # a column no row has: every end is the previous one
            self._ends.extend(array("q", [base]) * len(values))
            return
        self._ends.extend(accumulate(map(len, values), initial=base))
        del self._ends[len(self._ends) - len(values) - 1]  # the initial offset is the previous end
        self._parts.append(text)

    def blank(self, n: int) -> None:
        """Appends ``n`` empty rows (a column no row of a run has: no list of empty strings made)."""
        self._ends.extend(array("q", [self._ends[-1] if self._ends else 0]) * n)

    def __getitem__(self, row: int) -> str:
        if self._parts:  # joined on first read: one copy, the parts freed
            self._text = "".join([self._text, *self._parts])
            self._parts = []
        ends = self._ends
        return self._text[ends[row - 1] if row else 0:ends[row]]
