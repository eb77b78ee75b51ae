"""A mitmdump running the xblreplay addon as a child process: its argv, a free port on 127.0.0.1,
its own confdir (and so its own CA), the wait until it listens, and its stop by PID. The one way a
proxy process is started for tests: the pytest plugin's pool and the project's own end-to-end
tests use it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

CA_NAME = "mitmproxy-ca-cert.pem"  # what mitmdump writes into its confdir: the CA a client trusts


def entry_script() -> Path:
    """The addon's entry script inside the package (what ``xblreplay run`` gives ``mitmdump -s``):
    it works for an installed package as well as a checkout."""
    from ..cli import ENTRY_SCRIPT

    return ENTRY_SCRIPT


def mitmdump_path() -> Path:
    """The mitmdump to start (:func:`xblreplay.cli.mitmdump_path`, the one ``xblreplay run`` starts)."""
    from ..cli import mitmdump_path as path

    return path()


def free_port() -> int:
    """A port on 127.0.0.1 nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def option_args(options: Mapping[str, Any]) -> list[str]:
    """``--set name=value`` for each option (booleans as true/false; None: left unset)."""
    argv: list[str] = []
    for name, value in options.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        argv += ["--set", f"{name}={value}"]
    return argv


class MitmdumpProcess:
    """``mitmdump -s <entry>`` on 127.0.0.1:``port`` (a free one unless given) with ``confdir`` as
    its confdir, its output (stdout and stderr) in the file ``output``; ``options``: the addon's
    options; ``env``: its environment (None: this process's)."""

    def __init__(self, confdir: Path, output: Path, options: Mapping[str, Any] | None = None, *,
                 port: int | None = None, entry: Path | None = None, cwd: Path | None = None,
                 env: Mapping[str, str] | None = None, args: Sequence[str] = ()) -> None:
        self.confdir = Path(confdir)
        self.output = Path(output)
        self.options = dict(options or {})
        self.port = port or free_port()
        self.entry = Path(entry) if entry is not None else entry_script()
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self.args = list(args)
        self.proc: subprocess.Popen | None = None
        self._out = None

    @property
    def ca(self) -> Path:
        return self.confdir / CA_NAME

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        return [str(mitmdump_path()), "--listen-host", "127.0.0.1", "--listen-port", str(self.port),
                "--set", f"confdir={self.confdir}", "-s", str(self.entry), *option_args(self.options), *self.args]

    def start(self, timeout: float = 30.0) -> "MitmdumpProcess":
        """Starts it and returns once it accepts connections and its CA is written; RuntimeError
        (with its output) when it exits or does not get there within ``timeout`` seconds."""
        self.confdir.mkdir(parents=True, exist_ok=True)
        self._out = open(self.output, "wb")
        self.proc = subprocess.Popen(self.argv(), stdout=self._out, stderr=subprocess.STDOUT, cwd=self.cwd,
                                     stdin=subprocess.DEVNULL, env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mitmdump exited {self.proc.returncode}:\n{self.text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    if self.ca.exists():
                        return self
            except OSError:
                pass
            time.sleep(0.05)  # polling a port for readiness, within the deadline
        self.stop()
        raise RuntimeError(f"mitmdump did not start:\n{self.text()}")

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def text(self) -> str:
        """What it has printed so far."""
        return self.output.read_text(errors="replace") if self.output.exists() else ""

    def stop(self, timeout: float = 15.0) -> str:
        """Stops it by its PID: SIGINT (a clean stop: the log's summary and the recorder's last
        writes), SIGKILL after ``timeout`` seconds. Returns what it printed."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self._out is not None:
            self._out.close()
        return self.text()
