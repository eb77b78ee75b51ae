"""One exchange as the proxy sees it, in plain data: what is known of a request between hooks
(:class:`FlowState`), its response (:class:`Reply`), and the :class:`~..recording.Exchange` the
recorder is handed (:func:`exchange`, for live traffic and flow files alike)."""

from __future__ import annotations

import functools
import time
import weakref
from dataclasses import dataclass, field
from datetime import datetime

from ..diff import Comparison
from ..memo import Memo
from ..model import Answer, RequestCheck, Violation
from ..recording import Exchange
from ..redact import (
    Removal, SecretPattern, header_secrets, pair_secrets, redact_url, secret_pattern, split_query, written_url,
)
from ..vlog import wire_url


@dataclass(frozen=True, slots=True)
class Reply:
    """A response as the proxy reads it."""

    status: int
    headers: dict[str, str]  # names lowercase
    raw: bytes | None  # the body as it came, before Content-Encoding decoding
    streamed: bool  # sent on to the client as it came, never held
    ended: float | None  # when it was received (epoch seconds)


@dataclass
class FlowState:
    """What the proxy knows about one request between hooks. Kept by the addon, not in
    flow.metadata: mitmproxy serialises metadata when it saves flows (-w, mitmweb)."""

    check: RequestCheck
    method: str
    url: str
    headers: dict[str, str]  # the request's, names lowercase
    started: float  # time.monotonic() when the request hook ran
    sent_at: float = 0.0  # when the client sent the request (epoch seconds)
    source: str = "upstream"
    answer: Answer | None = None
    fault: str | None = None
    violations: list[Violation] = field(default_factory=list)
    parsed: tuple | None = None  # (JSON body,) once parsed
    asked: tuple | None = None  # scheme, host, port, path, Host of a request sent to achievements_upstream
    redactions: list[Removal] = field(default_factory=list)  # removed from the recorded body
    body: tuple | None = None  # (the response body decoded within achievements_max_body,) once read
    unread: tuple[str, str] | None = None  # (code, why) when the response body is not read
    too_deep: bool = False  # the response body is JSON nested too deep to read
    recorded: bool = False  # handed to the recorder
    not_recorded: str = ""  # why a recording mode did not record it (the log's not_recorded)
    comparison: Comparison | None = None  # diff mode: the cassettes' answer, then the verdict
    _seen: tuple | None = None  # (the exchange's SecretPattern or None, its logged URL) once found

    def secrets(self) -> SecretPattern | None:
        """The exchange's secrets, found once per flow for every line written about it."""
        return self._written()[0]

    def logged_url(self) -> str:
        """The URL as the validation log writes it: allow-listed, the exchange's secrets removed."""
        return self._written()[1]

    def _written(self) -> tuple[SecretPattern | None, str]:
        if self._seen is None:
            self._seen = written_forms(self.url, self.headers)
        return self._seen


# Requests whose header values are longer than this (in characters, together) have their
# secrets found each time: the cache holds at most 256 sets of headers, and their secrets.
CACHED_HEADER_CHARS = 8192


def written_forms(url: str, headers: dict[str, str]) -> tuple[SecretPattern | None, str]:
    """(the exchange's secrets, its URL as the log writes it). A client sends the same headers,
    with the same Authorization, again and again while its URLs change (a paging client): the
    secrets of the headers, and their SecretPattern, are kept for the 256 sets of headers seen
    last, since finding them (a shape check of every header) costs more than the rest of the log
    line. The URL's query is split once, for its secrets and for the URL as written; a query of
    the contract's parameters only (a paging client's) has none, and the headers' SecretPattern
    is the exchange's. The written forms of the last URLs of that kind are kept too (a client
    asking for one URL again and again)."""
    part = _header_part(headers)
    kept = _URLS.get(url)
    if kept is not None and kept[0] is part.mark:
        return part.secrets, kept[1]
    before, pairs = split_query(url)
    in_query = pair_secrets(pairs) if pairs else None
    if in_query:
        secrets = secret_pattern({**part.found, **in_query})
        return secrets, written_url(before, pairs, secrets)
    written = written_url(before, pairs, part.secrets)
    if part.mark is not None and len(url) <= KEPT_URL_CHARS:
        _URLS.put(url, (part.mark, written))
    return part.secrets, written


def exchange_secrets(url: str, headers: dict[str, str]) -> SecretPattern | None:
    """The exchange's secrets (from its URL and request headers, names lowercase), searched in
    every line the proxy writes about it."""
    return written_forms(url, headers)[0]


class _HeaderSecrets:
    """The secrets of one set of request headers and their SecretPattern; ``mark`` (a weak
    reference to it, None when it is not kept) is what a kept URL remembers of it."""

    __slots__ = ("found", "secrets", "mark", "__weakref__")

    def __init__(self, headers: dict[str, str], kept: bool) -> None:
        self.found = header_secrets(headers)
        self.secrets = secret_pattern(self.found)
        self.mark = weakref.ref(self) if kept else None


def _header_part(headers: dict[str, str]) -> _HeaderSecrets:
    """The secrets of the request headers: the same object for the same headers while the 256
    sets seen last are kept."""
    global _last_part
    last_headers, last = _last_part
    if headers == last_headers:  # the client of the last request again: no key to build
        return last
    if sum(map(len, headers.values())) > CACHED_HEADER_CHARS:
        return _HeaderSecrets(headers, kept=False)  # found each time, never kept
    part = _kept_header_secrets(tuple(headers.items()))
    _last_part = (dict(headers), part)
    return part


@functools.lru_cache(maxsize=256)
def _kept_header_secrets(items: tuple[tuple[str, str], ...]) -> _HeaderSecrets:
    return _HeaderSecrets(dict(items), kept=True)


_last_part: tuple[dict[str, str] | None, _HeaderSecrets | None] = (None, None)
# Written URLs by URL, with the mark of the headers' secrets they were written under: emptied
# when full; longer URLs, and URLs whose query holds secrets, are written each time.
KEPT_URLS = 1024
_URLS = Memo(KEPT_URLS)
KEPT_URL_CHARS = 512


def shown_url(url: str, secrets: SecretPattern | None) -> str:
    """A request's URL as an event-log line shows it: allow-listed, secrets removed."""
    return wire_url(redact_url(url, secrets))


def exchange(method: str, url: str, request_headers: dict[str, str], sent_at: float, reply: Reply,
             body: bytes, recorded_at: datetime | None = None) -> Exchange:
    """The exchange the recorder is handed: ``body`` decoded, the latency from the request's
    sending to the reply's end (now when it has none); ``recorded_at`` None stamps it now."""
    ended = reply.ended or time.time()
    return Exchange(method, wire_url(url), request_headers, reply.status, reply.headers, body,
                    reply.headers.get("content-type", ""), max(0.0, (ended - sent_at) * 1000.0), recorded_at)
