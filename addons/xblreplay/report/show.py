"""A dataset as a table: the achievements the engine answers for one user (a title, a locale, a
shape), page after page, one row each (title, id, name, state, unlock time, gamerscore, progress)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..contract import Validator
from ..engine.history import wire_facts
from ..model import NEVER
from ..replay import Replayer

COLUMNS = ("title", "id", "name", "state", "unlocked", "gamerscore", "progress")
CONTRACTS = {"V1": "1", "V2": "2"}  # the contract version asking for each shape, without rarity (R6)
PAGE = 1000  # items asked per page
MAX_PAGES = 100_000  # a bound on a listing that never ends (each page must move forward anyway)


class NothingToShow(Exception):
    """The engine has no answer to show: its reason, one line (R9, or an R2 refusal)."""


@dataclass
class Shown:
    """What `show` prints: which dataset, its rows, and the engine's notes (R2 gaps, R6 choices)."""

    heading: str
    rows: list[tuple[str, ...]]
    notes: list[str]


def default_shape(replayer: Replayer, xuid: int) -> str:
    """V2 when the user has a V2 dataset, else V1 (else V2, which the engine then says is missing)."""
    shapes = {info.shape for info in replayer.store.datasets() if info.xuid == xuid}
    return "V1" if shapes == {"V1"} else "V2"


def show(replayer: Replayer, validator: Validator, xuid: int, title: int | None = None,
         locale: str | None = None, shape: str | None = None, now: datetime | None = None) -> Shown:
    """The dataset of ``xuid`` as the engine answers a listing of it (every page, in dataset
    order), read through the contract's own request reading; NothingToShow when it refuses."""
    from ..cli import CLI_AUTH  # the placeholder Authorization of offline requests

    shape = shape or default_shape(replayer, xuid)
    headers = {"authorization": CLI_AUTH, "x-xbl-contract-version": CONTRACTS[shape]}
    if locale:
        headers["accept-language"] = locale
    base = f"https://achievements.xboxlive.com/users/xuid({xuid})/achievements?maxItems={PAGE}"
    if title is not None:
        base += f"&titleId={title}"
    now = now or datetime.now(timezone.utc)
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []
    token: str | None = None
    for _ in range(MAX_PAGES):
        check = validator.check_request("GET", base + (f"&continuationToken={token}" if token else ""), headers)
        if not check.ok or check.query is None:
            raise NothingToShow("; ".join(v.message for v in check.violations) or "the listing request is refused")
        answer = replayer.store.answer(check.query, now)
        if answer.status != 200:
            raise NothingToShow(answer.reason or f"HTTP {answer.status}")
        if answer.reason and answer.reason not in notes:
            notes.append(answer.reason)
        body = answer.body
        rows += [cells(item, shape) for item in body.get("achievements") or () if isinstance(item, dict)]
        token = (body.get("pagingInfo") or {}).get("continuationToken")
        if not token:
            break
    chosen = locale or next((i.locale for i in replayer.store.datasets() if i.xuid == xuid and i.shape == shape), "")
    heading = f"xuid {xuid} {shape} {chosen}" + (f" title {title}" if title is not None else " (every title)")
    return Shown(heading, rows, notes)


def cells(item: dict[str, Any], shape: str) -> tuple[str, ...]:
    """One wire item as the table shows it (COLUMNS)."""
    score = wire_facts(item, shape, 0)[0]
    if shape == "V1":
        unlocked = item.get("unlocked") is True
        when = str(item.get("timeUnlocked") or NEVER) if unlocked else NEVER
        return (str(item.get("titleId", "")), str(item.get("id", "")), str(item.get("name", "")),
                "Achieved" if unlocked else "NotStarted", "-" if when == NEVER else when, str(score), "-")
    progression = item.get("progression") if isinstance(item.get("progression"), dict) else {}
    when = str(progression.get("timeUnlocked") or NEVER)
    titles = [str(t.get("id")) for t in item.get("titleAssociations") or () if isinstance(t, dict)]
    return (",".join(titles), str(item.get("id", "")), str(item.get("name", "")), str(item.get("progressState", "")),
            "-" if when == NEVER else when, str(score), _progress(progression))


def _progress(progression: dict[str, Any]) -> str:
    """``current/target`` of the requirements that have a target (empty current: 0), "-" if none."""
    parts = [f"{r.get('current') or 0}/{r['target']}" for r in progression.get("requirements") or ()
             if isinstance(r, dict) and r.get("target") not in (None, "")]
    return ", ".join(parts) or "-"
