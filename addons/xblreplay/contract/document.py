"""The contract as data: ``rules/achievements.openapi.yaml`` read, its references resolved.

Everything the proxy knows of the API's parameters is read here from the document: the
operations and their parameters (for :mod:`.compiled`), and, without compiling anything, the
query parameter names and their ``default`` values (for reading requests and for
:class:`model.AchievementsQuery`). Importing this module reads nothing; :func:`shipped` reads the
document the package was shipped with once, on first use.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from .. import rules_dir
from ..rulesfile import read_yaml

RULES_FILE = "achievements.openapi.yaml"


def read_document(rules: Path | str) -> dict[str, Any]:
    """``rules/achievements.openapi.yaml``, read as every file from outside is (rulesfile: a
    regular file, bounded); ValueError names the file and the problem."""
    return read_yaml(Path(rules) / RULES_FILE, ValueError, "the contract")


@cache
def shipped() -> dict[str, Any]:
    """The document in the rules directory the package was shipped with (read once)."""
    return read_document(rules_dir())


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """``node`` with its local ``$ref`` followed (as often as it leads to another one)."""
    while "$ref" in node:
        target: Any = document
        for key in node["$ref"].lstrip("#/").split("/"):
            target = target[key]
        node = target
    return node


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any], list[dict[str, Any]]]]:
    """(path template, method, operation, its parameters resolved) of every operation, in the
    document's order; the parameters are the path's, then the operation's own."""
    for template, item in document["paths"].items():
        for method, op in item.items():
            if not isinstance(op, dict) or "operationId" not in op:
                continue
            params = [resolve(document, p) for p in item.get("parameters", []) + op.get("parameters", [])]
            yield template, method, op, params


def query_parameters(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The query parameters of every operation, by name."""
    return {p["name"]: p for _, _, _, params in operations(document) for p in params if p["in"] == "query"}


def query_defaults(document: dict[str, Any]) -> dict[str, Any]:
    """The ``default`` of each query parameter that has one, by name."""
    found = {}
    for name, param in query_parameters(document).items():
        schema = param.get("schema", {})
        if "default" in schema:
            found[name] = schema["default"]
    return found
