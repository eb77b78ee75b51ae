"""R1 identities of one dataset: the position of the item with a given identity.

Recorded (wire) items are few and kept in a dict. Hand-written titles hold most items, and a
title's ids usually run 1, 2, 3… at consecutive positions: such a block is kept as its first id,
its length and its first position (a few bytes for the whole title); other blocks as a dict.
"""

from __future__ import annotations

from array import array
from itertools import accumulate, chain
from operator import add

from .wire import _as_int


class Identities:
    def __init__(self, shape: str) -> None:
        self._v2 = shape == "V2"
        self._exact: dict[tuple, int] = {}  # identity -> position, of items added one by one
        self._keys: set = set()  # identity[0] (scid in V2, title id in V1) of those
        self._blocks: dict = {}  # identity[0] -> [(first id, count, first position) | {id: position}]

    def get(self, ident: tuple) -> int | None:
        pos = self._exact.get(ident)
        if pos is not None:
            return pos
        blocks = self._blocks.get(ident[0])
        if not blocks:
            return None
        number = ident[1]
        if self._v2:  # the text of a compact id is its number in decimal, without leading zeros
            number = _as_int(number)
            if number is None or str(number) != ident[1]:
                return None
        elif type(number) is not int:
            return None
        for block in blocks:
            if type(block) is dict:
                pos = block.get(number)
                if pos is not None:
                    return pos
            elif 0 <= number - block[0] < block[1]:
                return block[2] + number - block[0]
        return None

    def free(self, key) -> bool:
        """No identity with this first part is known yet."""
        return key not in self._blocks and key not in self._keys

    def add(self, ident: tuple, pos: int) -> None:
        """A new identity (not known yet) at ``pos``."""
        self._exact[ident] = pos
        self._keys.add(ident[0])

    def add_block(self, key, numbers: array, first: int) -> None:
        """The new distinct ids ``numbers`` under ``key``, at positions from ``first`` on."""
        m = len(numbers)
        if not m:
            return
        start = numbers[0]
        if numbers == array("q", range(start, start + m)):
            block = (start, m, first)
        else:
            block = dict(zip(numbers, range(first, first + m)))
        self._blocks.setdefault(key, []).append(block)

    def add_run(self, keys: list, numbers: array, sizes: list[int], first: int) -> None:
        """:meth:`add_block` of each key in turn, its ``sizes[i]`` ids the next ones of ``numbers``.
        When every title's ids run on by one (the common case), that is seen in one comparison
        over the whole run rather than one per title."""
        starts = list(accumulate(sizes, initial=0))
        titles = [(key, a, n) for key, a, n in zip(keys, starts, sizes) if n]
        heads = list(map(numbers.__getitem__, [a for _, a, _ in titles]))
        try:
            counted = array("q", chain.from_iterable(map(range, heads, map(add, heads, [n for _, _, n in titles]))))
        except OverflowError:
            counted = None
        if counted != numbers:
            for key, a, n in titles:
                self.add_block(key, numbers[a:a + n], first + a)
            return
        blocks = self._blocks
        for (key, a, n), head in zip(titles, heads):
            blocks.setdefault(key, []).append((head, n, first + a))
