"""One exchange as the proxy sees it, in plain data: what is known of a request between hooks
(:class:`FlowState`), its response (:class:`Reply`), and the :class:`~..recording.Exchange` the
recorder is handed (:func:`exchange`, for live traffic and flow files alike)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from ..model import Answer, RequestCheck, Violation
from ..recording import Exchange
from ..redact import Removal, SecretPattern, redact_url, request_secrets, secret_pattern
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
    _secrets: tuple | None = None  # (the exchange's SecretPattern or None,) once found

    def secrets(self) -> SecretPattern | None:
        """The exchange's secrets, found once per flow for every line written about it."""
        if self._secrets is None:
            self._secrets = (exchange_secrets(self.url, self.headers),)
        return self._secrets[0]


def exchange_secrets(url: str, headers: dict[str, str]) -> SecretPattern | None:
    """The exchange's secrets (from its URL and request headers, names lowercase), searched in
    every line the proxy writes about it."""
    return secret_pattern(request_secrets(url, headers))


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
