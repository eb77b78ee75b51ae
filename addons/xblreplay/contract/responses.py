"""R7: a 200 achievements body checked against the response schema of the request's shape (V1 or
V2), the envelope and each item on its own, at most :data:`MAX_RESPONSE_VIOLATIONS` findings.

A body is first put to the whole response schema through the Rust validator (:class:`FastSchema`):
a valid body costs that one call. Only a body it refuses is checked part by part with the Python
validator, which names what is wrong. Items the dataset engine serves were checked when it first
served them in their form (:meth:`ResponseChecker.item_errors`, injected into the store): their
answer carries what was found, and only its envelope is checked here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from jsonschema import Draft202012Validator

from ..model import EP_DETAIL, EP_LIST, ERROR, RequestCheck, Violation, r7_item_violations
from .schema_errors import MAX_RESPONSE_VIOLATIONS, FastSchema

_SHAPES = {"V1": "AchievementsResponseV1", "V2": "AchievementsResponseV2"}


class _Shape:
    """The response schema of one shape: whole, its item schema compiled on its own, and a list
    of items (many items checked in one call)."""

    __slots__ = ("whole", "item", "items")

    def __init__(self, whole: Draft202012Validator, item: dict[str, Any]) -> None:
        components = whole.schema.get("components", {})
        self.whole = FastSchema(whole.schema)
        self.item = FastSchema({**item, "components": components})
        self.items = FastSchema({"type": "array", "items": item, "components": components})


class ResponseChecker:
    """R7 against the document's response schemas (``schemas``: compiled, by component name)."""

    def __init__(self, schemas: Mapping[str, Draft202012Validator]) -> None:
        self._shapes: dict[str, _Shape] = {}
        for shape, name in _SHAPES.items():
            whole = schemas.get(name)
            item = whole.schema.get("properties", {}).get("achievements", {}).get("items") if whole else None
            if item is not None:
                self._shapes[shape] = _Shape(whole, item)

    def item_errors(self, shape: str, item: Any) -> list[tuple[str, str]]:
        """(pointer inside the item, message) of an achievement of ``shape`` ("V1" or "V2")
        against its item schema; [] when it is valid."""
        return self._shapes["V1" if shape == "V1" else "V2"].item.errors(item)

    def items_errors(self, shape: str, items: Sequence[Any]) -> list[list[tuple[str, str]]]:
        """:meth:`item_errors` of each of ``items`` (each an item, or its JSON text as bytes):
        one call when all are valid, the usual case."""
        if not items:
            return []
        checker = self._shapes["V1" if shape == "V1" else "V2"]
        texts = [i for i, item in enumerate(items) if isinstance(item, bytes)]
        if texts:
            try:
                read = orjson.loads(b"[" + b",".join([items[i] for i in texts]) + b"]")
            except orjson.JSONDecodeError:
                read = [json.loads(items[i]) for i in texts]
            items = list(items)
            for i, item in zip(texts, read):
                items[i] = item
        if checker.items.valid(items):
            return [[] for _ in items]
        return [checker.item.errors(item) for item in items]

    def check(self, check: RequestCheck, status: int, body: object,
              checked_items: Sequence[Sequence[Violation]] | None = None) -> list[Violation]:
        """R7: a 200 achievements body against the V2 or V1 schema (by the request's shape).
        ``checked_items``: the body's items were checked already, and these are the violations
        of its invalid items, item by item in body order (only the envelope is checked here)."""
        if status != 200 or check.endpoint not in (EP_LIST, EP_DETAIL):
            return []
        if not isinstance(body, dict):
            return [Violation("R7", "response", "", ERROR,
                              "the response body is not a JSON object", "response-schema")]
        shape = self._shapes["V1" if check.query is not None and check.query.shape == "V1" else "V2"]
        items = body.get("achievements")
        listed = isinstance(items, list)
        if checked_items is not None and listed:
            found = self._envelope(shape, body, items)
            for violations in checked_items:
                if len(found) >= MAX_RESPONSE_VIOLATIONS:
                    break
                found += violations
        elif shape.whole.valid(body):
            found = []
        else:
            found = self._envelope(shape, body, items)
            for i, item in enumerate(items if listed else ()):
                if len(found) >= MAX_RESPONSE_VIOLATIONS:
                    break
                found += r7_item_violations(i, shape.item.errors(item))
        if check.endpoint == EP_DETAIL and listed and len(items) != 1:
            found.append(Violation("R7", "response", "/achievements", ERROR,
                                   f"a detail answer has exactly one item, not {len(items)}",
                                   "detail-item-count"))
        return found

    @staticmethod
    def _envelope(shape: _Shape, body: dict, items: Any) -> list[Violation]:
        """The body without its items (pagingInfo, version, the list itself)."""
        return [Violation("R7", "response", where, ERROR, message, "response-schema")
                for where, message in shape.whole.errors({**body, "achievements": []} if isinstance(items, list)
                                                         else body)]
