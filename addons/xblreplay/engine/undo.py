"""The undo record of progress updates: each item an update replaced, as it was before the first
update that touched it, so that every update of a run can be dropped at once (a test harness
starting each test from the cassettes as loaded) without reloading a cassette."""

from __future__ import annotations

from .dataset import _Dataset


class Undo:
    """The items as loaded, of every position a progress update has replaced since the last
    :meth:`undo` (one per position: its first replacement keeps it; later ones change nothing
    here). Costs one reference per updated item; nothing when no update is made."""

    def __init__(self) -> None:
        self._before: dict[tuple[int, int], tuple[_Dataset, int, dict]] = {}

    def keep(self, ds: _Dataset, pos: int) -> None:
        """Called before the item at ``pos`` of ``ds`` is replaced by an update."""
        key = (id(ds), pos)
        if key not in self._before:
            self._before[key] = (ds, pos, ds.wire(pos))

    def undo(self) -> int:
        """Puts every replaced item back (``_Dataset.replace``: the caches it touched go, the
        change count moves on so no kept answer is served again); how many were put back."""
        kept = list(self._before.values())
        self._before.clear()
        for ds, pos, item in kept:
            ds.replace(pos, item)
        return len(kept)
