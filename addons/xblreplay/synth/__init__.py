"""Synthetic datasets: cassettes of made-up users, titles and achievements, generated from a few
knobs and a seed (``xblreplay generate``; README, "Generating datasets").

    from xblreplay import synth
    report = synth.generate(synth.Spec(users=3, titles=200, achievements=10_000, seed=1), "cassettes/load")

The same Spec gives the same bytes. Modules: spec (the knobs), words (texts per language),
catalogue (titles and achievement definitions), players (each user's unlocks and progress, and
their compact entries), write (the two cassette forms, the output directory), progress (the
progress bar), generate (all of it, and the Report).
"""

from .generate import Report, generate, summary
from .spec import DEFAULT_NOW, DEFAULT_SEED, FIRST_XUID, FORMS, JSON_FORM_ENTRIES, Spec, SpecError
from .words import LANGUAGES
from .write import OutputError

__all__ = [
    "DEFAULT_NOW", "DEFAULT_SEED", "FIRST_XUID", "FORMS", "JSON_FORM_ENTRIES", "LANGUAGES", "OutputError", "Report",
    "Spec", "SpecError", "generate", "summary",
]
