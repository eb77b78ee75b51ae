"""What is refused when a file from outside is read: :class:`Refused` (a line and a reason), and
the reasons the YAML and JSON readers share."""

from __future__ import annotations

from ..bounds import MAX_INT_DIGITS, MAX_JSON_DEPTH

TOO_DEEP = f"nested more than {MAX_JSON_DEPTH} levels deep"
NOT_FINITE = "{} is not a finite number: values here are JSON's"


class Refused(ValueError):
    """A file or document that is not read: ``line`` (1-based; 0 is the file as a whole) and why."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


def int_reason(length: int, unit: str = "digits") -> str:
    """Why an integer written with ``length`` digits (or other ``unit``) is refused."""
    return f"integer of {length} {unit}: more than the {MAX_INT_DIGITS} digits any value here can have"
