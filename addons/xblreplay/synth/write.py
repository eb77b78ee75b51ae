"""Writing a generated dataset: each user's cassette per locale in one of the two forms, into a
directory that appears whole or not at all.

* The JSON form (YAML's JSON subset, what record mode and ``xblreplay import`` write) goes
  through the project's cassette writer, :func:`cassette.write_atomic`: canonical, leak-scanned,
  loaded by the proxy at JSON speed.
* The block-YAML form is the hand-written form of the README's "Cassette format": one compact
  entry per line, easy to read and edit. The cassette writer has no block form; this is PyYAML's
  safe dumper, the library the loader reads it back with.

Everything is written into a hidden directory beside ``out`` and renamed into place at the end,
so a failed or interrupted run leaves no half-written dataset behind."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from .. import cassette


class OutputError(Exception):
    """The output directory cannot be used: one line saying why."""


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """The safe dumper, without anchors: entries share objects (a rarity, a window) that must
    each be written out in full."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def cassette_path(root: Path, xuid: int, locale: str) -> Path:
    return root / str(xuid) / f"{locale}.yaml"


def write(path: Path, doc: dict, json_form: bool, header: str) -> None:
    """One cassette: ``doc`` at ``path`` in the JSON form or in block YAML under ``header``."""
    if json_form:
        cassette.write_atomic(path, doc)
        cassette.forget(path)  # the writer keeps its last write of a path; this one is done with
        return
    text = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=None,
                     width=1 << 16)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + text, encoding="utf-8")


@contextmanager
def staging(out: Path) -> Iterator[Path]:
    """A new directory to write into, renamed to ``out`` when the block ends without an error
    (removed otherwise). ``out`` must not exist or be an empty directory."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutputError(f"{out} already exists and is not an empty directory (choose a new one)")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".generating", dir=out.parent))
    except OSError as e:
        raise OutputError(f"cannot write in {out.parent}: {e.strerror or e}") from None
    try:
        yield stage
        os.chmod(stage, 0o755)  # mkdtemp's 0700 would hide the dataset from other users of the machine
        os.replace(stage, out)  # onto an empty directory too
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
