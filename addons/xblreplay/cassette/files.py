"""Writing cassettes: canonical, leak-scanned and atomic (a temp file in the same directory,
fsync, rename, fsync of the directory), all under an exclusive lock on the target's directory,
with nothing left beside the cassette. A file that does not load is never overwritten. What
this process last wrote to a path is kept, so that a rewrite neither parses the file again
nor serialises an unchanged interaction again."""

from __future__ import annotations

import fcntl
import itertools
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .. import redact
from .canonical import dump, interaction_lines, lines_in
from .errors import CassetteError
from .load import check, read


@contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """Exclusive inter-process lock for writing ``path``: a ``flock`` on the directory that holds
    it (a file cannot carry the lock, the rename replaces it), so no lock file is left beside it.
    Writers of other files in the same directory wait too; a write takes milliseconds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# Temp files are mkstemp's `.<name>.XXXXXXXX.tmp` beside the cassette (hidden: never loaded).
_TEMP = re.compile(r"\..+\.ya?ml\.[a-z0-9_]{8}\.tmp")


def _replace(path: Path, data: bytes) -> None:
    """Atomically puts ``data`` at ``path``; call under :func:`file_lock`. The temp file lives only
    while it is written; one left by a writer killed in the middle is removed here, for every
    cassette of the directory (holding the directory's lock, no other writer is at work in it)."""
    for stale in path.parent.glob(".*.tmp"):
        if _TEMP.fullmatch(stale.name):
            stale.unlink(missing_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o644)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@dataclass(frozen=True)
class _Written:
    """A cassette as this process last wrote it (or read it from disk, under the lock)."""

    stamp: tuple[int, int, int]  # (inode, mtime, size): every write is a new inode
    data: bytes
    doc: dict
    lines: list[str]  # the line of each of doc's interactions, in order (none: not in the written form)


# path -> this process's last write: an unchanged file is not parsed again, and its lines are reused.
_written: dict[Path, _Written] = {}
# path -> (interaction, line) made and leak-scanned by the recorder, for the next write of path.
_offered: dict[Path, list[tuple[dict, str]]] = {}


def _stamp(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_ino, st.st_mtime_ns, st.st_size


def _current(path: Path) -> tuple[_Written | None, bool]:
    """The cassette at ``path`` (None if absent) and whether it was read from disk rather than
    known from this process's last write; call under the lock."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None, False
    last = _written.get(path)
    if last and last.stamp == _stamp(st):
        return last, False
    data = read(path, os.path.realpath(path.parent))
    try:
        doc, errors = check(path, data)
    except CassetteError as exc:
        errors = [exc]
    if errors:
        raise CassetteError(path, errors[0].line, f"{errors[0].reason} (file left untouched)")
    return _Written(_stamp(st), data, doc, lines_in(data, doc)), True


def remember_line(path: str | os.PathLike, interaction: dict, line: str) -> None:
    """Offer the next write of ``path`` a line already made, and leak-scanned, for ``interaction``."""
    _offered.setdefault(Path(path), []).append((interaction, line))


def update_file(
    path: str | os.PathLike, merge: Callable[[dict | None], dict], secrets: Mapping[str, str] | None = None
) -> None:
    """Under the lock: load the current cassette (None if absent), ``merge`` it, leak-scan, write.

    A current file that does not load raises :class:`CassetteError` and is left untouched; a leak
    raises :class:`redact.LeakError` and nothing is written. Unchanged content is not rewritten.
    """
    path = Path(path)
    with file_lock(path):
        offered = _offered.pop(path, [])
        current, from_disk = _current(path)
        old_bytes, old = (current.data, current.doc) if current else (None, None)
        unscanned: list[str] = []
        known: Iterable[tuple[dict, str]] = offered
        if current is not None:
            # The recorder's lines stand for its new interactions whoever wrote the file last.
            known = itertools.chain(zip(current.doc.get("interactions") or (), current.lines), offered)
            if from_disk:  # written by another process or by hand: keep its lines, scan it once
                unscanned.append(current.data.decode("utf-8", "replace"))
        doc = merge(old)
        lines = interaction_lines(doc["interactions"] if "interactions" in doc else (), known, unscanned)
        data = dump(doc, lines, unscanned)
        # Lines already written or offered by the recorder were scanned then; the rest is now.
        findings = redact.leak_scan("\n".join(unscanned).encode("utf-8"), secrets or {})
        if findings:
            raise redact.LeakError(str(path), findings)
        if data != old_bytes:
            _replace(path, data)
        _written[path] = _Written(_stamp(path.stat()), data, doc, lines)


def forget(path: str | os.PathLike) -> None:
    """Drop what this process keeps of its last write of ``path`` (its bytes, document and lines):
    the next write reads the file again. For a writer that must not hold large files in memory."""
    _written.pop(Path(path), None)
    _offered.pop(Path(path), None)


def write_atomic(path: str | os.PathLike, doc: dict, secrets: Mapping[str, str] | None = None) -> None:
    """Writes ``doc`` (interactions redacted) in place of ``path``; see :func:`update_file`."""
    doc = dict(doc)
    if "interactions" in doc:
        doc["interactions"] = [redact.redact_interaction(i, secrets) for i in doc["interactions"]]
    update_file(path, lambda _old: doc, secrets)
