"""The proxy's five modes and what each one does with a request for the host.

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
    DIFF = "diff"  # forward, and compare the service's answer with the cassettes' (rules/diff.yaml)

    @property
    def answers_offline(self) -> bool:
        """Requests are answered from the cassettes (which must then be loaded)."""
        return self in (Mode.REPLAY, Mode.REPLAY_OR_RECORD)

    @property
    def compares(self) -> bool:
        """The service's answer goes to the client and is compared with the one the cassettes
        give (which must then be loaded); nothing is answered offline."""
        return self is Mode.DIFF

    @property
    def loads_cassettes(self) -> bool:
        """The cassette directory must exist and load: the mode answers or compares from it."""
        return self.answers_offline or self.compares

    @property
    def records(self) -> bool:
        """What the service answers is recorded into the cassette directory (in diff mode only
        with achievements_diff_record: see Settings.records)."""
        return self in (Mode.RECORD, Mode.REPLAY_OR_RECORD)

    @property
    def forwards(self) -> bool:
        """A request for the host may be sent on to the service: always in validate, record and
        diff, when the cassettes cannot answer it in replay-or-record; never in replay."""
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
