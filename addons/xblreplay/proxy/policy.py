"""What a request for the host gets, in the mode in force: it is read (validated), then
throttled, then given its fault, then answered offline, forwarded or refused.

The outcome is plain data (:class:`Outcome`); the addon carries it out on the flow.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from .. import answers
from ..diff import expect
from ..faults import effect
from ..model import WARNING, Answer, Violation
from ..recording import TOO_LARGE
from ..traffic import caller_key
from .configuration import Configuration
from .state import FlowState

logger = logging.getLogger("xblreplay")

# Answers in replay-or-record that mean "the cassette cannot answer this": forward and record.
RECORD_CODES = frozenset({"coverage", "no-dataset", "not-recorded"})


@dataclass(frozen=True)
class Outcome:
    """What is done with a request: answered by the proxy (``answer``, with the request's
    ``warnings``), its connection dropped, forwarded (to achievements_upstream when set), or,
    none of these, sent on as it is."""

    answer: Answer | None = None
    warnings: list[Violation] = field(default_factory=list)
    drops: bool = False
    forwards: bool = False


FORWARD = Outcome(forwards=True)
AS_SENT = Outcome()


class Policy:
    """The decisions for requests under the configuration in force (``config``; None: none is)."""

    def __init__(self) -> None:
        self.config: Configuration | None = None
        self._cap_said = False  # the warning that tracking caps forget callers was given

    def start(self, method: str, url: str, headers: dict[str, str], body: bytes | None, sent_at: float) -> FlowState:
        """A request read (validated) as it arrives (``headers``: names lowercase)."""
        check = self.config.validator.check_request(method, url, headers, body)
        return FlowState(check=check, method=method, url=url, headers=headers, started=time.monotonic(),
                         sent_at=sent_at)

    async def decide(self, state: FlowState, body: bytes | None, streamed: bool) -> Outcome:
        """What the request ``state`` reads gets; ``streamed``: mitmproxy has sent its body on
        already. A fault's delay is waited here, without blocking other requests."""
        config, check = self.config, state.check
        if streamed:
            # mitmproxy has streamed the body (over achievements_max_body) to the service already:
            # the request is forwarded as sent, unread.
            check.violations.append(Violation(
                "limits", "request", "body", WARNING,
                f"request body over achievements_max_body ({config.settings.max_body} bytes): streamed to the "
                "service as sent, not read", TOO_LARGE))
            return AS_SENT

        if config.throttle is not None:
            throttled = config.throttle.check(*caller_key(check))
            if config.throttle.forgotten_at_cap and not self._cap_said:
                self._cap_said = True
                logger.warning("xblreplay: more than tracking.max_callers (rules/limits.yaml) callers are "
                               "active: the least recently seen are forgotten and start afresh")
            if throttled is not None:
                return _answer(state, throttled)

        if config.faults is not None:
            recorded = config.replayer.recorded_latency(check) if config.replayer else None
            decision = config.faults.decide(check.endpoint, recorded)
            if decision.delay_s > 0:
                await asyncio.sleep(decision.delay_s)  # never blocks other flows
            state.fault = decision.kind  # a fault that alters the body is applied to the response
            fault = effect(decision.kind)
            if fault.answer is not None:
                return _answer(state, fault.answer(decision))
            if fault.drops:
                return Outcome(drops=True)

        mode = config.mode
        if not mode.answers_offline:
            if mode.validates_only and not check.ok and config.settings.strict:
                return _answer(state, answers.invalid_request(check))
            if mode.compares:  # the service answers; what replay would answer is kept to compare
                state.comparison = expect(config.replayer.answer, check, state.method, state.url, body)
            return FORWARD
        assert config.replayer is not None
        answer = config.replayer.answer(check, state.method, state.url, body)
        if mode.forwards_uncovered and check.ok and any(v.code in RECORD_CODES for v in answer.violations):
            return FORWARD
        return _answer(state, answer)

    def refused_unread(self, method: str, url: str, headers: dict[str, str]) -> FlowState | None:
        """A request for the host whose body outgrew achievements_max_body where it could not be
        streamed (replay, achievements_upstream), refused unread, as the log shows it; None
        without a configuration."""
        config = self.config
        if config is None:
            return None
        check = config.validator.check_request(method, url, headers, None)
        check.violations[:] = [v for v in check.violations if v.location != "body"]  # it was not read
        check.violations.append(Violation(
            "limits", "request", "body", WARNING,
            f"request body over achievements_max_body ({config.settings.max_body} bytes): refused unread "
            f"(in {config.mode} mode{' with achievements_upstream' if config.upstream else ''} a request for "
            "the host goes out only once the addon has read it)", TOO_LARGE))
        return FlowState(check=check, method=method, url=url, headers=headers, started=time.monotonic(),
                         source="error")


def _answer(state: FlowState, answer: Answer) -> Outcome:
    state.source = answer.source
    state.answer = answer
    warnings = [] if answer.source == "error" else [v for v in state.check.violations if v.severity == "warning"]
    return Outcome(answer=answer, warnings=warnings)
