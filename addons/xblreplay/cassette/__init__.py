"""Cassette format v1 on disk: safe loading with file:line errors, lint, canonical atomic writes.

A cassette is a YAML mapping: ``xblreplay: 1``, when it was recorded, the bindings of user hashes
to xuids, datasets of achievements and the recorded interactions (``rules/cassette.schema.json``).
Reading (:mod:`.load`) takes regular files inside the cassette directory only (:mod:`.walk`),
bounded in nesting, alias expansion and integer size, and checks them (:mod:`.schema`): a hostile
cassette is a ``FILE:LINE: reason`` (:mod:`.errors`, :mod:`.locate`) like any other bad one.
Writing (:mod:`.files`) puts the canonical text (:mod:`.canonical`, one achievement per line)
leak-scanned and atomically in place, under a lock on the target's directory; a file that does
not load is never overwritten.
"""

from .canonical import dump, interaction_line, raw_json
from .errors import CassetteError
from .files import file_lock, forget, remember_line, update_file, write_atomic
from .load import CACHE_MIN_BYTES, VERSION, lint, load_dir, load_file
from .locate import line_in_file
from .schema import SCHEMA_PATH
from .walk import SUFFIXES

__all__ = [
    "CACHE_MIN_BYTES", "SCHEMA_PATH", "SUFFIXES", "VERSION", "CassetteError", "dump", "file_lock", "forget",
    "interaction_line", "line_in_file", "lint", "load_dir", "load_file", "raw_json", "remember_line",
    "update_file", "write_atomic",
]
