"""Request and response validation compiled from ``rules/achievements.openapi.yaml``.

The OpenAPI document is the data: paths, methods, parameter names, integer ranges, enums,
patterns, defaults, the contract-version map (R6) and the response schemas (R7) all come from it
(:mod:`.compiled`). Only what OpenAPI cannot say lives in code: comma lists, case-insensitive
enums and booleans, the continuation-token offset (:mod:`.parameters`), the Authorization format
(R8 401, :mod:`.request`) and the Accept-Language preference list (R6, :mod:`.languages`).

Checking a request never runs jsonschema (except the POST update body, :mod:`.body`); each
parameter is compiled once into a small parse function. A method the matched path does not
document answers 405 with ``Allow`` (R8, location ``method``).

Hostile input never raises: integers longer than :data:`bounds.MAX_INT_DIGITS` are out of range
before ``int()`` reads them, a body nested deeper than :data:`bounds.MAX_JSON_DEPTH` is refused
whole, a request target holding bytes that are not UTF-8 is malformed, and client text reaches a
violation only in a form that encodes as UTF-8 (:func:`model.readable`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from ..bounds import MAX_CACHED_HEADER_CHARS
from ..model import (
    EP_OTHER,
    EP_UPDATE,
    ERROR,
    WARNING,
    AchievementsQuery,
    Answer,
    R8_PRECEDENCE,
    RequestCheck,
    Violation,
    r8_status,
    readable,
)
from .body import check_body
from .compiled import TOKEN, Compiled
from .document import read_document
from .languages import parse_accept_language
from .parameters import Invalid, shown
from .request import CONTRACT_HEADER, parse_authorization, query_params, request_key, request_language, split_url
from .responses import ResponseChecker
from .schema_errors import MAX_RESPONSE_VIOLATIONS

_METHOD = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+\Z")  # an RFC 9110 token
_USER_PATH = re.compile(r"/users/xuid\(([^)/]*)\)(?:/|\Z)", re.IGNORECASE)
_LOCALES_CACHED = 1024  # Accept-Language values remembered before the cache is cleared


def _name(raw: str) -> str:
    """A client-chosen name (a query parameter, a method) as a violation names it: readable and
    no longer than a value is shown."""
    return readable(raw if len(raw) <= 40 else raw[:40] + "...")


def _utf8(text: str) -> bool:
    """Whether client text decoded by mitmproxy (``surrogateescape``) was valid UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(slots=True)
class MethodCheck(RequestCheck):
    """A check whose answer depends on the method: a method the path does not document (R8 405,
    ``allow`` lists the ones it does, for the ``Allow`` header), or HEAD (an answer without body).
    ``method`` is the one asked."""

    allow: tuple[str, ...] = ()
    method: str = ""


class Validator:
    """Validates requests (R8 and the R3/R5/R6 warnings) and response bodies (R7)."""

    def __init__(self, document: dict[str, Any]) -> None:
        self._compiled = Compiled(document)
        self._responses = ResponseChecker(self._compiled.schemas)
        self._locales: dict[str, tuple[str, ...]] = {}

    @classmethod
    def from_rules(cls, rules_dir: Path | str) -> "Validator":
        """Compiled from ``rules_dir/achievements.openapi.yaml``, read as every file from outside
        is (rulesfile: a regular file, bounded); ValueError names the file and the problem."""
        return cls(read_document(rules_dir))

    def schema(self, name: str) -> Draft202012Validator:
        """The compiled validator of ``components/schemas/<name>``."""
        return self._compiled.schemas[name]

    def endpoint(self, method: str, path: str) -> str:
        """The endpoint name (model.EP_*) of a request path."""
        entry, _ = self._compiled.match(path)
        op = entry.operations.get(method.upper()) if entry is not None else None
        return op.endpoint if op is not None else EP_OTHER

    def check_response(self, check: RequestCheck, status: int, headers: Mapping[str, str],
                       body: object, answer: Answer | None = None) -> list[Violation]:
        """R7: a 200 achievements body against the V2 or V1 schema (by the request's shape).
        ``answer``: the proxy's own answer this body is; when the engine checked its items as it
        served them, their violations are its, and only the envelope is checked here."""
        checked = answer is not None and answer.item_violations is not None and answer.body is body
        return self._responses.check(check, status, body, answer.item_violations if checked else None)

    def item_errors(self, shape: str, item: Any) -> list[tuple[str, str]]:
        """R7 for one achievement of ``shape`` ("V1" or "V2"): (pointer inside the item,
        message) of each schema finding, [] when it is valid. The dataset store's item check."""
        return self._responses.item_errors(shape, item)

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
                "R8", "method", _name(method), ERROR, f"the method {shown(method)} is not an HTTP token",
                "invalid-method")]))
        for where, text in (("path", path), ("query", query_string)):
            if not text.isascii() and not _utf8(text):
                # mitmproxy hands over bytes that are not UTF-8 as lone surrogates: unreadable.
                return self._finish(self._other(method, path, "", violations + [Violation(
                    "R8", where, "", ERROR, f"the request {where} is not valid UTF-8", "invalid-encoding")]))
        entry, match = self._compiled.match(path)
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
            except Invalid as bad:
                violations.append(Violation("R8", "path", name, ERROR, bad.message, bad.code))

        fields: dict[str, Any] = dict(op.defaults)
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
            except Invalid as bad:
                violations.append(Violation("R8", "query", name, ERROR, bad.message, bad.code))
        if TOKEN in params:
            fields["continuation_token"] = params[TOKEN]
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
            violations += check_body(op, body, path_params)

        check = RequestCheck(op.endpoint, violations, path_params=path_params,
                             title_ids=fields.get("title_ids"),
                             bad_title_ids=any(v.name == "titleId" for v in violations))
        if "xuid" in path_params and op.endpoint != EP_UPDATE:
            contracts = self._compiled.contracts
            contract = headers.get(CONTRACT_HEADER)
            key = (contract if contract is not None else self._compiled.contract_default or "").strip()
            shape, rarity = contracts.get(key, (None, False))
            if shape is None:
                violations.append(Violation(
                    "R6", "header", CONTRACT_HEADER, WARNING,
                    f"contract version {shown(contract or '')} is not one of "
                    f"{', '.join(sorted(contracts))}; the answer is an empty list", "contract-version"))
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
        if user is None or self._compiled.user_parsers is None:
            return check
        parse_xuid, parse_titles = self._compiled.user_parsers
        try:
            check.path_params["xuid"] = parse_xuid(user.group(1))
        except Invalid:
            return check
        raw = query_params(query_string).get("titleId") if query_string else None
        if raw is not None:
            try:
                check.title_ids = parse_titles(raw)
            except Invalid:
                check.bad_title_ids = True
        return check

    @staticmethod
    def _finish(check: RequestCheck) -> RequestCheck:
        """The R8 status: the strongest of the errors' (model.R8_PRECEDENCE)."""
        found = {r8_status(v) for v in check.violations if v.severity == ERROR}
        check.status = max(found, key=R8_PRECEDENCE.index) if found else None
        return check

    def _locale_list(self, value: str) -> tuple[str, ...]:
        """The Accept-Language value's locales, through a bounded cache: values of at most
        MAX_CACHED_HEADER_CHARS characters are kept (1,024 of them), longer ones parsed each time
        they come."""
        if len(value) > MAX_CACHED_HEADER_CHARS:
            return parse_accept_language(value)
        locales = self._locales.get(value)
        if locales is None:
            if len(self._locales) >= _LOCALES_CACHED:
                self._locales.clear()
            locales = self._locales[value] = parse_accept_language(value)
        return locales
