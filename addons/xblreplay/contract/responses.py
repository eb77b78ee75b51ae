"""R7: a 200 achievements body checked against the response schema of the request's shape (V1 or
V2), the envelope and each item on its own, at most :data:`MAX_RESPONSE_VIOLATIONS` findings.

Replay serves the same items page after page and the item check is the costly part, so an item
found valid is remembered (by a hash of its canonical JSON, at most :data:`_VALID_ITEMS_MAX` of
them) and not checked again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator

from ..model import EP_DETAIL, EP_LIST, ERROR, RequestCheck, Violation
from .schema_errors import MAX_RESPONSE_VIOLATIONS, schema_errors

_VALID_ITEMS_MAX = 200_000  # remembered valid items (hashes) before the memory is cleared
_SHAPES = {"V1": "AchievementsResponseV1", "V2": "AchievementsResponseV2"}


class ResponseChecker:
    """R7 against the document's response schemas (``schemas``: compiled, by component name)."""

    def __init__(self, schemas: Mapping[str, Draft202012Validator]) -> None:
        # Per shape: the response schema, and its item schema compiled on its own.
        self._parts: dict[str, tuple[Draft202012Validator, Draft202012Validator]] = {}
        for shape, name in _SHAPES.items():
            whole = schemas.get(name)
            item = whole.schema.get("properties", {}).get("achievements", {}).get("items") if whole else None
            if item is not None:
                self._parts[shape] = (whole, Draft202012Validator({**item, "components": whole.schema.get("components", {})}))
        self._valid_items: set[int] = set()

    def _item_errors(self, schema: Draft202012Validator, item: Any, index: int) -> list[Violation]:
        """R7 for one achievement; an item already found valid is not checked again."""
        try:
            key = hash((id(schema), json.dumps(item, sort_keys=True, separators=(",", ":"))))
        except (TypeError, ValueError):
            key = None
        if key is not None and key in self._valid_items:
            return []
        errors = [
            Violation("R7", "response", f"/achievements/{index}" + where, ERROR, message, "response-schema")
            for where, message in schema_errors(schema, item)
        ]
        if not errors and key is not None:
            if len(self._valid_items) >= _VALID_ITEMS_MAX:
                self._valid_items.clear()
            self._valid_items.add(key)
        return errors

    def check(self, check: RequestCheck, status: int, body: object) -> list[Violation]:
        """R7: a 200 achievements body against the V2 or V1 schema (by the request's shape)."""
        if status != 200 or check.endpoint not in (EP_LIST, EP_DETAIL):
            return []
        if not isinstance(body, dict):
            return [Violation("R7", "response", "", ERROR,
                              "the response body is not a JSON object", "response-schema")]
        shape = check.query.shape if check.query is not None else None
        envelope, item_schema = self._parts["V1" if shape == "V1" else "V2"]
        items = body.get("achievements")
        found = [
            Violation("R7", "response", where, ERROR, message, "response-schema")
            for where, message in schema_errors(envelope, {**body, "achievements": []} if isinstance(items, list) else body)
        ]
        for i, item in enumerate(items if isinstance(items, list) else ()):
            if len(found) >= MAX_RESPONSE_VIOLATIONS:
                break
            found += self._item_errors(item_schema, item, i)
        if check.endpoint == EP_DETAIL and isinstance(items, list) and len(items) != 1:
            found.append(Violation("R7", "response", "/achievements", ERROR,
                                   f"a detail answer has exactly one item, not {len(items)}",
                                   "detail-item-count"))
        return found
