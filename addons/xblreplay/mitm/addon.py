"""The mitmproxy addon: thin glue between mitmproxy flows and the xblreplay core.

Only traffic for achievements.xboxlive.com is touched; everything else passes through.
Options are declared in ``load()`` from the table in ``proxy/options.py``, which also checks their
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
from typing import Any

from mitmproxy import command, ctx, exceptions, http
from mitmproxy.proxy import server_hooks

from .. import answers, bounds
from ..faults import effect
from ..mode import Mode
from ..model import HOST
from ..proxy import Configuration, FlowState, Policy, build, close_log, control, exchange_secrets, judge, log_exchange, shown_url
from ..proxy import options as xopts
from ..proxy.options import ConfigError
from .translate import lowercase_headers, make_response, pretty_host, pretty_url, reply_of

logger = logging.getLogger("xblreplay")

OUR_OPTIONS = xopts.NAMES
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


class Achievements:
    def __init__(self) -> None:
        self.policy = Policy()  # holds the configuration in force (None: requests get 502)
        self.running_ = False
        self.broken: str | None = None  # why there is no configuration in force (requests get 502)
        self.values: dict[str, Any] | None = None  # our option values last configured from
        self.option_errors: dict[str, str] = {}  # start-up values mitmproxy was given that are bad
        self._flows: weakref.WeakKeyDictionary[http.HTTPFlow, FlowState] = weakref.WeakKeyDictionary()
        # Flows for the host whose headers are in and whose request hook has not run: the id of
        # their client connection (see server_connect).
        self._unhooked: weakref.WeakKeyDictionary[http.HTTPFlow, str] = weakref.WeakKeyDictionary()
        self._held_stream: str | None = None  # the stream_large_bodies this addon set
        self._large_bytes = 0  # bytes of large bodies seen since the cycle collector last ran
        self.control_token, said = control.token_from_env()  # None: control requests are refused
        if said:
            logger.warning(said)

    # The configuration in force, part by part.
    config = property(lambda self: self.policy.config)
    settings = property(lambda self: self.config and self.config.settings)
    validator = property(lambda self: self.config and self.config.validator)
    replayer = property(lambda self: self.config and self.config.replayer)
    faults = property(lambda self: self.config and self.config.faults)
    log = property(lambda self: self.config and self.config.log)
    recorder = property(lambda self: self.config and self.config.recorder)
    mode = property(lambda self: self.config.mode if self.config else Mode.REPLAY)
    upstream = property(lambda self: self.config and self.config.upstream)

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
            self._configure(build(xopts.settings(values), self.config))
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

    def _configure(self, config: Configuration) -> None:
        """Puts a configuration built whole in force."""
        self.policy.config = config
        self._hold_stream(ctx.options)
        config.announce()

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

    def running(self) -> None:
        self.running_ = True
        # mitmproxy ignores a `--set` of an option nobody declares; say so, with the nearest name.
        for name in sorted(set(ctx.options.deferred) - set(self.option_errors)):
            logger.warning(f"xblreplay: {xopts.unknown_option(name, ctx.options.keys())} (ignored)")

    # ------------------------------------------------------------------- hooks
    def _to_service(self) -> bool:
        """Whether requests for the host go to the service itself (a forwarding mode without
        achievements_upstream), the one place a request body mitmproxy streams may go."""
        config = self.policy.config  # read once: every request for the host asks
        return (config is not None and config.validator is not None and not self.broken and config.mode.forwards
                and config.upstream is None)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        # A request body over stream_large_bodies (achievements_max_body) is streamed to the host
        # the client named before the request hook runs: in replay, or with achievements_upstream,
        # it must go nowhere. A Content-Length says so now; a body that outgrows the bound as it
        # arrives is stopped at server_connect. The error hook logs both.
        host = pretty_host(flow.request)
        if host == control.CONTROL_HOST and flow.request.stream:
            flow.kill()  # a control request is answered here, never streamed anywhere
        if host != HOST or self._to_service():
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
        address = data.server.address
        named = str(address[0]).lower().rstrip(".") if address else ""
        if named == control.CONTROL_HOST:
            data.server.error = f"xblreplay: {control.CONTROL_HOST} is answered by the proxy itself"
            return
        if self._to_service():
            return
        to_host = named == HOST
        streaming = any(client == data.client.id and flow.request.stream for flow, client in list(self._unhooked.items()))
        if to_host or streaming:
            data.server.error = (f"xblreplay: a request for {HOST} is not sent on in {self.mode} mode"
                                 + (" with achievements_upstream" if self.upstream else "")
                                 + " before the addon has read it")

    async def request(self, flow: http.HTTPFlow) -> None:
        self._unhooked.pop(flow, None)
        headers = lowercase_headers(flow.request.headers)  # read once for the whole hook
        host = pretty_host(flow.request, headers)
        if host == control.CONTROL_HOST:
            reply = control.answer(self.config, self.control_token, flow.request.method, flow.request.path, headers)
            flow.response = http.Response.make(reply.status, json.dumps(reply.body), {"content-type": "application/json"})
            return
        if host != HOST:
            return
        try:
            await self._answer_request(flow, headers)
        finally:
            if flow.response is not None and flow.request.method.upper() == "HEAD":
                # mitmproxy sends an answer's body whatever the method: to HEAD the addon's
                # answers (any of them) go without one, their headers as they are.
                flow.response.raw_content = b""

    async def _answer_request(self, flow: http.HTTPFlow, headers: dict[str, str]) -> None:
        if self.broken or self.validator is None:
            # No configuration in force: fail closed, whatever the mode was meant to be.
            why = f"xblreplay misconfigured: {self.broken or 'no configuration loaded'}"
            flow.response = make_response(answers.proxy_error(502, why), [])
            return
        try:
            await self._request(flow, headers)
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

    async def _request(self, flow: http.HTTPFlow, headers: dict[str, str]) -> None:
        req = flow.request
        state = self.policy.start(req.method, pretty_url(req, headers), headers, req.raw_content or None,
                                  req.timestamp_start)
        self._flows[flow] = state
        outcome = await self.policy.decide(state, req.raw_content or None, bool(req.stream))
        if outcome.answer is not None:
            flow.response = make_response(outcome.answer, outcome.warnings)
        elif outcome.drops:
            flow.kill()
            self._log(flow, state, None)
        elif outcome.forwards:
            self._forward(flow, state)

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

    def response(self, flow: http.HTTPFlow):
        self._collect_after(flow)
        state: FlowState | None = self._flows.pop(flow, None)  # the flow is done
        if state is not None:
            self._restore(flow, state)
        if state is None or flow.response is None:
            return
        resp = flow.response
        reply = reply_of(resp)
        altered = judge(self.config, state, reply, lambda: resp.content)
        if altered is not None:
            resp.content = altered
        log_exchange(self.config, state, resp.status_code, reply.headers.get("retry-after"))
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

    def error(self, flow: http.HTTPFlow) -> None:
        self._unhooked.pop(flow, None)
        state: FlowState | None = self._flows.pop(flow, None)
        if state is not None:
            self._restore(flow, state)
        if state is not None and not effect(state.fault).drops:
            self._log(flow, state, None)
        elif state is None and flow.request.stream and pretty_host(flow.request) == HOST:
            self._refused_request(flow)

    def _refused_request(self, flow: http.HTTPFlow) -> None:
        """Logs a request for the host whose body outgrew achievements_max_body where it could
        not be streamed (replay, achievements_upstream): it was refused unread."""
        req = flow.request
        state = self.policy.refused_unread(req.method, req.pretty_url, lowercase_headers(req.headers))
        if state is not None:
            self._log(flow, state, None)

    def _log(self, flow: http.HTTPFlow, state: FlowState, status: int | None) -> None:
        retry_after = flow.response.headers.get("retry-after") if flow.response is not None else None
        log_exchange(self.config, state, status, retry_after)

    def done(self) -> None:
        if self.config is not None:
            self.config.close_recorder()
            print("xblreplay summary: " + json.dumps(close_log(self.config), separators=(",", ":")), flush=True)

    # ---------------------------------------------------------------- commands
    @command.command("achievements.reload")
    def reload(self) -> None:
        """Reload cassettes and rules (refused, keeping what is in force, when they are broken)."""
        try:
            self._apply(force=True)
        except exceptions.OptionsError as e:
            raise exceptions.CommandError(str(e)) from None

    @command.command("achievements.reset")
    def reset(self) -> str:
        """Start afresh from the cassettes as loaded: progress updates undone, throttle windows,
        call patterns and the fault sequence started again (what is left, as JSON)."""
        if self.config is None:
            raise exceptions.CommandError(f"xblreplay: no configuration in force ({self.broken})")
        return json.dumps(control.reset(self.config), separators=(",", ":"))

    @command.command("achievements.summary")
    def summary(self) -> str:
        """The validation summary so far, as JSON."""
        return json.dumps(self.log.summary() if self.log else {}, separators=(",", ":"))
