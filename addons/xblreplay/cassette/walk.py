"""The cassette files below a directory: which names are cassettes, links followed only inside
the directory, every file read once, and the entries refused on the way."""

from __future__ import annotations

import os
from pathlib import Path

from .. import rulesfile
from .errors import CassetteError

SUFFIXES = (".yaml", ".yml")


def _is_cassette(name: str) -> bool:
    return name.endswith(SUFFIXES) and not name.startswith((".", "~", "#"))


def walk(root: Path) -> tuple[list[Path], list[CassetteError]]:
    """The cassette files below ``root``, sorted, and the entries refused on the way.

    Hidden directories and hidden or temporary files are skipped, and names without a cassette
    suffix are not looked at. A cassette is a regular file: a FIFO, device or socket is refused
    by name, unopened. A symbolic link is followed only to a file or directory inside ``root``
    (one leading outside is refused); one to a directory that contains it is refused as a loop.
    Every file and directory is read once (directories known by device and inode, so a bind
    mount of a directory inside itself is not walked again): a file with a name of its own is read
    under it, otherwise under the first link to it; directories reached only through links are
    walked last.
    """
    if not root.exists():
        raise CassetteError(root, 0, "cassette directory does not exist")
    if not root.is_dir():
        raise CassetteError(root, 0, "not a directory")
    top = os.path.realpath(root)
    found: dict[str, tuple[bool, Path]] = {}  # real path -> (through a link, name)
    problems: list[CassetteError] = []
    st = os.stat(top)
    visited = {(st.st_dev, st.st_ino)}
    dirs: list[Path] = [root]
    linked: list[tuple[Path, tuple[int, int]]] = []  # (link, its directory): walked when no plain one is left
    while dirs or linked:
        if not dirs:
            link, key = linked.pop(0)
            if key not in visited:
                visited.add(key)
                dirs.append(link)
            continue
        current = dirs.pop()
        try:
            with os.scandir(current) as it:
                entries = sorted(it, key=lambda e: e.name)
            here = os.path.realpath(current)
        except OSError as exc:
            problems.append(CassetteError(exc.filename or current, 0, f"cannot read directory: {exc.strerror or exc}"))
            continue
        for entry in entries:
            name, path = entry.name, Path(current, entry.name)
            try:
                if entry.is_symlink():
                    if name.startswith("."):
                        continue
                    real = os.path.realpath(path)
                    if os.path.isdir(real):
                        if not rulesfile.within(real, top):
                            problems.append(CassetteError(path, 0, rulesfile.outside_reason(real)))
                        elif rulesfile.within(here, real):
                            problems.append(CassetteError(
                                path, 0, f"symbolic link loop: leads back to {real}, a directory it is in"))
                        else:
                            st = os.stat(real)
                            linked.append((path, (st.st_dev, st.st_ino)))
                        continue
                    if not _is_cassette(name):
                        continue
                    if not rulesfile.within(real, top):
                        problems.append(CassetteError(path, 0, rulesfile.outside_reason(real)))
                        continue
                    mode, through_link = os.stat(real).st_mode, True
                elif entry.is_dir(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    if not name.startswith(".") and (st.st_dev, st.st_ino) not in visited:
                        visited.add((st.st_dev, st.st_ino))
                        dirs.append(path)
                    continue
                elif _is_cassette(name):
                    mode, through_link, real = entry.stat(follow_symlinks=False).st_mode, False, os.path.join(here, name)
                else:
                    continue
            except OSError as exc:
                problems.append(CassetteError(path, 0, f"cannot read file: {exc.strerror or exc}"))
                continue
            why = rulesfile.not_regular(mode)
            if why:
                problems.append(CassetteError(path, 0, why))
            elif real not in found or (through_link, str(path)) < (found[real][0], str(found[real][1])):
                found[real] = (through_link, path)
    return sorted(p for _, p in found.values()), sorted(problems, key=lambda e: e.file)
