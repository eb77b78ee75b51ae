"""The proxy processes of one pytest run (of one xdist worker): one mitmdump per distinct
configuration, started the first time a test needs it, told to reset between tests through a
control request, stopped by PID when the run ends."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any, Mapping

from .config import key
from .launcher import MitmdumpProcess

# Port clashes (another process took the free port before mitmdump bound it): tries per start.
STARTS = 3
READY_S = 60.0  # a large cassette directory is loaded before the first answer


class ProxyError(Exception):
    """A proxy process that would not start or answer: one line, and what it printed."""


class RunningProxy:
    """One mitmdump of the pool: its launcher, its control token and its validation log."""

    def __init__(self, process: MitmdumpProcess, token: str, log: Path) -> None:
        self.process, self.token, self.log = process, token, log

    @property
    def pid(self) -> int:
        return self.process.pid

    def control(self, command: str, timeout: float = 30.0) -> dict[str, Any]:
        """Sends a control request (``rewind`` or ``mark``, proxy/control.py) through the proxy;
        its JSON answer, or ProxyError."""
        from ..proxy.control import CONTROL_HOST, TOKEN_HEADER

        conn = http.client.HTTPConnection("127.0.0.1", self.process.port, timeout=timeout)
        try:
            conn.request("POST", f"http://{CONTROL_HOST}/{command}", headers={TOKEN_HEADER: self.token})
            resp = conn.getresponse()
            status, body = resp.status, resp.read()
        except OSError as e:
            raise ProxyError(f"the proxy (pid {self.pid}) did not answer {command}: {e}") from None
        finally:
            conn.close()
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if status != 200 or not isinstance(answer, dict) or "log_offset" not in answer:
            raise ProxyError(f"the proxy (pid {self.pid}) answered {command} with {status}: {body[:300]!r}")
        return answer


class Pool:
    """The running proxies by configuration; ``root``: a directory of this run's own (their
    confdir, and so one CA for all of them, their logs and outputs)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.confdir = root / "mitmconf"
        self._running: dict[tuple, RunningProxy] = {}

    def get(self, options: Mapping[str, Any]) -> RunningProxy:
        """The proxy of ``options`` (addon option names), started when none runs for them yet."""
        found = self._running.get(key(options))
        if found is not None and found.process.alive():
            return found
        if found is not None:
            raise ProxyError(f"the proxy (pid {found.pid}) for these options has exited:\n"
                             f"{found.process.text()[-3000:]}")
        started = self._start(options)
        self._running[key(options)] = started
        return started

    def _start(self, options: Mapping[str, Any]) -> RunningProxy:
        n = len(self._running) + 1
        log = self.root / f"proxy-{n}.jsonl"
        token = secrets.token_urlsafe(32)
        from ..proxy.control import TOKEN_ENV

        env = {**os.environ, TOKEN_ENV: token}
        why = ""
        for attempt in range(STARTS):
            process = MitmdumpProcess(self.confdir, self.root / f"proxy-{n}-{attempt}.out",
                                      {**options, "achievements_log": str(log), "flow_detail": 0}, env=env)
            try:
                process.start(READY_S)
            except RuntimeError as e:
                why = str(e)
                if "address already in use" in why.lower():
                    continue  # the free port was taken meanwhile: another one
                raise ProxyError(_first_error(why)) from None
            running = RunningProxy(process, token, log)
            self._ready(running)
            return running
        raise ProxyError(_first_error(why))

    @staticmethod
    def _ready(running: RunningProxy) -> None:
        """Waits for the addon itself to answer (mitmdump may listen before its script has
        loaded the cassettes); stops the process and raises ProxyError when it does not."""
        deadline = time.monotonic() + READY_S
        while True:
            try:
                running.control("mark")
                return
            except ProxyError as e:
                if not running.process.alive() or time.monotonic() > deadline:
                    output = running.process.stop()
                    # the addon's own reason (a broken cassette, a bad option) before anything else
                    raise ProxyError(_first_error(output) if "xblreplay:" in output
                                     else f"{e}\n{output[-3000:]}") from None
            time.sleep(0.05)  # polling the process for readiness, within the deadline

    def stop_all(self) -> None:
        for running in self._running.values():
            running.process.stop()
        self._running.clear()


def _first_error(output: str) -> str:
    """The addon's own error line (``xblreplay: …``) when it printed one, with the output."""
    lines = [line.strip() for line in output.splitlines() if "xblreplay:" in line]
    head = lines[0][lines[0].index("xblreplay:"):] if lines else "mitmdump did not start"
    return f"{head}\n{output[-3000:]}"
