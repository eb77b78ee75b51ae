"""Control requests: what a test harness (the pytest plugin) may ask of a running proxy between two
tests, who may ask it, and what each request does to the configuration in force.

A control request is sent through the proxy to the reserved host :data:`CONTROL_HOST`
(``POST http://xblreplay.control/rewind``). The addon answers it itself, in every mode, and never
dials anything for that host. Control is off unless the proxy was started with a token in the
environment variable :data:`TOKEN_ENV` (at least :data:`MIN_TOKEN_CHARS` characters); a request
must carry that token in the :data:`TOKEN_HEADER` header. Off, or without the right token, the
answer is 403 and nothing changes: a client under test can neither reset the proxy nor reach a
host of that name.

Commands (each answers 200 with JSON):

``rewind`` starts the next test from the cassettes as loaded: every progress update undone (the
           store's undo record, no cassette read again), the R10 throttle windows and the
           call-pattern state emptied, the fault profile's random sequence started again from its
           seed (what the mitmproxy command ``achievements.reset`` does too). Answers what
           ``mark`` answers, and ``undone`` (items put back).
``mark``   writes the validation log's waiting lines and answers ``log`` (its path, or null) and
           ``log_offset`` (its size in bytes: the entries after it are the ones to come), ``mode``
           and ``pid``.
"""

from __future__ import annotations

import hmac
import os
import weakref
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..faults import FaultInjector
from ..traffic import CallPatterns, Throttle, load_limits
from .configuration import Configuration

CONTROL_HOST = "xblreplay.control"
TOKEN_ENV = "XBLREPLAY_CONTROL_TOKEN"
TOKEN_HEADER = "x-xblreplay-control-token"  # lowercase, as the core reads header names
MIN_TOKEN_CHARS = 16
COMMANDS = ("rewind", "mark")


@dataclass(frozen=True)
class ControlReply:
    """The proxy's answer to a control request: a status and a JSON object."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)


def token_from_env(environ: Mapping[str, str] = os.environ) -> tuple[str | None, str]:
    """(the control token, or None: control is off; a warning to log, or "")."""
    token = environ.get(TOKEN_ENV, "")
    if not token:
        return None, ""
    if len(token) < MIN_TOKEN_CHARS:
        return None, (f"xblreplay: {TOKEN_ENV} is shorter than {MIN_TOKEN_CHARS} characters: control "
                      "requests stay off")
    return token, ""


def answer(config: Configuration | None, token: str | None, method: str, path: str,
           headers: Mapping[str, str]) -> ControlReply:
    """The answer to a control request (``headers``: names lowercase); ``token``: the one the
    proxy was started with (None: control is off)."""
    if token is None:
        return _refused(403, f"control requests are off (start the proxy with {TOKEN_ENV} set)")
    given = headers.get(TOKEN_HEADER, "")
    if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), token.encode()):
        return _refused(403, f"a control request needs the proxy's token in {TOKEN_HEADER}")
    if method.upper() != "POST":
        return _refused(405, "control requests are POST")
    command = path.split("?", 1)[0].strip("/")
    if command not in COMMANDS:
        return _refused(404, f"unknown control command {command!r}; commands: {', '.join(COMMANDS)}")
    if config is None:
        return _refused(503, "no configuration in force")
    return ControlReply(200, reset(config) if command == COMMANDS[0] else mark(config))


def _refused(status: int, why: str) -> ControlReply:
    return ControlReply(status, {"error": why})


def mark(config: Configuration) -> dict[str, Any]:
    """The validation log written out; where it ends now."""
    log = config.log
    log.flush()
    path = log.path
    return {"log": str(path) if path else None, "log_offset": path.stat().st_size if path else None,
            "mode": str(config.mode), "pid": os.getpid()}


def reset(config: Configuration) -> dict[str, Any]:
    """The per-test state of ``config`` back to what it was when it was built (see the module)."""
    undone = config.replayer.store.drop_updates() if config.replayer is not None else 0
    limits = _limits(config)
    if config.throttle is not None:
        config.throttle = Throttle(limits)
    config.patterns = CallPatterns(limits)
    if config.faults is not None:
        config.faults = FaultInjector(config.faults.profile, config.settings.seed)
    return {**mark(config), "undone": undone}


# The limits of the configuration last reset: rules/limits.yaml is read at a configuration's
# first reset, not at every test.
_kept: tuple[weakref.ref | None, dict[str, Any]] = (None, {})


def _limits(config: Configuration) -> dict[str, Any]:
    global _kept
    ref, limits = _kept
    if ref is None or ref() is not config:
        limits = load_limits(config.settings.rules / "limits.yaml")
        _kept = (weakref.ref(config), limits)
    return limits
