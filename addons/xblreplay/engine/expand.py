"""A compact row in the forms the engine uses: its identity and filing (`_Meta`), its history
facts, and the wire object (V1 or V2) a page shows."""

from __future__ import annotations

from ..model import NEVER
from .compact import CHALLENGE, LOCKED_TEXT, NAMED, SECRET, UNLOCKED, HandColumns, Row
from .wire import V1_ACHIEVED, V1_ONLINE, V1_SHOW, V1_TYPE, ZERO_GUID, _Meta


def meta(cols: HandColumns, row: Row, shape: str) -> _Meta:
    tid = cols.title_ids[row.title]
    return _Meta(
        (cols.title_scids[row.title], str(row.number)) if shape == "V2" else (tid, row.number),
        (tid,),
        row.number,
        row.flags & (UNLOCKED | CHALLENGE),
        row.unlocked[:-1],
        row.window[1][:-1] if row.window else None,
    )


def facts(cols: HandColumns, pos: int, shape: str) -> tuple[int, bool, str, str, int, str]:
    """(Gamerscore, InProgress, serviceConfigId, title name, category, unlock time key) of the row
    at ``pos``, without expanding it."""
    row = cols.row(pos)
    in_progress = not row.unlocked and row.progress is not None
    return (row.score, in_progress and shape == "V2", cols.title_scids[row.title] if shape == "V2" else "",
            cols.title_names[row.title], row.flags & (UNLOCKED | CHALLENGE), row.unlocked[:-1])


def expand(cols: HandColumns, row: Row, shape: str) -> dict:
    return _v2(cols, row) if shape == "V2" else _v1(cols, row)


def _texts(row: Row) -> tuple[str, str]:
    """(name, lockedDescription)."""
    return (row.name if row.flags & NAMED else f"Achievement {row.number}",
            row.locked if row.flags & LOCKED_TEXT else row.description)


def _v2(cols: HandColumns, row: Row) -> dict:
    number, tid = row.number, cols.title_ids[row.title]
    progress = row.progress
    current, target = (str(progress[0]), str(progress[1])) if progress else (None, "1")
    if row.unlocked:
        state = "Achieved"
        if current is None:
            current = target
    else:
        state = "InProgress" if progress else "NotStarted"
    name, locked = _texts(row)
    item = {
        "id": str(number),
        "serviceConfigId": cols.title_scids[row.title],
        "name": name,
        "titleAssociations": [{"name": cols.title_names[row.title], "id": tid}],
        "progressState": state,
        "progression": {
            "requirements": [{
                "id": ZERO_GUID, "current": current, "target": target, "operationType": "Sum",
                "valueType": "Integer", "ruleParticipationType": "Individual",
            }],
            "timeUnlocked": row.unlocked or NEVER,
        },
        "mediaAssets": [{"name": "Icon", "type": "Icon", "url": row.icon}],
        "platforms": ["Durango"],
        "isSecret": bool(row.flags & SECRET),
        "description": row.description,
        "lockedDescription": locked,
        "productId": f"{tid:08x}-0000-0000-0000-{number:012x}",
        "achievementType": "Challenge" if row.flags & CHALLENGE else "Persistent",
        "participationType": "Individual",
        "timeWindow": {"startDate": row.window[0], "endDate": row.window[1]} if row.window else None,
        "rewards": [{
            "name": None, "description": None, "value": str(row.score),
            "type": "Gamerscore", "valueType": "Int", "mediaAsset": None,
        }],
        "estimatedTime": "00:00:00",
        "deeplink": None,
        "isRevoked": False,
    }
    if row.rarity is not None:
        item["rarity"] = dict(row.rarity)
    return item


def _v1(cols: HandColumns, row: Row) -> dict:
    number = row.number
    unlocked = bool(row.unlocked)
    name, locked = _texts(row)
    item = {
        "id": number,
        "titleId": cols.title_ids[row.title],
        "name": name,
        "sequence": row.seq,
        "flags": V1_SHOW | V1_TYPE | (V1_ACHIEVED | V1_ONLINE if unlocked else 0),
        "unlockedOnline": unlocked,
        "unlocked": unlocked,
        "isSecret": bool(row.flags & SECRET),
        "platform": 15 if unlocked else 255,
        "gamerscore": row.score,
        "imageId": number,
        "description": row.description,
        "lockedDescription": locked,
        "type": 1,
        "isRevoked": False,
        "timeUnlocked": row.unlocked or NEVER,
    }
    if row.rarity is not None:
        item["rarity"] = dict(row.rarity)
    return item
