"""What the proxy writes about an exchange once it is done: its validation-log entry and, when
something was found, its event-log line; and the summary written when the proxy stops."""

from __future__ import annotations

import logging
import time

from ..diff import not_forwarded
from ..traffic import caller_key, retry_after_seconds
from .configuration import Configuration
from .state import FlowState

logger = logging.getLogger("xblreplay")


def log_exchange(config: Configuration, state: FlowState, status: int | None, retry_after: str | None) -> None:
    """Logs the exchange ``state`` (``status``: the one the client got; None: it got none;
    ``retry_after``: that answer's Retry-After header)."""
    # A reset, cut or emptied answer is logged as the fault, whoever produced the answer
    # (upstream in validate/record, dataset or interaction in replay); 503/500 are "fault".
    source = f"fault:{state.fault}" if state.fault and state.source != "fault" else state.source
    violations = state.violations or list(state.check.violations)
    violations += config.patterns.observe(
        *caller_key(state.check), state.check.key, status or 0, retry_after_seconds(retry_after),
    )
    latency_ms = (time.monotonic() - state.started) * 1000
    # Both lines are written from the entry the log scrubbed of the exchange's secrets.
    secrets = state.secrets()
    compared = None
    if config.mode.compares:
        compared = state.comparison.entry() if state.comparison is not None else not_forwarded(source, status)
    entry = config.log.write(
        method=state.method, url=state.logged_url(), mode=config.mode,
        endpoint=state.check.endpoint, status=status, source=source, latency_ms=latency_ms,
        violations=violations, reason=state.answer.reason if state.answer else "",
        redactions=state.redactions, secrets=secrets, not_recorded=state.not_recorded, diff=compared,
    )
    if violations:
        level = logging.WARNING if any(v.severity == "error" for v in violations) else logging.INFO
        logger.log(level, "xblreplay %s %s -> %s: %s", entry["method"], entry["url"], status,
                   "; ".join(f"{v['rule']} {v['name']}: {v['message']}" for v in entry["violations"]))
    for f in entry.get("diff", {}).get("findings", ()):
        logger.warning("xblreplay diff %s %s: %s %s: %s%s", entry["method"], entry["url"], f["rule"], f["aspect"],
                       f["message"], f" at {', '.join(f['paths'])}" if f.get("paths") else "")


def close_log(config: Configuration) -> dict:
    """Closes the validation log; its summary, with the call patterns (episodes by code, and the
    requests each pattern's episodes counted) and what the tracking caps forgot."""
    return config.log.close({
        "call_patterns": config.patterns.summary(),
        "call_pattern_episodes": config.patterns.episodes(),
        "forgotten_at_cap": {**config.patterns.forgotten_at_cap,
                             "throttle": config.throttle.forgotten_at_cap if config.throttle else 0},
    })
