"""What the cassettes of a directory cover and how old it is: the engine's coverage rows (one per
xuid, shape, locale and title) and the exact interactions replay holds for other paths, each
judged against a maximum age."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..contract import Validator, split_url
from ..model import EP_LIST
from ..replay import Replayer, parse_now

_AGE = re.compile(r"(\d+(?:\.\d+)?)([smhdw])\Z")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
TITLE_COLUMNS = ("xuid", "shape", "locale", "title", "name", "known", "unlocked", "coverage", "origin",
                 "oldest", "newest", "stale", "why")
HELD_COLUMNS = ("endpoint", "method", "status", "language", "recorded", "stale", "url")


def parse_age(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` (a number and one unit); ValueError otherwise."""
    m = _AGE.match(text.strip().lower())
    if not m:
        raise ValueError(f"--max-age expects a number and a unit (s, m, h, d or w) such as 30d, got {text!r}")
    return timedelta(seconds=float(m[1]) * _UNITS[m[2]])


@dataclass(frozen=True, slots=True)
class Held:
    """A recorded exchange replay answers only as recorded (not a 200 listing page the datasets
    are built from): a title history, an achievement detail, an update, an error answer."""

    endpoint: str
    method: str
    url: str
    status: Any
    language: str
    recorded_at: str | None


def held(replayer: Replayer, validator: Validator) -> list[Held]:
    """The replayer's exact-interaction index, less the listing pages merged into datasets."""
    out = []
    for interaction in replayer.interactions.values():
        request, response = interaction["request"], interaction["response"]
        method, url = str(request.get("method", "GET")), str(request["url"])
        endpoint = validator.endpoint(method, split_url(url)[0])
        if endpoint == EP_LIST and response.get("status") == 200 and isinstance(response.get("body"), dict):
            continue  # a dataset page: its title rows say what it covers and when
        language = {k.lower(): str(v) for k, v in (request.get("headers") or {}).items()}.get("accept-language", "")
        out.append(Held(endpoint, method, url, response.get("status"), language, interaction.get("recorded_at")))
    out.sort(key=lambda h: (h.endpoint, h.url, h.language))
    return out


class Coverage:
    """The report: the title rows, the held interactions, and which are older than ``max_age``
    at ``now`` (no maximum: none is stale). Hand-written and generated data carry no recording
    time and are never stale."""

    def __init__(self, replayer: Replayer, validator: Validator, now: datetime,
                 max_age: timedelta | None = None) -> None:
        self.titles = sorted(replayer.store.title_coverage(),
                             key=lambda r: (r.xuid, r.shape, r.locale, r.title is None, r.title or 0))
        self.held = held(replayer, validator)
        self.now, self.max_age, self.files = now, max_age, replayer.files

    def stale(self, recorded_at: str | None) -> bool:
        """Whether a recording made at ``recorded_at`` is older than the maximum age."""
        if self.max_age is None or not recorded_at:
            return False
        try:
            when = parse_now(recorded_at)
        except ValueError:  # a time the cassette schema let through but no clock reads: judged old
            return True
        return when is not None and self.now - when > self.max_age

    @property
    def stale_count(self) -> int:
        return sum(map(self.stale, [r.oldest for r in self.titles] + [h.recorded_at for h in self.held]))

    def title_cells(self) -> list[tuple[str, ...]]:
        """The title rows as the table shows them (TITLE_COLUMNS)."""
        return [(str(r.xuid), r.shape, r.locale, "(others)" if r.title is None else str(r.title), r.name,
                 str(r.known), str(r.unlocked), "complete" if r.complete else "partial", r.origin or "-",
                 r.oldest or "-", r.newest or "-", _flag(self.max_age, self.stale(r.oldest)),
                 "; ".join(f"{k}: {d}" for k, d in r.partial) or "-")
                for r in self.titles]

    def held_cells(self) -> list[tuple[str, ...]]:
        """The held interactions as the table shows them (HELD_COLUMNS)."""
        return [(h.endpoint, h.method, str(h.status), h.language or "-", h.recorded_at or "-",
                 _flag(self.max_age, self.stale(h.recorded_at)), h.url) for h in self.held]

    def summary(self) -> str:
        partial = sum(not r.complete for r in self.titles if r.title is not None)
        known = sum(r.title is not None for r in self.titles)
        line = (f"{self.files} cassette file(s): {known} title(s), {partial} partial; "
                f"{len(self.held)} exact interaction(s) held for other paths")
        if self.max_age is not None:
            line += f"; {self.stale_count} stale (older than {_age_text(self.max_age)} at {_iso(self.now)})"
        return line

    def as_json(self) -> dict[str, Any]:
        """The same facts for machines."""
        return {
            "files": self.files,
            "now": _iso(self.now),
            "max_age_seconds": None if self.max_age is None else self.max_age.total_seconds(),
            "stale": self.stale_count,
            "titles": [{
                "xuid": r.xuid, "shape": r.shape, "locale": r.locale, "title": r.title, "name": r.name,
                "known": r.known, "unlocked": r.unlocked, "coverage": "complete" if r.complete else "partial",
                "why": [{"reason": k, "detail": d} for k, d in r.partial],
                "origin": r.origin, "oldest": r.oldest, "newest": r.newest, "files": list(r.files),
                "stale": self.stale(r.oldest),
            } for r in self.titles],
            "interactions": [{
                "endpoint": h.endpoint, "method": h.method, "url": h.url, "status": h.status,
                "language": h.language, "recorded_at": h.recorded_at, "stale": self.stale(h.recorded_at),
            } for h in self.held],
        }


def _flag(max_age: timedelta | None, stale: bool) -> str:
    return "-" if max_age is None else ("STALE" if stale else "ok")


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _age_text(age: timedelta) -> str:
    seconds = age.total_seconds()
    for unit in "wdhm":
        if seconds >= _UNITS[unit] and seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{seconds:g}s"
