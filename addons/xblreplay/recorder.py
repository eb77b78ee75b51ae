"""Recording exchanges into cassettes without blocking the caller.

``Recorder.record`` only queues the raw exchange; a background writer thread redacts it, decodes
the body, leak-scans it, and merges everything pending into the cassette files, each touched file
written once per batch through :func:`cassette.update_file` (locked, atomic, fsynced).

Files: ``<dir>/recorded/<xuid>/<titleIds joined with _ | all>.yaml`` for ``/users/xuid(N)/…``
paths, ``<dir>/recorded/other.yaml`` for anything else. Within a file interactions are keyed by
:func:`request.request_key` ("the same request", as replay matches it) and sorted; re-recording a
key replaces it, but an
identical exchange (ignoring latency) keeps the stored entry, so the file stays byte-identical.
"""

from __future__ import annotations

import collections
import hashlib
import os
import pickle
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from . import DEFAULT_RULES_DIR, cassette, redact
from .model import RequestCheck
from .request import parse_authorization, request_key, request_language
from .validator import Validator

_STOP = object()
COALESCE_S = 0.1  # how long the writer waits to gather a batch (the most a crash can lose)
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
            self._queue.put(item)

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
            if batch[0] is not _STOP:
                # Gather what arrives in the next moment too (unless a flush is waiting): each
                # touched file is rewritten once per batch, so under load bigger batches mean far
                # fewer rewrites.
                self._hurry.wait(COALESCE_S)
                self._hurry.clear()
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            items = [b for b in batch if b is not _STOP]
            try:
                self._write(items)
            except Exception as exc:  # pragma: no cover - _write reports per file
                self._report(exc)
            with self._cond:
                self._done += len(items)
                self._cond.notify_all()
            if len(items) != len(batch):
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


# --------------------------------------------------------------------------------------------
# The same recorder in a child process: the proxy process only queues and pipes the raw
# exchange, so redaction, serialization and file writes never compete with mitmproxy's event
# loop for the interpreter lock.

_PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # addons/, the package's source root


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
    xblreplay.recorder DIR``) fed through a pipe by a sender thread. If the parent dies, the
    child sees the pipe close, writes what it has and exits."""

    def __init__(self, cassette_dir: str | Path, on_error: Callable[[Exception], None] | None = None,
                 rules_dir: str | Path | None = None):
        super().__init__(cassette_dir, on_error)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (str(_PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")) if p))
        argv = [sys.executable, "-m", "xblreplay.recorder", str(self.cassette_dir)]
        if rules_dir is not None:
            argv.append(str(rules_dir))
        self._proc = subprocess.Popen(argv,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self._outbox: queue.SimpleQueue = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._flushes = 0  # flush requests sent
        self._flushed = 0  # flush requests the child has answered
        self._closed = False
        self._gone = False  # the child's output ended
        self._sender = threading.Thread(target=self._send, name="xblreplay-recorder-pipe", daemon=True)
        self._receiver = threading.Thread(target=self._receive, name="xblreplay-recorder-reports", daemon=True)
        self._sender.start()
        self._receiver.start()

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
            self._outbox.put(("record", item))

    def flush(self, timeout: float | None = None) -> bool:
        with self._cond:
            self._flushes += 1
            n = self._flushes
            self._outbox.put(("flush", n))
            return self._cond.wait_for(lambda: self._flushed >= n or self._gone, timeout) and self._flushed >= n

    def close(self, timeout: float | None = None) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._outbox.put(None)
        self._sender.join(timeout)
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._report(RuntimeError("the recorder process did not finish writing in time"))
        self._receiver.join(timeout)

    def _send(self) -> None:
        pipe = self._proc.stdin
        try:
            while True:
                message = self._outbox.get()
                if message is None:
                    break
                pickle.dump(message, pipe, protocol=pickle.HIGHEST_PROTOCOL)
                if self._outbox.empty():
                    pipe.flush()
        except (BrokenPipeError, OSError) as exc:
            self._report(RuntimeError(f"the recorder process is gone: {exc}"))
        finally:
            try:
                pipe.close()
            except OSError:
                pass

    def _receive(self) -> None:
        pipe = self._proc.stdout
        while True:
            try:
                kind, *rest = pickle.load(pipe)
            except (EOFError, OSError, pickle.UnpicklingError):
                break
            if kind == "flushed":
                with self._cond:
                    self._flushed = max(self._flushed, rest[0])
                    self._cond.notify_all()
            else:
                self._report(_rebuild(*rest))
        with self._cond:
            self._gone = True
            self._cond.notify_all()


def _serve(cassette_dir: str, rules_dir: str | None = None) -> None:
    """The child's side: a Recorder fed from stdin; reports and flush answers on stdout."""
    os.nice(10)
    out, lock = sys.stdout.buffer, threading.Lock()

    def send(message: tuple) -> None:
        with lock:
            pickle.dump(message, out, protocol=pickle.HIGHEST_PROTOCOL)
            out.flush()

    rec = Recorder(cassette_dir, on_error=lambda exc: send(("error", *_describe(exc))), rules_dir=rules_dir)
    inp = sys.stdin.buffer
    while True:
        try:
            kind, payload = pickle.load(inp)
        except (EOFError, pickle.UnpicklingError):
            break  # the parent closed the pipe (or died): write what is queued and stop
        if kind == "record":
            rec.record(*payload)
        else:
            rec.flush()
            send(("flushed", payload))
    rec.close()


if __name__ == "__main__":
    _serve(*sys.argv[1:3])
