"""Spec: the knobs of a synthetic dataset, checked once, with their documented defaults."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

# The instant every time window is relative to unless told: fixed, so that the same arguments
# always give the same bytes (README, "Generating datasets").
DEFAULT_NOW = "2026-11-20T00:00:00Z"
DEFAULT_SEED = 1
FORMS = ("auto", "yaml", "json")
# auto: the JSON form when the output holds more compact entries than this (users x achievements
# x locales); block YAML up to it, which libyaml loads in about a second (then the parse cache).
JSON_FORM_ENTRIES = 10_000
MAX_ENTRIES = 50_000_000  # users x achievements x locales: beyond this a run would not fit in memory
MAX_USERS = 100_000
MAX_TITLES = 1_000_000
FIRST_XUID = 2533274900000001  # users are this xuid, the next one, ... (never the example cassette's)
_LOCALE = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")  # the cassette schema's locale pattern


class SpecError(ValueError):
    """A knob out of range: one line saying which and why."""


@dataclass(frozen=True)
class Spec:
    """What to generate. ``achievements`` is the size of each user's full listing: the catalogue
    of ``titles`` titles holds that many achievements in all, and every user has every title
    (so the output holds ``users x achievements`` entries per locale)."""

    users: int = 1
    titles: int = 10
    achievements: int = 500
    locales: tuple[str, ...] = ("en-US",)
    unlocked: float = 0.4  # share of each user's achievements that are unlocked
    challenges: float = 0.1  # share of the Xbox One titles' achievements that are Challenges
    secret: float = 0.05  # share of achievements that are secret
    v1_titles: float = 0.1  # share of titles that are Xbox 360 titles (the V1 shape)
    seed: int = DEFAULT_SEED
    now: str = DEFAULT_NOW
    form: str = "auto"
    instant: datetime = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, least, most in (("users", 1, MAX_USERS), ("titles", 1, MAX_TITLES), ("achievements", 1, None)):
            value = getattr(self, name)
            if type(value) is not int or value < least or (most is not None and value > most):
                bound = f"from {least} to {most:,}" if most else f"of at least {least}"
                raise SpecError(f"{name} must be an integer {bound}, got {value!r}")
        if self.achievements < self.titles:
            raise SpecError(f"achievements ({self.achievements}) must be at least titles ({self.titles}): "
                            "every title has at least one achievement")
        for name in ("unlocked", "challenges", "secret", "v1_titles"):
            value = getattr(self, name)
            if type(value) not in (int, float) or not 0 <= value <= 1:
                raise SpecError(f"{name} must be a fraction from 0 to 1, got {value!r}")
        locales = (self.locales,) if isinstance(self.locales, str) else tuple(self.locales)
        if not locales:
            raise SpecError("locales must name at least one locale, e.g. en-US")
        for locale in locales:
            if not isinstance(locale, str) or not _LOCALE.match(locale):
                raise SpecError(f"locale {locale!r} is not a language tag such as en-US or fr-FR")
        if len({x.lower() for x in locales}) != len(locales):
            raise SpecError(f"locales must differ, got {', '.join(locales)}")
        object.__setattr__(self, "locales", locales)
        if type(self.seed) is not int:
            raise SpecError(f"seed must be an integer, got {self.seed!r}")
        if self.form not in FORMS:
            raise SpecError(f"form must be one of {', '.join(FORMS)}, got {self.form!r}")
        if self.entries > MAX_ENTRIES:
            raise SpecError(f"users x achievements x locales is {self.entries:,}, more than {MAX_ENTRIES:,}")
        object.__setattr__(self, "instant", parse_instant(self.now))

    @property
    def entries(self) -> int:
        """The compact entries the output holds: one per user, achievement and locale."""
        return self.users * self.achievements * len(self.locales)

    @property
    def json_form(self) -> bool:
        """Whether the files are written in the JSON form (see ``JSON_FORM_ENTRIES``)."""
        return self.form == "json" or (self.form == "auto" and self.entries > JSON_FORM_ENTRIES)

    def xuids(self) -> list[int]:
        return [FIRST_XUID + n for n in range(self.users)]


def parse_instant(text: object) -> datetime:
    """``now``: an ISO time, UTC unless it says otherwise (``Z`` allowed)."""
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise SpecError(f"now must be an ISO time such as {DEFAULT_NOW}, got {text!r}") from None
    when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    if not datetime(1990, 1, 1, tzinfo=timezone.utc) <= when <= datetime(9000, 1, 1, tzinfo=timezone.utc):
        raise SpecError(f"now must be between 1990 and 9000, got {text!r}")
    return when.astimezone(timezone.utc)
