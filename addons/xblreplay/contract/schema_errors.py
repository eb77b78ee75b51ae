"""What a JSON Schema check reports: at most :data:`MAX_RESPONSE_VIOLATIONS` errors, each named by
the JSON pointer of the value it is about, its message cut to 200 characters.

The same bound holds every list a check can grow from client or service input (schema errors of
a request body or a response, unknown query parameters): a hostile message yields a few findings,
never thousands.

A :class:`FastSchema` answers "valid?" with the compiled Rust validator (``jsonschema_rs``, some
80 times faster on an achievement) and asks the Python ``jsonschema`` for the findings only when
that says no, so findings read the same whichever path found them.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator

MAX_RESPONSE_VIOLATIONS = 20


def pointer(path: Any) -> str:
    """JSON pointer (RFC 6901) of a jsonschema error path."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def schema_errors(schema: Draft202012Validator, instance: Any) -> list[tuple[str, str]]:
    """(pointer, message) of the first errors of ``instance`` against ``schema``."""
    return [(pointer(e.absolute_path), e.message[:200])
            for e in islice(schema.iter_errors(instance), MAX_RESPONSE_VIOLATIONS)]


class FastSchema:
    """One schema, compiled for both validators: :meth:`errors` is :func:`schema_errors`.

    The Python validator has the last word: the Rust one only ever skips it for a value it
    accepts. Where the two read a schema differently (Python's ``re`` lets ``$`` match before a
    final newline and ``\\d`` match any Unicode digit; the Rust engine does neither), the Rust one
    is the stricter, so it sends such a value to the Python one rather than passing it. A value
    the Rust side cannot take (a lone surrogate, a key that is not a string) goes to Python too.
    """

    __slots__ = ("schema", "_fast")

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = Draft202012Validator(schema)
        self._fast = jsonschema_rs.Draft202012Validator(schema)

    def valid(self, instance: Any) -> bool:
        """Whether the Rust validator accepts ``instance`` (False when it cannot read it)."""
        try:
            return self._fast.is_valid(instance)
        except Exception:  # noqa: BLE001 - whatever it cannot convert, Python judges
            return False

    def errors(self, instance: Any) -> list[tuple[str, str]]:
        """(pointer, message) of the first errors, as :func:`schema_errors` reports them."""
        return [] if self.valid(instance) else schema_errors(self.schema, instance)
