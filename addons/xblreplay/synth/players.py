"""One synthetic user: which achievements of the catalogue they unlocked and when, and how far
they got with the others; and that user's compact cassette entries in a locale.

Exactly ``round(unlocked x achievements)`` achievements are unlocked (fewer only when not enough
can have been: a Challenge not started yet cannot be), drawn with weights that follow rarity, so
rare achievements are unlocked less often. Unlock times fall between the user's first play of
the title and ``now``; a Challenge's inside its window."""

from __future__ import annotations

import random
from collections.abc import Callable

from ..engine import wire_time
from .catalogue import EPOCH, MICROSECOND, Catalogue, Title, micros
from .spec import Spec

IN_PROGRESS_SHARE = 0.6  # locked achievements with a counter that show progress (InProgress)


class Player:
    def __init__(self, spec: Spec, cat: Catalogue, index: int) -> None:
        rng = random.Random(f"xblreplay-synth/{spec.seed}/user/{index}")
        self.cat = cat
        now = cat.now_us
        total = len(cat.number)
        # When the user first played each title: somewhere in its first 80 % of life until now.
        low: list[int] = []  # the earliest and latest instant each achievement can be unlocked at
        high = [now] * total
        for title in cat.titles:
            released = micros(title.released)
            low += [released + int((now - released) * 0.8 * rng.random())] * title.count
        keys = [rng.random() ** (1.0 / (r["currentPercentage"] + 1.0)) for r in cat.rarity]
        for n in cat.windows:  # a Challenge: inside its window too
            start, end = cat.window[n]
            low[n], high[n] = max(micros(start), low[n]), min(micros(end), now)
            if low[n] >= high[n]:
                keys[n] = -1.0  # not started yet (or not while the user played): cannot be unlocked
        # Weighted draw without replacement (Efraimidis-Spirakis): the largest keys u ** (1 / weight).
        wanted = min(round(spec.unlocked * total), sum(k >= 0 for k in keys))
        chosen = sorted(sorted(range(total), key=keys.__getitem__, reverse=True)[:wanted])
        self.unlocked: list[str | None] = [None] * total
        for n in chosen:
            at = low[n] + int((high[n] - low[n]) * rng.random())
            self.unlocked[n] = wire_time(EPOCH + at * MICROSECOND)
        self.current: list[int | None] = [None] * total  # progress of a locked achievement with a counter
        for n in range(total):
            target = cat.target[n]
            if (target > 1 and self.unlocked[n] is None and cat.titles[cat.title_of[n]].shape == "V2"
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
