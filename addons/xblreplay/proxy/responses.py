"""What the proxy does with a response before the client gets it: reads its body within
achievements_max_body, checks it against the contract, records it, and alters it for a fault;
what was found is left in the exchange's :class:`FlowState` for the log."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .. import bounds, diff
from ..faults import effect
from ..model import EP_DETAIL, EP_LIST, WARNING, Violation
from ..recording import TOO_LARGE, UnreadableBody, body_removals, decode_body, recorded_interaction
from .configuration import Configuration
from .state import FlowState, Reply, exchange, shown_url

logger = logging.getLogger("xblreplay")


def judge(config: Configuration, state: FlowState, reply: Reply, content: Callable[[], bytes]) -> bytes | None:
    """Checks and records the response; returns the body a fault replaces it with (None: it
    goes on as it is; ``content`` reads the body as it came, decoded). A failure of the proxy's
    own is logged and noted in the exchange's violations: the client gets the response as it is."""
    try:
        return _judge(config, state, reply, content)
    except Exception as exc:
        # The client gets what the upstream (or replay) gave; the log says what was not done.
        logger.exception("xblreplay: internal error reading the answer to %s", shown_url(state.url, state.secrets()))
        problem = f"xblreplay internal error reading the response: {type(exc).__name__}"
        state.violations = (state.violations or list(state.check.violations)) + [
            Violation("limits", "response", "", WARNING, problem, "internal-error")]
        if records(config, state) and not state.recorded:
            state.not_recorded = problem
        return None


def records(config: Configuration, state: FlowState) -> bool:
    """Whether the exchange is one the recorder takes (the service's answer, in a recording mode)."""
    return state.source == "upstream" and config.recorder is not None


def _judge(config: Configuration, state: FlowState, reply: Reply, content: Callable[[], bytes]) -> bytes | None:
    violations = list(state.check.violations)
    if state.answer is not None:
        violations += [v for v in state.answer.violations if v not in violations]
    if reply.streamed:
        # mitmproxy streamed it (over stream_large_bodies, held at achievements_max_body): it
        # went to the client as it came, and was never held to be read.
        state.unread = (TOO_LARGE, f"body over achievements_max_body ({config.settings.max_body} bytes) "
                                   "as received: streamed to the client")
        if effect(state.fault).body is not None:
            state.fault = None  # already sent whole
    if reply.status == 200 and config.settings.check_responses and state.check.endpoint in (EP_LIST, EP_DETAIL):
        violations += _checked_response(config, state, reply)
    if records(config, state):
        _record(config, state, reply)
    if state.comparison is not None:
        diff.judge(state.comparison, state.check.query, reply.status, lambda: _live_body(config, state, reply),
                   config.diff_rules)
    if state.unread is not None:
        code, why = state.unread
        violations.append(Violation("limits", "response", "body", WARNING,
                                    f"response {why}: forwarded as received; not parsed, checked or recorded", code))
        if records(config, state):
            state.not_recorded = why
    elif state.too_deep:
        violations.append(Violation("limits", "response", "body", WARNING,
                                    "response body is JSON nested too deep to read: not checked"
                                    + ("; recorded as text" if state.recorded else ""), "json-too-deep"))
    altered = config.faults.body(state.fault, content) if state.fault else None
    state.violations = violations
    return altered


def _checked_response(config: Configuration, state: FlowState, reply: Reply) -> list[Violation]:
    """R7 of a 200 achievements body. A page the engine gives again (the same page asked again)
    is the same answer, checked when it was first sent."""
    answer, query = state.answer, state.check.query
    as_read = (state.check.endpoint, query.shape if query is not None else None)
    if answer is not None and answer.checked is not None and answer.checked[0] == as_read:
        return answer.checked[1]
    body = _json_body(config, state, reply)
    if state.unread is not None or state.too_deep:
        return []
    try:
        with bounds.depth_guard():
            found = config.validator.check_response(state.check, reply.status, reply.headers, body, answer)
    except bounds.TooDeep:
        state.too_deep = True
        return []
    if answer is not None and answer.page is not None:
        answer.checked = (as_read, found)
    return found


def _body(config: Configuration, state: FlowState, reply: Reply) -> bytes | None:
    """The response body decoded from its Content-Encoding within achievements_max_body,
    once per flow (never mitmproxy's unbounded decoding); None when it is not read
    (``state.unread`` says why)."""
    if state.body is None and state.unread is None:
        try:
            state.body = (decode_body(reply.raw, reply.headers.get("content-encoding"), config.settings.max_body),)
        except UnreadableBody as exc:
            state.unread = (exc.code, exc.reason)
    return state.body[0] if state.body is not None else None


def _json_body(config: Configuration, state: FlowState, reply: Reply) -> Any:
    """The response's JSON body (None when it is not JSON or not read), parsed once per flow."""
    if state.answer is not None and state.answer.is_json:
        # the proxy's own answer: its page (items encoded, checked as the engine served them), or its body
        return state.answer.page if state.answer.page is not None else state.answer.body
    if state.parsed is None:
        body = _body(config, state, reply)
        state.parsed = (None,)
        if body is not None:
            try:
                state.parsed = (bounds.json_loads(body or b"null"),)
            except bounds.TooDeep:
                state.too_deep = True
            except ValueError:  # not JSON (UnicodeDecodeError included)
                pass
    return state.parsed[0]


def _live_body(config: Configuration, state: FlowState, reply: Reply) -> tuple[Any, str]:
    """Diff mode: the service's body as the comparison reads it (JSON parsed once per flow; the
    bytes when it is not JSON) and why it was not read ("" when it was)."""
    parsed = _json_body(config, state, reply)
    if state.unread is not None:
        return None, state.unread[1]
    if state.too_deep:
        return None, "JSON nested too deep to read"
    return (parsed if parsed is not None else state.body[0]), ""


def _record(config: Configuration, state: FlowState, reply: Reply) -> None:
    body = _body(config, state, reply)
    if body is None:
        return  # not recorded: the log says why
    recorded = exchange(state.method, state.url, state.headers, state.sent_at, reply, body)
    config.recorder.record_exchange(recorded)
    state.recorded = True
    if config.mode.answers_offline and config.replayer is not None and reply.status == 200:
        # Replay goes on with exactly what the cassette now holds (the body parsed once).
        parsed = state.parsed if state.parsed and state.parsed[0] is not None else None
        interaction, _secrets, kept = recorded_interaction(recorded, parsed)
        config.replayer.add_interaction(interaction)
        state.redactions = kept.removals
    else:
        state.redactions = body_removals(recorded)
    for removal in state.redactions:
        logger.warning("xblreplay: removed from the recorded body of %s at %s: %s",
                       shown_url(state.url, state.secrets()), removal.path or "(text body)", removal.what)
