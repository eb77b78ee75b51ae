"""What a JSON Schema check reports: at most :data:`MAX_RESPONSE_VIOLATIONS` errors, each named by
the JSON pointer of the value it is about, its message cut to 200 characters.

The same bound holds every list a check can grow from client or service input (schema errors of
a request body or a response, unknown query parameters): a hostile message yields a few findings,
never thousands.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

from jsonschema import Draft202012Validator

MAX_RESPONSE_VIOLATIONS = 20


def pointer(path: Any) -> str:
    """JSON pointer (RFC 6901) of a jsonschema error path."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def schema_errors(schema: Draft202012Validator, instance: Any) -> list[tuple[str, str]]:
    """(pointer, message) of the first errors of ``instance`` against ``schema``."""
    return [(pointer(e.absolute_path), e.message[:200])
            for e in islice(schema.iter_errors(instance), MAX_RESPONSE_VIOLATIONS)]
