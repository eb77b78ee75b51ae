"""Regular files only: a FIFO, device, socket or directory is refused without being read, a
symbolic link must stay inside the directory it is read from, and a file is read only up to
``bounds.MAX_FILE_BYTES``."""

from __future__ import annotations

import os
import stat

from ..bounds import MAX_FILE_BYTES
from .refused import Refused

_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


def not_regular(mode: int) -> str | None:
    """Why a file of this ``st_mode`` is not read (None: a regular file)."""
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _KINDS if test(mode)), "a special file")
    return f"not a regular file ({kind}): only regular files are read"


def within(real: str, root: str) -> bool:
    """Whether the resolved path ``real`` is ``root`` (resolved) or below it."""
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def outside_reason(real: str) -> str:
    return f"symbolic link leads outside the cassette directory (to {real}): only files inside it are read"


def read_regular(path: str | os.PathLike, inside: str | None = None) -> bytes:
    """The bytes of the regular file at ``path``. With ``inside`` (a resolved directory), the path
    is resolved and must stay inside it. Raises :class:`Refused` (line 0) for what is not read,
    OSError when reading fails."""
    target = os.fspath(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if inside is not None:
        target = os.path.realpath(target)
        if not within(target, inside):
            raise Refused(0, outside_reason(target))
        flags |= getattr(os, "O_NOFOLLOW", 0)  # resolved: a link appearing now is not followed
    why = not_regular(os.stat(target).st_mode)  # a device is refused without being opened
    if why:
        raise Refused(0, why)
    fd = os.open(target, flags)  # non-blocking: a FIFO swapped in now cannot block the open
    with os.fdopen(fd, "rb", buffering=0) as f:
        st = os.fstat(fd)  # what was opened is what is read
        why = not_regular(st.st_mode)
        if why:
            raise Refused(0, why)
        if st.st_size > MAX_FILE_BYTES:
            raise Refused(0, f"{st.st_size} bytes: larger than the {MAX_FILE_BYTES} bytes a file read here may have")
        return f.readall()
