"""A validation log read in one streaming pass and aggregated into what the HTML report shows.

The file is read line by line (never whole), each line parsed once; what is kept is bounded by
the groups of findings, not by the lines: counters, the first ``examples`` requests of each
(rule, code) group, latency in fixed logarithmic bins, and per (xuid, title) the request times
(8 bytes each, :class:`array`) that the call-pattern timelines are drawn from.

* The run summary is :meth:`xblreplay.vlog.ValidationLog.summary`, fed the counters of the
  entries read back (the same counters :meth:`ValidationLog.write` keeps).
* A caller's (xuid, title) is :func:`xblreplay.traffic.caller_key` of the request as the
  contract's validator reads it (the key the rate limiter and the call-pattern checks count
  under), worked out once per distinct (method, URL).
* A log still being written ends in a line without its newline: that line is left out, not an
  error. A first line that is not a log entry means the file is not a validation log
  (:class:`LogError`); a later unreadable line is skipped and counted.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from ..contract import Validator, query_params, split_url
from ..engine.coverage import gap_named
from ..memo import Memo
from ..traffic import caller_key
from ..vlog import ValidationLog

EXAMPLES = 5  # requests kept per (rule, code) group: the page shows the first ones only
MESSAGES = 3  # distinct messages kept per group
MARKS = 400  # call-pattern findings and throttled answers kept per (xuid, title) for its timeline
SKIPPED_NAMED = 5  # line numbers of skipped lines named on the page
KEYS_KEPT = 65536  # (method, URL) -> (xuid, title) readings kept (xblreplay.memo.Memo)
# Latency bins: BINS_PER_DECADE per power of ten from 10**LOW_DECADE ms; bin 0 holds everything
# below, the last bin everything above 10**HIGH_DECADE ms.
BINS_PER_DECADE = 10
LOW_DECADE, HIGH_DECADE = -2, 6
LATENCY_BINS = (HIGH_DECADE - LOW_DECADE) * BINS_PER_DECADE + 2
# How engine.coverage.gap names what a partial answer misses: "(xuid X, titleId T)", "and N more".
_ENTRY_KEYS = ("time", "method", "url", "status", "source", "violations")


class LogError(Exception):
    """The file cannot be read as a validation log; str() is one line naming the file."""


@dataclass
class Example:
    """One request of a group, as logged (its URL already without secrets)."""

    time: str
    method: str
    url: str
    status: int | None
    name: str


@dataclass
class Group:
    """The violations of one (rule, code): how many, their severity, the first messages and requests."""

    rule: str
    code: str
    severity: str
    count: int = 0
    messages: list[str] = field(default_factory=list)
    examples: list[Example] = field(default_factory=list)


@dataclass
class Caller:
    """One (xuid, title): its request times (seconds since the epoch, ascending as logged) and the
    first findings and throttled answers on them, as (time, code)."""

    xuid: int
    title: str
    times: array = field(default_factory=lambda: array("d"))
    marks: list[tuple[float, str]] = field(default_factory=list)
    findings: Counter = field(default_factory=Counter)


@dataclass
class Traffic:
    """Everything the report shows about one log."""

    path: str
    lines: int = 0  # complete lines read
    entries: int = 0
    skipped: list[int] = field(default_factory=list)  # numbers of the first unreadable lines
    skipped_count: int = 0
    partial_tail: bool = False  # the last line had no newline yet (a log being written)
    summary: dict[str, Any] = field(default_factory=dict)  # ValidationLog.summary() of the entries
    logged_summaries: list[dict[str, Any]] = field(default_factory=list)  # the log's own summary lines
    groups: dict[tuple[str, str], Group] = field(default_factory=dict)
    callers: dict[tuple[int, str], Caller] = field(default_factory=dict)
    latency_bins: list[int] = field(default_factory=lambda: [0] * LATENCY_BINS)
    latency_count: int = 0
    no_latency: int = 0  # entries without a latency_ms
    per_second: Counter = field(default_factory=Counter)  # whole second -> requests logged in it
    first_time: float | None = None
    last_time: float | None = None
    modes: Counter = field(default_factory=Counter)
    endpoints: Counter = field(default_factory=Counter)
    missing: Counter = field(default_factory=Counter)  # (xuid, titleId) -> coverage warnings naming it
    missing_more: int = 0  # further pairs the warnings only counted ("and N more")

    def latency_percentile(self, share: float) -> float | None:
        """The upper edge (ms) of the latency bin holding the ``share`` quantile."""
        if not self.latency_count:
            return None
        rank = share * self.latency_count
        seen = 0
        for i, n in enumerate(self.latency_bins):
            seen += n
            if seen >= rank and n:
                return bin_edges(i)[1]
        return bin_edges(LATENCY_BINS - 1)[1]


def bin_edges(i: int) -> tuple[float, float]:
    """(low, high) in ms of latency bin ``i`` (bin 0 starts at 0; the last ends at infinity)."""
    low = 0.0 if i == 0 else 10 ** (LOW_DECADE + (i - 1) / BINS_PER_DECADE)
    high = math.inf if i == LATENCY_BINS - 1 else 10 ** (LOW_DECADE + i / BINS_PER_DECADE)
    return low, high


def _latency_bin(ms: float) -> int:
    if not ms > 10 ** LOW_DECADE:  # zero, negative, NaN
        return 0
    i = math.floor((math.log10(ms) - LOW_DECADE) * BINS_PER_DECADE) + 1
    return min(max(i, 1), LATENCY_BINS - 1)


_seconds: dict[str, float] = {}


def parse_time(text: Any) -> float | None:
    """A log time (``2026-11-27T23:50:01.123Z``, :func:`xblreplay.vlog.utc_stamp`) as seconds
    since the epoch; None for anything else. The whole second is worked out once."""
    if not isinstance(text, str) or len(text) != 24 or text[19] != "." or text[23] != "Z":
        return None
    head = text[:19]
    whole = _seconds.get(head)
    if whole is None:
        try:
            whole = datetime.fromisoformat(head).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            return None
        if len(_seconds) > 4096:
            _seconds.clear()
        _seconds[head] = whole
    ms = text[20:23]
    return whole + int(ms) / 1000 if ms.isdigit() else None


def is_entry(obj: Any) -> bool:
    """Whether a parsed line is a validation-log entry (the fields vlog.ValidationLog.write
    always writes)."""
    return isinstance(obj, dict) and all(k in obj for k in _ENTRY_KEYS) and isinstance(obj["violations"], list)


class Reader:
    """Aggregates entries one at a time (:meth:`add`); :func:`read_log` feeds it a file."""

    def __init__(self, traffic: Traffic, validator: Validator, examples: int = EXAMPLES) -> None:
        self.t = traffic
        self.validator = validator
        self.examples = examples
        self.counters = ValidationLog()  # no path: only its counters and summary() are used
        self.keys = Memo(KEYS_KEPT)

    def caller(self, method: str, url: str) -> tuple[int, str]:
        """(xuid, title) of a logged request. The key reads only the path and ``titleId``, so a
        URL not seen before is read as its path and ``titleId`` alone (most of a paging client's
        URLs differ in paging parameters only, and the whole reading costs 3-4 times as much)."""
        found = self.keys.get((method, url))
        if found is None:
            path, query = split_url(url)
            title = query_params(query).get("titleId") if query else None
            short = (method, path, title)
            found = self.keys.get(short)
            if found is None:
                raw_path = url.partition("#")[0].partition("?")[0]  # as sent: the validator decodes it
                target = raw_path if title is None else f"{raw_path}?titleId={quote(title, safe=',')}"
                found = self.keys.put(short, caller_key(self.validator.check_request(method, target, {})))
            self.keys.put((method, url), found)
        return found

    def add(self, e: dict[str, Any]) -> None:
        t, log = self.t, self.counters
        t.entries += 1
        status, violations = e["status"], e["violations"]
        method, url = str(e["method"]), str(e["url"])
        log.count(e)  # the counters ValidationLog.write keeps, for its summary()
        t.modes[str(e.get("mode", ""))] += 1
        t.endpoints[str(e.get("endpoint", ""))] += 1

        latency = e.get("latency_ms")
        if isinstance(latency, (int, float)) and not isinstance(latency, bool):
            t.latency_bins[_latency_bin(float(latency))] += 1
            t.latency_count += 1
        else:
            t.no_latency += 1

        when = parse_time(e["time"])
        if when is not None:
            t.per_second[int(when)] += 1
            if t.first_time is None or when < t.first_time:
                t.first_time = when
            if t.last_time is None or when > t.last_time:
                t.last_time = when
        caller = None
        if when is not None:
            pair = self.caller(method, url)
            caller = t.callers.get(pair)
            if caller is None:
                caller = t.callers[pair] = Caller(*pair)
            caller.times.append(when)
            if status == 429 and len(caller.marks) < MARKS:
                caller.marks.append((when, "throttled"))

        for v in violations:
            if not isinstance(v, dict):
                continue
            rule, code = str(v.get("rule", "")), str(v.get("code", ""))
            group = t.groups.get((rule, code))
            if group is None:
                group = t.groups[(rule, code)] = Group(rule, code, str(v.get("severity", "")))
            group.count += 1
            message = str(v.get("message", ""))
            if len(group.messages) < MESSAGES and message not in group.messages:
                group.messages.append(message)
            if len(group.examples) < self.examples:
                group.examples.append(Example(str(e["time"]), method, url, status if isinstance(status, int) else None,
                                              str(v.get("name", ""))))
            if rule == "call-pattern" and caller is not None:
                caller.findings[code] += 1
                if len(caller.marks) < MARKS:
                    caller.marks.append((when, code))
            if code == "coverage":
                pairs, more = gap_named(message)
                for pair in pairs:
                    t.missing[pair] += 1
                t.missing_more += more

    def finish(self) -> Traffic:
        self.t.summary = self.counters.summary()
        return self.t


def read_log(path: str | Path, validator: Validator, examples: int = EXAMPLES) -> Traffic:
    """The log at ``path`` read and aggregated in one pass (:class:`LogError` when it is not one)."""
    reader = Reader(Traffic(str(path)), validator, examples)
    t = reader.t
    try:
        f = open(path, "rb")
    except OSError as e:
        raise LogError(f"{path}: cannot read: {e.strerror or e}") from None
    with f:
        number = 0
        try:
            for line in f:
                number += 1
                if not line.endswith(b"\n"):  # the line being written when the file was read
                    if not t.entries and not t.logged_summaries and not line.startswith(b'{"'):
                        raise LogError(f"{path}: not a validation log (line {number} is not a log entry)")
                    t.partial_tail = True
                    break
                t.lines += 1
                if not line.strip():
                    continue
                try:
                    obj = orjson.loads(line)
                except orjson.JSONDecodeError:
                    obj = None
                if is_entry(obj):
                    reader.add(obj)
                elif isinstance(obj, dict) and isinstance(obj.get("summary"), dict) and len(obj) == 1:
                    t.logged_summaries.append(obj["summary"])
                elif not t.entries and not t.logged_summaries:
                    raise LogError(f"{path}: not a validation log (line {number} is not a log entry)")
                else:
                    t.skipped_count += 1
                    if len(t.skipped) < SKIPPED_NAMED:
                        t.skipped.append(number)
        except OSError as e:  # a directory, a device error
            raise LogError(f"{path}: cannot read: {e.strerror or e}") from None
    return reader.finish()
