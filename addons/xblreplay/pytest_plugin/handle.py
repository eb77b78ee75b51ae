"""What the ``achievements_proxy`` fixture gives a test: where the proxy is and how to point a
client or a game at it, and what the proxy found about this test's traffic (its validation-log
entries, violations, summary, and ``assert_clean``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .servers import RunningProxy

# What assert_clean() fails on besides errors: the call-pattern checks (their rule).
CALL_PATTERN_RULE = "call-pattern"


class AchievementsProxy:
    """The proxy of one test (shared with the other tests of the same configuration, reset for
    this one). ``options``: the addon's options it runs with."""

    def __init__(self, running: RunningProxy, options: dict[str, Any], start: int) -> None:
        self._running = running
        self._start = start  # the validation log's size when this test began
        self.options = options
        self.proxy_url = running.process.url
        self.ca_cert = running.process.ca
        self.cassettes = Path(options["achievements_cassettes"])
        self.mode = options["achievements_mode"]

    @property
    def pid(self) -> int:
        return self._running.pid

    @property
    def env(self) -> dict[str, str]:
        """Environment variables that send a subprocess's HTTP(S) through the proxy, trusting its
        CA (merge them into a copy of ``os.environ``)."""
        ca = str(self.ca_cert)
        return {"HTTPS_PROXY": self.proxy_url, "HTTP_PROXY": self.proxy_url, "https_proxy": self.proxy_url,
                "http_proxy": self.proxy_url, "SSL_CERT_FILE": ca, "REQUESTS_CA_BUNDLE": ca}

    def log(self) -> list[dict[str, Any]]:
        """This test's validation-log entries so far, parsed (the proxy writes its waiting lines
        first)."""
        end = self._running.control("mark")["log_offset"]
        with open(self._running.log, "rb") as f:
            f.seek(self._start)
            data = f.read(end - self._start)
        return [entry for line in data.splitlines() if line.strip()
                and "summary" not in (entry := json.loads(line))]

    def violations(self, severity: str | None = "error") -> list[dict[str, Any]]:
        """This test's violations of ``severity`` (None: all), each with the request it was found
        in (``request``: "METHOD URL -> status")."""
        return [{**v, "request": _request(e)} for e in self.log() for v in e["violations"]
                if severity is None or v["severity"] == severity]

    def summary(self) -> dict[str, Any]:
        """This test's summary, as the proxy's own summary counts it (vlog.ValidationLog)."""
        from ..vlog import ValidationLog

        tally = ValidationLog()
        for e in self.log():
            tally.count(e)
        return tally.summary()

    def findings(self, warnings: bool = False) -> list[dict[str, Any]]:
        """What assert_clean() fails on: errors (the contract's R8, R7 response checks, …) and
        call-pattern findings; every warning too with ``warnings``."""
        return [v for v in self.violations(None)
                if warnings or v["severity"] == "error" or v["rule"] == CALL_PATTERN_RULE]

    def assert_clean(self, warnings: bool = False) -> None:
        """Fails the test with the list of its findings (see ``findings``), each naming its rule
        and code."""
        found = self.findings(warnings)
        if found:
            pytest.fail(report(found), pytrace=False)


def report(found: list[dict[str, Any]]) -> str:
    """The findings as a test failure reads them."""
    lines = [f"achievements proxy: {len(found)} finding{'s' if len(found) != 1 else ''} in this test's traffic:"]
    for v in found:
        code = f" {v['code']}" if v.get("code") else ""
        lines.append(f"  {v['rule']}{code} ({v['severity']}) {v['location']} {v['name']}: {v['message']}")
        lines.append(f"      in {v['request']}")
    return "\n".join(lines)


def _request(entry: dict[str, Any]) -> str:
    return f"{entry['method']} {entry['url']} -> {entry['status']}"
