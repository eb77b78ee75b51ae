"""A document from outside against its JSON Schema: :func:`strict_validator` (Draft 2020-12 where
an integer is an int and a number is finite), and :func:`first_error`, the schema's most specific
finding as one line: the place (``faults[0].kind``, ``top level``), then what is wrong there.

What is wrong is the ``errorMessage`` of the innermost schema node about that value when it has
one (``{value!r}`` in it is the value found, ``{keys}`` its keys), else a line made from the
keyword that failed: a missing or unknown key is named in the place, a value that does not match
is shown with what the node accepts, in words (``an integer > 0``, ``one of a, b``).
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jsonschema

_TYPE_NAMES = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
               "number": "a number", "boolean": "a boolean"}
_BOUNDS = (("exclusiveMinimum", ">"), ("minimum", ">="), ("exclusiveMaximum", "<"), ("maximum", "<="))
# Keywords that fail for a value unlike what the node accepts, said with _expected.
_EXPECTED = {"type", "const", *(keyword for keyword, _ in _BOUNDS)}
# Schema keywords followed by the name of a subschema (a property, an index) in a schema path,
# whether they lead one level down the document; "items" leads down with nothing after it.
_NAMED = {"properties": True, "prefixItems": True, "oneOf": False, "anyOf": False, "allOf": False}
_INNER = {"items": True, "if": False, "then": False, "else": False, "not": False}


@functools.cache
def _strict_class() -> type[jsonschema.Draft202012Validator]:
    import jsonschema  # only where a document is checked: importing it takes a while

    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine_many({
        "integer": lambda _checker, v: type(v) is int,
        "number": lambda _checker, v: type(v) in (int, float) and math.isfinite(v),
    })
    return jsonschema.validators.extend(base, type_checker=checker)


def strict_validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """A Draft 2020-12 validator of ``schema`` where an integer is an int, not 5.0 (a count of 1.0
    would index an array; the engine refuses 1.0 as an id), and a number is finite, not .nan or
    .inf."""
    return _strict_class()(schema)


def short_repr(value: Any) -> str:
    """``repr(value)``, cut to 60 characters: a message stays one readable line."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def first_error(validator: jsonschema.Draft202012Validator, doc: Any) -> str | None:
    """The most specific finding of ``validator`` about ``doc`` as one line, ``where: why``: the
    one deepest in the document, first among equals (a failing ``else`` or
    ``unevaluatedProperties`` also finds fault with the mapping around the value). None: ``doc``
    matches the schema."""
    errors = list(validator.iter_errors(doc))
    if not errors:
        return None
    path, why = _explain(max(errors, key=lambda e: len(e.absolute_path)), validator.schema)
    return f"{_place(path)}: {why}"


def _explain(error: jsonschema.ValidationError, root: dict[str, Any]) -> tuple[list, str]:
    """(path, why) for a finding of the schema ``root``."""
    path, value = list(error.absolute_path), error.instance
    if error.validator == "additionalProperties":
        known = error.schema.get("properties", {})
        key = next(k for k in value if k not in known)
        return path + [key], f"unknown key (expected one of {', '.join(known)})"
    if error.validator == "required":
        key = next(k for k in error.validator_value if k not in value)
        node = error.schema.get("properties", {}).get(key)
        return path + [key], "missing" if node is None else f"missing (expected {_expected(node, root)})"
    message = _error_message(root, list(error.absolute_schema_path), len(path))
    if message is not None:
        keys = ", ".join(map(str, value)) if isinstance(value, dict) else repr(value)
        return path, message.format(value=value, keys=keys or "nothing")
    if error.validator == "enum":
        noun = error.schema.get("title", "value")
        known = ", ".join(dict.fromkeys(map(str, error.validator_value)))
        return path, f"unknown {noun} {short_repr(value)} (expected one of {known})"
    if error.validator in _EXPECTED:
        return path, f"expected {_expected(error.schema, root)}, got {short_repr(value)}"
    return path, f"{error.message}, got {short_repr(value)}"


def _expected(node: dict[str, Any], root: dict[str, Any]) -> str:
    """What a schema node accepts, in words: ``1``, ``one of a, b``, ``a mapping``, ``an integer > 0``..."""
    while "$ref" in node:
        node = _resolve(root, node["$ref"])
    if "const" in node:
        return repr(node["const"])
    if "enum" in node:
        return "one of " + ", ".join(dict.fromkeys(map(str, node["enum"])))
    types = node.get("type", ())
    what = " or ".join(_TYPE_NAMES[t] for t in ([types] if isinstance(types, str) else types) if t != "null")
    bounds = " and ".join(f"{sign} {node[keyword]}" for keyword, sign in _BOUNDS if keyword in node)
    return " ".join(filter(None, (what or "a value", bounds)))


def _error_message(root: dict[str, Any], schema_path: list, depth: int) -> str | None:
    """The errorMessage of the innermost node, on the way down ``schema_path``, that is about the
    value at document ``depth`` (following $ref, which jsonschema leaves out of the path)."""
    node, level, found = root, 0, None
    steps = iter(schema_path)
    for step in steps:
        while step not in node and "$ref" in node:
            found = node.get("errorMessage", found) if level == depth else found
            node = _resolve(root, node["$ref"])
        found = node.get("errorMessage", found) if level == depth else found
        name = next(steps, None) if step in _NAMED else None
        if name is not None:
            node, level = node[step][name], level + _NAMED[step]
        elif step in _INNER:
            node, level = node[step], level + _INNER[step]
        else:  # the keyword that failed (oneOf, properties… as the failing keyword end the path)
            break
    return found


def _resolve(root: dict[str, Any], ref: str) -> dict[str, Any]:
    """The node of a local reference (``#/$defs/NAME``)."""
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _place(path: list) -> str:
    """A document path as written in a message: ``faults[0].kind``; ``top level`` for the root."""
    where = ""
    for step in path:
        where += f"[{step}]" if isinstance(step, int) else (f".{step}" if where else str(step))
    return where or "top level"
