"""R4 orders as ranks: for each position of a dataset, its place in the Title or UnlockTime order,
4 bytes a position."""

from __future__ import annotations

from array import array
from itertools import chain
from typing import Callable, Iterable

from .categories import CHALLENGE, UNLOCKED

NO_TITLE = 1 << 40  # sorts after every uint32 title id (R4 Title)


def rank(order: str, size: int, by_category: list[array], title_keys: Callable[[], list],
         unlock_key: Callable[[int], str]) -> array:
    """The rank of each of ``size`` positions in ``order`` ("Title" or "UnlockTime").

    Title: by (first title, numeric id), from ``title_keys()``. UnlockTime: the unlocked
    positions (``by_category``) most recent first by ``unlock_key`` (stable: ties keep dataset
    order), then the locked ones in dataset order.
    """
    if order == "Title":
        keys = title_keys()
        seq: Iterable[int] = sorted(range(size), key=keys.__getitem__)
    else:
        unlocked = sorted(chain(by_category[UNLOCKED], by_category[UNLOCKED | CHALLENGE]))
        unlocked.sort(key=unlock_key, reverse=True)
        seq = chain(unlocked, sorted(chain(by_category[0], by_category[CHALLENGE])))
    ranks = array("I", bytes(4 * size))
    for position, i in enumerate(seq):
        ranks[i] = position
    return ranks
