"""One proxy under test: a mitmdump on a free 127.0.0.1 port with the run's confdir, started,
timed until its port accepts, measured (RSS from /proc) and stopped by its PID.

Every target gets the same base command (later --set of the same option wins):
    mitmdump -q --flow-detail 0 --listen-host 127.0.0.1 -p PORT
             --set connection_strategy=lazy --set confdir=CONFDIR  ARGS...
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path


class NotReady(Exception):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_hint(log: Path) -> str:
    """The line of a proxy log that most likely says what went wrong: its first line (under -q
    mitmdump logs only warnings and errors), with the exception when a traceback follows."""
    lines = [l for l in log.read_text(errors="replace").splitlines()
             if l.strip() and not l.startswith("Error logged during startup")]
    if not lines:
        return "(empty log)"
    hint = lines[0].strip()
    if "Traceback (most recent call last):" in lines:
        start = lines.index("Traceback (most recent call last):") + 1
        exc = next((l for l in lines[start:] if not l[0].isspace()), "")
        hint = f"{hint} / {exc}" if exc and exc != lines[0] else hint
    return hint[:300]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Proxy:
    """A started mitmdump; use as a context manager so it is always stopped."""

    def __init__(self, mitmdump: str, confdir: Path, args: list[str], log: Path,
                 env: dict[str, str], ready_timeout: float) -> None:
        self.port = free_port()
        self.log = log
        cmd = [mitmdump, "-q", "--flow-detail", "0", "--listen-host", "127.0.0.1", "-p", str(self.port),
               "--set", "connection_strategy=lazy", "--set", f"confdir={confdir}", *args]
        t0 = time.perf_counter()
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                         stdin=subprocess.DEVNULL)
        try:
            self.ready_s = self._wait_ready(t0, ready_timeout)
        except NotReady:
            self.stop()
            raise
        self.rss_ready_mb = rss_mb(self.proc.pid)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _wait_ready(self, t0: float, timeout: float) -> float:
        """Seconds from start until the port accepts a connection (addons loaded by then)."""
        while time.perf_counter() - t0 < timeout:
            if self.proc.poll() is not None:
                raise NotReady(f"exited with code {self.proc.returncode} before its port accepted: "
                               f"{log_hint(self.log)}")
            with socket.socket() as s:
                s.settimeout(0.2)
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return time.perf_counter() - t0
            time.sleep(0.01)
        raise NotReady(f"port 127.0.0.1:{self.port} did not accept within {timeout:g} s")

    def exit_note(self) -> str:
        """Why the proxy is gone, when it is or goes within half a second ('' while it runs)."""
        try:
            self.proc.wait(0.5)
        except subprocess.TimeoutExpired:
            return ""
        return f"mitmdump exited with code {self.proc.returncode}: {log_hint(self.log)}; "

    def stop(self) -> None:
        """TERM (so addons' done() runs), KILL after 10 s; this process only."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> "Proxy":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
