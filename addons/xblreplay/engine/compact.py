"""Hand-written datasets (a cassette's `datasets:`): their titles read and checked, and compact
achievement entries expanded into wire objects (V1 or V2) the first time a page shows them."""

from __future__ import annotations

from typing import Iterable, Iterator

from ..model import NEVER, TYPES
from .categories import category
from .wire import V1_ACHIEVED, V1_ONLINE, V1_SHOW, V1_TYPE, ZERO_GUID, _as_int, _Meta, derived_scid, wire_time


def hand_titles(titles: Iterable[dict], shape: str) -> Iterator[tuple[int, str, Iterator[dict | _Compact]]]:
    """Each hand-written title: its id, its name and its achievements in order, compact entries
    wrapped (a full wire object has `serviceConfigId` in V2, `flags` in V1); ValueError when one
    is malformed."""
    full_key = "serviceConfigId" if shape == "V2" else "flags"
    for title in titles:
        tid = _as_int(title.get("id"))
        if tid is None:
            raise ValueError(f"title id must be a non-negative integer, not {title.get('id')!r}")
        name = str(title.get("name", f"Title {tid}"))
        scid = str(title.get("scid") or derived_scid(tid)).lower()
        yield tid, name, _achievements(title.get("achievements") or (), tid, name, scid, full_key)


def _achievements(entries: Iterable, tid: int, name: str, scid: str, full_key: str) -> Iterator[dict | _Compact]:
    for seq, a in enumerate(entries):
        if not isinstance(a, dict):
            raise ValueError(f"title {tid}: an achievement must be a mapping, not {a!r}")
        yield a if full_key in a else _Compact(a, tid, name, scid, seq)


class _Compact:
    """A compact hand-written entry with its title context, expanded on first output."""

    __slots__ = ("entry", "title_id", "title_name", "scid", "sequence", "unlocked", "window")

    def __init__(self, entry: dict, title_id: int, title_name: str, scid: str, sequence: int) -> None:
        def bad(what: str) -> ValueError:
            return ValueError(f"title {title_id} achievement {entry.get('id')!r}: {what}")

        if _as_int(entry.get("id")) is None:
            raise bad("`id` must be a non-negative integer")
        if entry.get("type", "Persistent") not in TYPES:
            raise bad(f"`type` must be one of {', '.join(TYPES)}")
        self.unlocked = None
        if entry.get("unlocked") is not None:
            self.unlocked = wire_time(entry["unlocked"])
            if self.unlocked is None:
                raise bad("`unlocked` must be an ISO time")
            if self.unlocked == NEVER:
                self.unlocked = None
        progress = entry.get("progress")
        if progress is not None and not (
            isinstance(progress, list) and len(progress) == 2 and all(_as_int(p) is not None for p in progress)
        ):
            raise bad("`progress` must be [current, target]")
        self.window = None
        window = entry.get("window")
        if window is not None:
            if entry.get("type", "Challenge") != "Challenge":
                raise bad("a `window` needs type Challenge")
            bounds = (wire_time(window.get("start")), wire_time(window.get("end"))) if isinstance(window, dict) else ()
            if len(bounds) != 2 or None in bounds:
                raise bad("`window` must be {start, end} ISO times")
            self.window = {"startDate": bounds[0], "endDate": bounds[1]}
        self.entry, self.title_id, self.title_name, self.scid, self.sequence = (
            entry, title_id, title_name, scid, sequence)

    @property
    def challenge(self) -> bool:
        return self.entry.get("type", "Challenge" if self.window else "Persistent") == "Challenge"

    def meta(self, shape: str) -> _Meta:
        number = int(self.entry["id"])
        return _Meta(
            (self.scid, str(number)) if shape == "V2" else (self.title_id, number),
            (self.title_id,),
            number,
            category(self.unlocked is not None, self.challenge),
            self.unlocked[:-1] if self.unlocked else "",
            self.window["endDate"][:-1] if self.window else None,
        )

    def facts(self, shape: str) -> tuple[int, bool, str, str]:
        """(Gamerscore, InProgress, serviceConfigId, title name), without expanding the entry."""
        in_progress = self.unlocked is None and self.entry.get("progress") is not None
        return (int(self.entry.get("gamerscore", 0)), in_progress and shape == "V2",
                self.scid if shape == "V2" else "", self.title_name)

    def expand(self, shape: str) -> dict:
        return self._v2() if shape == "V2" else self._v1()

    def _v2(self) -> dict:
        e, number = self.entry, int(self.entry["id"])
        progress = e.get("progress")
        current, target = (str(progress[0]), str(progress[1])) if progress else (None, "1")
        if self.unlocked:
            state = "Achieved"
            if current is None:
                current = target
        else:
            state = "InProgress" if progress else "NotStarted"
        item = {
            "id": str(number),
            "serviceConfigId": self.scid,
            "name": str(e.get("name", f"Achievement {number}")),
            "titleAssociations": [{"name": self.title_name, "id": self.title_id}],
            "progressState": state,
            "progression": {
                "requirements": [{
                    "id": ZERO_GUID, "current": current, "target": target, "operationType": "Sum",
                    "valueType": "Integer", "ruleParticipationType": "Individual",
                }],
                "timeUnlocked": self.unlocked or NEVER,
            },
            "mediaAssets": [{"name": "Icon", "type": "Icon", "url": e.get("icon")}],
            "platforms": ["Durango"],
            "isSecret": bool(e.get("secret", False)),
            "description": str(e.get("description", "")),
            "lockedDescription": str(e.get("lockedDescription", e.get("description", ""))),
            "productId": f"{self.title_id:08x}-0000-0000-0000-{number:012x}",
            "achievementType": "Challenge" if self.challenge else "Persistent",
            "participationType": "Individual",
            "timeWindow": dict(self.window) if self.window else None,
            "rewards": [{
                "name": None, "description": None, "value": str(int(e.get("gamerscore", 0))),
                "type": "Gamerscore", "valueType": "Int", "mediaAsset": None,
            }],
            "estimatedTime": "00:00:00",
            "deeplink": None,
            "isRevoked": False,
        }
        if e.get("rarity") is not None:
            item["rarity"] = dict(e["rarity"])
        return item

    def _v1(self) -> dict:
        e, number = self.entry, int(self.entry["id"])
        unlocked = self.unlocked is not None
        item = {
            "id": number,
            "titleId": self.title_id,
            "name": str(e.get("name", f"Achievement {number}")),
            "sequence": self.sequence,
            "flags": V1_SHOW | V1_TYPE | (V1_ACHIEVED | V1_ONLINE if unlocked else 0),
            "unlockedOnline": unlocked,
            "unlocked": unlocked,
            "isSecret": bool(e.get("secret", False)),
            "platform": 15 if unlocked else 255,
            "gamerscore": int(e.get("gamerscore", 0)),
            "imageId": number,
            "description": str(e.get("description", "")),
            "lockedDescription": str(e.get("lockedDescription", e.get("description", ""))),
            "type": 1,
            "isRevoked": False,
            "timeUnlocked": self.unlocked or NEVER,
        }
        if e.get("rarity") is not None:
            item["rarity"] = dict(e["rarity"])
        return item
