"""The OpenAPI document compiled once: its paths as regexes, each operation with its parameter
parsers, defaults and body schema, its component schemas as jsonschema validators, and the
contract-version map (R6).

A request is matched to a path the way OpenAPI matches: a concrete path wins over a templated one
(``…/{scid}/update`` before ``…/{scid}/{achievementId}``).
"""

from __future__ import annotations

import re
from typing import Any, Callable

from jsonschema import Draft202012Validator

from ..model import EP_DETAIL, EP_HISTORY, EP_LIST, EP_OTHER, EP_UPDATE
from .document import operations, resolve
from .parameters import param_parser, token_parser
from .request import CONTRACT_HEADER

# operationId in the document -> endpoint name of the model
ENDPOINTS = {
    "listAchievements": EP_LIST,
    "getAchievement": EP_DETAIL,
    "updateAchievements": EP_UPDATE,
    "listTitleHistory": EP_HISTORY,
}
# parameter name in the document -> field of AchievementsQuery / key of RequestCheck.path_params
FIELDS = {
    "skipItems": "skip_items",
    "maxItems": "max_items",
    "titleId": "title_ids",
    "types": "types",
    "unlockedOnly": "unlocked_only",
    "possibleOnly": "possible_only",
    "orderBy": "order_by",
    "continuationToken": "token_offset",
    "xuid": "xuid",
    "scid": "scid",
    "achievementId": "achievement_id",
}
# Where a default goes when not into the parameter's own field: max_items stays None when the
# client sent no maxItems, and the page is then default_page_size long.
_DEFAULT_FIELDS = {"maxItems": "default_page_size"}
TOKEN = "continuationToken"
_CONTRACTS_KEY = "x-xblreplay-contracts"
_BODY_PATH_KEY = "x-xblreplay-path-fields"  # requestBody: body field -> path parameter it repeats
_SCHEMA_REF = "#/components/schemas/"

Parse = Callable[[str], Any]


class Operation:
    """One compiled (method, path) of the document."""

    __slots__ = ("endpoint", "path", "query", "defaults", "body", "body_fields")

    def __init__(self, endpoint: str,
                 path: list[tuple[str, str, Parse]],
                 query: dict[str, tuple[str, Parse]],
                 defaults: dict[str, Any],
                 body: Draft202012Validator | None,
                 body_fields: dict[str, str] | None = None) -> None:
        self.endpoint = endpoint
        self.path = path  # (name, path_params key, parse)
        self.query = query  # name -> (AchievementsQuery field, parse)
        self.defaults = defaults  # AchievementsQuery field -> the documented default
        self.body = body
        self.body_fields = body_fields or {}  # body field -> path parameter it must repeat


class PathEntry:
    """One path of the document: its template, regex and operations by method."""

    __slots__ = ("template", "regex", "operations", "allow")

    def __init__(self, template: str) -> None:
        self.template = template
        self.regex = path_regex(template)
        self.operations: dict[str, Operation] = {}
        self.allow: tuple[str, ...] = ()


def path_regex(template: str) -> re.Pattern[str]:
    """`/users/xuid({xuid})/achievements` -> a case-insensitive regex with named groups."""
    parts = re.split(r"\{(\w+)\}", template)
    regex = "".join(
        re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]*)" for i, part in enumerate(parts)
    )
    return re.compile(regex + r"/?\Z", re.IGNORECASE)


def _inline(node: Any, schemas: dict[str, Any], stack: tuple[str, ...]) -> Any:
    """Replace `{"$ref": "#/components/schemas/X"}` by a copy of X, except inside X itself."""
    if isinstance(node, list):
        return [_inline(item, schemas, stack) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if len(node) == 1 and isinstance(ref, str) and ref.startswith(_SCHEMA_REF):
        name = ref[len(_SCHEMA_REF):]
        if name not in stack:
            return _inline(schemas[name], schemas, stack + (name,))
    return {key: _inline(value, schemas, stack) for key, value in node.items()}


def _schema_validator(name: str, components: dict[str, Any]) -> Draft202012Validator:
    """A validator of one component schema with its references inlined (twice as fast as
    resolving them on every instance); a recursive reference stays a reference."""
    schemas = components.get("schemas", {})
    root = _inline({"$ref": _SCHEMA_REF + name}, schemas, ())
    return Draft202012Validator({**root, "components": components})


class Compiled:
    """The document's paths (most concrete first), schemas and contract versions."""

    def __init__(self, document: dict[str, Any]) -> None:
        components = document.get("components", {})
        self.schemas = {name: _schema_validator(name, components) for name in components.get("schemas", {})}
        entries = {template: PathEntry(template) for template in document["paths"]}
        contracts: dict[str, Any] = {}
        self.contract_default: str | None = None  # the contract-version header's default
        for template, method, op, params in operations(document):
            offset_schema = next((p["schema"] for p in params if p["name"] == "skipItems"), {})
            path, query, defaults = [], {}, {}
            for p in params:
                name = p["name"]
                if p["in"] == "path":
                    path.append((name, FIELDS[name], param_parser(p)))
                elif p["in"] == "query":
                    query[name] = (FIELDS[name], token_parser(p, offset_schema) if name == TOKEN else param_parser(p))
                    if "default" in p.get("schema", {}):
                        defaults[_DEFAULT_FIELDS.get(name, FIELDS[name])] = p["schema"]["default"]
                elif p["in"] == "header" and name.lower() == CONTRACT_HEADER:
                    contracts = p.get(_CONTRACTS_KEY, contracts)
                    self.contract_default = p.get("schema", {}).get("default")
            body = None
            request_body = resolve(document, op.get("requestBody", {}))
            ref = request_body.get("content", {}).get("application/json", {}).get("schema")
            if ref:
                body = self.schemas[ref["$ref"].rsplit("/", 1)[1]]
            endpoint = ENDPOINTS.get(op["operationId"], EP_OTHER)
            entries[template].operations[method.upper()] = Operation(
                endpoint, path, query, defaults, body, request_body.get(_BODY_PATH_KEY))
        for entry in entries.values():
            entry.allow = tuple(entry.operations)
        # OpenAPI path matching: a concrete path before a templated one (fewer parameters first).
        self.paths = sorted(entries.values(), key=lambda p: p.template.count("{"))
        self.contracts = {str(k): (v["shape"], bool(v.get("rarity", False))) for k, v in contracts.items()}
        # The listing's xuid and titleId parsers, which read any user path (recording files and
        # caller keys): None when the document has no such listing.
        self.user_parsers: tuple[Parse, Parse] | None = None
        listing = next((o for p in self.paths for o in p.operations.values() if o.endpoint == EP_LIST), None)
        if listing is not None and "titleId" in listing.query:
            xuid = next((parse for name, _, parse in listing.path if name == "xuid"), None)
            if xuid is not None:
                self.user_parsers = (xuid, listing.query["titleId"][1])

    def match(self, path: str) -> tuple[PathEntry | None, re.Match[str] | None]:
        """The document's path a request path falls under (the most concrete one)."""
        for candidate in self.paths:
            found = candidate.regex.match(path)
            if found:
                return candidate, found
        return None, None
