"""Recording exchanges into cassettes without blocking the caller.

``Recorder.record`` only queues the raw exchange; a background writer thread redacts it, decodes
the body, leak-scans it, and merges everything pending into the cassette files, each touched file
written once per batch through :func:`cassette.update_file` (locked, atomic, fsynced).

Files: ``<dir>/recorded/<xuid>/<titleIds joined with _ | all>.yaml`` for ``/users/xuid(N)/…``
paths, ``<dir>/recorded/other.yaml`` for anything else. Within a file interactions are keyed by
:func:`request.request_key` ("the same request", as replay matches it) and sorted; re-recording a
key replaces it, but an
identical exchange (ignoring latency) keeps the stored entry, so the file stays byte-identical.

Bodies reach the recorder decoded by :func:`decode_body`: from their Content-Encoding, and never
past a bound (``achievements_max_body``); a body that cannot be read within it is not recorded.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import os
import pickle
import queue
import subprocess
import sys
import signal
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from .. import DEFAULT_RULES_DIR, bounds, cassette, redact
from ..model import RequestCheck
from ..contract.request import parse_authorization, request_key, request_language
from ..contract.validator import Validator

_STOP = object()
logger = logging.getLogger("xblreplay")
COALESCE_S = 0.1  # how long the writer waits to gather a batch (the most a crash can lose)
# Memory: a batch stops gathering past BATCH_BYTES of bodies (a large body is written alone); the
# recorder child reads ahead at most its backlog limit of bodies (BACKLOG_BYTES unless told: the
# proxy gives twice achievements_max_body), the rest waits in the pipe and then in the proxy,
# which holds flows back while more than that waits (RecorderProcess.backlog); a cassette file
# larger than CACHE_FILE_BYTES is not kept in memory between writes.
BATCH_BYTES = 4 << 20
BACKLOG_BYTES = 2 * bounds.MAX_BODY_BYTES
CACHE_FILE_BYTES = 1 << 20
# Sent by RecorderProcess.close: the child reads the rest of its input without waiting for room.
# SIGURG is ignored by default, so a child that has not set its handler yet is not harmed.
READ_ALL = signal.SIGURG
MAX_NAME = 120  # longest title-list file name; longer lists are named by their hash


def cassette_path(cassette_dir: Path, check: RequestCheck) -> Path:
    """Where an exchange is recorded, from the one reading of its request: a user path goes
    to ``recorded/<xuid>/<sorted titleIds joined with _ | all>.yaml``, anything else (other
    paths, a malformed titleId) to ``recorded/other.yaml``."""
    xuid = check.path_params.get("xuid")
    if xuid is None or check.bad_title_ids:
        return cassette_dir / "recorded" / "other.yaml"
    if check.title_ids is None:
        return cassette_dir / "recorded" / str(xuid) / "all.yaml"
    name = "_".join(map(str, sorted(set(check.title_ids))))
    if len(name) > MAX_NAME:
        name = f"titles-{len(set(check.title_ids))}-{hashlib.sha256(name.encode()).hexdigest()[:16]}"
    return cassette_dir / "recorded" / str(xuid) / (name + ".yaml")


# --------------------------------------------------------------------------------------------
# Response bodies as the recorder takes them: decoded from their Content-Encoding, never past a
# bound. mitmproxy's own decoding (``get_content``) has no bound: a 1 MB gzip body can be 1 GiB.

TOO_LARGE = "body-too-large"
UNDECODABLE = "body-undecodable"
UNKNOWN_ENCODING = "unknown-encoding"
_OUT_STEP = 1 << 20  # zlib: output per decoding step
# brotli's and zstd's Python decoders cannot cap their output, so they are fed a few input bytes
# at a time: 16 bytes of brotli hold at most a few of its (at most 16 MiB) meta-blocks, 64 bytes
# of zstd at most 16 of its (at most 128 KiB) blocks. What a step can decode past the bound is
# the most memory a hostile body costs above it.
_BROTLI_STEP = 16
_ZSTD_STEP = 64
_ZSTD_MIN_WINDOW = 8 << 20  # what HTTP's zstd coding allows (RFC 9659); larger only up to the bound


class UnreadableBody(ValueError):
    """A body the proxy does not read: over the bound, not decodable, or in an encoding it does
    not know. ``code`` is the validation log's violation code; str() says why."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class _Over(Exception):
    pass


class _Bad(Exception):
    pass


def _gather(limit: int):
    """A sink for decoded pieces that raises _Over once more than ``limit`` bytes arrived."""
    pieces: list[bytes] = []
    size = 0

    def add(piece: bytes) -> None:
        nonlocal size
        size += len(piece)
        if size > limit:
            pieces.clear()
            raise _Over()
        if piece:
            pieces.append(piece)

    return pieces, add


def _zlib(raw: bytes, limit: int, wbits: int, name: str) -> bytes:
    pieces, add = _gather(limit)
    data = raw
    while True:
        d = zlib.decompressobj(wbits)
        while not d.eof:
            try:
                piece = d.decompress(data, _OUT_STEP)
            except zlib.error as exc:
                raise _Bad(f"{name} data is corrupt ({exc})") from None
            add(piece)
            data = d.unconsumed_tail
            if not piece and not data:
                raise _Bad(f"{name} data ends before its end of stream (truncated)")
        data = d.unused_data
        if name == "gzip" and data[:2] == b"\x1f\x8b":
            continue  # another gzip member
        if data.strip(b"\0"):
            raise _Bad(f"{len(data)} bytes follow the end of the {name} stream")
        return b"".join(pieces)


def _gzip(raw: bytes, limit: int) -> bytes:
    return _zlib(raw, limit, 16 + zlib.MAX_WBITS, "gzip")


def _deflate(raw: bytes, limit: int) -> bytes:
    # "deflate" is zlib-wrapped by the standard, raw deflate from some servers (as mitmproxy reads it).
    wrapped = len(raw) >= 2 and raw[0] & 0x0F == 8 and (raw[0] << 8 | raw[1]) % 31 == 0
    return _zlib(raw, limit, zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS, "deflate")


def _brotli(raw: bytes, limit: int) -> bytes:
    import brotli  # mitmproxy's dependency

    pieces, add = _gather(limit)
    d = brotli.Decompressor()
    view = memoryview(raw)
    try:
        for i in range(0, len(raw), _BROTLI_STEP):
            add(d.process(bytes(view[i:i + _BROTLI_STEP])))
    except brotli.error as exc:
        raise _Bad(f"br data is corrupt ({exc})") from None
    if not d.is_finished():
        raise _Bad("br data ends before its end of stream (truncated)")
    return b"".join(pieces)


def _zstd(raw: bytes, limit: int) -> bytes:
    import zstandard  # mitmproxy's dependency

    pieces, add = _gather(limit)
    window = min(max(_ZSTD_MIN_WINDOW, 1 << (limit - 1).bit_length()), 1 << 31)
    dctx = zstandard.ZstdDecompressor(max_window_size=window)
    data = raw
    try:
        while data:
            try:
                declared = zstandard.frame_content_size(data)
            except zstandard.ZstdError:
                declared = -1  # not a frame header: the decoder says what is wrong
            if declared > limit:
                raise _Over()
            d = dctx.decompressobj()
            view = memoryview(data)
            for i in range(0, len(data), _ZSTD_STEP):
                add(d.decompress(bytes(view[i:i + _ZSTD_STEP])))
                if d.eof:
                    break
            if not d.eof:
                raise _Bad("zstd data ends before its end of frame (truncated)")
            data = d.unused_data + bytes(view[i + _ZSTD_STEP:])
    except zstandard.ZstdError as exc:
        raise _Bad(f"zstd data cannot be decoded ({exc})") from None
    return b"".join(pieces)


_DECODERS = {"gzip": _gzip, "x-gzip": _gzip, "deflate": _deflate, "br": _brotli, "zstd": _zstd}


def decode_body(raw: bytes | None, content_encoding: str | None, limit: int = bounds.MAX_BODY_BYTES) -> bytes:
    """The body as sent, decoded from its Content-Encoding (a list is undone last coding first),
    never holding more than about ``limit`` bytes of output. :class:`UnreadableBody` when the
    body is over ``limit`` bytes as sent or decoded, cannot be decoded (truncated, corrupt), or
    has a coding other than gzip, x-gzip, deflate, br, zstd and identity."""
    body = raw or b""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
    codings = [c for c in codings if c and c not in ("identity", "none")]
    over = f"body over achievements_max_body ({limit} bytes)"
    if len(body) > limit:
        raise UnreadableBody(TOO_LARGE, over + (" as received" if codings else ""))
    done: list[str] = []
    for coding in reversed(codings):
        if not body:
            break  # an empty body is empty in every coding
        decoder = _DECODERS.get(coding)
        if decoder is None:
            raise UnreadableBody(UNKNOWN_ENCODING, f"Content-Encoding {coding!r} is not one the proxy decodes "
                                                   "(gzip, deflate, br, zstd)")
        done.append(coding)
        try:
            body = decoder(body, limit)
        except _Over:
            raise UnreadableBody(TOO_LARGE, f"{over} after {', '.join(done)} decoding") from None
        except _Bad as exc:
            raise UnreadableBody(UNDECODABLE, str(exc)) from None
    return body


def _key(interaction: dict) -> tuple[str, str]:
    request = interaction["request"]
    headers = request.get("headers") or {}
    return request_key(request["method"], request["url"], headers), request_language(headers)


def _content(interaction: dict) -> tuple:
    response = {k: v for k, v in interaction["response"].items() if k != "latency_ms"}
    return interaction["request"], response


def _timestamp(value: datetime | str | None) -> str:
    if isinstance(value, str):
        return value
    value = value or datetime.now(timezone.utc)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def recorded_interaction(
    method: str,
    url: str,
    request_headers: Mapping[str, str],
    status: int,
    response_headers: Mapping[str, str],
    body: bytes,
    content_type: str | None,
    latency_ms: float,
    recorded_at: datetime | str | None,
    parsed: tuple | None = None,
) -> tuple[dict, dict[str, str], redact.RecordedBody]:
    """A redacted cassette interaction, the exchange's secrets (for the leak scan) and its
    recorded body (what was removed; the service's own JSON text when nothing was). ``parsed``:
    the JSON body already parsed, if at hand."""
    secrets = redact.request_secrets(url, request_headers, response_headers)
    response: dict = {
        "status": int(status),
        "headers": redact.redact_response_headers(response_headers),
        "latency_ms": round(max(float(latency_ms), 0.0), 1),
    }
    recorded = redact.recorded_body(body, content_type, redact.secret_pattern(secrets), parsed)
    if recorded.is_json:
        response["body"] = recorded.body
    elif recorded.body_text is not None:
        response["body_text"] = recorded.body_text
    interaction = {
        "recorded_at": _timestamp(recorded_at),
        "request": {
            "method": method.upper(),
            "url": redact.redact_url(url, redact.secret_pattern(secrets)),
            "headers": redact.redact_request_headers(request_headers),
        },
        "response": response,
    }
    return interaction, secrets, recorded


def build_interaction(*exchange) -> tuple[dict, dict[str, str], str]:
    """:func:`recorded_interaction` with the interaction's cassette line."""
    interaction, secrets, recorded = recorded_interaction(*exchange)
    return interaction, secrets, cassette.interaction_line(interaction, cassette.raw_json(recorded.raw))


def body_removals(url: str, request_headers: Mapping[str, str], response_headers: Mapping[str, str],
                  body: bytes, content_type: str | None) -> list[redact.Removal]:
    """What recording this exchange removes from its body (the proxy reports it as the exchange
    is answered; the writer, in its own process, removes exactly this). Costs a few substring
    searches when there is nothing to remove."""
    secrets = redact.request_secrets(url, request_headers, response_headers)
    return redact.removals_in(body, content_type, redact.secret_pattern(secrets))


def _merge(new: dict[tuple, dict], bindings: set[tuple[str, int]]) -> Callable[[dict | None], dict]:
    def merge(old: dict | None) -> dict:
        doc = dict(old) if old else {"xblreplay": cassette.VERSION}
        by_key = {_key(i): i for i in doc.get("interactions") or ()}
        for key, interaction in new.items():
            prev = by_key.get(key)
            if prev is None or _content(prev) != _content(interaction):
                by_key[key] = interaction
        if by_key:
            doc["interactions"] = [by_key[k] for k in sorted(by_key)]
            doc["recorded_at"] = max(i.get("recorded_at", "") for i in doc["interactions"])
        known = {(b["userhash_sha256"], int(b["xuid"])) for b in doc.get("bindings") or ()}
        if bindings - known:
            doc["bindings"] = [{"userhash_sha256": h, "xuid": x} for h, x in sorted(known | bindings)]
        return doc

    return merge


class _Reports:
    """Write problems (a leak refused, an existing file that does not load, an OS error) are kept
    in ``errors`` (the latest 100) and passed to ``on_error``; the writer carries on."""

    def __init__(self, cassette_dir: str | Path, on_error: Callable[[Exception], None] | None = None):
        self.cassette_dir = Path(cassette_dir)
        self.on_error = on_error
        self.errors: collections.deque[Exception] = collections.deque(maxlen=100)

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


class Recorder(_Reports):
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
        """Queues one exchange (``body`` already decoded); never touches the disk."""
        item = (method, url, dict(request_headers), status, dict(response_headers), body, content_type,
                latency_ms, recorded_at)
        with self._cond:
            if self._closed:
                raise RuntimeError("recorder is closed")
            self._queued += 1
            self._queued_bytes += _size(item)
            self._queue.put(item)

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
            size = _size(batch[0])
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
                size += _size(batch[-1])
            items = [b for b in batch if b is not _STOP]
            try:
                self._write(items)
            except Exception as exc:  # pragma: no cover - _write reports per file
                self._report(exc)
            with self._cond:
                self._done += len(items)
                self._queued_bytes -= size
                self._cond.notify_all()
            if batch[-1] is _STOP:
                return

    def _read(self, method: str, url: str, headers: Mapping[str, str]) -> RequestCheck:
        """The request read as the proxy reads it (the contract's parsers), for its file and binding."""
        if self._validator is None:
            self._validator = Validator.from_rules(self._rules_dir or DEFAULT_RULES_DIR)
        return self._validator.check_request(method, url, dict(headers))

    def _write(self, items: list[tuple]) -> None:
        files: dict[Path, tuple[dict, set, dict]] = {}
        for item in items:
            method, url = item[0], item[1]
            request_headers = {k.lower(): v for k, v in item[2].items()}
            item = (method, url, request_headers, *item[3:])
            try:
                check = self._read(method, url, request_headers)
                path = cassette_path(self.cassette_dir, check)
                interaction, secrets, line = build_interaction(*item)
                findings = redact.leak_scan(line.encode("utf-8"), secrets)
                if findings:
                    raise redact.LeakError(f"{path} ({method} {urlsplit(redact.redact_url(url, redact.secret_pattern(secrets))).path})", findings)
            except Exception as exc:
                self._report(exc)
                continue
            cassette.remember_line(path, interaction, line)
            time.sleep(0)  # let the proxy's event loop run between items: its latency comes first
            new, bindings, file_secrets = files.setdefault(path, ({}, set(), {}))
            new[_key(interaction)] = interaction
            file_secrets.update(secrets)
            auth = parse_authorization(request_headers.get("authorization"))
            xuid = check.path_params.get("xuid")
            if auth and xuid is not None and 200 <= int(item[3]) < 300:
                bindings.add((redact.userhash_sha256(auth[0]), int(xuid)))
        for path, (new, bindings, secrets) in files.items():
            try:
                cassette.update_file(path, _merge(new, bindings), secrets)
            except Exception as exc:
                self._report(exc)
            _forget_if_large(path)


def _size(item: object) -> int:
    """The bytes an exchange's body takes (0 for anything that is not an exchange)."""
    return len(item[5]) if isinstance(item, tuple) and len(item) > 5 else 0


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


# --------------------------------------------------------------------------------------------
# The same recorder in a child process: the proxy process only queues and pipes the raw
# exchange, so redaction, serialization and file writes never compete with mitmproxy's event
# loop for the interpreter lock.

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


class RecorderProcess(_Reports):
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

    def record(self, method: str, url: str, request_headers: Mapping[str, str], status: int,
               response_headers: Mapping[str, str], body: bytes, content_type: str | None,
               latency_ms: float, recorded_at: datetime | str | None = None) -> None:
        """Queues one exchange (stamped now unless ``recorded_at`` says otherwise); never
        touches the disk or the pipe."""
        item = (method, url, dict(request_headers), status, dict(response_headers), body, content_type,
                latency_ms, _timestamp(recorded_at))
        with self._cond:
            if self._closed:
                raise RuntimeError("recorder is closed")
            self._backlog += _size(item)
            self._outbox.put(("record", item))

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
                    self._backlog -= _size(message[1])
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
            item = message[1]
            self._report(RuntimeError(f"{item[0]} {redact.redact_url(item[1])}: the recorder process is gone"))

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


def _serve(cassette_dir: str, rules_dir: str | None = None, backlog_limit: str | None = None) -> None:
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
            kind, payload = pickle.load(inp)
        except Exception:  # EOF: the parent closed the pipe (or died); write what is queued and stop
            break
        if kind == "record":
            rec.record(*payload)
        else:
            rec.flush()
            send(("flushed", payload))
    rec.close()

