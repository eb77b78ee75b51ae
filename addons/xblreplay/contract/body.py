"""The request body of an operation that has one (the POST update, R8): JSON, no deeper than
:data:`bounds.MAX_JSON_DEPTH`, valid against its schema, and each field that repeats a path
parameter (``x-xblreplay-path-fields``) equal to the path's value."""

from __future__ import annotations

from typing import Any

from ..bounds import MAX_JSON_DEPTH, TooDeep, depth_guard, json_loads
from ..model import ERROR, Violation, readable
from .compiled import FIELDS, Operation
from .parameters import Invalid, shown
from .schema_errors import schema_errors


def check_body(op: Operation, body: bytes | None, path_params: dict[str, Any]) -> list[Violation]:
    """The JSON body against its schema, then the fields that repeat a path parameter, each equal
    to the path's value (a scid compared without regard to case)."""
    if not body:
        return [Violation("R8", "body", "", ERROR, "the request body is missing", "missing-body")]
    deep = [Violation("R8", "body", "", ERROR,
                      f"the request body nests deeper than {MAX_JSON_DEPTH} levels", "too-deep")]
    try:
        doc = json_loads(body, limit_depth=True)
    except TooDeep:
        return deep
    except ValueError:
        return [Violation("R8", "body", "", ERROR, "the request body is not JSON", "invalid-json")]
    try:
        with depth_guard():
            found = [Violation("R8", "body", readable(where), ERROR, readable(message), "invalid-body")
                     for where, message in schema_errors(op.body, doc)]
    except TooDeep:
        return deep
    if found or not isinstance(doc, dict):
        return found
    for field, param in op.body_fields.items():
        parse = next((p for name, _, p in op.path if name == param), None)
        key = FIELDS.get(param, param)
        if parse is None or key not in path_params or not isinstance(doc.get(field), str):
            continue
        try:
            value = parse(doc[field])
        except Invalid:
            value = None
        expected = path_params[key]
        same = value == expected or (isinstance(value, str) and isinstance(expected, str)
                                     and value.lower() == expected.lower())
        if not same:
            found.append(Violation(
                "R8", "body", "/" + field, ERROR,
                f"{field} {shown(readable(doc[field]))} is not the {param} of the path {expected}",
                "path-mismatch"))
    return found
