"""Progress updates (POST /users/xuid({xuid})/achievements/{scid}/update, spec §5): where each
achievement of a body (checked by the contract, its path fields included) is stored, and the
stored items changed."""

from __future__ import annotations

from typing import Callable, NamedTuple


from .dataset import _Dataset
from .wire import V1_ACHIEVED, V1_ONLINE, _as_int


class Step(NamedTuple):
    where: list[tuple[_Dataset, int]]  # each V2 dataset holding the achievement, and its position
    percent: int


def plan(v2: list[_Dataset], scid: str, body: dict) -> tuple[list[Step], str | None]:
    """The step of each achievement of the body, in the `v2` datasets of every locale; with the
    first achievement id none of them holds (then nothing may be changed)."""
    steps = []
    for entry in body.get("achievements") or ():
        key = (scid, str(entry.get("id")))
        where = [(d, pos) for d in v2 if (pos := d.position(key)) is not None]
        if not where:
            return [], key[1]
        steps.append(Step(where, int(entry.get("percentComplete", 0))))
    return steps, None


Keep = Callable[[_Dataset, int], None]


def apply(steps: list[Step], v1: list[_Dataset], stamp: str, keep: Keep = lambda ds, pos: None) -> bool:
    """Each step on its items (see `_progressed`); an unlock also unlocks the item with the same
    id in the achievement's titles of the `v1` datasets (unlocked, achieved flag bits,
    timeUnlocked = `stamp`). ``keep(ds, pos)`` is told of each item before it is replaced (the
    store's undo record). True when something changed."""
    changed = False
    for where, percent in steps:
        for ds, pos in where:
            item = _progressed(ds.wire(pos), percent, stamp)
            if item is None:
                continue
            keep(ds, pos)
            ds.replace(pos, item)
            changed = True
            if item["progressState"] == "Achieved":
                _unlock_v1(v1, ds.titles_of(pos), _as_int(item.get("id")), stamp, keep)
    return changed


def _progressed(item: dict, percent: int, stamp: str) -> dict | None:
    """A V2 item after a progressUpdate to `percent`, or None when nothing changes (304).

    100 unlocks: Achieved, timeUnlocked `stamp`, every requirement's current = its target.
    1-99: InProgress with the first requirement's current = target * percent / 100 rounded half
    up, only when that is above the stored current (an item without an integer target keeps
    no partial progress). An Achieved item never changes.
    """
    if item.get("progressState") == "Achieved":
        return None
    progression = item.get("progression") if isinstance(item.get("progression"), dict) else {}
    requirements = list(progression.get("requirements") or ())
    if percent >= 100:
        requirements = [dict(r, current=r.get("target")) if isinstance(r, dict) else r for r in requirements]
        return dict(item, progressState="Achieved",
                    progression=dict(progression, requirements=requirements, timeUnlocked=stamp))
    first = next((i for i, r in enumerate(requirements) if isinstance(r, dict)), None)
    target = None if first is None else _as_int(requirements[first].get("target"))
    if target is None:
        return None
    value = (target * percent + 50) // 100
    if value <= (_as_int(requirements[first].get("current")) or 0):
        return None
    requirements[first] = dict(requirements[first], current=str(value))
    return dict(item, progressState="InProgress", progression=dict(progression, requirements=requirements))


def _unlock_v1(v1: list[_Dataset], titles: tuple[int, ...], number: int | None, stamp: str, keep: Keep) -> None:
    for ds in v1:
        for pos in [p for t in titles if (p := ds.position((t, number))) is not None]:
            item = ds.wire(pos)
            if item.get("unlocked") is True:
                continue
            flags = item.get("flags")
            keep(ds, pos)
            ds.replace(pos, dict(item, unlocked=True, unlockedOnline=True, timeUnlocked=stamp,
                                 flags=flags | V1_ACHIEVED | V1_ONLINE if isinstance(flags, int) else flags))
