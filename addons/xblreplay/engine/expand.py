"""A compact row in the forms the engine uses: its identity and filing (`_Meta`), its history
facts, and the wire object (V1 or V2) a page shows, as a dict or written straight to its JSON
bytes (`encoded`: the bytes orjson writes for the dict, without building it)."""

from __future__ import annotations

import orjson

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


# The wire objects above, written as orjson writes them (compact, keys in the same order); the
# slots are JSON texts (%s) and integers (%d, %x). tests/test_encoded_rows.py compares the two
# for every kind of row.
_V2 = (b'{"id":"%d","serviceConfigId":%s,"name":%s,"titleAssociations":[{"name":%s,"id":%d}],'
       b'"progressState":%s,"progression":{"requirements":[{"id":"' + ZERO_GUID.encode() + b'",'
       b'"current":%s,"target":%s,"operationType":"Sum","valueType":"Integer","ruleParticipationType":"Individual"}],'
       b'"timeUnlocked":%s},"mediaAssets":[{"name":"Icon","type":"Icon","url":%s}],"platforms":["Durango"],'
       b'"isSecret":%s,"description":%s,"lockedDescription":%s,"productId":"%08x-0000-0000-0000-%012x",'
       b'"achievementType":%s,"participationType":"Individual","timeWindow":%s,"rewards":[{"name":null,'
       b'"description":null,"value":"%d","type":"Gamerscore","valueType":"Int","mediaAsset":null}],'
       b'"estimatedTime":"00:00:00","deeplink":null,"isRevoked":false%s}')
_V1 = (b'{"id":%d,"titleId":%d,"name":%s,"sequence":%d,"flags":%d,"unlockedOnline":%s,"unlocked":%s,'
       b'"isSecret":%s,"platform":%d,"gamerscore":%d,"imageId":%d,"description":%s,"lockedDescription":%s,'
       b'"type":1,"isRevoked":false,"timeUnlocked":%s%s}')
_BOOL = (b"false", b"true")
_NEVER = orjson.dumps(NEVER)
_dumps = orjson.dumps
_INT64 = 1 << 63


def encoded(cols: HandColumns, row: Row, shape: str, rarity: bool) -> bytes | None:
    """The bytes of ``expand(cols, row, shape)`` (without its rarity unless ``rarity``) as
    model.compact_json writes them; None for a row these templates do not cover (its recorded
    rarity kept, an icon that is not a text, a number beyond 64 bits, which a JSON reader may
    take for a float): expand it."""
    if ((rarity and row.rarity is not None) or not (row.icon is None or type(row.icon) is str)
            or not (0 <= row.number < _INT64 and -_INT64 <= row.score < _INT64)
            or (row.progress is not None and not all(-_INT64 <= p < _INT64 for p in row.progress))):
        return None
    return _written(cols, shape, *row[:12])


def encoded_at(cols: HandColumns, pos: int, shape: str, rarity: bool) -> bytes | None:
    """:func:`encoded` of the row at ``pos``: one its columns hold whole (64-bit numbers, a text
    icon, a rarity as the proof reads it) is written from its fields as read, with no :class:`Row`
    built."""
    plain = cols.plain(pos)
    if plain is None:
        return encoded(cols, cols.row(pos), shape, rarity)
    kept = cols.rarity_json(pos) if rarity else None
    return _written(cols, shape, *plain, tail=b"" if kept is None else b',"rarity":%s' % kept)


def _written(cols: HandColumns, shape: str, title: int, number: int, seq: int, flags: int, score: int,
             progress: tuple[int, int] | None, unlocked: str, window: tuple[str, str] | None, name: str,
             description: str, locked: str, icon: str | None, tail: bytes = b"") -> bytes:
    """The template filled with a row's fields (those of :class:`Row` but its rarity); ``tail``:
    the members written after the last (its rarity)."""
    if not flags & NAMED:
        name = f"Achievement {number}"
    if not flags & LOCKED_TEXT:
        locked = description
    if shape != "V2":
        done = bool(unlocked)
        return _V1 % (number, cols.title_ids[title], _dumps(name), seq,
                      V1_SHOW | V1_TYPE | (V1_ACHIEVED | V1_ONLINE if done else 0), _BOOL[done],
                      _BOOL[done], _BOOL[bool(flags & SECRET)], 15 if done else 255, score,
                      number, _dumps(description), _dumps(locked),
                      _dumps(unlocked) if done else _NEVER, tail)
    tid = cols.title_ids[title]
    scid, title_name = cols.title_json(title)
    current, target = (b'"%d"' % progress[0], b'"%d"' % progress[1]) if progress else (b"null", b'"1"')
    if unlocked:
        state = b'"Achieved"'
        if progress is None:
            current = target
    else:
        state = b'"InProgress"' if progress else b'"NotStarted"'
    return _V2 % (number, scid, _dumps(name), title_name,
                  tid, state, current, target, _dumps(unlocked) if unlocked else _NEVER,
                  _dumps(icon), _BOOL[bool(flags & SECRET)], _dumps(description), _dumps(locked),
                  tid, number, b'"Challenge"' if flags & CHALLENGE else b'"Persistent"',
                  b'{"startDate":%s,"endDate":%s}' % (_dumps(window[0]), _dumps(window[1])) if window else b"null",
                  score, tail)
