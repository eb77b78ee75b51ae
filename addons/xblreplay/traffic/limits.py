"""rules/limits.yaml: read, checked against ``rules/limits.schema.json``, and its values taken out.

The schema is the one description of the file: its sections and keys, which numbers are
integers, their lower bounds, and the defaults of the optional ``tracking`` caps. A file that
does not match it is refused with one line naming the file, the key and what was expected (the
first mismatch the schema finds, top down).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from .. import DEFAULT_RULES_DIR
from ..rulesfile import read_yaml
from .window import Window

DEFAULT_LIMITS = DEFAULT_RULES_DIR / "limits.yaml"
SCHEMA_PATH = DEFAULT_RULES_DIR / "limits.schema.json"
SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))

WINDOW_NAMES: tuple[str, ...] = tuple(SCHEMA["properties"]["rate_limits"]["required"])
# How much per-caller state is kept at most when limits.yaml says nothing (``tracking``).
TRACKING_DEFAULTS: dict[str, int] = {
    key: node["default"] for key, node in SCHEMA["properties"]["tracking"]["properties"].items()
}
DEFAULT_MAX_CALLERS = TRACKING_DEFAULTS["max_callers"]
DEFAULT_MAX_REQUESTS = TRACKING_DEFAULTS["max_requests"]

_KINDS = {"object": "a mapping", "string": "a string", "integer": "an integer", "number": "a number"}


class LimitsError(ValueError):
    """rules/limits.yaml is missing, unreadable or malformed; str() names the file and the key."""


def load_limits(path: Path | str = DEFAULT_LIMITS) -> dict[str, Any]:
    """Read and check a limits file; returns the document (``rate_limits``, ``call_patterns``,
    and ``tracking`` with every cap, defaults filled in)."""
    doc = read_yaml(path, LimitsError, "limits file")
    error = next(_validator().iter_errors(doc), None)
    if error is not None:
        where, why = _explain(error)
        raise LimitsError(f"{path}: {'.'.join(map(str, where)) or 'top level'}: {why}")
    tracking = doc.setdefault("tracking", {})
    for key, default in TRACKING_DEFAULTS.items():
        tracking.setdefault(key, default)
    return doc


def tracking_caps(limits: dict[str, Any]) -> tuple[int, int]:
    """(max_callers, max_requests) of a limits document; the defaults where it has none."""
    tracking = limits.get("tracking") or {}
    return (tracking.get("max_callers", DEFAULT_MAX_CALLERS),
            tracking.get("max_requests", DEFAULT_MAX_REQUESTS))


def rate_windows(limits: dict[str, Any], names: tuple[str, ...] = WINDOW_NAMES) -> tuple[Window, ...]:
    """The ``rate_limits`` windows of a limits document, in the order of ``names``."""
    rates = limits["rate_limits"]
    return tuple(Window(name, rates[name]["max_requests"], rates[name]["period_s"]) for name in names)


@functools.cache
def _validator():
    """Draft 2020-12 with integers that are ints: a count of 1.0 would index an array."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine("integer", lambda _checker, v: type(v) is int)
    return jsonschema.validators.extend(base, type_checker=checker)(SCHEMA)


def _explain(error: Any) -> tuple[list, str]:
    """(the key path, what is wrong there) of a schema error; a missing or unknown key is named
    in the path."""
    where, node, value = list(error.absolute_path), error.schema, error.instance
    if error.validator == "required":
        name = next(k for k in error.validator_value if k not in value)
        return where + [name], f"missing (expected {_expected(node['properties'][name])})"
    if error.validator == "additionalProperties":
        known = node.get("properties", {})
        extra = next(k for k in value if k not in known)
        return where + [extra], f"unknown key (known: {', '.join(known)})"
    shown = repr(value)
    return where, f"expected {_expected(node)}, got {shown if len(shown) <= 60 else shown[:57] + '...'}"


def _expected(node: dict[str, Any]) -> str:
    """What a schema node accepts, in words: ``1``, ``a mapping``, ``an integer > 0`` ..."""
    if "$ref" in node:  # only local definitions: "#/$defs/NAME"
        node = SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]]
    if "const" in node:
        return repr(node["const"])
    what = _KINDS[node["type"]]
    for bound, sign in (("exclusiveMinimum", ">"), ("minimum", ">=")):
        if bound in node:
            return f"{what} {sign} {node[bound]}"
    return what
