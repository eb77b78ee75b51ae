"""A plain reference implementation of the achievements listing (V2), written independently of
the dataset engine, used as the "real service" behind record-mode tests: filter with list
comprehensions, order with sorted(), page with slices. Rules: docs/RULES.md R3–R5."""

from __future__ import annotations

import json
import random
from urllib.parse import parse_qsl, urlsplit

NEVER = "0001-01-01T00:00:00.0000000Z"


def make_dataset(seed: int, titles: dict[int, int]) -> list[dict]:
    """Full V2 wire objects: titles {titleId: count}, ascending id within each title."""
    rng = random.Random(seed)
    items = []
    for tid, count in titles.items():
        scid = f"00000000-0000-4000-8000-{tid:012x}"
        for n in range(1, count + 1):
            unlocked = rng.random() < 0.4
            challenge = rng.random() < 0.15
            when = f"2026-{rng.randint(1, 9):02d}-{rng.randint(10, 28)}T{rng.randint(10, 23)}:00:00.{rng.randint(0, 9999999):07d}Z"
            items.append({
                "id": str(n), "serviceConfigId": scid, "name": f"Achievement {tid}-{n}",
                "titleAssociations": [{"name": f"Title {tid}", "id": tid}],
                "progressState": "Achieved" if unlocked else "NotStarted",
                "progression": {"requirements": [{"id": "00000000-0000-0000-0000-000000000000",
                                                  "current": "1" if unlocked else None, "target": "1",
                                                  "operationType": "Sum", "valueType": "Integer",
                                                  "ruleParticipationType": "Individual"}],
                                "timeUnlocked": when if unlocked else NEVER},
                "mediaAssets": [{"name": "icon.png", "type": "Icon", "url": "https://images-eds-ssl.xboxlive.com/image?url=a"}],
                "platforms": ["Durango"], "isSecret": False, "description": "Done.", "lockedDescription": "Locked.",
                "productId": "12345678-1234-1234-1234-123456789012",
                "achievementType": "Challenge" if challenge else "Persistent", "participationType": "Individual",
                "timeWindow": ({"startDate": "2026-01-01T00:00:00.0000000Z", "endDate": "2099-01-01T00:00:00.0000000Z"}
                               if challenge else None),
                "rewards": [{"name": None, "description": None, "value": str(rng.choice([5, 10, 20])),
                             "type": "Gamerscore", "valueType": "Int", "mediaAsset": None}],
                "estimatedTime": "00:00:00", "deeplink": None, "isRevoked": False,
            })
    return items


# A rule the reference can be told to break (``broken=``), so that diff mode can be shown to name
# it: R4 UnlockTime ordered oldest first instead of most recent first. None: every rule kept.
OLDEST_FIRST = "R4-unlocktime-oldest-first"


def answer(items: list[dict], url: str, broken: str | None = None) -> dict:
    """The service's answer to a V2 listing URL (a path with a query is enough); ``broken``
    names a rule to break (OLDEST_FIRST), None keeps them all."""
    q = {k.lower(): v for k, v in parse_qsl(urlsplit(url).query)}
    rows = list(enumerate(items))  # (dataset position, item)
    if "titleid" in q:
        wanted = {int(t) for t in q["titleid"].split(",")}
        rows = [r for r in rows if r[1]["titleAssociations"][0]["id"] in wanted]
    if "types" in q:
        kinds = {t.strip().lower() for t in q["types"].split(",")}
        rows = [r for r in rows if r[1]["achievementType"].lower() in kinds]
    if q.get("unlockedonly", "").lower() == "true":
        rows = [r for r in rows if r[1]["progressState"] == "Achieved"]
    order = q.get("orderby", "unordered").lower()
    if order == "title":
        rows = sorted(rows, key=lambda r: (r[1]["titleAssociations"][0]["id"], int(r[1]["id"]), r[0]))
    elif order == "unlocktime":
        done = sorted((r for r in rows if r[1]["progressState"] == "Achieved"),
                      key=lambda r: r[1]["progression"]["timeUnlocked"], reverse=broken != OLDEST_FIRST)
        rows = done + [r for r in rows if r[1]["progressState"] != "Achieved"]
    start = int(q.get("continuationtoken", q.get("skipitems", "0")))
    size = int(q.get("maxitems", "32"))
    page = rows[start:start + size]
    nxt = start + len(page)
    return {"achievements": [r[1] for r in page],
            "pagingInfo": {"continuationToken": str(nxt) if nxt < len(rows) else None,
                           "totalRecords": len(rows)}}


def handler(items: list[dict], extra_headers: dict[str, str] | None = None, broken: str | None = None):
    """An Upstream handler serving `items` (``broken``: see :func:`answer`)."""
    def serve(method, path, headers, body):
        return (200, {"Content-Type": "application/json", **(extra_headers or {})},
                json.dumps(answer(items, path, broken)).encode())
    return serve
