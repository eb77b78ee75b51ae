"""The mitmproxy addon: thin glue between mitmproxy flows and the xblreplay core.

Only traffic for achievements.xboxlive.com is touched; everything else passes through.
Options are declared in ``load()`` and checked in ``configure()``; a bad value at start-up
stops mitmdump with one clear line (an error logged during start-up makes mitmdump exit).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlsplit

from mitmproxy import command, ctx, exceptions, http

from . import DEFAULT_RULES_DIR
from .cassette import CassetteError
from .faults import FaultInjector, fault_answer, load_profile, truncate_body
from .model import EP_DETAIL, EP_LIST, HOST, Answer, RequestCheck, Violation, violations_header
from .patterns import CallPatterns
from .recorder import RecorderProcess
from .redact import redact_request_headers, redact_url
from .replay import Replayer, parse_now
from .throttle import Throttle, load_limits
from .validator import Validator, error_answer
from .vlog import ValidationLog

logger = logging.getLogger("xblreplay")

MODES = ("validate", "record", "replay", "replay-or-record")
OUR_OPTIONS = {
    "achievements_mode", "achievements_cassettes", "achievements_upstream", "achievements_log",
    "achievements_strict", "achievements_rules", "achievements_now", "achievements_strict_coverage",
    "achievements_throttle", "achievements_faults", "achievements_seed", "achievements_check_responses",
}
# Answers in replay-or-record that mean "the cassette cannot answer this": forward and record.
RECORD_CODES = frozenset({"coverage", "no-dataset", "not-recorded"})


class ConfigError(Exception):
    """A bad option value, reported as one line."""


@dataclass
class FlowState:
    """What the addon knows about one flow, kept in flow.metadata between hooks."""

    check: RequestCheck
    url: str
    headers: dict[str, str]  # the request's, names lowercase
    started: float
    source: str = "upstream"
    answer: Answer | None = None
    fault: str | None = None
    violations: list[Violation] = field(default_factory=list)
    parsed: tuple | None = None  # (JSON body,) once parsed


def caller_key(check: RequestCheck) -> tuple[int, str]:
    """(xuid, title) for rate limits and call patterns: the title is the request's titleId
    list, or '*' (see README, choices)."""
    q = check.query
    xuid = q.xuid if q is not None else check.path_params.get("xuid", 0)
    title = ",".join(str(t) for t in sorted(q.title_ids)) if q is not None and q.title_ids else "*"
    return xuid, title


def make_response(answer: Answer, extra: list[Violation]) -> http.Response:
    headers: list[tuple[str, str]] = list(answer.headers)
    if answer.body is not None and not isinstance(answer.body, (bytes, bytearray)):
        headers.append(("Content-Type", "application/json; charset=utf-8"))
    names = {k.lower() for k, _ in headers}
    warnings = [v for v in answer.violations + extra if v.severity == "warning"]
    if warnings and "x-xblreplay-warning" not in names:
        headers.append(("X-Xblreplay-Warning", violations_header(warnings)))
    if answer.status >= 400 and answer.violations and "x-xblreplay-violations" not in names:
        headers.append(("X-Xblreplay-Violations", violations_header(answer.violations)))
    fields = [(k.encode("latin-1"), v.encode("utf-8")) for k, v in headers]
    return http.Response.make(answer.status, answer.body_bytes(), http.Headers(fields))


class Achievements:
    def __init__(self) -> None:
        self.validator: Validator | None = None
        self.replayer: Replayer | None = None
        self.recorder: RecorderProcess | None = None
        self.log: ValidationLog | None = None
        self.throttle: Throttle | None = None
        self.patterns: CallPatterns | None = None
        self.faults: FaultInjector | None = None
        self.upstream: tuple[str, str, int, str] | None = None
        self.mode = "replay"
        self.running_ = False
        self.broken: str | None = None

    # ----------------------------------------------------------------- options
    def load(self, loader) -> None:
        loader.add_option(
            "achievements_mode", str, "replay",
            "validate: forward, judge, log. record: forward and record into cassettes. "
            "replay: answer offline from cassettes, never connect. replay-or-record: answer "
            "from cassettes when coverage allows, else forward and record.",
            choices=list(MODES),
        )
        loader.add_option("achievements_cassettes", str, "cassettes", "Cassette directory.")
        loader.add_option(
            "achievements_upstream", Optional[str], None,
            "Base URL that traffic for achievements.xboxlive.com is forwarded to instead of "
            "the real service (staging, tests), e.g. http://127.0.0.1:8080.",
        )
        loader.add_option(
            "achievements_log", Optional[str], None,
            "Path of the JSON Lines validation log. Unset: mitmproxy's event log only.",
        )
        loader.add_option(
            "achievements_strict", bool, False,
            "In validate mode, answer invalid requests with the R8 status instead of forwarding.",
        )
        loader.add_option("achievements_rules", str, str(DEFAULT_RULES_DIR), "The rules/ directory.")
        loader.add_option(
            "achievements_now", Optional[str], None,
            "The proxy clock for EndingSoon, as an ISO time (e.g. 2026-11-27T12:00:00Z). Unset: now.",
        )
        loader.add_option(
            "achievements_strict_coverage", bool, False,
            "R2: answer 404 instead of a partial answer when a query needs unrecorded titles.",
        )
        loader.add_option(
            "achievements_throttle", bool, False,
            "R10: emulate the service's rate limits (429 with Retry-After).",
        )
        loader.add_option(
            "achievements_faults", Optional[str], None,
            "Fault and latency profile: a name in rules/faults/ (flaky, outage, slow, mobile) or a path.",
        )
        loader.add_option(
            "achievements_seed", Optional[int], None,
            "Seed for the fault profile's randomness (default: the profile's seed).",
        )
        loader.add_option(
            "achievements_check_responses", bool, True,
            "R7: check every 200 achievements body (recorded or synthesised) against the schema.",
        )

    def configure(self, updated: set[str]) -> None:
        if not (updated & OUR_OPTIONS):
            return
        try:
            self._configure()
            self.broken = None
        except ConfigError as e:
            self.broken = str(e)
            if self.running_:
                raise exceptions.OptionsError(f"xblreplay: {e}") from None
            # At start-up: one clear line; mitmdump exits on an error logged during start-up.
            logger.error(f"xblreplay: {e}")

    def _configure(self) -> None:
        """Build the whole new configuration first; swap it in only when all of it is valid."""
        opts = ctx.options
        mode = opts.achievements_mode
        if mode not in MODES:
            raise ConfigError(f"unknown achievements_mode {mode!r}; choose one of {', '.join(MODES)}")
        rules = Path(opts.achievements_rules)
        contract = rules / "achievements.openapi.yaml"
        if not contract.is_file():
            raise ConfigError(f"rules file not found: {contract}")
        validator = self._load(Validator.from_rules, rules)
        upstream = self._parse_upstream(opts.achievements_upstream)
        try:
            now = parse_now(opts.achievements_now)
        except ValueError:
            raise ConfigError(f"achievements_now is not an ISO time: {opts.achievements_now!r}") from None
        cassettes = Path(opts.achievements_cassettes)
        replayer = None
        if mode in ("replay", "replay-or-record") or cassettes.exists():
            try:
                replayer = Replayer.from_dir(validator, cassettes, strict_coverage=opts.achievements_strict_coverage,
                                             now=(lambda: now) if now else None)
            except CassetteError as e:
                raise ConfigError(f"cassette {e}") from None
            except ValueError as e:  # a hand-written dataset the engine cannot expand
                raise ConfigError(f"cassette {e}") from None
        if mode in ("record", "replay-or-record"):
            try:
                cassettes.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise ConfigError(f"cannot create cassette directory {cassettes}: {e.strerror}") from None
        limits = self._load(load_limits, rules / "limits.yaml")
        faults = None
        if opts.achievements_faults:
            profile = self._load(load_profile, opts.achievements_faults, rules)
            faults = FaultInjector(profile, opts.achievements_seed)
        log = self.log
        if log is None or str(log.path or "") != str(opts.achievements_log or ""):
            try:
                log = ValidationLog(opts.achievements_log)
            except OSError as e:
                raise ConfigError(f"cannot open achievements_log {opts.achievements_log}: {e.strerror}") from None

        # Everything is valid: swap it in.
        if log is not self.log and self.log is not None:
            self.log.close()
        if mode in ("record", "replay-or-record"):
            if self.recorder is None or self.recorder.cassette_dir != cassettes:
                self._close_recorder()
                self.recorder = RecorderProcess(cassettes, on_error=lambda e: logger.warning(f"xblreplay: not recorded: {e}"))
        else:
            self._close_recorder()
        self.mode, self.validator, self.upstream, self.replayer = mode, validator, upstream, replayer
        self.throttle = Throttle(limits) if opts.achievements_throttle else None
        self.patterns = CallPatterns(limits)
        self.faults, self.log = faults, log
        # Never open a connection before a request needs one: replay must not touch the network,
        # and forwarded traffic goes to achievements_upstream, not to the host the client named.
        if "connection_strategy" in opts and opts.connection_strategy != "lazy":
            opts.connection_strategy = "lazy"

    @staticmethod
    def _load(fn, *args):
        try:
            return fn(*args)
        except Exception as e:
            raise ConfigError(str(e)) from None

    @staticmethod
    def _parse_upstream(value: str | None) -> tuple[str, str, int, str] | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"achievements_upstream must be an http(s) base URL, got {value!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return parts.scheme, parts.hostname, port, parts.path.rstrip("/")

    def _close_recorder(self) -> None:
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None

    def running(self) -> None:
        self.running_ = True

    # ------------------------------------------------------------------- hooks
    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.request.pretty_host != HOST or self.validator is None:
            return
        if self.broken:
            flow.response = http.Response.make(502, f"xblreplay misconfigured: {self.broken}".encode())
            return
        try:
            await self._request(flow)
        except Exception as exc:
            # A fault of the proxy must never let a request through to the service (replay is
            # offline); the client gets a 500 that says so, the log gets the traceback.
            logger.exception("xblreplay: internal error answering %s", redact_url(flow.request.pretty_url))
            reason = f"xblreplay internal error: {type(exc).__name__}"
            flow.response = http.Response.make(500, json.dumps({"errorCode": 500, "errorMessage": reason}).encode(),
                                               {"Content-Type": "application/json", "X-Xblreplay-Reason": reason})

    async def _request(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        headers = {k.lower(): v for k, v in req.headers.items()}
        url = req.pretty_url
        check = self.validator.check_request(req.method, url, headers, req.raw_content or None)
        state = FlowState(check=check, url=url, headers=headers, started=time.monotonic())
        flow.metadata["xblreplay"] = state

        if self.throttle is not None:
            throttled = self.throttle.check(*caller_key(check))
            if throttled is not None:
                return self._answer(flow, state, throttled)

        if self.faults is not None:
            recorded = self.replayer.recorded_latency(check) if self.replayer else None
            decision = self.faults.decide(check.endpoint, recorded)
            if decision.delay_s > 0:
                await asyncio.sleep(decision.delay_s)  # never blocks other flows
            if decision.kind in ("503", "500"):
                state.fault = decision.kind
                return self._answer(flow, state, fault_answer(decision))
            if decision.kind == "reset":
                state.fault = "reset"
                flow.kill()
                self._log(flow, state, None)
                return
            state.fault = decision.kind  # truncate / empty: applied to the response

        if self.mode == "validate":
            if not check.ok and ctx.options.achievements_strict:
                return self._answer(flow, state, error_answer(check))
            return self._forward(flow)
        if self.mode == "record":
            return self._forward(flow)
        assert self.replayer is not None
        answer = self.replayer.answer(check, req.method, url, req.raw_content or None)
        if self.mode == "replay-or-record" and check.ok and any(v.code in RECORD_CODES for v in answer.violations):
            return self._forward(flow)
        self._answer(flow, state, answer)

    def _forward(self, flow: http.HTTPFlow) -> None:
        if self.upstream is not None:
            scheme, host, port, prefix = self.upstream
            req = flow.request
            req.scheme, req.host, req.port = scheme, host, port
            if prefix:
                req.path = prefix + req.path

    def _answer(self, flow: http.HTTPFlow, state: FlowState, answer: Answer) -> None:
        state.source = answer.source
        state.answer = answer
        warnings = [] if answer.source == "error" else [v for v in state.check.violations if v.severity == "warning"]
        flow.response = make_response(answer, warnings)

    def response(self, flow: http.HTTPFlow) -> None:
        state: FlowState | None = flow.metadata.get("xblreplay")
        if state is None or flow.response is None:
            return
        resp = flow.response
        violations = list(state.check.violations)
        if state.answer is not None:
            violations += [v for v in state.answer.violations if v not in violations]
        check_responses = ctx.options.achievements_check_responses
        if resp.status_code == 200 and check_responses and state.check.endpoint in (EP_LIST, EP_DETAIL):
            body = self._json_body(state, resp)
            violations += self.validator.check_response(state.check, resp.status_code, resp.headers, body)
        if state.source == "upstream" and self.recorder is not None:
            self._record(flow, state)
        if state.fault == "truncate" and resp.content:
            resp.content = truncate_body(resp.content, self.faults.rng)
        elif state.fault == "empty":
            resp.content = b""
        state.violations = violations
        self._log(flow, state, resp.status_code)

    def _json_body(self, state: FlowState, resp: http.Response) -> Any:
        """The response's JSON body (None when it is not JSON), parsed once per flow."""
        if state.answer is not None and not isinstance(state.answer.body, (bytes, bytearray)):
            return state.answer.body
        if state.parsed is None:
            try:
                state.parsed = (json.loads(resp.get_content() or b"null"),)
            except (ValueError, UnicodeDecodeError):
                state.parsed = (None,)
        return state.parsed[0]

    def _record(self, flow: http.HTTPFlow, state: FlowState) -> None:
        req, resp = flow.request, flow.response
        latency_ms = (resp.timestamp_end or time.time()) * 1000 - req.timestamp_start * 1000
        self.recorder.record(
            req.method, state.url, state.headers, resp.status_code,
            {k.lower(): v for k, v in resp.headers.items()}, resp.get_content() or b"",
            resp.headers.get("content-type", ""), latency_ms,
        )
        if self.mode == "replay-or-record" and self.replayer is not None and resp.status_code == 200:
            self.replayer.add_interaction({
                "request": {"method": req.method, "url": state.url,
                            "headers": redact_request_headers(state.headers)},
                "response": {"status": 200, "body": self._json_body(state, resp)},
            })

    def error(self, flow: http.HTTPFlow) -> None:
        state: FlowState | None = flow.metadata.get("xblreplay")
        if state is not None and state.fault != "reset":
            self._log(flow, state, None)

    def _log(self, flow: http.HTTPFlow, state: FlowState, status: int | None) -> None:
        # A reset, cut or emptied answer is logged as the fault, whoever produced the answer
        # (upstream in validate/record, dataset or interaction in replay); 503/500 are "fault".
        source = f"fault:{state.fault}" if state.fault and state.source != "fault" else state.source
        violations = state.violations or list(state.check.violations)
        if self.patterns is not None:
            retry_after = flow.response.headers.get("retry-after") if flow.response is not None else None
            violations += self.patterns.observe(
                *caller_key(state.check), state.check.key,
                status or 0, float(retry_after) if retry_after and retry_after.isdigit() else None,
            )
        latency_ms = (time.monotonic() - state.started) * 1000
        entry = self.log.write(
            method=flow.request.method, url=redact_url(state.url), mode=self.mode,
            endpoint=state.check.endpoint, status=status, source=source, latency_ms=latency_ms,
            violations=violations, reason=state.answer.reason if state.answer else "",
        )
        if violations:
            level = logging.WARNING if any(v.severity == "error" for v in violations) else logging.INFO
            logger.log(level, "xblreplay %s %s -> %s: %s", entry["method"], entry["url"], status,
                       "; ".join(f"{v.rule} {v.name}: {v.message}" for v in violations))

    def done(self) -> None:
        self._close_recorder()
        if self.log is not None:
            extra = {"call_patterns": self.patterns.summary()} if self.patterns else None
            summary = self.log.close(extra)
            print("xblreplay summary: " + json.dumps(summary, separators=(",", ":")), flush=True)

    # ---------------------------------------------------------------- commands
    @command.command("achievements.reload")
    def reload(self) -> None:
        """Reload cassettes and rules."""
        self.configure(set(OUR_OPTIONS))

    @command.command("achievements.summary")
    def summary(self) -> str:
        """The validation summary so far, as JSON."""
        return json.dumps(self.log.summary() if self.log else {}, separators=(",", ":"))
