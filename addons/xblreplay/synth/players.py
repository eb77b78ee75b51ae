"""One synthetic user: which achievements of the catalogue they unlocked and when, and how far
they got with the others; and that user's compact cassette entries in a locale.

Exactly ``round(unlocked x achievements)`` achievements are unlocked (fewer only when not enough
can have been: a Challenge not started yet cannot be), drawn with weights that follow rarity, so
rare achievements are unlocked less often. Unlock times fall between the user's first play of
the title and ``now``; a Challenge's inside its window."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime

from ..engine import wire_time
from .catalogue import Catalogue, Title
from .spec import Spec

IN_PROGRESS_SHARE = 0.6  # locked achievements with a counter that show progress (InProgress)


class Player:
    def __init__(self, spec: Spec, cat: Catalogue, index: int) -> None:
        rng = random.Random(f"xblreplay-synth/{spec.seed}/user/{index}")
        self.cat = cat
        now = cat.now
        # When the user first played each title: somewhere in its first 80 % of life until now.
        started = [t.released + (now - t.released) * (0.8 * rng.random()) for t in cat.titles]
        total = len(cat.number)
        spans: list[tuple[datetime, datetime] | None] = []
        for n in range(total):
            window, begin = cat.window[n], started[cat.title_of[n]]
            low, high = (begin, now) if window is None else (max(window[0], begin), min(window[1], now))
            spans.append((low, high) if low < high else None)
        # Weighted draw without replacement (Efraimidis-Spirakis): key u ** (1 / weight).
        keys = [rng.random() ** (1.0 / (cat.rarity[n]["currentPercentage"] + 1.0)) for n in range(total)]
        eligible = sorted((n for n in range(total) if spans[n] is not None), key=lambda n: (-keys[n], n))
        self.unlocked: list[str | None] = [None] * total
        for n in sorted(eligible[:round(spec.unlocked * total)]):
            low, high = spans[n]
            self.unlocked[n] = wire_time(low + (high - low) * rng.random())
        self.current: list[int | None] = [None] * total  # progress of a locked achievement with a counter
        for n in range(total):
            target = cat.target[n]
            if (self.unlocked[n] is None and target > 1 and cat.titles[cat.title_of[n]].shape == "V2"
                    and rng.random() < IN_PROGRESS_SHARE):
                self.current[n] = rng.randrange(1, target)

    def titles(self, locale: str, shape: str, advance: Callable[[int], None]) -> list[dict]:
        """The cassette titles of ``shape`` with this user's compact entries in ``locale``."""
        cat = self.cat
        names, locked, unlocked_texts, secret_text = cat.texts[locale]
        made = []
        for title in cat.titles:
            if title.shape != shape:
                continue
            entries = []
            for n in range(title.first, title.first + title.count):
                entries.append(self._entry(n, title, names[n], locked[n], unlocked_texts[n], secret_text))
            made.append({"id": title.id, "name": title.name, "scid": title.scid, "achievements": entries}
                        if shape == "V2" else {"id": title.id, "name": title.name, "achievements": entries})
            advance(title.count)
        return made

    def _entry(self, n: int, title: Title, name: str, todo: str, done: str, secret_text: str) -> dict:
        cat = self.cat
        unlocked = self.unlocked[n]
        secret = cat.secret[n]
        # What the service shows of a secret achievement while it is locked: the same text as
        # description and lockedDescription, which says nothing of what to do.
        entry = {"id": cat.number[n], "name": name,
                 "description": secret_text if secret and unlocked is None else done,
                 "lockedDescription": secret_text if secret else todo,
                 "gamerscore": cat.gamerscore[n]}
        window = cat.window_text[n]
        if window is not None:
            entry["type"] = "Challenge"
            entry["window"] = window
        target = cat.target[n]
        if unlocked is not None:
            entry["unlocked"] = unlocked
            if target > 1 and title.shape == "V2":
                entry["progress"] = [target, target]
        elif self.current[n] is not None:
            entry["progress"] = [self.current[n], target]
        if secret:
            entry["secret"] = True
        entry["rarity"] = cat.rarity[n]
        if cat.icon[n] is not None:
            entry["icon"] = cat.icon[n]
        return entry
