"""generate(): a Spec made into a directory of cassettes, one file per user and locale, and what
was made (the Report)."""

from __future__ import annotations

import gc
from dataclasses import dataclass
from pathlib import Path

from .catalogue import Catalogue
from .players import Player
from .progress import Bar
from .spec import Spec
from .write import cassette_path, staging, tree_bytes, write

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Report:
    out: Path
    files: tuple[Path, ...]  # relative to out, in the order written
    bytes: int
    entries: int
    unlocked: int  # entries unlocked, all users and locales
    challenges: int  # Challenge definitions in the catalogue
    secret: int  # secret definitions in the catalogue
    v2_titles: tuple[int, ...]  # title ids, dataset order
    v1_titles: tuple[int, ...]
    xuids: tuple[int, ...]
    json_form: bool


def generate(spec: Spec, out: str | Path, progress: bool | None = None) -> Report:
    """Writes ``spec``'s dataset to ``out`` (a new or empty directory). ``progress``: show a
    progress bar on stderr (None: when stderr is a terminal). The same spec always gives the
    same bytes."""
    collecting = gc.isenabled()
    # The millions of objects made here hold no reference cycles: a collector walking them again
    # and again would cost a third of the run and free nothing.
    gc.disable()
    try:
        return _generate(spec, Path(out), progress)
    finally:
        if collecting:
            gc.enable()


def _generate(spec: Spec, out: Path, progress: bool | None) -> Report:
    files: list[Path] = []
    unlocked = 0
    with Bar(spec.achievements + spec.entries, progress) as bar:
        cat = Catalogue(spec)
        bar.advance(spec.achievements)
        v2 = tuple(t.id for t in cat.titles if t.shape == "V2")
        v1 = tuple(t.id for t in cat.titles if t.shape == "V1")
        with staging(out) as stage:
            for index, xuid in enumerate(spec.xuids()):
                bar.describe(f"user {index + 1}/{spec.users}")
                player = Player(spec, cat, index)
                unlocked += sum(t is not None for t in player.unlocked) * len(spec.locales)
                for locale in spec.locales:
                    datasets = [{"xuid": xuid, "shape": shape, "locale": locale, "complete": True,
                                 "titles": player.titles(locale, shape, bar.advance)}
                                for shape, ids in (("V2", v2), ("V1", v1)) if ids]
                    path = cassette_path(stage, xuid, locale)
                    bar.describe(f"writing {path.relative_to(stage)}")
                    write(path, {"xblreplay": FORMAT_VERSION, "datasets": datasets}, spec.json_form,
                          _header(spec, xuid, locale, len(v2), len(v1)))
                    files.append(path.relative_to(stage))
                    del datasets
            size = tree_bytes(stage)
        bar.describe("done")
    return Report(out, tuple(files), size, spec.entries, unlocked, sum(w is not None for w in cat.window),
                  sum(cat.secret), v2, v1, tuple(spec.xuids()), spec.json_form)


def _header(spec: Spec, xuid: int, locale: str, v2: int, v1: int) -> str:
    return (f"# xblreplay synthetic cassette (format v1), made by `xblreplay generate` with seed {spec.seed},\n"
            f"# now {spec.now}: user {xuid}, locale {locale}; {v2} Xbox One title(s) (V2), {v1} Xbox 360\n"
            f"# title(s) (V1), {spec.achievements} achievements in all. See the README, \"Generating datasets\".\n")


def summary(spec: Spec, report: Report, seconds: float) -> list[str]:
    """What ``xblreplay generate`` prints: what was made, where, and a query to try on it."""
    form = "JSON form" if report.json_form else "block YAML"
    lines = [
        f"generated {len(report.files)} cassette file(s), {form}, {report.bytes / 1e6:.1f} MB in {report.out}"
        f" ({seconds:.1f} s)",
        f"  {spec.users} user(s) x {spec.achievements} achievements x {len(spec.locales)} locale(s)"
        f" ({', '.join(spec.locales)}) = {report.entries} entries, {report.unlocked} unlocked",
        f"  {spec.titles} titles: {len(report.v2_titles)} Xbox One (V2), {len(report.v1_titles)} Xbox 360 (V1);"
        f" {report.challenges} Challenges, {report.secret} secret achievements; now {spec.now}",
        f"  xuids {report.xuids[0]}" + (f" to {report.xuids[-1]}" if len(report.xuids) > 1 else ""),
    ]
    if report.v2_titles:
        lines.append(f"  try: xblreplay query --cassettes {report.out} -H 'x-xbl-contract-version: 2' "
                     f"'https://achievements.xboxlive.com/users/xuid({report.xuids[0]})/achievements"
                     f"?titleId={report.v2_titles[0]}&maxItems=5'")
    return lines
