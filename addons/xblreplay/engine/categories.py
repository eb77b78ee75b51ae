"""Item categories: the four kinds of achievement the listing filters tell apart (R3 types x unlockedOnly).

A category is two bits, unlocked and Challenge. A dataset files every item's position under its
category, so a query reads only the position lists of the categories it selects.
"""

from __future__ import annotations

from array import array
from functools import lru_cache

UNLOCKED, CHALLENGE = 1, 2
ALL_CATEGORIES = (0, UNLOCKED, CHALLENGE, CHALLENGE | UNLOCKED)  # each is its own index


def category(unlocked: bool, challenge: bool) -> int:
    return (UNLOCKED if unlocked else 0) | (CHALLENGE if challenge else 0)


def per_category() -> list[array]:
    """One empty list of item positions (4 bytes each) per category, indexed by category."""
    return [array("I") for _ in ALL_CATEGORIES]


@lru_cache(maxsize=16)  # a handful of distinct arguments exist; asked once per query
def selected(types: frozenset[str] | None, unlocked_only: bool) -> tuple[int, ...]:
    """The categories of the R3 `types` (None: both), only the unlocked ones with `unlocked_only`."""
    return tuple(
        c for c in ALL_CATEGORIES
        if (types is None or ("Challenge" if c & CHALLENGE else "Persistent") in types)
        and (not unlocked_only or c & UNLOCKED)
    )
