"""A parameter's value read per its schema: each parameter of the document becomes one small parse
function, compiled once, that returns the canonical value or raises :class:`Invalid`.

What OpenAPI cannot say is read here: comma lists (``style: form, explode: false``),
case-insensitive enums and booleans (R3, R4), and the continuation-token offset (R5). An integer
longer than any of the contract's is out of range before ``int()`` reads it.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from ..bounds import MAX_INT_DIGITS, int_text_ok

_INT = re.compile(r"-?[0-9]+\Z")


class Invalid(Exception):
    """A parameter value that does not meet its schema (code, message)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def shown(raw: str) -> str:
    """Client text as a violation quotes it: at most 40 characters."""
    return repr(raw if len(raw) <= 40 else raw[:40] + "...")


def scalar_parser(name: str, schema: dict[str, Any]) -> Callable[[str], Any]:
    """One value of a parameter, per its schema (type, minimum/maximum, enum, pattern)."""
    kind = schema.get("type", "string")
    if kind == "integer":
        low, high = schema.get("minimum"), schema.get("maximum")
        span = f"{low}..{high}"

        def parse_int(raw: str) -> int:
            # The usual value, plain digits short enough to read, is read without the regex.
            if not (raw.isdigit() and raw.isascii() and len(raw) <= MAX_INT_DIGITS):
                if not _INT.match(raw):
                    raise Invalid("invalid-integer", f"{name} {shown(raw)} is not an integer")
                if not int_text_ok(raw):  # longer than any integer of the contract: not read at all
                    raise Invalid("out-of-range", f"{name} {shown(raw)} is outside {span}")
            value = int(raw)
            if (low is not None and value < low) or (high is not None and value > high):
                raise Invalid("out-of-range", f"{name} {value} is outside {span}")
            return value

        return parse_int
    if kind == "boolean":
        return _case_insensitive(name, {"true": True, "false": False}, "invalid-boolean", "true or false")
    if "enum" in schema:
        return _case_insensitive(name, {str(v).lower(): v for v in schema["enum"]}, "invalid-enum",
                                 "one of " + ", ".join(schema["enum"]))
    if "pattern" in schema:
        pattern = schema["pattern"]
        match = re.compile(pattern).match
        # ECMA-262 (JSON Schema) `$` is the end of the text; Python's also matches before a final
        # newline, which a URL can carry (%0A).
        to_end = pattern.endswith("$") and not pattern.endswith("\\$")

        def parse_pattern(raw: str) -> str:
            found = match(raw)
            if not found or (to_end and found.end() != len(raw)):
                raise Invalid("invalid-format", f"{name} {shown(raw)} is malformed")
            return raw

        return parse_pattern
    return str


def _case_insensitive(name: str, table: dict[str, Any], code: str, allowed: str) -> Callable[[str], Any]:
    """A parser of a value looked up without regard to case (booleans and enums, R3/R4)."""

    def parse(raw: str) -> Any:
        value = table.get(raw.lower())
        if value is None:
            raise Invalid(code, f"{name} {shown(raw)} is not {allowed}")
        return value

    return parse


def param_parser(param: dict[str, Any]) -> Callable[[str], Any]:
    """A parameter's parse function; arrays with explode: false are comma lists."""
    name, schema = param["name"], param.get("schema", {})
    if schema.get("type") != "array":
        return scalar_parser(name, schema)
    item = scalar_parser(name, schema.get("items", {}))

    def parse_list(raw: str) -> tuple[Any, ...]:
        return tuple(item(part) for part in raw.split(","))

    return parse_list


def token_parser(param: dict[str, Any], offset_schema: dict[str, Any]) -> Callable[[str], int]:
    """R5: a token of the documented pattern whose offset obeys the range of skipItems (the
    pattern says so too; an offset of digits out of that range is named as such)."""
    name = param["name"]
    form = scalar_parser(name, param.get("schema", {}))
    offset = scalar_parser(name + " offset", offset_schema)

    def parse_token(raw: str) -> int:
        digits = raw.partition(",")[0]
        if digits.isascii() and digits.isdigit():
            offset(digits)  # out of range: said before "malformed"
        return offset(form(raw).partition(",")[0])

    return parse_token
