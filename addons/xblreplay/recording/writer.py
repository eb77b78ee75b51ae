"""The recorder: exchanges queued by the caller, written to cassettes by a background thread.

``Recorder.record`` only queues the raw exchange; the writer thread redacts it, leak-scans it,
and merges everything pending into the cassette files, each touched file written once per batch
through :func:`cassette.update_file` (locked, atomic, fsynced).
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from .. import DEFAULT_RULES_DIR, bounds, cassette, redact
from ..contract import Validator, parse_authorization
from ..model import RequestCheck
from .exchange import Exchange
from .interaction import build_interaction, file_update, interaction_key
from .naming import cassette_path

_STOP = object()
COALESCE_S = 0.1  # how long the writer waits to gather a batch (the most a crash can lose)
# Memory: a batch stops gathering past BATCH_BYTES of bodies (a large body is written alone); the
# recorder child reads ahead at most its backlog limit of bodies (BACKLOG_BYTES unless told: the
# proxy gives twice achievements_max_body), the rest waits in the pipe and then in the proxy,
# which holds flows back while more than that waits (RecorderProcess.backlog); a cassette file
# larger than CACHE_FILE_BYTES is not kept in memory between writes.
BATCH_BYTES = 4 << 20
BACKLOG_BYTES = 2 * bounds.MAX_BODY_BYTES
CACHE_FILE_BYTES = 1 << 20


class Reports:
    """What both recorders share: :meth:`record` of an exchange given field by field, and write
    problems (a leak refused, an existing file that does not load, an OS error) kept in
    ``errors`` (the latest 100) and passed to ``on_error``; the writer carries on."""

    def __init__(self, cassette_dir: str | Path, on_error: Callable[[Exception], None] | None = None):
        self.cassette_dir = Path(cassette_dir)
        self.on_error = on_error
        self.errors: collections.deque[Exception] = collections.deque(maxlen=100)

    def record(
        self,
        method: str,
        url: str,
        request_headers: Mapping[str, str],
        status: int,
        response_headers: Mapping[str, str],
        body: bytes,
        content_type: str | None,
        latency_ms: float,
        recorded_at: datetime | str | None = None,
    ) -> None:
        """Queues one exchange (``body`` already decoded; its header mappings copied); never
        touches the disk."""
        self.record_exchange(Exchange(method, url, dict(request_headers), status, dict(response_headers), body,
                                      content_type, latency_ms, recorded_at))

    def record_exchange(self, exchange: Exchange) -> None:
        """Queues one exchange as it is: each recorder's own way."""
        raise NotImplementedError

    def report(self, exc: Exception) -> None:
        """Keeps a problem found outside the writer (e.g. a body not read) with the write problems."""
        self._report(exc)

    def _report(self, exc: Exception) -> None:
        self.errors.append(exc)
        if self.on_error is not None:
            try:
                self.on_error(exc)
            except Exception:  # a failing callback must not stop the writer
                pass


class Recorder(Reports):
    """Queues exchanges and writes them to cassettes on a background thread."""

    def __init__(self, cassette_dir: str | Path, on_error: Callable[[Exception], None] | None = None,
                 rules_dir: str | Path | None = None):
        super().__init__(cassette_dir, on_error)
        self._rules_dir = rules_dir
        self._validator: Validator | None = None
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._hurry = threading.Event()  # set by flush/close: write now, do not gather
        self._queued = 0
        self._done = 0
        self._queued_bytes = 0  # bodies queued and not yet written
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="xblreplay-recorder", daemon=True)
        self._thread.start()

    def record_exchange(self, exchange: Exchange) -> None:
        """Queues one exchange as it is (its header mappings are not copied)."""
        with self._cond:
            if self._closed:
                raise RuntimeError("recorder is closed")
            self._queued += 1
            self._queued_bytes += len(exchange.body)
            self._queue.put(exchange)

    def wait_room(self, limit: int, timeout: float | None = None) -> bool:
        """Waits until at most ``limit`` bytes of bodies are queued and not yet written."""
        with self._cond:
            return self._cond.wait_for(lambda: self._queued_bytes <= limit, timeout)

    def flush(self, timeout: float | None = None) -> bool:
        """Waits until everything queued so far is written (or reported); False on timeout."""
        with self._cond:
            target = self._queued
            self._hurry.set()
            return self._cond.wait_for(lambda: self._done >= target, timeout)

    def close(self, timeout: float | None = None) -> None:
        """Flushes and stops the writer thread."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
            self._hurry.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            size = _body_bytes(batch[0])
            if batch[0] is not _STOP and size < BATCH_BYTES:
                # Gather what arrives in the next moment too (unless a flush is waiting): each
                # touched file is rewritten once per batch, so under load bigger batches mean far
                # fewer rewrites.
                self._hurry.wait(COALESCE_S)
                self._hurry.clear()
            while batch[-1] is not _STOP and size < BATCH_BYTES:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
                size += _body_bytes(batch[-1])
            exchanges = [b for b in batch if b is not _STOP]
            try:
                self._write(exchanges)
            except Exception as exc:  # pragma: no cover - _write reports per file
                self._report(exc)
            with self._cond:
                self._done += len(exchanges)
                self._queued_bytes -= size
                self._cond.notify_all()
            if batch[-1] is _STOP:
                return

    def _read(self, method: str, url: str, headers: Mapping[str, str]) -> RequestCheck:
        """The request read as the proxy reads it (the contract's parsers), for its file and binding."""
        if self._validator is None:
            self._validator = Validator.from_rules(self._rules_dir or DEFAULT_RULES_DIR)
        return self._validator.check_request(method, url, dict(headers))

    def _write(self, exchanges: list[Exchange]) -> None:
        files: dict[Path, tuple[dict, set, dict]] = {}
        for exchange in exchanges:
            method, url = exchange.method, exchange.url
            request_headers = {k.lower(): v for k, v in exchange.request_headers.items()}
            exchange = replace(exchange, request_headers=request_headers)
            try:
                check = self._read(method, url, request_headers)
                path = cassette_path(self.cassette_dir, check)
                interaction, secrets, line = build_interaction(exchange)
                findings = redact.leak_scan(line.encode("utf-8"), secrets)
                if findings:
                    raise redact.LeakError(f"{path} ({method} {urlsplit(redact.redact_url(url, redact.secret_pattern(secrets))).path})", findings)
            except Exception as exc:
                self._report(exc)
                continue
            cassette.remember_line(path, interaction, line)
            time.sleep(0)  # let the proxy's event loop run between items: its latency comes first
            new, bindings, file_secrets = files.setdefault(path, ({}, set(), {}))
            new[interaction_key(interaction)] = interaction
            file_secrets.update(secrets)
            auth = parse_authorization(request_headers.get("authorization"))
            xuid = check.path_params.get("xuid")
            if auth and xuid is not None and 200 <= int(exchange.status) < 300:
                bindings.add((redact.userhash_sha256(auth[0]), int(xuid)))
        for path, (new, bindings, secrets) in files.items():
            try:
                cassette.update_file(path, file_update(new, bindings), secrets)
            except Exception as exc:
                self._report(exc)
            _forget_if_large(path)


def _body_bytes(item: Exchange | object) -> int:
    """The bytes an exchange's body takes (0 for the stop marker)."""
    return len(item.body) if isinstance(item, Exchange) else 0


def _forget_if_large(path: Path) -> None:
    """cassette.update_file keeps each file's bytes, document and lines for the next write; a
    large file is read again instead, so that the writer's memory does not grow with every large
    body it has written."""
    try:
        large = path.stat().st_size > CACHE_FILE_BYTES
    except OSError:
        large = True
    if large:
        cassette.forget(path)
