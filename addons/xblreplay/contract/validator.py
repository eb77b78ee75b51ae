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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from operator import attrgetter
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from ..bounds import MAX_CACHED_HEADER_CHARS, MAX_KEY_CHARS
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
from .compiled import TOKEN, Compiled, Operation, PathEntry
from .document import read_document
from .languages import parse_accept_language
from .parameters import Invalid, shown
from ..memo import Memo
from .request import (
    CONTRACT_HEADER,
    contract_part,
    key_of,
    parse_authorization,
    query_params,
    request_language,
    split_url,
)
from .responses import ResponseChecker
from .schema_errors import MAX_RESPONSE_VIOLATIONS

_METHOD = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+\Z")  # an RFC 9110 token
_USER_PATH = re.compile(r"/users/xuid\(([^)/]*)\)(?:/|\Z)", re.IGNORECASE)
_LOCALES_CACHED = 1024  # Accept-Language values remembered before the cache is cleared
# Readings kept for the next request with the same parts: whole requests (exact repeats), header
# pairs (contract version, Accept-Language) and (method, path) routes. A key is at most
# MAX_KEY_CHARS of method, URL (or path) and body, and MAX_CACHED_HEADER_CHARS per header value.
_RESULTS_KEPT = 256
_UNSEEN = object()  # a request the results memo has not seen (it notes a first sighting as None)
_HEADERS_KEPT = 256
_ROUTES_KEPT = 1024
_MISSING_AUTH = Violation("R8", "header", "Authorization", ERROR, "Authorization is missing",
                          "missing-authorization")
_MALFORMED_AUTH = Violation("R8", "header", "Authorization", ERROR,
                            "Authorization is not of the form XBL3.0 x=<userhash>;<token>",
                            "malformed-authorization")


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


class _HeaderFacts:
    """What a contract-version and an Accept-Language value say: the contract's shape and rarity
    (R6; ``unsupported``: the warning of a version the contract does not know), the preference
    list, the language and the key's contract part as sent."""

    __slots__ = ("contract", "shape", "rarity", "unsupported", "locales", "language", "key_part")

    def __init__(self, contract: str | None, shape: str | None, rarity: bool, unsupported: Violation | None,
                 locales: tuple[str, ...], language: str, key_part: str) -> None:
        self.contract, self.shape, self.rarity, self.unsupported = contract, shape, rarity, unsupported
        self.locales, self.language, self.key_part = locales, language, key_part


class _Route:
    """A (method, path) of the document: its path entry and operation (None when it has none) and
    the path parameters read, with the violations of those that do not read."""

    __slots__ = ("entry", "op", "path_params", "violations")

    def __init__(self, entry: PathEntry | None, op: Operation | None) -> None:
        self.entry, self.op = entry, op
        self.path_params: dict[str, Any] = {}
        self.violations: list[Violation] = []


def _kept(value: str | None) -> bool:
    """Whether a header value may be part of a memo key (bounds.MAX_CACHED_HEADER_CHARS)."""
    return value is None or len(value) <= MAX_CACHED_HEADER_CHARS


def _copier(cls: type) -> Any:
    """A shallow copy of a ``cls`` dataclass instance: its fields in order, to its constructor."""
    values = attrgetter(*(f.name for f in fields(cls)))
    return lambda obj: cls(*values(obj))


_COPY_QUERY = _copier(AchievementsQuery)
_COPIES = {cls: _copier(cls) for cls in (RequestCheck, MethodCheck)}


def _issued(reading: RequestCheck, authorization: str | None, kept: bool) -> RequestCheck:
    """The check of a request ``reading`` read, with the part its Authorization plays: the first
    violation and 401 when it is missing or malformed (R8), the userhash of the query when it is
    well-formed. ``kept``: the reading is kept for later requests, and the check is a copy with
    violations, path parameters and query of its own (callers add violations to a check)."""
    check = _COPIES[type(reading)](reading) if kept else reading
    credentials = parse_authorization(authorization)
    if credentials is None:
        bad = _MALFORMED_AUTH if authorization else _MISSING_AUTH
        check.violations = [bad, *reading.violations]
        check.status = max(filter(None, (reading.status, r8_status(bad))), key=R8_PRECEDENCE.index)
    elif kept:
        check.violations = reading.violations.copy()
    if kept:
        check.path_params = dict(reading.path_params)
        if reading.query is not None:
            check.query = _COPY_QUERY(reading.query)
    if check.query is not None:
        check.query.userhash = credentials[0] if credentials else None
    return check


class Validator:
    """Validates requests (R8 and the R3/R5/R6 warnings) and response bodies (R7)."""

    def __init__(self, document: dict[str, Any]) -> None:
        self._compiled = Compiled(document)
        self._responses = ResponseChecker(self._compiled.schemas)
        self._locales = Memo(_LOCALES_CACHED)
        self._headers = Memo(_HEADERS_KEPT)
        self._routes = Memo(_ROUTES_KEPT)
        self._results = Memo(_RESULTS_KEPT)

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
        checked = answer is not None and answer.item_violations is not None and body is (answer.page or answer.body)
        return self._responses.check(check, status, body, answer.item_violations if checked else None)

    def item_errors(self, shape: str, item: Any) -> list[tuple[str, str]]:
        """R7 for one achievement of ``shape`` ("V1" or "V2"): (pointer inside the item,
        message) of each schema finding, [] when it is valid."""
        return self._responses.item_errors(shape, item)

    def items_errors(self, shape: str, items: Sequence[Any]) -> list[list[tuple[str, str]]]:
        """:meth:`item_errors` of each of ``items`` (an item, or its JSON text as bytes), in one
        call when all are valid. The dataset store's item check."""
        return self._responses.items_errors(shape, items)

    def check_request(self, method: str, url: str, headers: dict[str, str],
                      body: bytes | None = None) -> RequestCheck:
        """The one reading of a request (``headers``: names lowercase): endpoint, parameters,
        violations, the R8 status and "the same request" key.

        Each call returns a check of its own (callers add violations to it). A request whose
        method, URL and body are at most MAX_KEY_CHARS long and whose header values are within
        MAX_CACHED_HEADER_CHARS is noted the first time it comes and its reading kept the second
        (:data:`_RESULTS_KEPT` requests); later ones are copies of that reading with their own
        Authorization read."""
        contract, language = headers.get(CONTRACT_HEADER), headers.get("accept-language")
        authorization = headers.get("authorization")
        memo, known = None, _UNSEEN
        if len(method) + len(url) + len(body or b"") <= MAX_KEY_CHARS and _kept(contract) and _kept(language):
            memo = (method, url, contract, language, body)
            known = self._results.get(memo, _UNSEEN)
            if known is not None and known is not _UNSEEN:
                return _issued(known, authorization, kept=True)
        reading = self._read(method, url, contract, language, body)
        if memo is None:
            return _issued(reading, authorization, kept=False)
        if known is None:  # the second time: kept from now on
            self._results.put(memo, reading)
            return _issued(reading, authorization, kept=True)
        # The first time only the request is noted: a client paging through a listing sends
        # each URL once, and its readings need no copies.
        self._results.put(memo, None)
        return _issued(reading, authorization, kept=False)

    def _read(self, method: str, url: str, contract: str | None, language: str | None,
              body: bytes | None) -> RequestCheck:
        """A request read as if its Authorization were well-formed: all that the other headers,
        the method, the URL and the body say (:func:`_issued` adds the Authorization's part)."""
        path, query_string = split_url(url)
        facts = self._header_facts(contract, language)
        params = query_params(query_string) if query_string else {}
        check = self._finish(self._check_parts(method, path, query_string, params, facts, body))
        check.key, check.language = key_of(method, path, params, facts.key_part), facts.language
        return check

    def _check_parts(self, method: str, path: str, query_string: str, params: dict[str, str],
                     facts: "_HeaderFacts", body: bytes | None) -> RequestCheck:
        violations: list[Violation] = []
        if not _METHOD.match(method):
            return self._other(method, path, {}, violations + [Violation(
                "R8", "method", _name(method), ERROR, f"the method {shown(method)} is not an HTTP token",
                "invalid-method")])
        for where, text in (("path", path), ("query", query_string)):
            if not text.isascii() and not _utf8(text):
                # mitmproxy hands over bytes that are not UTF-8 as lone surrogates: unreadable.
                return self._other(method, path, {}, violations + [Violation(
                    "R8", where, "", ERROR, f"the request {where} is not valid UTF-8", "invalid-encoding")])
        route = self._route(method, path)
        entry, op = route.entry, route.op
        if op is None:
            check = self._other(method, path, params, violations)
            if entry is None:
                return check
            # A path of the contract asked with a method it does not document (R8 405).
            check = MethodCheck(check.endpoint, violations, path_params=check.path_params,
                                title_ids=check.title_ids, bad_title_ids=check.bad_title_ids,
                                allow=entry.allow, method=method.upper())
            violations.append(Violation(
                "R8", "method", _name(method), ERROR,
                f"{_name(method)} is not a method of {entry.template}; allowed: {', '.join(entry.allow)}",
                "method-not-allowed"))
            return check

        path_params = dict(route.path_params)
        violations += route.violations

        fields: dict[str, Any] = dict(op.defaults)
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
            if facts.unsupported is not None:
                violations.append(facts.unsupported)
            check.query = AchievementsQuery(
                xuid=path_params["xuid"], contract=facts.contract, shape=facts.shape, rarity=facts.rarity,
                locales=facts.locales, userhash=None, **fields)
        return check

    def _route(self, method: str, path: str) -> "_Route":
        """The document's path and operation of (method, path), with the path's parameters read."""
        route = self._routes.get((method, path))
        if route is None:
            entry, match = self._compiled.match(path)
            op = entry.operations.get(method.upper()) if entry is not None else None
            route = _Route(entry, op)
            for name, key, parse in op.path if op is not None else ():
                try:
                    route.path_params[key] = parse(match.group(name))
                except Invalid as bad:
                    route.violations.append(Violation("R8", "path", name, ERROR, bad.message, bad.code))
            if len(method) + len(path) <= MAX_KEY_CHARS:
                self._routes.put((method, path), route)
        return route

    def _header_facts(self, contract: str | None, language: str | None) -> "_HeaderFacts":
        """What the contract-version and Accept-Language headers say, read once per pair of
        values within MAX_CACHED_HEADER_CHARS."""
        facts = self._headers.get((contract, language))
        if facts is None:
            contracts = self._compiled.contracts
            version = (contract if contract is not None else self._compiled.contract_default or "").strip()
            shape, rarity = contracts.get(version, (None, False))
            unsupported = None if shape is not None else Violation(
                "R6", "header", CONTRACT_HEADER, WARNING,
                f"contract version {shown(contract or '')} is not one of "
                f"{', '.join(sorted(contracts))}; the answer is an empty list", "contract-version")
            facts = _HeaderFacts(contract, shape, rarity, unsupported,
                                 self._locale_list(language) if language else (),
                                 request_language({"accept-language": language}),
                                 contract_part(contract))
            if _kept(contract) and _kept(language):
                self._headers.put((contract, language), facts)
        return facts

    def _other(self, method: str, path: str, params: dict[str, str], violations: list[Violation]) -> RequestCheck:
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
        raw = params.get("titleId")
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
            locales = self._locales.put(value, parse_accept_language(value))
        return locales
