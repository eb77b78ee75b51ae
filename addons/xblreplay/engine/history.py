"""Title history (GET /users/xuid({xuid})/history/titles): per-title aggregates of a dataset, the
titles the history lists in its order, and their V1/V2 rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

from ..model import NEVER
from .categories import UNLOCKED
from .wire import _as_int


@dataclass(frozen=True, slots=True)
class TitleStats:
    """Per-title aggregates of one dataset, for GET /users/xuid({xuid})/history/titles."""

    title_id: int
    name: str
    scid: str  # V2 serviceConfigId ("" in V1)
    achievements: int  # all achievements of the title
    earned: int  # achievements Achieved (V1: unlocked)
    progressed: bool  # some achievement InProgress
    gamerscore: int  # Gamerscore of the earned achievements
    max_gamerscore: int  # Gamerscore of all achievements of the title
    last_unlock: str  # wire time of the most recent unlock, NEVER when none


def title_stats(title: int, name: str, shape: str, facts: Iterable[tuple[int, bool, str, str, int, str]]) -> TitleStats:
    """The aggregates of `title` over the facts of its items: (Gamerscore, InProgress,
    serviceConfigId, title name, category, unlock time key); `name`: the hand-written title name
    ("" when none: the items name the title)."""
    count = earned = gamerscore = total = 0
    progressed, last, scid = False, "", ""
    for score, in_progress, item_scid, item_name, item_category, unlocked_at in facts:
        progressed |= in_progress
        scid, name = scid or item_scid, name or item_name
        count += 1
        total += score
        if item_category & UNLOCKED:
            earned += 1
            gamerscore += score
            last = max(last, unlocked_at)
    return TitleStats(title, name, scid, count, earned, progressed, gamerscore, total,
                      last + "Z" if last else NEVER)


def wire_facts(item: dict, shape: str, title: int) -> tuple[int, bool, str, str]:
    """(Gamerscore, InProgress, serviceConfigId, title name) of a wire item."""
    if shape == "V1":
        return _as_int(item.get("gamerscore")) or 0, False, "", ""
    score = sum(_as_int(r.get("value")) or 0 for r in item.get("rewards") or ()
                if isinstance(r, dict) and r.get("type") == "Gamerscore")
    name = next((str(ta.get("name") or "") for ta in item.get("titleAssociations") or ()
                 if isinstance(ta, dict) and _as_int(ta.get("id")) == title), "")
    return (score, item.get("progressState") == "InProgress", str(item.get("serviceConfigId", "")).lower(),
            name)


def listed(stats: Iterable[TitleStats]) -> list[TitleStats]:
    """The titles the history lists, of `stats` in title id order.

    The spec lists "titles in which the user unlocked or progressed achievements". Choice: a title
    is listed when at least one of its achievements is Achieved or InProgress (V1: unlocked); most
    recent lastUnlock first, ties by title id ascending. A title with progress but no unlock has
    lastUnlock 0001-01-01T00:00:00.0000000Z, so it comes after the others.
    """
    out = [s for s in stats if s.earned or s.progressed]
    out.sort(key=lambda s: s.last_unlock, reverse=True)  # stable: ties stay by title id
    return out


def rows(page: list[TitleStats], shape: str, start: int, total: int,
         name_of: Callable[[int], str]) -> list[dict[str, Any]]:
    """The wire rows of a history page starting at `start` of `total` listed titles; `name_of`
    names a title its own stats leave unnamed.

    V2 rows are UserTitle items (titleVersion "", titleType "LiveApp", platform "Durango").
    V1 rows: lastPlayed is the last unlock, titleType 1, platforms [1], and sequence numbers the
    listed titles from the oldest (1) to the most recent.
    """
    if shape == "V2":
        return [{
            "lastUnlock": s.last_unlock, "titleId": s.title_id, "titleVersion": "",
            "serviceConfigId": s.scid, "titleType": "LiveApp", "platform": "Durango",
            "name": s.name or name_of(s.title_id), "earnedAchievements": s.earned,
            "currentGamerscore": s.gamerscore, "maxGamerscore": s.max_gamerscore,
        } for s in page]
    return [{
        "lastPlayed": s.last_unlock, "currentAchievements": s.earned,
        "currentGamerscore": s.gamerscore, "sequence": total - (start + i),
        "titleId": s.title_id, "titleType": 1, "platforms": [1],
        "name": s.name or name_of(s.title_id),
        "totalAchievements": s.achievements,
        "totalGamerscore": s.max_gamerscore,
    } for i, s in enumerate(page)]
