"""The catalogue: the titles and the achievement definitions every user shares (ids, texts per
locale, gamerscore, targets, secrecy, rarity, Challenge windows, icons), drawn from the seed.

Held column-wise (one list per field, indexed by the achievement's place in the catalogue) so a
million definitions cost a few lists, not a million objects."""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import accumulate

from ..engine import wire_time
from .spec import Spec
from .words import TITLE_FIRST, TITLE_SECOND, words

DAY = timedelta(days=1)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MICROSECOND = timedelta(microseconds=1)
HOUR = timedelta(hours=1)
SCORES = (5, 10, 15, 20, 25, 30, 40, 50, 75, 100)
_SCORE_WEIGHTS = tuple(accumulate((10, 25, 15, 15, 8, 8, 6, 6, 3, 4)))
TARGETS = (3, 5, 10, 20, 25, 50, 100, 250, 1000)
COUNTED_SHARE = 0.3  # achievements with a counter (a target above 1): progress can be shown
RARE_BELOW = 10.0  # percent: "Rare means under roughly 10%" (the spec); Common otherwise
UNSET_DAYS = 14  # a title younger than this has no rarity figures yet (Unset, 0)
SSL_ICONS_FROM = 2017  # titles released before then have the older http:// icon host
# Challenge windows, relative to now (share of Challenges, then what their window is):
ENDED, ENDING_SOON, RUNNING, UPCOMING = 0.25, 0.60, 0.80, 1.0  # cumulative shares
ENDING_SOON_DAYS = 7  # "ending next week": the window ends within this many days of now
_ROMAN = ("", "", " II", " III", " IV", " V", " VI", " VII", " VIII", " IX", " X")


@dataclass(frozen=True)
class Title:
    id: int
    name: str
    scid: str  # its serviceConfigId (V2 titles)
    shape: str  # "V2": an Xbox One / Series title; "V1": an Xbox 360 title
    released: datetime
    first: int  # the place of its first achievement in the catalogue's columns
    count: int


class Catalogue:
    """Titles (in dataset order: the most recently released first) and their achievements.
    Times are also kept as microseconds since 1970 (``*_us``), the form the users' draws use."""

    def __init__(self, spec: Spec) -> None:
        rng = random.Random(f"xblreplay-synth/{spec.seed}/catalogue")
        self.now = now = spec.instant
        self.now_us = micros(now)
        self.titles = _titles(spec, rng)
        total = spec.achievements
        self.title_of: list[int] = []
        self.number: list[int] = []
        self.rarity: list[dict] = []
        for t, title in enumerate(self.titles):
            self.title_of += [t] * title.count
            self.number += range(1, title.count + 1)
            self.rarity += _rarities(rng, title.count, now - title.released < UNSET_DAYS * DAY)
        self.gamerscore = rng.choices(SCORES, cum_weights=_SCORE_WEIGHTS, k=total)
        self.target = [rng.choice(TARGETS) if rng.random() < COUNTED_SHARE else 1 for _ in range(total)]
        self.task = rng.choices(range(5), k=total)  # which (counted or single) description
        self.secret = [False] * total
        for n in rng.sample(range(total), round(spec.secret * total)):
            self.secret[n] = True
        self.window: list[tuple[datetime, datetime] | None] = [None] * total
        v2 = [n for n, t in enumerate(self.title_of) if self.titles[t].shape == "V2"]
        for n in sorted(rng.sample(v2, round(spec.challenges * len(v2)))):
            self.window[n] = _window(rng, now)
            self.gamerscore[n] = 0  # Challenges award no gamerscore (XSAPI)
        self.windows = [n for n, w in enumerate(self.window) if w is not None]
        self.window_text: list[dict | None] = [None] * total
        for n in self.windows:
            start, end = self.window[n]
            self.window_text[n] = {"start": wire_time(start), "end": wire_time(end)}
        self.icon = _icons(rng, self.titles)
        self.texts = {locale: _texts(self, locale) for locale in spec.locales}


def micros(when: datetime) -> int:
    """``when`` as whole microseconds since 1970 (exact, unlike a float timestamp)."""
    return (when - EPOCH) // MICROSECOND


def _rarities(rng: random.Random, count: int, unset: bool) -> list[dict]:
    """A title's rarity figures: Unset for a title too young to have any, else a share of
    players from 0 to 100 % (most achievements common, about a quarter rare)."""
    if unset:
        return [{"currentCategory": "Unset", "currentPercentage": 0} for _ in range(count)]
    made = []
    for _ in range(count):
        percent = round(100 * rng.random() ** 1.7, 2)
        made.append({"currentCategory": "Rare" if percent < RARE_BELOW else "Common", "currentPercentage": percent})
    return made


def _titles(spec: Spec, rng: random.Random) -> list[Title]:
    m = spec.titles
    v1 = round(spec.v1_titles * m)
    if m >= 2 and 0 < spec.v1_titles < 1:
        v1 = min(max(v1, 1), m - 1)  # some of each shape, however the share rounds
    v1_places = set(rng.sample(range(m), v1))
    # Every title has at least one achievement; the rest are spread by weights from 0.5 to 1.5.
    weights = [0.5 + rng.random() for _ in range(m)]
    spare, scale = spec.achievements - m, (spec.achievements - m) / sum(weights)
    shares = [int(w * scale) for w in weights]
    by_remainder = sorted(range(m), key=lambda t: (shares[t] - weights[t] * scale, t))
    for t in by_remainder[:spare - sum(shares)]:
        shares[t] += 1
    ids: set[int] = set()
    names: dict[str, int] = {}
    made = []
    for t in range(m):
        shape = "V1" if t in v1_places else "V2"
        low, high = (0x41000000, 0x59000000) if shape == "V1" else (0x10000000, 0x7FFFFFFF)
        title_id = rng.randrange(low, high)
        while title_id in ids:
            title_id = rng.randrange(low, high)
        ids.add(title_id)
        days = rng.randrange(365 * 13, 365 * 21) if shape == "V1" else rng.randrange(3, 365 * 10)
        name = f"{rng.choice(TITLE_FIRST)} {rng.choice(TITLE_SECOND)}"
        names[name] = sequel = names.get(name, 0) + 1
        scid = "%08x-%04x-4%03x-%04x-%012x" % (rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(12),
                                               0x8000 | rng.getrandbits(14), rng.getrandbits(48))
        made.append((spec.instant - days * DAY - rng.randrange(24) * HOUR, title_id,
                     name if sequel == 1 else f"{name} {sequel}", scid, shape, shares[t] + 1))
    made.sort(key=lambda x: (x[0], x[1]), reverse=True)
    titles, first = [], 0
    for released, title_id, name, scid, shape, count in made:
        titles.append(Title(title_id, name, scid, shape, released, first, count))
        first += count
    return titles


def _window(rng: random.Random, now: datetime) -> tuple[datetime, datetime]:
    """A Challenge's time window, on the hour: ended, ending within a week of now, running
    longer, or not started yet (shares above)."""
    kind = rng.random()
    length = rng.randrange(7 * 24, 30 * 24) * HOUR
    base = now.replace(minute=0, second=0, microsecond=0)
    if kind < ENDED:
        end = base - rng.randrange(24, 60 * 24) * HOUR
    elif kind < ENDING_SOON:
        end = base + rng.randrange(1, ENDING_SOON_DAYS * 24 + 1) * HOUR
    elif kind < RUNNING:
        end = base + rng.randrange((ENDING_SOON_DAYS + 1) * 24, 60 * 24) * HOUR
        length = max(length, end - base + rng.randrange(24, 20 * 24) * HOUR)  # started before now
    else:
        start = base + rng.randrange(24, 14 * 24) * HOUR
        return start, start + length
    return end - length, end


def _icons(rng: random.Random, titles: list[Title]) -> list[str | None]:
    """Each achievement's icon URL (none for Xbox 360 achievements: they carry an imageId); the
    service's image host, older titles on its http:// name."""
    made: list[str | None] = []
    for title in titles:
        if title.shape == "V1":
            made += [None] * title.count
            continue
        host = "https://images-eds-ssl" if title.released.year >= SSL_ICONS_FROM else "http://images-eds"
        tokens = base64.urlsafe_b64encode(rng.randbytes(30 * title.count)).decode()  # 40 characters each
        made += [f"{host}.xboxlive.com/image?url={tokens[k:k + 40]}" for k in range(0, 40 * title.count, 40)]
    return made


def _texts(cat: Catalogue, locale: str) -> tuple[list[str], list[str], list[str], str]:
    """(name, locked description, unlocked description) of every achievement in ``locale``, and
    the text a locked secret one shows. Equal texts are one string."""
    vocab, mark = words(locale)
    size = len(vocab.names)
    name_of: dict[tuple[int, int], str] = {}
    task_of: dict[tuple[int, int], tuple[str, str]] = {}
    names, locked, unlocked = [], [], []
    for title in cat.titles:
        offset = title.id  # each title starts the name list somewhere else
        for n in range(title.first, title.first + title.count):
            number = cat.number[n]
            key = ((offset + number - 1) % size, (number - 1) // size + 1)
            name = name_of.get(key)
            if name is None:
                tier = key[1]
                name = name_of[key] = vocab.names[key[0]] + (_ROMAN[tier] if tier < len(_ROMAN) else f" {tier}") + mark
            names.append(name)
            target, task = cat.target[n], cat.task[n]
            pair = task_of.get((target, task))
            if pair is None:
                todo, done = vocab.counted[task] if target > 1 else vocab.single[task]
                pair = task_of[(target, task)] = (todo.format(n=target) + mark, done.format(n=target) + mark)
            locked.append(pair[0])
            unlocked.append(pair[1])
    return names, locked, unlocked, vocab.secret + mark
