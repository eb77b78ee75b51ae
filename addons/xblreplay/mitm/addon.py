"""The mitmproxy addon: thin glue between mitmproxy flows and the xblreplay core.

Only traffic for achievements.xboxlive.com is touched; everything else passes through.
Options are declared in ``load()`` from the table in ``options.py``, which also checks their
values. A bad value at start-up stops mitmdump with one clear line (an error logged during
start-up makes mitmdump exit); at run time it is refused and the configuration in force stays.
Without a valid configuration every request for the host is answered 502: nothing is forwarded.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from mitmproxy import command, ctx, exceptions, http
from mitmproxy.proxy import server_hooks

from .. import answers, bounds
from . import options as xopts
from ..cassette import CassetteError
from ..faults import FaultInjector, effect, load_profile
from ..mode import Mode
from ..model import EP_DETAIL, EP_LIST, HOST, WARNING, Answer, RequestCheck, Violation, violations_header
from .options import ConfigError, Settings
from ..traffic import CallPatterns, Throttle, caller_key, load_limits, retry_after_seconds
from ..recording import TOO_LARGE, RecorderProcess, UnreadableBody, body_removals, decode_body, recorded_interaction
from ..redact import Removal, SecretPattern, redact_url, request_secrets, secret_pattern
from ..replay import Replayer
from ..contract import Validator
from ..vlog import ValidationLog, wire_url

logger = logging.getLogger("xblreplay")

OUR_OPTIONS = xopts.NAMES
# Answers in replay-or-record that mean "the cassette cannot answer this": forward and record.
RECORD_CODES = frozenset({"coverage", "no-dataset", "not-recorded"})
# How long stopping the proxy waits for the recorder child; it finishes writing on its own after.
RECORDER_CLOSE_S = 3.0
# How long one flow is held back, at most, while the recorder is behind (see _drain).
RECORDER_WAIT_S = 30.0
# mitmproxy's flows hold reference cycles, so a finished flow (and its body) goes only when the
# cycle collector runs, which counts objects, not bytes: after twice achievements_max_body of
# large bodies (1 MiB or more) the addon runs it, so dead flows never pile up their bodies.
LARGE_BODY = 1 << 20


try:  # how mitmproxy keeps the text of a `--set` for an option not declared yet
    from mitmproxy.optmanager import _UnconvertedStrings
except ImportError:  # pragma: no cover
    _UnconvertedStrings = ()


def _set_texts(value: Any) -> list[str] | None:
    """The texts of a pending `--set`, or None for a typed value (mitmproxy's config.yaml)."""
    return list(value.val) if _UnconvertedStrings and isinstance(value, _UnconvertedStrings) else None


def _one_line(text: str) -> str:
    return " ".join(text.splitlines())


@dataclass
class FlowState:
    """What the addon knows about one flow between hooks. Kept by the addon, not in
    flow.metadata: mitmproxy serialises metadata when it saves flows (-w, mitmweb)."""

    check: RequestCheck
    url: str
    headers: dict[str, str]  # the request's, names lowercase
    started: float
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


def lowercase_headers(headers: http.Headers) -> dict[str, str]:
    """Header names (lowercase) to values, in one pass over the header lines: repeated names are
    joined with ", ", names and values decoded as mitmproxy does (UTF-8, undecodable bytes as
    surrogate escapes). mitmproxy's ``Headers.items()`` gives the same dict but looks every name
    up again, which takes seconds for a request with thousands of header lines."""
    found: dict[str, list[str]] = {}
    for raw_name, raw_value in headers.fields:
        found.setdefault(raw_name.decode("utf-8", "surrogateescape").lower(), []).append(
            raw_value.decode("utf-8", "surrogateescape"))
    return {name: values[0] if len(values) == 1 else ", ".join(values) for name, values in found.items()}


def make_response(answer: Answer, extra: list[Violation]) -> http.Response:
    headers: list[tuple[str, str]] = list(answer.headers)
    names = {k.lower() for k, _ in headers}
    if answer.body is not None and not isinstance(answer.body, (bytes, bytearray)) and "content-type" not in names:
        headers.append(("Content-Type", "application/json; charset=utf-8"))
    warnings = [v for v in answer.violations + extra if v.severity == "warning"]
    if warnings and "x-xblreplay-warning" not in names:
        headers.append(("X-Xblreplay-Warning", violations_header(warnings)))
    if answer.status >= 400 and answer.violations and "x-xblreplay-violations" not in names:
        headers.append(("X-Xblreplay-Violations", violations_header(answer.violations)))
    fields = [(k.encode("latin-1"), v.encode("utf-8")) for k, v in headers]
    return http.Response.make(answer.status, answer.body_bytes(), http.Headers(fields))


def exchange_secrets(url: str, headers: dict[str, str]) -> SecretPattern | None:
    """The exchange's secrets (from its URL and request headers, names lowercase), searched in
    every line the proxy writes about it."""
    return secret_pattern(request_secrets(url, headers))


def shown_url(url: str, secrets: SecretPattern | None) -> str:
    """A request's URL as an event-log line shows it: allow-listed, secrets removed."""
    return wire_url(redact_url(url, secrets))


def loaded_line(replayer: Replayer, seconds: float) -> str:
    """The start-up line saying what the cassettes gave."""
    infos = list(replayer.store.datasets())

    def n(count: int, what: str) -> str:
        return f"{count} {what}{'' if count == 1 else 's'}"

    return (f"xblreplay: loaded {n(replayer.files, 'file')}: {n(len(infos), 'dataset')}, "
            f"{n(sum(i.size for i in infos), 'achievement')}, {n(len(replayer.interactions), 'interaction')} "
            f"in {seconds:.2f} s")


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
        self.settings: Settings | None = None  # of the configuration in force
        self.mode = Mode.REPLAY
        self.running_ = False
        self.broken: str | None = None  # why there is no configuration in force (requests get 502)
        self.values: dict[str, Any] | None = None  # our option values last configured from
        self.option_errors: dict[str, str] = {}  # start-up values mitmproxy was given that are bad
        self._flows: weakref.WeakKeyDictionary[http.HTTPFlow, FlowState] = weakref.WeakKeyDictionary()
        # Flows for the host whose headers are in and whose request hook has not run: the id of
        # their client connection (see server_connect).
        self._unhooked: weakref.WeakKeyDictionary[http.HTTPFlow, str] = weakref.WeakKeyDictionary()
        self._cap_said = False  # the warning that tracking caps forget callers was given
        self._held_stream: str | None = None  # the stream_large_bodies this addon set
        self._large_bytes = 0  # bytes of large bodies seen since the cycle collector last ran

    # ----------------------------------------------------------------- options
    def load(self, loader) -> None:
        opts = loader.master.options
        for o in xopts.OPTIONS:
            loader.add_option(o.name, o.type, o.default, o.help, choices=list(o.choices) if o.choices else None)
        self._lazy(opts)
        # mitmproxy keeps `--set` values of options not declared yet and parses them right after
        # this hook; one it cannot parse (achievements_seed=abc) raises in a task nobody awaits,
        # and every option of the script is silently dropped. Ours are checked here instead: the
        # good ones go back typed, the bad ones (and misspelt names) become start-up errors.
        values, self.option_errors = xopts.take_startup_values(opts.deferred, _set_texts, opts.keys())
        for name in xopts.NAMES & opts.deferred.keys():
            del opts.deferred[name]
        opts.deferred.update(values)

    def configure(self, updated: set[str]) -> None:
        if "connection_strategy" in updated and self._lazy(ctx.options):
            logger.warning("xblreplay: connection_strategy stays lazy: an eager one dials the host "
                           "before the addon has answered")
        if updated & OUR_OPTIONS:
            self._apply()
        if "stream_large_bodies" in updated and self.settings is not None:
            self._hold_stream(ctx.options)

    def _apply(self, force: bool = False) -> None:
        values = {name: getattr(ctx.options, name) for name in OUR_OPTIONS}
        if values == self.values and not force:
            return  # nothing of ours changed (e.g. mitmproxy restoring values after a refusal)
        errors = self.option_errors
        if self.values is not None:  # an option given a new value has lost its bad start-up one
            errors = {k: v for k, v in errors.items() if k not in values or values[k] == self.values[k]}
        try:
            if errors:
                raise ConfigError("; ".join(errors.values()))
            self._configure(xopts.settings(values))
        except ConfigError as e:
            reason = _one_line(str(e))
            if self.running_:
                # Refused: mitmproxy puts the previous values back, and what was in force stays
                # (a configuration, or the 502 of none).
                raise exceptions.OptionsError(f"xblreplay: {reason}") from None
            self.values, self.option_errors, self.broken = values, errors, reason
            # At start-up: one clear line; mitmdump exits on an error logged during start-up.
            logger.error(f"xblreplay: {reason}")
            return
        self.values, self.option_errors, self.broken = values, errors, None

    def _configure(self, s: Settings) -> None:
        """Build the whole new configuration first; swap it in only when all of it is valid."""
        contract = s.rules / "achievements.openapi.yaml"
        if not contract.is_file():
            raise ConfigError(f"achievements_rules: rules file not found: {contract}")
        validator = self._load("achievements_rules", Validator.from_rules, s.rules)
        if s.records:  # replay-or-record starts from an empty directory too
            try:
                s.cassettes.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise ConfigError(f"achievements_cassettes: cannot create {s.cassettes}: {e.strerror}") from None
        replayer, loaded_in = None, 0.0
        if s.replays or s.cassettes.exists():
            started = time.monotonic()
            try:
                replayer = Replayer.from_dir(validator, s.cassettes, strict_coverage=s.strict_coverage,
                                             now=(lambda: s.now) if s.now else None)
            except CassetteError as e:
                raise ConfigError(f"achievements_cassettes: {e}") from None
            except ValueError as e:  # a hand-written dataset the engine cannot expand
                raise ConfigError(f"achievements_cassettes: {e}") from None
            loaded_in = time.monotonic() - started
        limits = self._load("achievements_rules", load_limits, s.rules / "limits.yaml")
        faults = None
        if s.faults:
            profile = self._load("achievements_faults", load_profile, s.faults, s.rules)
            faults = FaultInjector(profile, s.seed)
        log = self.log
        if log is None or str(log.path or "") != str(s.log or ""):
            try:
                log = ValidationLog(s.log)
            except OSError as e:
                raise ConfigError(f"achievements_log: cannot open {s.log}: {e.strerror}") from None

        # Everything is valid: swap it in.
        if log is not self.log and self.log is not None:
            self.log.close()
        if s.records:
            if (self.recorder is None or self.recorder.cassette_dir != s.cassettes
                    or self.recorder.backlog_limit != 2 * s.max_body):
                self._close_recorder()
                self.recorder = RecorderProcess(s.cassettes, on_error=lambda e: logger.warning(f"xblreplay: not recorded: {e}"),
                                                rules_dir=s.rules, backlog_limit=2 * s.max_body)
        else:
            self._close_recorder()
        self.mode, self.validator, self.upstream, self.replayer = s.mode, validator, s.upstream, replayer
        self.settings = s
        self.throttle = Throttle(limits) if s.throttle else None
        self.patterns = CallPatterns(limits)
        self.faults, self.log = faults, log
        self._hold_stream(ctx.options)
        if replayer is not None:
            logger.info(loaded_line(replayer, loaded_in))
            if not s.mode.forwards and replayer.files == 0:
                logger.warning(f"xblreplay: no cassette files in {s.cassettes}: replay has nothing to answer from")

    @staticmethod
    def _lazy(opts) -> bool:
        """Never open a connection before a request needs one: replay must not touch the network,
        and forwarded traffic goes to achievements_upstream, not to the host the client named.
        Set when the options are declared, whatever our configuration turns out to be; True
        when it was something else."""
        if "connection_strategy" in opts and opts.connection_strategy != "lazy":
            opts.connection_strategy = "lazy"
            return True
        return False

    def _hold_stream(self, opts) -> None:
        """mitmproxy streams a body over stream_large_bodies instead of holding it: held at
        achievements_max_body, a body too large to read never sits in memory (a response with no
        Content-Length is streamed once that much has arrived), and one small enough to read is
        never streamed past the addon. A value set by hand is replaced, with a warning."""
        want = str(self.settings.max_body)
        if "stream_large_bodies" not in opts or opts.stream_large_bodies == want:
            return
        if opts.stream_large_bodies not in (None, self._held_stream):
            logger.warning(f"xblreplay: stream_large_bodies stays at achievements_max_body ({want}): a body "
                           "over it is never read, a body under it is never streamed")
        self._held_stream = want
        opts.stream_large_bodies = want

    @staticmethod
    def _load(option: str, fn, *args):
        try:
            return fn(*args)
        except Exception as e:
            raise ConfigError(f"{option}: {e}") from None

    def _close_recorder(self) -> None:
        if self.recorder is not None:
            self.recorder.close(RECORDER_CLOSE_S)
            self.recorder = None

    def running(self) -> None:
        self.running_ = True
        # mitmproxy ignores a `--set` of an option nobody declares; say so, with the nearest name.
        for name in sorted(set(ctx.options.deferred) - set(self.option_errors)):
            logger.warning(f"xblreplay: {xopts.unknown_option(name, ctx.options.keys())} (ignored)")

    # ------------------------------------------------------------------- hooks
    def _to_service(self) -> bool:
        """Whether requests for the host go to the service itself (a forwarding mode without
        achievements_upstream), the one place a request body mitmproxy streams may go."""
        return (self.validator is not None and not self.broken and self.mode.forwards
                and self.upstream is None)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        # A request body over stream_large_bodies (achievements_max_body) is streamed to the host
        # the client named before the request hook runs: in replay, or with achievements_upstream,
        # it must go nowhere. A Content-Length says so now; a body that outgrows the bound as it
        # arrives is stopped at server_connect. The error hook logs both.
        if flow.request.pretty_host != HOST or self._to_service():
            return
        if flow.request.stream:
            flow.kill()
        else:
            self._unhooked[flow] = flow.client_conn.id

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        # In replay or with achievements_upstream a request for the host goes out only once the
        # request hook has sent it to achievements_upstream. A connection to the host itself, or
        # one opened for a client whose request for the host is being streamed before that hook
        # (its body outgrew achievements_max_body as it arrived), is refused: it would reach the
        # service (or mitmproxy's upstream proxy) with a request nobody has read.
        if self._to_service():
            return
        address = data.server.address
        to_host = bool(address) and str(address[0]).lower().rstrip(".") == HOST
        streaming = any(client == data.client.id and flow.request.stream for flow, client in list(self._unhooked.items()))
        if to_host or streaming:
            data.server.error = (f"xblreplay: a request for {HOST} is not sent on in {self.mode} mode"
                                 + (" with achievements_upstream" if self.upstream else "")
                                 + " before the addon has read it")

    async def request(self, flow: http.HTTPFlow) -> None:
        self._unhooked.pop(flow, None)
        if flow.request.pretty_host != HOST:
            return
        try:
            await self._answer_request(flow)
        finally:
            if flow.response is not None and flow.request.method.upper() == "HEAD":
                # mitmproxy sends an answer's body whatever the method: to HEAD the addon's
                # answers (any of them) go without one, their headers as they are.
                flow.response.raw_content = b""

    async def _answer_request(self, flow: http.HTTPFlow) -> None:
        if self.broken or self.validator is None:
            # No configuration in force: fail closed, whatever the mode was meant to be.
            why = f"xblreplay misconfigured: {self.broken or 'no configuration loaded'}"
            flow.response = make_response(answers.proxy_error(502, why), [])
            return
        try:
            await self._request(flow)
        except Exception as exc:
            # A fault of the proxy must never let a request through to the service (replay is
            # offline); the client gets a 500 that says so, the log gets the traceback.
            logger.exception("xblreplay: internal error answering %s", shown_url(flow.request.pretty_url,
                                       exchange_secrets(flow.request.pretty_url, lowercase_headers(flow.request.headers))))
            reason = f"xblreplay internal error: {type(exc).__name__}"
            state = self._flows.get(flow)
            if state is not None:  # logged as the proxy's own answer, never recorded as the service's
                state.source, state.answer = "error", None
            flow.response = make_response(answers.proxy_error(500, reason), [])

    async def _request(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        headers = lowercase_headers(req.headers)
        url = req.pretty_url
        check = self.validator.check_request(req.method, url, headers, req.raw_content or None)
        state = FlowState(check=check, url=url, headers=headers, started=time.monotonic())
        self._flows[flow] = state
        if req.stream:
            # mitmproxy has streamed the body (over achievements_max_body) to the service already:
            # the request is forwarded as sent, unread.
            check.violations.append(Violation(
                "limits", "request", "body", WARNING,
                f"request body over achievements_max_body ({self.settings.max_body} bytes): streamed to the "
                "service as sent, not read", TOO_LARGE))
            return

        if self.throttle is not None:
            throttled = self.throttle.check(*caller_key(check))
            if self.throttle.forgotten_at_cap and not self._cap_said:
                self._cap_said = True
                logger.warning("xblreplay: more than tracking.max_callers (rules/limits.yaml) callers are "
                               "active: the least recently seen are forgotten and start afresh")
            if throttled is not None:
                return self._answer(flow, state, throttled)

        if self.faults is not None:
            recorded = self.replayer.recorded_latency(check) if self.replayer else None
            decision = self.faults.decide(check.endpoint, recorded)
            if decision.delay_s > 0:
                await asyncio.sleep(decision.delay_s)  # never blocks other flows
            state.fault = decision.kind  # a fault that alters the body is applied to the response
            fault = effect(decision.kind)
            if fault.answer is not None:
                return self._answer(flow, state, fault.answer(decision))
            if fault.drops:
                flow.kill()
                self._log(flow, state, None)
                return

        if not self.mode.answers_offline:
            if self.mode.validates_only and not check.ok and self.settings.strict:
                return self._answer(flow, state, answers.invalid_request(check))
            return self._forward(flow, state)
        assert self.replayer is not None
        answer = self.replayer.answer(check, req.method, url, req.raw_content or None)
        if self.mode.forwards_uncovered and check.ok and any(v.code in RECORD_CODES for v in answer.violations):
            return self._forward(flow, state)
        self._answer(flow, state, answer)

    def _forward(self, flow: http.HTTPFlow, state: FlowState) -> None:
        if self.upstream is not None:
            scheme, host, port, prefix = self.upstream
            req = flow.request
            state.asked = (req.scheme, req.host, req.port, req.path, req.host_header)
            req.scheme, req.host, req.port = scheme, host, port
            if prefix:
                req.path = prefix + req.path
            flow.metadata["xblreplay_upstream"] = f"{scheme}://{host}:{port}{prefix}"

    @staticmethod
    def _restore(flow: http.HTTPFlow, state: FlowState) -> None:
        """Once answered, a flow sent to achievements_upstream shows the request the client made:
        that is what mitmproxy displays and saves (-w), and what `xblreplay import` records."""
        if state.asked is not None:
            req = flow.request
            req.scheme, req.host, req.port, req.path = state.asked[:4]
            req.host_header = state.asked[4]
            state.asked = None

    def _answer(self, flow: http.HTTPFlow, state: FlowState, answer: Answer) -> None:
        state.source = answer.source
        state.answer = answer
        warnings = [] if answer.source == "error" else [v for v in state.check.violations if v.severity == "warning"]
        flow.response = make_response(answer, warnings)

    def response(self, flow: http.HTTPFlow):
        self._collect_after(flow)
        state: FlowState | None = self._flows.pop(flow, None)  # the flow is done
        if state is not None:
            self._restore(flow, state)
        if state is None or flow.response is None:
            return
        try:
            self._judge(flow, state)
        except Exception as exc:
            # The client gets what the upstream (or replay) gave; the log says what was not done.
            logger.exception("xblreplay: internal error reading the answer to %s", shown_url(state.url, state.secrets()))
            problem = f"xblreplay internal error reading the response: {type(exc).__name__}"
            state.violations = (state.violations or list(state.check.violations)) + [
                Violation("limits", "response", "", WARNING, problem, "internal-error")]
            if self._records(state) and not state.recorded:
                state.not_recorded = problem
        self._log(flow, state, flow.response.status_code)
        if state.recorded and self.recorder is not None and self.recorder.backlog() > self.recorder.backlog_limit:
            return self._drain()  # mitmproxy awaits it: this flow waits, the event loop does not
        return None

    async def _drain(self) -> None:
        """Holds a recorded flow back while the recorder has more than its backlog limit (twice
        achievements_max_body) of bodies waiting (an upstream answering large bodies faster than
        they can be written): memory stays bounded and nothing is dropped. At most
        RECORDER_WAIT_S per flow."""
        deadline = time.monotonic() + RECORDER_WAIT_S
        while self.recorder is not None and self.recorder.backlog() > self.recorder.backlog_limit:
            if time.monotonic() > deadline:
                logger.warning("xblreplay: the recorder is %d MiB behind; answering without waiting for it",
                               self.recorder.backlog() >> 20)
                return
            await asyncio.sleep(0.02)

    def _collect_after(self, flow: http.HTTPFlow) -> None:
        size = len(flow.request.raw_content or b"") + len(flow.response.raw_content or b"" if flow.response else b"")
        if size >= LARGE_BODY:
            self._large_bytes += size
            if self._large_bytes >= 2 * (self.settings.max_body if self.settings else bounds.MAX_BODY_BYTES):
                self._large_bytes = 0
                gc.collect()  # the flows done before this one, and their bodies

    def _records(self, state: FlowState) -> bool:
        return state.source == "upstream" and self.recorder is not None

    def _judge(self, flow: http.HTTPFlow, state: FlowState) -> None:
        """Checks, records and (for a fault) alters the response; what was found goes to the log."""
        resp = flow.response
        violations = list(state.check.violations)
        if state.answer is not None:
            violations += [v for v in state.answer.violations if v not in violations]
        if resp.stream:
            # mitmproxy streamed it (over stream_large_bodies, held at achievements_max_body): it
            # went to the client as it came, and was never held to be read.
            state.unread = (TOO_LARGE, f"body over achievements_max_body ({self.settings.max_body} bytes) "
                                       "as received: streamed to the client")
            if effect(state.fault).body is not None:
                state.fault = None  # already sent whole
        check_responses = self.settings.check_responses
        if resp.status_code == 200 and check_responses and state.check.endpoint in (EP_LIST, EP_DETAIL):
            body = self._json_body(state, resp)
            if state.unread is None and not state.too_deep:
                try:
                    with bounds.depth_guard():
                        violations += self.validator.check_response(state.check, resp.status_code, resp.headers, body)
                except bounds.TooDeep:
                    state.too_deep = True
        if self._records(state):
            self._record(flow, state)
        if state.unread is not None:
            code, why = state.unread
            violations.append(Violation("limits", "response", "body", WARNING,
                                        f"response {why}: forwarded as received; not parsed, checked or recorded", code))
            if self._records(state):
                state.not_recorded = why
        elif state.too_deep:
            violations.append(Violation("limits", "response", "body", WARNING,
                                        "response body is JSON nested too deep to read: not checked"
                                        + ("; recorded as text" if state.recorded else ""), "json-too-deep"))
        altered = self.faults.body(state.fault, lambda: resp.content) if state.fault else None
        if altered is not None:
            resp.content = altered
        state.violations = violations

    def _body(self, state: FlowState, resp: http.Response) -> bytes | None:
        """The response body decoded from its Content-Encoding within achievements_max_body,
        once per flow (never mitmproxy's unbounded decoding); None when it is not read
        (``state.unread`` says why)."""
        if state.body is None and state.unread is None:
            try:
                state.body = (decode_body(resp.raw_content, resp.headers.get("content-encoding"),
                                          self.settings.max_body),)
            except UnreadableBody as exc:
                state.unread = (exc.code, exc.reason)
        return state.body[0] if state.body is not None else None

    def _json_body(self, state: FlowState, resp: http.Response) -> Any:
        """The response's JSON body (None when it is not JSON or not read), parsed once per flow."""
        if state.answer is not None and not isinstance(state.answer.body, (bytes, bytearray)):
            return state.answer.body
        if state.parsed is None:
            body = self._body(state, resp)
            state.parsed = (None,)
            if body is not None:
                try:
                    state.parsed = (bounds.json_loads(body or b"null"),)
                except bounds.TooDeep:
                    state.too_deep = True
                except ValueError:  # not JSON (UnicodeDecodeError included)
                    pass
        return state.parsed[0]

    def _record(self, flow: http.HTTPFlow, state: FlowState) -> None:
        req, resp = flow.request, flow.response
        body = self._body(state, resp)
        if body is None:
            return  # not recorded: the log says why
        latency_ms = (resp.timestamp_end or time.time()) * 1000 - req.timestamp_start * 1000
        exchange = (req.method, wire_url(state.url), state.headers, resp.status_code,
                    lowercase_headers(resp.headers), body,
                    resp.headers.get("content-type", ""), latency_ms)
        self.recorder.record(*exchange)
        state.recorded = True
        if self.mode.answers_offline and self.replayer is not None and resp.status_code == 200:
            # Replay goes on with exactly what the cassette now holds (the body parsed once).
            parsed = state.parsed if state.parsed and state.parsed[0] is not None else None
            interaction, _secrets, recorded = recorded_interaction(*exchange, None, parsed)
            self.replayer.add_interaction(interaction)
            state.redactions = recorded.removals
        else:
            state.redactions = body_removals(*exchange[1:3], *exchange[4:7])
        for removal in state.redactions:
            logger.warning("xblreplay: removed from the recorded body of %s at %s: %s",
                           shown_url(state.url, state.secrets()), removal.path or "(text body)", removal.what)

    def error(self, flow: http.HTTPFlow) -> None:
        self._unhooked.pop(flow, None)
        state: FlowState | None = self._flows.pop(flow, None)
        if state is not None:
            self._restore(flow, state)
        if state is not None and not effect(state.fault).drops:
            self._log(flow, state, None)
        elif state is None and flow.request.stream and flow.request.pretty_host == HOST:
            self._refused_request(flow)

    def _refused_request(self, flow: http.HTTPFlow) -> None:
        """Logs a request for the host whose body outgrew achievements_max_body where it could
        not be streamed (replay, achievements_upstream): it was refused unread."""
        if self.log is None or self.validator is None:
            return
        req = flow.request
        headers = lowercase_headers(req.headers)
        check = self.validator.check_request(req.method, req.pretty_url, headers, None)
        check.violations[:] = [v for v in check.violations if v.location != "body"]  # it was not read
        check.violations.append(Violation(
            "limits", "request", "body", WARNING,
            f"request body over achievements_max_body ({self.settings.max_body} bytes): refused unread "
            f"(in {self.mode} mode{' with achievements_upstream' if self.upstream else ''} a request for "
            "the host goes out only once the addon has read it)", TOO_LARGE))
        state = FlowState(check=check, url=req.pretty_url, headers=headers, started=time.monotonic(), source="error")
        self._log(flow, state, None)

    def _log(self, flow: http.HTTPFlow, state: FlowState, status: int | None) -> None:
        # A reset, cut or emptied answer is logged as the fault, whoever produced the answer
        # (upstream in validate/record, dataset or interaction in replay); 503/500 are "fault".
        source = f"fault:{state.fault}" if state.fault and state.source != "fault" else state.source
        violations = state.violations or list(state.check.violations)
        if self.patterns is not None:
            retry_after = flow.response.headers.get("retry-after") if flow.response is not None else None
            violations += self.patterns.observe(
                *caller_key(state.check), state.check.key, status or 0, retry_after_seconds(retry_after),
            )
        latency_ms = (time.monotonic() - state.started) * 1000
        # Both lines are written from the entry the log scrubbed of the exchange's secrets.
        secrets = state.secrets()
        entry = self.log.write(
            method=flow.request.method, url=redact_url(state.url, secrets), mode=self.mode,
            endpoint=state.check.endpoint, status=status, source=source, latency_ms=latency_ms,
            violations=violations, reason=state.answer.reason if state.answer else "",
            redactions=state.redactions, secrets=secrets, not_recorded=state.not_recorded,
        )
        if violations:
            level = logging.WARNING if any(v.severity == "error" for v in violations) else logging.INFO
            logger.log(level, "xblreplay %s %s -> %s: %s", entry["method"], entry["url"], status,
                       "; ".join(f"{v['rule']} {v['name']}: {v['message']}" for v in entry["violations"]))

    def done(self) -> None:
        self._close_recorder()
        if self.log is not None:
            extra = None
            if self.patterns is not None:
                extra = {"call_patterns": self.patterns.summary(),
                         "forgotten_at_cap": {**self.patterns.forgotten_at_cap,
                                              "throttle": self.throttle.forgotten_at_cap if self.throttle else 0}}
            summary = self.log.close(extra)
            print("xblreplay summary: " + json.dumps(summary, separators=(",", ":")), flush=True)

    # ---------------------------------------------------------------- commands
    @command.command("achievements.reload")
    def reload(self) -> None:
        """Reload cassettes and rules (refused, keeping what is in force, when they are broken)."""
        try:
            self._apply(force=True)
        except exceptions.OptionsError as e:
            raise exceptions.CommandError(str(e)) from None

    @command.command("achievements.summary")
    def summary(self) -> str:
        """The validation summary so far, as JSON."""
        return json.dumps(self.log.summary() if self.log else {}, separators=(",", ":"))
