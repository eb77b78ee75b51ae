"""The proxy's four modes and what each one does with a request for the host.

The value of ``achievements_mode`` is the mode's name (``Mode("replay-or-record")``), and a mode
is that string wherever it is written (the validation log's ``"mode"``, messages): the rest of
the code asks a mode what it does, never which one it is.
"""

from __future__ import annotations

import enum


class Mode(enum.StrEnum):
    VALIDATE = "validate"  # forward, judge, log
    RECORD = "record"  # forward and record into cassettes
    REPLAY = "replay"  # answer offline from cassettes, never connect
    REPLAY_OR_RECORD = "replay-or-record"  # answer from cassettes when they can, else forward and record

    @property
    def answers_offline(self) -> bool:
        """Requests are answered from the cassettes (which must then be loaded)."""
        return self in (Mode.REPLAY, Mode.REPLAY_OR_RECORD)

    @property
    def records(self) -> bool:
        """What the service answers is recorded into the cassette directory."""
        return self in (Mode.RECORD, Mode.REPLAY_OR_RECORD)

    @property
    def forwards(self) -> bool:
        """A request for the host may be sent on to the service: always in validate and record,
        when the cassettes cannot answer it in replay-or-record; never in replay."""
        return self is not Mode.REPLAY

    @property
    def forwards_uncovered(self) -> bool:
        """A request the cassettes cannot answer is forwarded (and recorded) instead."""
        return self is Mode.REPLAY_OR_RECORD

    @property
    def validates_only(self) -> bool:
        """Requests are forwarded as they are, only judged (achievements_strict may refuse them)."""
        return self is Mode.VALIDATE


MODES: tuple[str, ...] = tuple(m.value for m in Mode)
