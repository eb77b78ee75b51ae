"""The traffic validation log: one JSON object per request (JSON Lines) and a run summary.

A line looks like::

    {"time": "2026-11-27T23:50:01.123Z", "method": "GET",
     "url": "https://achievements.xboxlive.com/users/xuid(2533274800000001)/achievements?maxItems=abc",
     "mode": "validate", "endpoint": "achievements", "status": 200, "source": "upstream",
     "latency_ms": 3.2, "violations": [{"rule": "R8", "location": "query", "name": "maxItems",
     "severity": "error", "message": "...", "code": "invalid-integer"}]}

URLs pass through :func:`redact.redact_url` first; no header value is ever logged. A recorded
exchange whose body had secrets removed carries ``"redactions": [{"path": "/achievements/0/description",
"what": "authorization token"}]`` (JSON pointers into the body; never the values).

An exchange the proxy did not record (its body over ``achievements_max_body``, not decodable, or
streamed) carries ``"not_recorded": "<why>"`` beside a violation saying the same (rule ``limits``,
codes ``body-too-large``, ``body-undecodable``, ``unknown-encoding``).

In diff mode (``achievements_mode=diff``) every entry of the host carries ``"diff"``: the
comparison of the service's answer with the cassettes' (:meth:`diff.Comparison.entry`)::

    "diff": {"agreed": false, "local": {"status": 200, "source": "dataset"},
             "checked": ["R1", "R4", "R5", "R7", "R8"],
             "findings": [{"rule": "R4", "aspect": "order", "message": "...",
                           "paths": ["/achievements/0/id", "/achievements/1/id"], "more_paths": 3}]}

or ``{"not_compared": "<why>"}`` (an internal error of the comparison: a finding of rule
``internal``). The summary then counts agreement per rule (``"diff"``, :meth:`ValidationLog.summary`).

Every line is valid UTF-8, whatever the client sent: in ``url`` each byte that was not UTF-8
(mitmproxy hands them over as lone surrogates) is written percent-encoded, ``%FF``, so the URL
reads as the bytes that went over the wire; in any other field such a byte is written as a
``\\udcff`` escape (:func:`model.readable`).

Writing. Lines are gathered and appended together, at most ``FLUSH_AFTER_S`` after the first of
them (at once with no event loop running, or once ``FLUSH_CHARS`` are waiting), each batch in one
``write`` of whole lines to a file opened for appending: a reader never sees half a line, and a
busy proxy makes one system call per batch, not per request. :meth:`ValidationLog.close` (a
clean stop of mitmdump) writes everything, the summary last. A proxy killed without a clean stop
(SIGKILL, a crash) loses the lines of its last ``FLUSH_AFTER_S`` at most; no line is cut.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import threading
import time as _time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


from .model import Violation, compact_json, readable
from .redact import Removal, SecretPattern, scrub_line

_SURROGATE = re.compile("[\ud800-\udfff]")
# Waiting lines are written this long after the first of them at the latest, or once this many
# characters wait (see the module's docstring).
FLUSH_AFTER_S = 0.1
FLUSH_CHARS = 1 << 16


def wire_url(url: str) -> str:
    """``url`` as the log and the cassettes write it: each byte that was not UTF-8 (a lone
    surrogate left by mitmproxy's ``surrogateescape`` decoding) percent-encoded as the byte it was."""
    return url if url.isascii() else _SURROGATE.sub(_percent, url)


def _percent(m: re.Match[str]) -> str:
    code = ord(m.group())
    if 0xDC80 <= code <= 0xDCFF:  # a byte 0x80-0xFF that was not part of UTF-8
        return f"%{code - 0xDC00:02X}"
    return "".join(f"%{b:02X}" for b in m.group().encode("utf-8", "surrogatepass"))


def _readable(value: Any) -> Any:
    if isinstance(value, str):
        return readable(value) if _SURROGATE.search(value) else value
    if isinstance(value, dict):
        return {_readable(k): _readable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_readable(v) for v in value]
    return value


_second: tuple[int | None, str] = (None, "")  # the last whole second stamped, and its text


def utc_stamp(ts: float | None = None) -> str:
    """``ts`` (now when None) as the log writes times: UTC, milliseconds, ``Z``. The milliseconds
    are those of ``datetime.fromtimestamp(ts)`` (the nearest microsecond, ties to even) or of
    ``datetime.now()`` (the microsecond before), read without building a datetime."""
    global _second
    if ts is None:
        second, ms = divmod(_time.time_ns() // 1_000_000, 1000)
    else:
        frac, whole = math.modf(ts)
        us = round(frac * 1e6)
        if us >= 1_000_000:
            us -= 1_000_000
            whole += 1.0
        elif us < 0:
            us += 1_000_000
            whole -= 1.0
        second, ms = int(whole), us // 1000
    last, text = _second
    if second != last:  # formatted once a second: every line of a busy second shares it
        text = datetime.fromtimestamp(second, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.")
        _second = (second, text)
    return f"{text}{ms:03d}Z"


def _dumps(entry: dict[str, Any]) -> str:
    """``entry`` as one JSON line (``model.compact_json``)."""
    return compact_json(entry).decode()


class ValidationLog:
    """Collects entries, appends them to a JSON Lines file when a path is given, and keeps
    the counters behind :meth:`summary`."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path else None
        self._fd: int | None = None
        self._lock = threading.Lock()
        self._waiting: list[str] = []  # lines not written yet, each ending in a newline
        self._waiting_chars = 0
        self._flush_at: asyncio.TimerHandle | None = None
        self.requests = 0
        self.by_rule: Counter[str] = Counter()
        self.by_code: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()
        self.by_source: Counter[str] = Counter()
        self.redactions: Counter[str] = Counter()  # values removed from recorded bodies, by what
        self.not_recorded = 0  # exchanges a recording mode could not record
        self.diffs: Counter[str] | None = None  # diff mode: exchanges compared, agreed, ... (count_diffs)
        self.diff_checked: Counter[str] = Counter()  # diff mode: per rule, exchanges that exercised it
        self.diff_disagreed: Counter[str] = Counter()  # ... and those that disagreed on it
        self.diff_findings: Counter[str] = Counter()  # diff mode: findings per rule
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)

    def write(
        self,
        *,
        method: str,
        url: str,
        mode: str,
        endpoint: str,
        status: int | None,
        source: str,
        latency_ms: float | None,
        violations: list[Violation],
        reason: str = "",
        time: float | None = None,
        redactions: list[Removal] | None = None,
        secrets: SecretPattern | None = None,
        not_recorded: str = "",
        diff: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Appends one entry. Before it is written the line is scrubbed of every form of the
        exchange's ``secrets`` and of verified credentials (a message may echo what the client
        sent); what was replaced is named in ``log_redactions``. Returns the entry as written."""
        entry: dict[str, Any] = {
            "time": utc_stamp(time),
            "method": method,
            "url": wire_url(url),
            "mode": mode,
            "endpoint": endpoint,
            "status": status,
            "source": source,
            "latency_ms": None if latency_ms is None else round(latency_ms, 3),
            "violations": [v.to_dict() for v in violations],
        }
        if reason:
            entry["reason"] = reason
        if redactions:
            entry["redactions"] = [r.to_dict() for r in redactions]
        if not_recorded:
            entry["not_recorded"] = not_recorded
        if diff is not None:
            entry["diff"] = diff
        try:
            line = _dumps(entry)
        except UnicodeEncodeError:  # client text that was not UTF-8 (a method, a message)
            entry = _readable(entry)
            line = _dumps(entry)
        line, scrubbed = scrub_line(line, secrets)
        if scrubbed:
            entry = json.loads(line)
            entry["log_redactions"] = scrubbed
            line = _dumps(entry)
        with self._lock:
            self.count(entry)
            if diff is not None:
                self._count_diff(diff)
            if self._fd is not None:
                self._waiting.append(line + "\n")
                self._waiting_chars += len(line) + 1
                if self._waiting_chars >= FLUSH_CHARS or not self._flush_later():
                    self._write_waiting()
        return entry

    def count(self, entry: dict[str, Any]) -> None:
        """Counts one entry as written (the counters behind :meth:`summary`, but diff mode's): the
        log's own entries as they are written, and entries read back from a log file (a report,
        a test's share of a run), whose fields are not trusted to have their types. Not locked:
        :meth:`write` counts under its lock."""
        status = entry.get("status")
        self.requests += 1
        self.by_status[status if isinstance(status, int) else 0] += 1
        self.by_source[str(entry.get("source"))] += 1
        self.not_recorded += bool(entry.get("not_recorded"))
        for r in entry.get("redactions") or ():
            if isinstance(r, dict):
                self.redactions[str(r.get("what", ""))] += 1
        for v in entry.get("violations") or ():
            if isinstance(v, dict):
                self.by_rule[str(v.get("rule", ""))] += 1
                if v.get("code"):
                    self.by_code[str(v["code"])] += 1

    def count_diffs(self) -> None:
        """The summary counts diff mode's comparisons (``"diff"``) from now on."""
        if self.diffs is None:
            self.diffs = Counter()

    def _count_diff(self, diff: dict[str, Any]) -> None:
        """Counts one entry's ``diff`` field (the lock held)."""
        if self.diffs is None:
            self.diffs = Counter()
        self.diffs["exchanges"] += 1
        findings = diff.get("findings") or []
        for f in findings:
            self.diff_findings[f["rule"]] += 1
        if "not_compared" in diff:
            self.diffs["not_compared"] += 1
            self.diffs["internal_errors"] += bool(findings)
            return
        self.diffs["compared"] += 1
        self.diffs["agreed" if diff["agreed"] else "disagreed"] += 1
        self.diff_checked.update(diff["checked"])
        self.diff_disagreed.update({f["rule"] for f in findings})

    def _diff_summary(self) -> dict[str, Any]:
        def share(agreed: int, compared: int) -> float | None:
            return round(agreed / compared, 4) if compared else None

        counts = self.diffs or Counter()
        by_rule = {}
        for rule in sorted(self.diff_checked, key=lambda r: (len(r), r)):
            compared, disagreed = self.diff_checked[rule], self.diff_disagreed[rule]
            by_rule[rule] = {"compared": compared, "agreed": compared - disagreed, "disagreed": disagreed,
                             "agreement": share(compared - disagreed, compared)}
        return {
            **{k: counts[k] for k in ("exchanges", "compared", "agreed", "disagreed", "not_compared",
                                      "internal_errors")},
            "agreement": share(counts["agreed"], counts["compared"]),
            "by_rule": by_rule,
            "findings_by_rule": dict(sorted(self.diff_findings.items(), key=lambda kv: (len(kv[0]), kv[0]))),
        }

    def _flush_later(self) -> bool:
        """Makes sure the waiting lines are written within FLUSH_AFTER_S; False when no event
        loop runs here to do it (they are to be written now)."""
        if self._flush_at is not None:
            return True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        self._flush_at = loop.call_later(FLUSH_AFTER_S, self.flush)
        return True

    def flush(self) -> None:
        """Writes the waiting lines (what the timer calls)."""
        with self._lock:
            self._flush_at = None
            self._write_waiting()

    def _write_waiting(self) -> None:
        """One write of whole lines (the lock held). A timer set stays: cancelled, it would sit
        in the event loop's queue until its time; it finds the lines written since, or none."""
        if not self._waiting or self._fd is None:
            return
        data = "".join(self._waiting).encode("utf-8")
        self._waiting.clear()
        self._waiting_chars = 0
        view = memoryview(data)
        while view:  # a regular file takes it whole but for a full disk or a signal
            view = view[os.write(self._fd, view):]

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "violations": sum(self.by_rule.values()),
            "violations_by_rule": dict(sorted(self.by_rule.items())),
            "violations_by_code": dict(sorted(self.by_code.items())),
            "status": {str(k): v for k, v in sorted(self.by_status.items())},
            "source": dict(sorted(self.by_source.items())),
            "redactions": sum(self.redactions.values()),
            "redactions_by_what": dict(sorted(self.redactions.items())),
            "not_recorded": self.not_recorded,
            **({"diff": self._diff_summary()} if self.diffs is not None else {}),
        }

    def close(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write the summary as the last line (``{"summary": …}``) and close the file."""
        summary = self.summary()
        if extra:
            summary.update(extra)
        with self._lock:
            if self._flush_at is not None:
                self._flush_at.cancel()
                self._flush_at = None
            if self._fd is not None:
                self._waiting.append(json.dumps({"summary": summary}, separators=(",", ":")) + "\n")
                try:
                    self._write_waiting()
                finally:
                    os.close(self._fd)
                    self._fd = None
        return summary
