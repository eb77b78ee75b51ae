"""The wire form of achievements: how the service writes times, ids and V1 flags, what the engine
reads from a wire item (its `_Meta`), and the forms items and pages take in an answer (R3
possibleOnly definitions, R6 rarity, R5 pagingInfo)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, NamedTuple

from ..bounds import int_text_ok
from ..model import NEVER
from .categories import category

ZERO_GUID = "00000000-0000-0000-0000-000000000000"

# V1 flag bits (Xbox 360 XACHIEVEMENT): type 1, show-unachieved, achieved online, achieved.
V1_TYPE, V1_SHOW, V1_ONLINE, V1_ACHIEVED = 0x1, 0x8, 0x10000, 0x20000

_TIME = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,7}))?Z\Z")
_NO_NUMBER = 1 << 70  # sorts after every numeric achievement id


def wire_time(value: Any) -> str | None:
    """An ISO time (string or datetime) in the wire form with 7 fractional digits, or None."""
    if isinstance(value, str):
        m = _TIME.match(value)
        if m:
            return f"{m[1]}.{(m[2] or '').ljust(7, '0')}Z"
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return value.strftime("%Y-%m-%dT%H:%M:%S") + f".{value.microsecond:06d}0Z"
    return None


def _time_key(value: Any) -> str:
    """A string that sorts in time order ("" when absent or malformed)."""
    t = wire_time(value)
    return t[:-1] if t else ""


def derived_scid(title_id: int) -> str:
    """The serviceConfigId used for a hand-written title without `scid`."""
    return f"{ZERO_GUID[:24]}{title_id:012x}"


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and int_text_ok(value):
        return int(value)
    return None  # not a number (a text of other digits, or longer than any value here can be)


class _Meta(NamedTuple):  # a tuple: built once per item, the cheapest immutable record
    ident: tuple  # (serviceConfigId, id) in V2, (titleId, id) in V1 (R1)
    titles: tuple[int, ...]  # title association ids (V2) or (titleId,) (V1)
    number: int  # numeric id for R4 Title
    category: int  # see categories.py
    unlocked_at: str  # time key of the unlock ("" when locked)
    ends_at: str | None  # time key of timeWindow.endDate (R4 EndingSoon)


def _wire_meta(item: dict, shape: str) -> _Meta:
    number = _as_int(item.get("id"))
    number = _NO_NUMBER if number is None else number
    if shape == "V1":
        unlocked = item.get("unlocked") is True
        tid = _as_int(item.get("titleId"))
        return _Meta(
            (tid, number),
            () if tid is None else (tid,),
            number,
            category(unlocked, False),
            _time_key(item.get("timeUnlocked")) if unlocked else "",
            None,
        )
    titles = tuple(
        t for t in (_as_int(ta.get("id")) for ta in item.get("titleAssociations") or () if isinstance(ta, dict))
        if t is not None
    )
    unlocked = item.get("progressState") == "Achieved"
    progression = item.get("progression") or {}
    window = item.get("timeWindow")
    challenge = str(item.get("achievementType", "")).lower() == "challenge"
    return _Meta(
        (str(item.get("serviceConfigId", "")).lower(), str(item.get("id"))),
        titles,
        number,
        category(unlocked, challenge),
        _time_key(progression.get("timeUnlocked")) if unlocked else "",
        (_time_key(window.get("endDate")) or None) if isinstance(window, dict) else None,
    )


def without_rarity(item: dict) -> dict:
    """The item as contracts 1 and 2 carry it (R6): no ``rarity``."""
    return {k: v for k, v in item.items() if k != "rarity"} if "rarity" in item else item


def definition(item: dict, shape: str) -> dict:
    """R3 possibleOnly: a copy of the item without the user's data (the item is not touched)."""
    out = dict(item)
    if shape == "V1":
        out.update(unlocked=False, unlockedOnline=False, timeUnlocked=NEVER)
        if isinstance(item.get("flags"), int):
            out["flags"] = item["flags"] & ~(V1_ACHIEVED | V1_ONLINE)
        return out
    out["progressState"] = "NotStarted"
    progression = item.get("progression")
    if isinstance(progression, dict):
        requirements = progression.get("requirements") or []
        out["progression"] = dict(
            progression,
            timeUnlocked=NEVER,
            requirements=[dict(r, current=None) if isinstance(r, dict) else r for r in requirements],
        )
    return out


def paging(shape: str, version: str | None, following: int, total: int) -> dict[str, Any]:
    """R5: pagingInfo (and the V1 top-level `version`) of a page that ends before `following`."""
    token = str(following) if following < total else None
    if shape == "V2":
        return {"pagingInfo": {"continuationToken": token, "totalRecords": total}}
    version = version or NEVER
    return {"pagingInfo": {"continuationToken": None if token is None else f"{token},{version}",
                           "totalRecords": total},
            "version": version}
