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

Every line is valid UTF-8, whatever the client sent: in ``url`` each byte that was not UTF-8
(mitmproxy hands them over as lone surrogates) is written percent-encoded, ``%FF``, so the URL
reads as the bytes that went over the wire; in any other field such a byte is written as a
``\\udcff`` escape (:func:`model.readable`).
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .model import Violation, readable
from .redact import Removal, SecretPattern, scrub_line

_SURROGATE = re.compile("[\ud800-\udfff]")


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


def utc_stamp(ts: float | None = None) -> str:
    dt = datetime.fromtimestamp(ts, timezone.utc) if ts is not None else datetime.now(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


class ValidationLog:
    """Collects entries, appends them to a JSON Lines file when a path is given, and keeps
    the counters behind :meth:`summary`."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path else None
        self._fh = None
        self._lock = threading.Lock()
        self.requests = 0
        self.by_rule: Counter[str] = Counter()
        self.by_code: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()
        self.by_source: Counter[str] = Counter()
        self.redactions: Counter[str] = Counter()  # values removed from recorded bodies, by what
        self.not_recorded = 0  # exchanges a recording mode could not record
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Line-buffered append: every entry is on disk as soon as it is written.
            self._fh = open(self.path, "a", encoding="utf-8", buffering=1)

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
        line = json.dumps(entry, ensure_ascii=False, separators=(",", ":"))
        if _SURROGATE.search(line):  # client text that was not UTF-8 (a method, a message)
            entry = _readable(entry)
            line = json.dumps(entry, ensure_ascii=False, separators=(",", ":"))
        line, scrubbed = scrub_line(line, secrets)
        if scrubbed:
            entry = json.loads(line)
            entry["log_redactions"] = scrubbed
            line = json.dumps(entry, ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            self.requests += 1
            self.by_status[status if status is not None else 0] += 1
            self.by_source[source] += 1
            self.not_recorded += bool(not_recorded)
            for r in redactions or ():
                self.redactions[r.what] += 1
            for v in violations:
                self.by_rule[v.rule] += 1
                if v.code:
                    self.by_code[v.code] += 1
            if self._fh is not None:
                self._fh.write(line + "\n")
        return entry

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
        }

    def close(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write the summary as the last line (``{"summary": …}``) and close the file."""
        summary = self.summary()
        if extra:
            summary.update(extra)
        with self._lock:
            if self._fh is not None:
                self._fh.write(json.dumps({"summary": summary}, separators=(",", ":")) + "\n")
                self._fh.close()
                self._fh = None
        return summary
