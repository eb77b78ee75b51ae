"""The recorder in a child process: the proxy process only queues and pipes the raw exchange,
so redaction, serialization and file writes never compete with mitmproxy's event loop for the
interpreter lock. :class:`RecorderProcess` is the proxy's side (sender thread, child replaced
when it dies), :func:`serve` the child's (``python -m xblreplay.recording DIR``).
"""

from __future__ import annotations

import logging
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from .. import cassette, redact
from .exchange import Exchange, timestamp
from .writer import BACKLOG_BYTES, Recorder, Reports

logger = logging.getLogger("xblreplay")
# Sent by RecorderProcess.close: the child reads the rest of its input without waiting for room.
# SIGURG is ignored by default, so a child that has not set its handler yet is not harmed.
READ_ALL = signal.SIGURG

_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # addons/, the package's source root


def _describe(exc: Exception) -> tuple[str, tuple]:
    """An exception as plain data for the pipe (see :func:`_rebuild`)."""
    if isinstance(exc, redact.LeakError):
        return "leak", (exc.target, exc.findings)
    if isinstance(exc, cassette.CassetteError):
        return "cassette", (exc.file, exc.line, exc.reason)
    return "other", (f"{type(exc).__name__}: {exc}",)


def _rebuild(kind: str, args: tuple) -> Exception:
    if kind == "leak":
        return redact.LeakError(*args)
    if kind == "cassette":
        return cassette.CassetteError(*args)
    return RuntimeError(*args)


class RecorderProcess(Reports):
    """:class:`Recorder`'s interface; the recorder runs in a child process (``python -m
    xblreplay.recording DIR``) fed through a pipe by a sender thread.

    The child is the durable writer: it writes everything it was handed, and stops only when its
    input ends (this object closes it, or this process dies); it ignores SIGINT and SIGTERM, which
    a terminal or a service manager may send the whole process group. :meth:`close` may therefore
    stop waiting after a bounded time while the child finishes on its own. A child that ends
    unexpectedly loses what it had not written (reported); a new one takes the next exchanges
    (up to :data:`MAX_RESTARTS` times)."""

    MAX_RESTARTS = 5

    def __init__(self, cassette_dir: str | Path, on_error: Callable[[Exception], None] | None = None,
                 rules_dir: str | Path | None = None, backlog_limit: int = BACKLOG_BYTES):
        super().__init__(cassette_dir, on_error)
        self._rules_dir = rules_dir
        self.backlog_limit = backlog_limit  # bytes of bodies the child reads ahead, and the proxy lets wait
        self._outbox: queue.SimpleQueue = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._flushes = 0  # flush requests queued
        self._flushed = 0  # flush requests a child has answered
        self._abandoned = 0  # flush requests handed to a child that ended before answering
        self._closed = False
        self._gone = False  # no child takes exchanges any more
        self._restarts = 0
        self._backlog = 0  # bytes of bodies queued here, not yet handed to the child
        self._child = self._start()
        self._sender = threading.Thread(target=self._send, name="xblreplay-recorder-pipe", daemon=True)
        self._sender.start()

    def _start(self) -> "_Child":
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (str(_PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")) if p))
        argv = [sys.executable, "-m", "xblreplay.recording", str(self.cassette_dir),
                str(self._rules_dir or ""), str(self.backlog_limit)]
        child = _Child(subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env))
        child.receiver = threading.Thread(target=self._receive, args=(child,),
                                          name="xblreplay-recorder-reports", daemon=True)
        child.receiver.start()
        return child

    def record_exchange(self, exchange: Exchange) -> None:
        """Queues one exchange (stamped now unless its ``recorded_at`` says otherwise); never
        touches the disk or the pipe."""
        if not isinstance(exchange.recorded_at, str):
            exchange = replace(exchange, recorded_at=timestamp(exchange.recorded_at))
        with self._cond:
            if self._closed:
                raise RuntimeError("recorder is closed")
            self._backlog += len(exchange.body)
            self._outbox.put(("record", exchange))

    def backlog(self) -> int:
        """Bytes of bodies queued and not yet handed to the child (which reads ahead at most
        ``backlog_limit``): the proxy holds flows back while this is over ``backlog_limit``."""
        return self._backlog

    def flush(self, timeout: float | None = None) -> bool:
        with self._cond:
            self._flushes += 1
            n = self._flushes
            self._outbox.put(("flush", n))
            self._cond.wait_for(lambda: self._flushed >= n or self._abandoned >= n or self._gone, timeout)
            return self._flushed >= n

    def close(self, timeout: float | None = None) -> None:
        """Hands everything queued to the child, closes its input and waits for it to finish
        writing: at most ``timeout`` seconds in all (None: as long as it takes). A child still
        writing then finishes on its own; exchanges not yet handed to it are reported lost."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._outbox.put(None)
        deadline = None if timeout is None else time.monotonic() + timeout

        def left() -> float | None:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        while self._sender.is_alive() and left() != 0.0:
            # The child takes the rest at once, however far behind it is: the exchanges must be
            # in its hands before this process may go (said again until the sender is done: a
            # child still starting has not set its handler yet).
            child = self._child
            if child is not None:
                try:
                    child.proc.send_signal(READ_ALL)
                except OSError:
                    pass
            self._sender.join(0.1 if deadline is None else min(0.1, left()))
        if self._sender.is_alive():
            waiting = self._outbox.qsize()
            self._report(RuntimeError(
                f"the recorder process did not take {waiting} queued message(s) within {timeout} s: "
                "exchanges among them are lost"))
            return
        child = self._child
        if child is None:
            return
        try:
            child.proc.wait(left())
        except subprocess.TimeoutExpired:
            logger.info("xblreplay: the recorder process (pid %d) is still writing; it finishes on its own",
                        child.proc.pid)
            return
        child.receiver.join(left())

    def _send(self) -> None:
        while True:
            message = self._outbox.get()
            if message is None:
                break
            try:
                data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as exc:  # this exchange cannot be handed over; the next ones can
                self._report(RuntimeError(f"the exchange cannot be handed to the recorder process: "
                                          f"{type(exc).__name__}: {exc}"))
            else:
                self._deliver(message, data)
                del data
            if message[0] == "record":
                with self._cond:
                    self._backlog -= len(message[1].body)
            del message
        child = self._child
        if child is not None:
            try:
                child.proc.stdin.close()
            except OSError:
                pass

    def _deliver(self, message: tuple, data: bytes) -> None:
        """Writes one message to the current child, starting a new child when it has ended."""
        while self._child is not None:
            child = self._child
            if message[0] == "flush":
                with self._cond:
                    child.last_flush = message[1]
            if not child.ended:
                try:
                    child.proc.stdin.write(data)
                    if self._outbox.empty():
                        child.proc.stdin.flush()
                    return
                except (OSError, ValueError):
                    pass  # the child has gone: a new one takes this message
            self._replace(child)
        if message[0] == "record":
            exchange = message[1]
            self._report(RuntimeError(f"{exchange.method} {redact.redact_url(exchange.url)}: the recorder process is gone"))

    def _replace(self, child: "_Child") -> None:
        try:
            child.proc.stdin.close()
        except OSError:
            pass
        try:
            status = child.proc.wait(1.0)
        except subprocess.TimeoutExpired:
            status = None  # it closed its input and is finishing what it has: leave it to it
        with self._cond:
            self._abandoned = max(self._abandoned, child.last_flush)
            self._cond.notify_all()
        if self._restarts >= self.MAX_RESTARTS:
            self._report(RuntimeError(f"the recorder process ended (exit status {status}) and was restarted "
                                      f"{self._restarts} times already: nothing more is recorded"))
            with self._cond:
                self._child, self._gone = None, True
                self._cond.notify_all()
            return
        self._restarts += 1
        self._report(RuntimeError(f"the recorder process ended unexpectedly (exit status {status}): exchanges it "
                                  "had not written are lost; a new one records the next ones"))
        self._child = self._start()

    def _receive(self, child: "_Child") -> None:
        pipe = child.proc.stdout
        while True:
            try:
                kind, *rest = pickle.load(pipe)
            except Exception:  # EOF, or output that is not ours: the child has ended
                break
            if kind == "flushed":
                with self._cond:
                    self._flushed = max(self._flushed, rest[0])
                    self._cond.notify_all()
            else:
                self._report(_rebuild(*rest))
        with self._cond:
            child.ended = True
            self._abandoned = max(self._abandoned, child.last_flush)
            if self._closed and child is self._child:
                self._gone = True
            self._cond.notify_all()


class _Child:
    """One recorder child process and what the parent knows of it."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.receiver: threading.Thread | None = None
        self.last_flush = 0  # the latest flush request handed to it
        self.ended = False  # its output ended


def serve(cassette_dir: str, rules_dir: str | None = None, backlog_limit: str | None = None) -> None:
    """The child's side: a Recorder fed from stdin; reports and flush answers on stdout. It
    stops when its input ends, after writing everything it was given."""
    os.nice(10)
    for sig in (signal.SIGINT, signal.SIGTERM):  # sent to the whole process group; the proxy decides
        signal.signal(sig, signal.SIG_IGN)
    read_all = [False]
    signal.signal(READ_ALL, lambda *_: read_all.__setitem__(0, True))
    out, lock = sys.stdout.buffer, threading.Lock()
    parent_gone = False

    def send(message: tuple) -> None:
        nonlocal parent_gone
        with lock:
            if parent_gone:
                return
            try:
                pickle.dump(message, out, protocol=pickle.HIGHEST_PROTOCOL)
                out.flush()
            except OSError:  # the proxy has stopped listening (it exited): keep writing anyway
                parent_gone = True

    rec = Recorder(cassette_dir, on_error=lambda exc: send(("error", *_describe(exc))), rules_dir=rules_dir or None)
    limit = int(backlog_limit) if backlog_limit else BACKLOG_BYTES
    inp = sys.stdin.buffer
    while True:
        while not read_all[0] and not rec.wait_room(limit, 0.05):
            pass  # read ahead only so much: the rest waits in the pipe (until the parent closes)
        try:
            kind, payload = pickle.load(inp)  # ("record", Exchange) or ("flush", n)
        except Exception:  # EOF: the parent closed the pipe (or died); write what is queued and stop
            break
        if kind == "record":
            rec.record_exchange(payload)
        else:
            rec.flush()
            send(("flushed", payload))
    rec.close()

