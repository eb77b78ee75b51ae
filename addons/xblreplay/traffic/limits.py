"""rules/limits.yaml: read, checked against ``rules/limits.schema.json``, and its values taken out.

The schema is the one description of the file: its sections and keys, which numbers are
integers, their lower bounds, and the defaults of the optional ``tracking`` caps. A file that
does not match it is refused with one line naming the file, the key and what was expected (the
schema's most specific finding, :func:`xblreplay.rulesfile.first_error`).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from .. import DEFAULT_RULES_DIR
from ..rulesfile import first_error, read_yaml, strict_validator
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

class LimitsError(ValueError):
    """rules/limits.yaml is missing, unreadable or malformed; str() names the file and the key."""


@functools.cache
def _validator():
    """The validator of limits.schema.json, built when the first limits file is checked."""
    return strict_validator(SCHEMA)


def load_limits(path: Path | str = DEFAULT_LIMITS) -> dict[str, Any]:
    """Read and check a limits file; returns the document (``rate_limits``, ``call_patterns``,
    and ``tracking`` with every cap, defaults filled in)."""
    doc = read_yaml(path, LimitsError, "limits file")
    problem = first_error(_validator(), doc)
    if problem is not None:
        raise LimitsError(f"{path}: {problem}")
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
