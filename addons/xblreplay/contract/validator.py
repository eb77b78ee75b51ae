"""Request and response validation compiled from ``rules/achievements.openapi.yaml``.

The OpenAPI document is the data: paths, methods, parameter names, integer ranges, enums,
patterns, the contract-version map (R6) and the response schemas (R7) all come from it.
Only what OpenAPI cannot say lives here: comma lists (``style: form, explode: false``),
case-insensitive enums and booleans (R3, R4), the continuation-token offset (R5), the
Authorization format (R8 401) and the Accept-Language preference list (R6).

Checking a request never runs jsonschema (except the POST update body); each parameter is
compiled once into a small parse function.

A request is matched to a path of the document the way OpenAPI matches: a concrete path wins over
a templated one (``…/{scid}/update`` before ``…/{scid}/{achievementId}``). A method the matched
path does not document answers 405 with ``Allow`` (R8, location ``method``).

Hostile input never raises: integers longer than :data:`bounds.MAX_INT_DIGITS` are out of range
before ``int()`` reads them, a body nested deeper than :data:`bounds.MAX_JSON_DEPTH` is refused
whole, a request target holding bytes that are not UTF-8 is malformed, and client text reaches a
violation only in a form that encodes as UTF-8 (:func:`model.readable`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Callable

from jsonschema import Draft202012Validator

from ..bounds import MAX_CACHED_HEADER_CHARS, MAX_JSON_DEPTH, TooDeep, depth_guard, int_text_ok, json_loads
from ..rulesfile import read_yaml
from .request import parse_authorization, query_params, request_key, request_language, split_url
from ..model import (
    EP_DETAIL,
    EP_HISTORY,
    EP_LIST,
    EP_OTHER,
    EP_UPDATE,
    ERROR,
    WARNING,
    AchievementsQuery,
    R8_PRECEDENCE,
    RequestCheck,
    Violation,
    r8_status,
    readable,
)

RULES_FILE = "achievements.openapi.yaml"
MAX_RESPONSE_VIOLATIONS = 20
_VALID_ITEMS_MAX = 200_000  # remembered valid items (hashes) before the memory is cleared


# operationId in the document -> endpoint name of the model
_ENDPOINTS = {
    "listAchievements": EP_LIST,
    "getAchievement": EP_DETAIL,
    "updateAchievements": EP_UPDATE,
    "listTitleHistory": EP_HISTORY,
}
# parameter name in the document -> field of AchievementsQuery / key of RequestCheck.path_params
_FIELDS = {
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
_TOKEN = "continuationToken"
_CONTRACT_HEADER = "x-xbl-contract-version"
_CONTRACTS_KEY = "x-xblreplay-contracts"
_BODY_PATH_KEY = "x-xblreplay-path-fields"  # requestBody: body field -> path parameter it repeats
_SCHEMA_REF = "#/components/schemas/"

_INT = re.compile(r"-?[0-9]+\Z")
_METHOD = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+\Z")  # an RFC 9110 token
_LANG_TAG = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*\Z")
_USER_PATH = re.compile(r"/users/xuid\(([^)/]*)\)(?:/|\Z)", re.IGNORECASE)


class _Invalid(Exception):
    """A parameter value that does not meet its schema (code, message)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _shown(raw: str) -> str:
    return repr(raw if len(raw) <= 40 else raw[:40] + "...")


def _name(raw: str) -> str:
    """A client-chosen name (a query parameter, a method) as a violation names it: readable and
    no longer than a value is shown."""
    return readable(raw if len(raw) <= 40 else raw[:40] + "...")


@dataclass(slots=True)
class MethodCheck(RequestCheck):
    """A check whose answer depends on the method: a method the path does not document (R8 405,
    ``allow`` lists the ones it does, for the ``Allow`` header), or HEAD (an answer without body).
    ``method`` is the one asked."""

    allow: tuple[str, ...] = ()
    method: str = ""


def _scalar_parser(name: str, schema: dict[str, Any]) -> Callable[[str], Any]:
    """One value of a parameter, per its schema (type, minimum/maximum, enum, pattern)."""
    kind = schema.get("type", "string")
    if kind == "integer":
        low, high = schema.get("minimum"), schema.get("maximum")
        span = f"{low}..{high}"

        def parse_int(raw: str) -> int:
            if not _INT.match(raw):
                raise _Invalid("invalid-integer", f"{name} {_shown(raw)} is not an integer")
            if not int_text_ok(raw):  # longer than any integer of the contract: not read at all
                raise _Invalid("out-of-range", f"{name} {_shown(raw)} is outside {span}")
            value = int(raw)
            if (low is not None and value < low) or (high is not None and value > high):
                raise _Invalid("out-of-range", f"{name} {value} is outside {span}")
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
                raise _Invalid("invalid-format", f"{name} {_shown(raw)} is malformed")
            return raw

        return parse_pattern
    return str


def _case_insensitive(name: str, table: dict[str, Any], code: str, allowed: str) -> Callable[[str], Any]:
    """A parser of a value looked up without regard to case (booleans and enums, R3/R4)."""

    def parse(raw: str) -> Any:
        value = table.get(raw.lower())
        if value is None:
            raise _Invalid(code, f"{name} {_shown(raw)} is not {allowed}")
        return value

    return parse


def _param_parser(param: dict[str, Any]) -> Callable[[str], Any]:
    """A parameter's parse function; arrays with explode: false are comma lists."""
    name, schema = param["name"], param.get("schema", {})
    if schema.get("type") != "array":
        return _scalar_parser(name, schema)
    item = _scalar_parser(name, schema.get("items", {}))

    def parse_list(raw: str) -> tuple[Any, ...]:
        return tuple(item(part) for part in raw.split(","))

    return parse_list


def _token_parser(param: dict[str, Any], offset_schema: dict[str, Any]) -> Callable[[str], int]:
    """R5: a token of the documented pattern whose offset obeys the range of skipItems (the
    pattern says so too; an offset of digits out of that range is named as such)."""
    form = _scalar_parser(_TOKEN, param.get("schema", {}))
    offset = _scalar_parser(_TOKEN + " offset", offset_schema)

    def parse_token(raw: str) -> int:
        digits = raw.partition(",")[0]
        if digits.isascii() and digits.isdigit():
            offset(digits)  # out of range: said before "malformed"
        return offset(form(raw).partition(",")[0])

    return parse_token


def _path_regex(template: str) -> re.Pattern[str]:
    """`/users/xuid({xuid})/achievements` -> a case-insensitive regex with named groups."""
    parts = re.split(r"\{(\w+)\}", template)
    regex = "".join(
        re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]*)" for i, part in enumerate(parts)
    )
    return re.compile(regex + r"/?\Z", re.IGNORECASE)


def _canonical_locale(tag: str) -> str:
    """BCP 47 case conventions: `EN-us` -> `en-US`, `zh-hant-tw` -> `zh-Hant-TW`."""
    first, *rest = tag.split("-")
    out = [first.lower()]
    for part in rest:
        if len(part) == 2 and part.isalpha():
            out.append(part.upper())
        elif len(part) == 4 and part.isalpha():
            out.append(part.title())
        else:
            out.append(part.lower())
    return "-".join(out)


def parse_accept_language(value: str) -> tuple[str, ...]:
    """R6: the Accept-Language preference list, best first (q-values honoured, q=0 and `*` dropped,
    ties keep header order, duplicates removed)."""
    ranked = []
    for index, part in enumerate(value.split(",")):
        tag, _, params = part.partition(";")
        tag = tag.strip()
        if not _LANG_TAG.match(tag):
            continue
        q = 1.0
        for param in params.split(";") if params else ():
            key, _, val = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(val)
                except ValueError:
                    q = -1.0
        if 0.0 < q <= 1.0:
            ranked.append((-q, index, _canonical_locale(tag)))
    ranked.sort()
    return tuple(dict.fromkeys(tag for _, _, tag in ranked))


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


def _pointer(path: Any) -> str:
    """JSON pointer (RFC 6901) of a jsonschema error path."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


class _Operation:
    """One compiled (method, path) of the document."""

    __slots__ = ("endpoint", "path", "query", "body", "body_fields")

    def __init__(self, endpoint: str,
                 path: list[tuple[str, str, Callable[[str], Any]]],
                 query: dict[str, tuple[str, Callable[[str], Any]]],
                 body: Draft202012Validator | None,
                 body_fields: dict[str, str] | None = None) -> None:
        self.endpoint = endpoint
        self.path = path  # (name, path_params key, parse)
        self.query = query  # name -> (AchievementsQuery field, parse)
        self.body = body
        self.body_fields = body_fields or {}  # body field -> path parameter it must repeat


class _Path:
    """One path of the document: its template, regex and operations by method."""

    __slots__ = ("template", "regex", "operations", "allow")

    def __init__(self, template: str, regex: re.Pattern[str]) -> None:
        self.template = template
        self.regex = regex
        self.operations: dict[str, _Operation] = {}
        self.allow: tuple[str, ...] = ()


class Validator:
    """Validates requests (R8 and the R3/R5/R6 warnings) and response bodies (R7)."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        components = document.get("components", {})
        self._schemas = {
            name: self._schema_validator(name, components) for name in components.get("schemas", {})
        }
        self._paths: list[_Path] = []
        contracts: dict[str, Any] = {}
        self._contract_default: str | None = None
        for template, item in document["paths"].items():
            entry = _Path(template, _path_regex(template))
            self._paths.append(entry)
            for method, op in item.items():
                if not isinstance(op, dict) or "operationId" not in op:
                    continue
                params = [self._resolve(p) for p in item.get("parameters", []) + op.get("parameters", [])]
                offset_schema = next((p["schema"] for p in params if p["name"] == "skipItems"), {})
                path, query = [], {}
                for p in params:
                    if p["in"] == "path":
                        path.append((p["name"], _FIELDS[p["name"]], _param_parser(p)))
                    elif p["in"] == "query":
                        parse = _token_parser(p, offset_schema) if p["name"] == _TOKEN else _param_parser(p)
                        query[p["name"]] = (_FIELDS[p["name"]], parse)
                    elif p["in"] == "header" and p["name"].lower() == _CONTRACT_HEADER:
                        contracts = p.get(_CONTRACTS_KEY, contracts)
                        self._contract_default = p.get("schema", {}).get("default")
                body = None
                request_body = self._resolve(op.get("requestBody", {}))
                ref = request_body.get("content", {}).get("application/json", {}).get("schema")
                if ref:
                    body = self._schemas[ref["$ref"].rsplit("/", 1)[1]]
                endpoint = _ENDPOINTS.get(op["operationId"], EP_OTHER)
                entry.operations[method.upper()] = _Operation(
                    endpoint, path, query, body, request_body.get(_BODY_PATH_KEY))
            entry.allow = tuple(entry.operations)
        # OpenAPI path matching: a concrete path before a templated one (fewer parameters first).
        self._paths.sort(key=lambda p: p.template.count("{"))
        listing = next((o for p in self._paths for o in p.operations.values() if o.endpoint == EP_LIST), None)
        self._user_parsers = None
        if listing is not None and "titleId" in listing.query:
            xuid = next((parse for name, _, parse in listing.path if name == "xuid"), None)
            if xuid is not None:
                self._user_parsers = (xuid, listing.query["titleId"][1])
        self._contracts = {
            str(k): (v["shape"], bool(v.get("rarity", False))) for k, v in contracts.items()
        }
        self._locales: dict[str, tuple[str, ...]] = {}
        self._parts: dict[str, tuple[Draft202012Validator, Draft202012Validator]] = {}
        self._valid_items: set[int] = set()

    @classmethod
    def from_rules(cls, rules_dir: Path | str) -> "Validator":
        """Compiled from ``rules_dir/achievements.openapi.yaml``, read as every file from outside
        is (rulesfile: a regular file, bounded); ValueError names the file and the problem."""
        return cls(read_yaml(Path(rules_dir) / RULES_FILE, ValueError, "the contract"))

    # ------------------------------------------------------------------ compile helpers
    def _resolve(self, obj: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in obj:
            node: Any = self.document
            for key in obj["$ref"].lstrip("#/").split("/"):
                node = node[key]
            obj = node
        return obj

    @staticmethod
    def _schema_validator(name: str, components: dict[str, Any]) -> Draft202012Validator:
        """A validator of one component schema with its references inlined (twice as fast as
        resolving them on every instance); a recursive reference stays a reference."""
        schemas = components.get("schemas", {})
        root = _inline({"$ref": _SCHEMA_REF + name}, schemas, ())
        return Draft202012Validator({**root, "components": components})

    def schema(self, name: str) -> Draft202012Validator:
        """The compiled validator of ``components/schemas/<name>``."""
        return self._schemas[name]

    # ------------------------------------------------------------------ requests
    def _match(self, path: str) -> tuple[_Path | None, re.Match[str] | None]:
        """The document's path a request path falls under (the most concrete one)."""
        for candidate in self._paths:
            match = candidate.regex.match(path)
            if match:
                return candidate, match
        return None, None

    def _operation(self, method: str, path: str) -> tuple[_Operation | None, re.Match[str] | None]:
        entry, match = self._match(path)
        op = entry.operations.get(method.upper()) if entry is not None else None
        return (op, match) if op is not None else (None, None)

    def endpoint(self, method: str, path: str) -> str:
        """The endpoint name (model.EP_*) of a request path."""
        op, _ = self._operation(method, path)
        return op.endpoint if op is not None else EP_OTHER

    def check_request(self, method: str, url: str, headers: dict[str, str],
                      body: bytes | None = None) -> RequestCheck:
        """The one reading of a request (``headers``: names lowercase): endpoint, parameters,
        violations, the R8 status and "the same request" key."""
        check = self._check_request(method, url, headers, body)
        check.key, check.language = request_key(method, url, headers), request_language(headers)
        return check

    def _check_request(self, method: str, url: str, headers: dict[str, str],
                       body: bytes | None) -> RequestCheck:
        path, query_string = split_url(url)
        violations: list[Violation] = []
        auth = headers.get("authorization")
        credentials = parse_authorization(auth)
        if credentials is None:
            violations.append(Violation(
                "R8", "header", "Authorization", ERROR,
                "Authorization is missing" if not auth
                else "Authorization is not of the form XBL3.0 x=<userhash>;<token>",
                "missing-authorization" if not auth else "malformed-authorization"))
        if not _METHOD.match(method):
            return self._finish(self._other(method, path, "", violations + [Violation(
                "R8", "method", _name(method), ERROR, f"the method {_shown(method)} is not an HTTP token",
                "invalid-method")]))
        for where, text in (("path", path), ("query", query_string)):
            if not text.isascii() and not _utf8(text):
                # mitmproxy hands over bytes that are not UTF-8 as lone surrogates: unreadable.
                return self._finish(self._other(method, path, "", violations + [Violation(
                    "R8", where, "", ERROR, f"the request {where} is not valid UTF-8", "invalid-encoding")]))
        entry, match = self._match(path)
        op = entry.operations.get(method.upper()) if entry is not None else None
        if op is None:
            check = self._other(method, path, query_string, violations)
            if entry is None:
                return self._finish(check)
            # A path of the contract asked with a method it does not document (R8 405).
            check = MethodCheck(check.endpoint, violations, path_params=check.path_params,
                                title_ids=check.title_ids, bad_title_ids=check.bad_title_ids,
                                allow=entry.allow, method=method.upper())
            violations.append(Violation(
                "R8", "method", _name(method), ERROR,
                f"{_name(method)} is not a method of {entry.template}; allowed: {', '.join(entry.allow)}",
                "method-not-allowed"))
            return self._finish(check)

        path_params: dict[str, Any] = {}
        for name, key, parse in op.path:
            try:
                path_params[key] = parse(match.group(name))
            except _Invalid as bad:
                violations.append(Violation("R8", "path", name, ERROR, bad.message, bad.code))

        fields: dict[str, Any] = {}
        params = query_params(query_string) if query_string else {}
        unknown = 0
        for name, raw in params.items():
            spec = op.query.get(name)
            if spec is None:
                unknown += 1
                if unknown <= MAX_RESPONSE_VIOLATIONS:
                    violations.append(Violation(
                        "contract", "query", _name(name), WARNING,
                        f"{_name(name)} is not a parameter of this endpoint and is ignored", "unknown-parameter"))
                continue
            try:
                fields[spec[0]] = spec[1](raw)
            except _Invalid as bad:
                violations.append(Violation("R8", "query", name, ERROR, bad.message, bad.code))
        if _TOKEN in params:
            fields["continuation_token"] = params[_TOKEN]
            if "skipItems" in params:
                violations.append(Violation(
                    "R5", "query", "skipItems", WARNING,
                    "continuationToken and skipItems were both sent; the token wins",
                    "conflicting-paging"))
        if fields.get("possible_only") and fields.get("unlocked_only"):
            violations.append(Violation(
                "R3", "query", "possibleOnly", WARNING,
                "possibleOnly and unlockedOnly are both true; possibleOnly wins",
                "conflicting-filters"))
        if unknown > MAX_RESPONSE_VIOLATIONS:
            violations.append(Violation(
                "contract", "query", "", WARNING,
                f"{unknown - MAX_RESPONSE_VIOLATIONS} more parameters are not parameters of this "
                "endpoint and are ignored", "unknown-parameter"))
        if "types" in fields:
            fields["types"] = frozenset(fields["types"])

        if op.body is not None:
            violations += self._check_body(op, body, path_params)

        check = RequestCheck(op.endpoint, violations, path_params=path_params,
                             title_ids=fields.get("title_ids"),
                             bad_title_ids=any(v.name == "titleId" for v in violations))
        if "xuid" in path_params and op.endpoint != EP_UPDATE:
            contract = headers.get(_CONTRACT_HEADER)
            key = (contract if contract is not None else self._contract_default or "").strip()
            shape, rarity = self._contracts.get(key, (None, False))
            if shape is None:
                violations.append(Violation(
                    "R6", "header", _CONTRACT_HEADER, WARNING,
                    f"contract version {_shown(contract or '')} is not one of "
                    f"{', '.join(sorted(self._contracts))}; the answer is an empty list", "contract-version"))
            language = headers.get("accept-language")
            check.query = AchievementsQuery(
                xuid=path_params["xuid"], contract=contract, shape=shape, rarity=rarity,
                locales=self._locale_list(language) if language else (),
                userhash=credentials[0] if credentials else None, **fields)
        return self._finish(check)

    def _other(self, method: str, path: str, query_string: str, violations: list[Violation]) -> RequestCheck:
        """A path the contract does not describe: its xuid and titleId list when it is a user
        path (for recording files and caller keys), read with the listing's parsers."""
        head = method.upper() == "HEAD"
        check = MethodCheck(EP_OTHER, violations, method="HEAD") if head else RequestCheck(EP_OTHER, violations)
        user = _USER_PATH.match(path)
        if user is None or self._user_parsers is None:
            return check
        parse_xuid, parse_titles = self._user_parsers
        try:
            check.path_params["xuid"] = parse_xuid(user.group(1))
        except _Invalid:
            return check
        raw = query_params(query_string).get("titleId") if query_string else None
        if raw is not None:
            try:
                check.title_ids = parse_titles(raw)
            except _Invalid:
                check.bad_title_ids = True
        return check

    @staticmethod
    def _finish(check: RequestCheck) -> RequestCheck:
        """The R8 status: the strongest of the errors' (model.R8_PRECEDENCE)."""
        found = {r8_status(v) for v in check.violations if v.severity == ERROR}
        check.status = max(found, key=R8_PRECEDENCE.index) if found else None
        return check

    def _locale_list(self, value: str) -> tuple[str, ...]:
        """The Accept-Language value's locales; values of at most MAX_CACHED_HEADER_CHARS
        characters are cached (1,024 of them), longer ones parsed each time they come."""
        if len(value) > MAX_CACHED_HEADER_CHARS:
            return parse_accept_language(value)
        locales = self._locales.get(value)
        if locales is None:
            if len(self._locales) >= 1024:
                self._locales.clear()
            locales = self._locales[value] = parse_accept_language(value)
        return locales

    @staticmethod
    def _check_body(op: _Operation, body: bytes | None, path_params: dict[str, Any]) -> list[Violation]:
        """The JSON body against its schema, then the fields that repeat a path parameter
        (``x-xblreplay-path-fields``), each equal to the path's value."""
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
                found = [
                    Violation("R8", "body", readable(_pointer(e.absolute_path)), ERROR,
                              readable(e.message[:200]), "invalid-body")
                    for e in islice(op.body.iter_errors(doc), MAX_RESPONSE_VIOLATIONS)
                ]
        except TooDeep:
            return deep
        if found or not isinstance(doc, dict):
            return found
        for field, param in op.body_fields.items():
            parse = next((p for name, _, p in op.path if name == param), None)
            key = _FIELDS.get(param, param)
            if parse is None or key not in path_params or not isinstance(doc.get(field), str):
                continue
            try:
                value = parse(doc[field])
            except _Invalid:
                value = None
            expected = path_params[key]
            same = value == expected or (isinstance(value, str) and isinstance(expected, str)
                                         and value.lower() == expected.lower())
            if not same:
                found.append(Violation(
                    "R8", "body", "/" + field, ERROR,
                    f"{field} {_shown(readable(doc[field]))} is not the {param} of the path {expected}",
                    "path-mismatch"))
        return found

    # ------------------------------------------------------------------ responses
    def _response_parts(self, name: str) -> tuple[Draft202012Validator, Draft202012Validator]:
        """The response schema, and its item schema compiled on its own."""
        parts = self._parts.get(name)
        if parts is None:
            whole = self._schemas[name]
            item = whole.schema["properties"]["achievements"]["items"]
            parts = self._parts[name] = (whole, Draft202012Validator({**item, "components": whole.schema.get("components", {})}))
        return parts

    def _item_errors(self, schema: Draft202012Validator, item: Any, index: int) -> list[Violation]:
        """R7 for one achievement. An item already found valid is not checked again: replay
        serves the same items page after page, and the check is the costly part of a response."""
        try:
            key = hash((id(schema), json.dumps(item, sort_keys=True, separators=(",", ":"))))
        except (TypeError, ValueError):
            key = None
        if key is not None and key in self._valid_items:
            return []
        errors = [
            Violation("R7", "response", f"/achievements/{index}" + _pointer(e.absolute_path), ERROR,
                      e.message[:200], "response-schema")
            for e in islice(schema.iter_errors(item), MAX_RESPONSE_VIOLATIONS)
        ]
        if not errors and key is not None:
            if len(self._valid_items) >= _VALID_ITEMS_MAX:
                self._valid_items.clear()
            self._valid_items.add(key)
        return errors

    def check_response(self, check: RequestCheck, status: int, headers: Mapping[str, str],
                       body: object) -> list[Violation]:
        """R7: a 200 achievements body against the V2 or V1 schema (by the request's shape)."""
        if status != 200 or check.endpoint not in (EP_LIST, EP_DETAIL):
            return []
        if not isinstance(body, dict):
            return [Violation("R7", "response", "", ERROR,
                              "the response body is not a JSON object", "response-schema")]
        shape = check.query.shape if check.query is not None else None
        envelope, item_schema = self._response_parts("AchievementsResponseV1" if shape == "V1" else "AchievementsResponseV2")
        items = body.get("achievements")
        errors = envelope.iter_errors({**body, "achievements": []} if isinstance(items, list) else body)
        found = [
            Violation("R7", "response", _pointer(e.absolute_path), ERROR, e.message[:200], "response-schema")
            for e in islice(errors, MAX_RESPONSE_VIOLATIONS)
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


def _utf8(text: str) -> bool:
    """Whether client text decoded by mitmproxy (``surrogateescape``) was valid UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
