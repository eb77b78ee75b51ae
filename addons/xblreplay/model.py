"""Shared value types of the core (no mitmproxy import anywhere in the core).

Every part of xblreplay speaks in these types:

* the validator turns (method, url, headers) into a :class:`RequestCheck`
  holding the parsed :class:`AchievementsQuery` and a list of :class:`Violation`;
* the dataset engine turns an :class:`AchievementsQuery` into an :class:`Answer`;
* the addon turns an :class:`Answer` into a mitmproxy response and a log line.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache, partial
from typing import Any

import orjson

HOST = "achievements.xboxlive.com"

ERROR = "error"
WARNING = "warning"

# Endpoint names (RequestCheck.endpoint)
EP_LIST = "achievements"  # GET /users/xuid({xuid})/achievements
EP_DETAIL = "achievement-detail"  # GET /users/xuid({xuid})/achievements/{scid}/{id}
EP_UPDATE = "achievement-update"  # POST /users/xuid({xuid})/achievements/{scid}/update
EP_HISTORY = "title-history"  # GET /users/xuid({xuid})/history/titles
EP_OTHER = "other"  # any other path on the host

ORDERS = ("Unordered", "Title", "UnlockTime", "EndingSoon")
TYPES = ("Persistent", "Challenge")

# The .NET DateTime minimum: "never" / locked (R7).
NEVER = "0001-01-01T00:00:00.0000000Z"


@dataclass(frozen=True, slots=True)
class Violation:
    """One structured finding about a request or a response.

    rule      -- the emulation rule or contract part it comes from: "R2" … "R10",
                 "contract" (OpenAPI document), "response-schema" (R7 body check),
                 "call-pattern" (live call-pattern checks), "limits" (a bound on
                 hostile input: a body too large, undecodable or nested too deep).
    location  -- "path" | "query" | "header" | "body" | "response" | "traffic"
    name      -- the parameter, header or field (JSON pointer for bodies)
    severity  -- "error" | "warning"
    message   -- one human sentence, in API terms
    code      -- a short stable machine id, e.g. "invalid-integer", "unknown-parameter",
                 "conflicting-filters", "conflicting-paging", "coverage", "contract-version"
    """

    rule: str
    location: str
    name: str
    severity: str
    message: str
    code: str = ""

    def to_dict(self) -> dict[str, str]:
        d = {
            "rule": self.rule,
            "location": self.location,
            "name": self.name,
            "severity": self.severity,
            "message": self.message,
        }
        if self.code:
            d["code"] = self.code
        return d


def closest(name: str, known: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The known name nearest to a misspelt one (difflib), or None: the "did you mean" of option
    names and cassette keys."""
    found = difflib.get_close_matches(name, sorted(set(known)), n=1, cutoff=cutoff)
    return found[0] if found else None


def readable(text: str) -> str:
    """``text`` safe to encode as UTF-8: mitmproxy hands over bytes of a request that are not
    UTF-8 as lone surrogates (``surrogateescape``); they become ``\\udcXX`` escapes."""
    return text if text.isascii() else text.encode("utf-8", "backslashreplace").decode("utf-8")


# R8: the status an error calls for: 401 for the Authorization header, 405 for a method the path
# does not document, else 400. 401 wins over 405 and 400 (the service validates the token before
# routing, spec §1.3); 405 (routing found the path, not the method) wins over 400.
R8_PRECEDENCE = (400, 405, 401)


def r8_status(v: Violation) -> int:
    return 401 if v.location == "header" else 405 if v.code == "method-not-allowed" else 400


@cache
def contract_default(parameter: str) -> Any:
    """The ``default`` of a query parameter in the contract the package ships: what an
    :class:`AchievementsQuery` built without the validator takes (the validator fills the
    defaults of the document it was compiled from). The document is read on first use."""
    from .contract.document import query_defaults, shipped  # the contract package imports this module

    return query_defaults(shipped())[parameter]


def r7_item_violations(index: int, findings: Iterable[tuple[str, str]]) -> list[Violation]:
    """R7: the schema findings (pointer inside the item, message) of item ``index`` of an
    achievements body, as violations of the response."""
    return [Violation("R7", "response", f"/achievements/{index}{where}", ERROR, message, "response-schema")
            for where, message in findings]


def violations_header(violations: list[Violation] | tuple[Violation, ...]) -> str:
    """Compact JSON for the X-Xblreplay-Violations response header (R8)."""
    return json.dumps([v.to_dict() for v in violations], separators=(",", ":"), ensure_ascii=True)


@dataclass(slots=True)
class AchievementsQuery:
    """A parsed, validated GET /users/xuid({xuid})/achievements request.

    Values are canonical: enums in their documented PascalCase spelling, booleans as bool.
    """

    xuid: int
    title_ids: tuple[int, ...] | None = None  # None: every title (R3.1)
    types: frozenset[str] | None = None  # subset of TYPES; None: all types (R3.2)
    unlocked_only: bool = False
    possible_only: bool = False
    order_by: str = field(default_factory=partial(contract_default, "orderBy"))
    skip_items: int = field(default_factory=partial(contract_default, "skipItems"))
    max_items: int | None = None  # None: not sent, the page is default_page_size long (R5)
    default_page_size: int = field(default_factory=partial(contract_default, "maxItems"))
    continuation_token: str | None = None  # raw token as sent
    token_offset: int | None = None  # offset parsed from the token (R5 forms)
    contract: str | None = None  # raw x-xbl-contract-version value
    shape: str | None = "V1"  # "V1" | "V2" | None (unsupported version: empty 200, R6)
    rarity: bool = False  # contracts 3 (V1) and 4 (V2) keep recorded rarity (R6)
    locales: tuple[str, ...] = ()  # Accept-Language preference list, best first
    userhash: str | None = None  # from Authorization (never logged or stored raw)

    @property
    def start(self) -> int:
        """R5: the token wins over skipItems."""
        if self.token_offset is not None:
            return self.token_offset
        return self.skip_items

    @property
    def page_size(self) -> int:
        return self.default_page_size if self.max_items is None else self.max_items


@dataclass(slots=True)
class RequestCheck:
    """What the validator says about one request."""

    endpoint: str  # one of the EP_* names
    violations: list[Violation] = field(default_factory=list)
    status: int | None = None  # the R8 status (400/401/403/404) when the request is invalid
    query: AchievementsQuery | None = None  # set for EP_LIST (and EP_DETAIL/EP_HISTORY paging)
    path_params: dict[str, Any] = field(default_factory=dict)  # xuid, scid, achievement_id
    # The titleId list of any user path (recording files it by title): None when not sent;
    # bad_title_ids when sent but not a comma list of uint32.
    title_ids: tuple[int, ...] | None = None
    bad_title_ids: bool = False
    key: str = ""  # "the same request" (request.request_key): exact replay, recording, call patterns
    language: str = ""  # the Accept-Language as sent (request.request_language)

    @property
    def errors(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == ERROR]

    @property
    def ok(self) -> bool:
        return self.status is None


@dataclass
class Answer:
    """A response produced without the real service (replay, R8 errors, throttling, faults)."""

    status: int
    body: Any = None  # a JSON-able object, bytes, or None for an empty body (see `page`)
    headers: list[tuple[str, str]] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)  # warnings/diagnostics (R2, R9)
    source: str = "dataset"  # "dataset" | "interaction" | "error" | "throttle" | "fault"
    reason: str = ""  # R9: why this answer, in API terms ("" for a straightforward replay)
    # R7 of the body's achievements, when the dataset engine checked them as it served them:
    # the violations of each invalid item, in body order (the response check then checks only
    # the envelope). None: nobody checked them yet.
    item_violations: list[list[Violation]] | None = None
    # A page the engine assembled from items it encoded already (orjson.Fragment): the body as
    # sent is written from it, and ``body`` is read back from those bytes only when asked for
    # (the proxy never asks: it sends the bytes and checks the envelope).
    page: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    # R7 of the answer as sent, once the response check has read it: ((endpoint, shape), findings)
    checked: tuple[tuple[str, str | None], list[Violation]] | None = field(default=None, repr=False, compare=False)
    _sent: bytes | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def items_checked(self) -> bool:
        return self.item_violations is not None

    @property
    def is_json(self) -> bool:
        """Whether the body is JSON the proxy writes (not bytes sent as they are, nor empty)."""
        return self.page is not None or (self._body is not None and not isinstance(self._body, (bytes, bytearray)))

    def body_bytes(self) -> bytes:
        """The body as sent: compact JSON, non-ASCII as UTF-8, written by orjson. It is the bytes
        ``json.dumps(separators=(",", ":"), ensure_ascii=False)`` writes, but for the spelling of
        floats below 1e-4 (``1e-5`` for ``1e-05``: the same number). What orjson cannot write (an
        int beyond 64 bits, a key that is not a string) goes through json. A page is written
        once: the engine gives the same answer again for the same page asked again."""
        if self.page is not None:
            if self._sent is None:
                self._sent = orjson.dumps(self.page)
            return self._sent
        if self._body is None:
            return b""
        if isinstance(self._body, (bytes, bytearray)):
            return bytes(self._body)
        return compact_json(self._body)


def _answer_body(answer: Answer) -> Any:
    if answer._body is None and answer.page is not None:
        answer._body = orjson.loads(answer.body_bytes())
    return answer._body


def _set_answer_body(answer: Answer, value: Any) -> None:
    answer._body, answer._sent, answer.page = value, None, None


# ``body`` of a page is its bytes read back, on demand; setting it replaces the page.
Answer._body = None
Answer.body = property(_answer_body, _set_answer_body, doc="The body as a JSON-able object, bytes or None.")


def compact_json(value: Any) -> bytes:
    """``value`` as compact JSON in UTF-8 (no spaces, non-ASCII as it is), written by orjson; what
    orjson refuses (an int beyond 64 bits, a key that is not a string, a lone surrogate) is
    written by json, the same text but for the spelling of floats below 1e-4. A lone surrogate
    raises UnicodeEncodeError."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
