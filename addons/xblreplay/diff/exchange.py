"""Diff mode, one exchange: the cassettes' answer taken as the request goes out to the service,
the service's reply compared with it as it comes back, and the validation log's ``diff`` field.

Nothing here may cost the client its live answer: a failure to make the cassettes' answer or to
compare is caught and becomes a finding of rule ``internal`` (the client gets the service's
answer byte for byte all the same).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import bounds
from ..model import Answer, AchievementsQuery, RequestCheck
from .compare import Finding, Verdict, compare
from .rules import DiffRules

logger = logging.getLogger("xblreplay")

INTERNAL = "internal"  # the rule of a finding about the comparison itself


@dataclass
class Comparison:
    """One exchange's comparison: the cassettes' answer, then the verdict, or why there is none."""

    expected: Answer | None = None
    verdict: Verdict | None = None
    not_compared: str = ""
    failed: str = ""  # an internal error, in one line

    def entry(self) -> dict[str, Any]:
        """The validation log's ``diff`` field (README, "Diff mode")."""
        local = ({"local": {"status": self.expected.status, "source": self.expected.source}}
                 if self.expected is not None else {})
        if self.failed:
            return {"not_compared": "internal error", **local, "checked": [],
                    "findings": [Finding(INTERNAL, "internal-error", self.failed).to_dict()]}
        if self.verdict is None:
            return {"not_compared": self.not_compared or "the service's answer was not read", **local}
        return {"agreed": not self.verdict.findings, **local, "checked": sorted(self.verdict.checked, key=_rule_order),
                "findings": [f.to_dict() for f in self.verdict.findings]}


def _rule_order(rule: str) -> tuple[int, str]:
    return (int(rule[1:]), rule) if rule[:1] == "R" and rule[1:].isdigit() else (1 << 30, rule)


def expect(answer: Callable[[RequestCheck, str, str, bytes | None], Answer], check: RequestCheck, method: str,
           url: str, body: bytes | None) -> Comparison:
    """The answer replay gives this request (``answer``: the replayer's one answer builder)."""
    try:
        return Comparison(expected=answer(check, method, url, body))
    except Exception as exc:
        logger.debug("xblreplay: diff: the cassettes' answer failed", exc_info=True)
        return Comparison(failed=f"the cassettes' answer could not be made: {type(exc).__name__}")


def judge(comparison: Comparison, query: AchievementsQuery | None, status: int,
          live_body: Callable[[], tuple[Any, str]], rules: DiffRules) -> None:
    """Compares the service's reply (``status``; ``live_body()``: its parsed JSON, or its bytes
    when not JSON, and why it was not read, "" when it was) with the cassettes' answer."""
    if comparison.expected is None or comparison.failed:
        return
    if status >= 500:
        comparison.not_compared = f"the service answered {status}: its trouble, not a rule's"
        return
    try:
        body, unread = live_body()
        if unread:
            comparison.not_compared = f"the service's body was not read: {unread}"
            return
        expected = comparison.expected
        comparison.verdict = compare(query, status, body, expected.status, _local_body(expected),
                                     expected.violations, rules)
    except Exception as exc:
        logger.debug("xblreplay: diff: the comparison failed", exc_info=True)
        comparison.failed = f"the comparison failed: {type(exc).__name__}"


def _local_body(answer: Answer) -> Any:
    """The cassettes' answer as sent, read back as JSON (bytes when it is not JSON)."""
    raw = answer.body_bytes()
    try:
        return bounds.json_loads(raw) if raw else raw
    except ValueError:
        return raw


def not_forwarded(source: str, status: int | None) -> dict[str, Any]:
    """The ``diff`` field of an exchange of the host that was not compared from the start."""
    if source != "upstream":
        return {"not_compared": f"answered by the proxy ({source}), not by the service"}
    if status is None:
        return {"not_compared": "no answer from the service"}
    return {"not_compared": "forwarded unread (a request body over achievements_max_body)"}
