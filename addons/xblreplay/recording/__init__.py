"""Recording exchanges into cassettes without blocking the caller.

Files: ``<dir>/recorded/<xuid>/<titleIds joined with _ | all>.yaml`` for ``/users/xuid(N)/…``
paths, ``<dir>/recorded/other.yaml`` for anything else (:mod:`.naming`); within a file, one
interaction per request as replay matches it (:mod:`.interaction`). Bodies reach the recorder
decoded by :func:`decode_body`: from their Content-Encoding, and never past a bound
(``achievements_max_body``); a body that cannot be read within it is not recorded.

The writer (:mod:`.writer`) runs on a thread; the proxy runs it in a child process
(:mod:`.child`).
"""

from .child import RecorderProcess
from .decode import TOO_LARGE, UNDECODABLE, UNKNOWN_ENCODING, UnreadableBody, decode_body
from .exchange import Exchange
from .interaction import body_removals, recorded_interaction
from .naming import cassette_path
from .writer import BACKLOG_BYTES, Recorder

__all__ = [
    "BACKLOG_BYTES",
    "Exchange",
    "Recorder",
    "RecorderProcess",
    "TOO_LARGE",
    "UNDECODABLE",
    "UNKNOWN_ENCODING",
    "UnreadableBody",
    "body_removals",
    "cassette_path",
    "decode_body",
    "recorded_interaction",
]
