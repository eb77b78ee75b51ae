"""Bounded memo tables: what was worked out once about a request's parts (its reading, its header
lines, the written forms of its URL), kept for the next request that carries the same ones."""

from __future__ import annotations

from typing import Any


class Memo(dict):
    """A dict of at most ``limit`` entries, emptied whole when it is full.

    Emptying is one atomic step, so a table shared by the proxy's thread and another (the
    recorder's) needs no lock, and a hit costs one dict lookup: keeping the least recently used
    entries would cost bookkeeping on every request, for the sake of clients that cycle through
    more distinct requests than the table holds."""

    __slots__ = ("limit",)

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def put(self, key: Any, value: Any) -> Any:
        """``value`` kept under ``key``; returned."""
        if len(self) >= self.limit:
            self.clear()
        self[key] = value
        return value
