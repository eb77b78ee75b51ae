"""The JSON paths at which two JSON values differ, volatile fields left out.

A walk with its own stack (a body nests as deep as the bounds allow, never into Python's
recursion limit), in document order: keys in the service's order, then keys only the cassettes'
answer has; array elements index by index, then the elements only one side has. A number
equals a number of the same value (``1`` and ``1.0``), never a boolean.
"""

from __future__ import annotations

from typing import Any

from .rules import DiffRules

# Differences counted at most per comparison: past it a body is "different everywhere".
MAX_COUNTED = 1000

Path = tuple[str, ...]


def pointer(segments: Path) -> str:
    """A JSON pointer (RFC 6901) of path segments."""
    return "".join("/" + s.replace("~", "~0").replace("/", "~1") for s in segments)


def _same_scalar(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def differences(live: Any, local: Any, rules: DiffRules, at: Path = ()) -> list[Path]:
    """The paths (below ``at``, which names where ``live`` and ``local`` sit in their bodies) at
    which ``live`` and ``local`` differ and no volatile field is; at most MAX_COUNTED of them.
    A volatile field is asked about only where a difference is found (a pattern covers a path
    and everything below it), so an agreeing body costs one visit per value."""
    found: list[Path] = []
    stack: list[tuple[Path, Any, Any]] = [(at, live, local)]
    while stack and len(found) < MAX_COUNTED:
        path, a, b = stack.pop()
        if isinstance(a, dict) and isinstance(b, dict):
            children = []
            for k, v in a.items():
                w = b.get(k, _MISSING)
                if type(v) is str and type(w) is str:  # most values: compared here, never stacked
                    if v != w:
                        _found(found, path + (str(k),), rules)
                else:
                    children.append((path + (str(k),), v, w))
            children += [(path + (str(k),), _MISSING, None) for k in b if k not in a]
            stack.extend(reversed(children))
        elif isinstance(a, list) and isinstance(b, list):
            common = min(len(a), len(b))
            extra = [(path + (str(i),), _MISSING, None) for i in range(common, max(len(a), len(b)))]
            stack.extend(reversed([(path + (str(i),), a[i], b[i]) for i in range(common)] + extra))
        elif a is _MISSING or b is _MISSING or not _same_scalar(a, b):
            _found(found, path, rules)
    return found


def _found(found: list[Path], path: Path, rules: DiffRules) -> None:
    if not rules.ignores(path):
        found.append(path)


class _Missing:
    """A key or element one side has and the other has not."""

    __slots__ = ()


_MISSING = _Missing()
