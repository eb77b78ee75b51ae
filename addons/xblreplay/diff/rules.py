"""rules/diff.yaml: what diff mode leaves out of a comparison (the volatile fields), read and
checked against ``rules/diff.schema.json``.

The schema is the one description of the file; a file that does not match it is refused with
one line naming the file, the key and what was expected.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import DEFAULT_RULES_DIR
from ..rulesfile import first_error, read_yaml, strict_validator

FILE_NAME = "diff.yaml"
SCHEMA_PATH = DEFAULT_RULES_DIR / "diff.schema.json"
SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
DEFAULT_MAX_PATHS: int = SCHEMA["properties"]["max_paths"]["default"]
ANY = "*"  # a pattern segment standing for any one index or key


class DiffRulesError(ValueError):
    """rules/diff.yaml is missing, unreadable or malformed; str() names the file and the key."""


@functools.cache
def _validator():
    return strict_validator(SCHEMA)


def _segments(pointer: str) -> tuple[str, ...]:
    """The unescaped segments of a JSON pointer ("" for the whole body)."""
    return tuple(s.replace("~1", "/").replace("~0", "~") for s in pointer.split("/")[1:])


@dataclass(frozen=True)
class DiffRules:
    """The volatile fields (as pointer patterns) and how many paths a finding names."""

    volatile: tuple[tuple[str, ...], ...] = ()
    max_paths: int = DEFAULT_MAX_PATHS

    def ignores(self, segments: tuple[str, ...]) -> bool:
        """Whether a difference at the JSON pointer ``segments`` is at or below a volatile field."""
        for pattern in self.volatile:
            if len(segments) >= len(pattern) and all(
                    p == ANY or p == s for p, s in zip(pattern, segments)):
                return True
        return False


def load_diff_rules(rules_dir: Path | str = DEFAULT_RULES_DIR) -> DiffRules:
    """rules/diff.yaml of ``rules_dir``, checked; DiffRulesError names the file and the key."""
    path = Path(rules_dir) / FILE_NAME
    doc = read_yaml(path, DiffRulesError, "diff rules file")
    problem = first_error(_validator(), doc)
    if problem is not None:
        raise DiffRulesError(f"{path}: {problem}")
    return DiffRules(tuple(_segments(v["path"]) for v in doc["volatile"]),
                     doc.get("max_paths", DEFAULT_MAX_PATHS))
