"""The cassette problem: :class:`CassetteError`, a reason located in a file (``FILE:LINE: reason``)."""

from __future__ import annotations

import os


class CassetteError(Exception):
    """A cassette problem located in a file (line 0: the file or directory as a whole)."""

    def __init__(self, file: str | os.PathLike, line: int, reason: str):
        self.file = str(file)
        self.line = line
        self.reason = reason
        super().__init__(f"{self.file}:{line}: {reason}")
