"""The coverage report of a dataset: one row per title with what is known of it (achievements,
unlocks), whether R2 proves it complete and why not, and where and when its items came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from .history import TitleStats
from .wire import _as_int, _wire_meta

RECORDED, HAND_WRITTEN = "recorded", "hand-written"


@dataclass(slots=True)
class _Origin:
    """Where one title's items came from: recorded pages (their recorded_at times) and the files
    of hand-written (or generated) datasets."""

    times: list[str] = field(default_factory=list)
    recorded: bool = False
    files: list[str] = field(default_factory=list)


class Origins:
    """Per title of one dataset, the recorded pages and hand-written files that gave it items.

    A recorded page is kept as it came (its items are the dataset's own objects, so this holds
    one list per page) and read only when a report asks: loading for the proxy pays nothing."""

    def __init__(self) -> None:
        self._titles: dict[int, _Origin] = {}
        self._pages: list[tuple[tuple[int, ...], list, str, str | None]] = []

    def page(self, title_ids: Iterable[int] | None, items: list, shape: str, recorded_at: str | None) -> None:
        """A recorded page: the titles it named (titleId) and its items, as recorded."""
        self._pages.append((tuple(title_ids or ()), items, shape, recorded_at))

    def hand(self, titles: Iterable[Any], source: str) -> None:
        """A hand-written dataset entry's titles (checked by the engine already), from `source`."""
        for title in titles:
            tid = _as_int(title.get("id")) if isinstance(title, dict) else None
            if tid is not None:
                files = self._titles.setdefault(tid, _Origin()).files
                if source not in files:
                    files.append(source)

    def of(self, title: int) -> _Origin:
        for title_ids, items, shape, recorded_at in self._pages:
            titles = set(title_ids)
            titles.update(t for item in items if isinstance(item, dict) for t in _wire_meta(item, shape).titles)
            for tid in titles:
                origin = self._titles.setdefault(tid, _Origin())
                origin.recorded = True
                if recorded_at:
                    origin.times.append(recorded_at)
        self._pages.clear()
        return self._titles.get(title) or _Origin()


@dataclass(frozen=True, slots=True)
class TitleCoverage:
    """One row of the coverage report. ``title`` None is the row of the user's titles never seen
    (present only when a title the cassettes do not name may exist, see Coverage.why)."""

    xuid: int
    shape: str
    locale: str
    title: int | None
    name: str
    known: int  # achievements the dataset holds for the title
    unlocked: int  # of those, Achieved (V1: unlocked)
    partial: tuple[tuple[str, str], ...]  # (reason, detail); empty: complete (R2)
    origin: str  # "recorded", "hand-written" or "recorded, hand-written"; "" when nothing is held
    oldest: str | None  # recorded_at of the oldest and newest recorded page with the title's items
    newest: str | None
    files: tuple[str, ...]  # the hand-written (or generated) cassette files it came from

    @property
    def complete(self) -> bool:
        return not self.partial


def title_rows(xuid: int, shape: str, locale: str, titles: Iterable[int], stats: Callable[[int], TitleStats],
               why: Callable[[int | None], list[tuple[str, str]]], origins: Origins) -> list[TitleCoverage]:
    """The report rows of one dataset: its `titles` in id order, then the row of titles never
    seen when `why(None)` says some may exist."""
    rows = []
    for title in sorted(titles):
        s, origin = stats(title), origins.of(title)
        kinds = ", ".join(k for k, on in ((RECORDED, origin.recorded), (HAND_WRITTEN, origin.files)) if on)
        times = sorted(origin.times)
        rows.append(TitleCoverage(xuid, shape, locale, title, s.name, s.achievements, s.earned,
                                  tuple(why(title)), kinds, times[0] if times else None,
                                  times[-1] if times else None, tuple(origin.files)))
    others = why(None)
    if others:
        rows.append(TitleCoverage(xuid, shape, locale, None, "", 0, 0, tuple(others), "", None, None, ()))
    return rows
