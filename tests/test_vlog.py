"""The validation log (xblreplay.vlog): the line an entry is written as, and when lines reach the file."""

from __future__ import annotations

import asyncio
import json

from xblreplay import vlog
from xblreplay.model import WARNING, Violation
from xblreplay.redact import request_secrets, secret_pattern

URL = "https://achievements.xboxlive.com/users/xuid(2533274800000001)/achievements?maxItems=3"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.dGVzdA.c2lnbmF0dXJlc2ln"


def write(log: vlog.ValidationLog, message: str = "m", **kw) -> dict:
    fields = dict(method="GET", url=URL, mode="replay", endpoint="achievements", status=200, source="dataset",
                  latency_ms=1.23456, violations=[Violation("R8", "query", "maxItems", WARNING, message, "x")],
                  time=1_800_000_000.5)
    fields.update(kw)
    return log.write(**fields)


def lines(path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")[:-1]  # U+2028 in a message is no line end


def test_a_line_is_the_entry_as_json_dumps_writes_it(tmp_path):
    log = vlog.ValidationLog(tmp_path / "log.jsonl")
    messages = ["a\x00\x1f\x7f\"\\/", "\u2028\u2029é😀", "\t\n\r\b\f", "x" * 5000]
    entries = [write(log, m, latency_ms=ms) for m, ms in zip(messages, (0.0, 0.0004, 12345.6789, 1e6))]
    entries.append(write(log, "big", status=2**70))  # over 64 bits: written all the same
    log.close()
    written = lines(tmp_path / "log.jsonl")
    assert written[:-1] == [json.dumps(e, ensure_ascii=False, separators=(",", ":")) for e in entries]
    assert json.loads(written[-1])["summary"]["requests"] == 5


def test_client_bytes_that_were_not_utf8_are_escaped_and_secrets_scrubbed(tmp_path):
    log = vlog.ValidationLog(tmp_path / "log.jsonl")
    secrets = secret_pattern(request_secrets(URL, {"authorization": f"XBL3.0 x=3141592653589793238;{TOKEN}"}))
    odd = write(log, "bad \udcff byte")
    scrubbed = write(log, f"echoed {TOKEN}", secrets=secrets)
    log.close()
    first, second = (json.loads(line) for line in lines(tmp_path / "log.jsonl")[:2])
    assert first == odd and first["violations"][0]["message"] == "bad \\udcff byte"
    assert second == scrubbed and TOKEN not in json.dumps(second) and second["log_redactions"]


def test_the_time_is_utc_with_milliseconds_whichever_second():
    assert vlog.utc_stamp(1_800_000_000.5) == "2027-01-15T08:00:00.500Z"
    assert vlog.utc_stamp(1_800_000_000.999) == "2027-01-15T08:00:00.999Z"
    assert vlog.utc_stamp(1_800_000_001.0) == "2027-01-15T08:00:01.000Z"  # the next second's text
    assert vlog.utc_stamp(1_800_000_000.0) == "2027-01-15T08:00:00.000Z"  # and back


def test_without_an_event_loop_each_line_is_written_at_once(tmp_path):
    log = vlog.ValidationLog(tmp_path / "log.jsonl")
    write(log)
    assert len(lines(tmp_path / "log.jsonl")) == 1
    log.close()


def test_under_an_event_loop_lines_wait_for_one_write_within_flush_after(tmp_path):
    path = tmp_path / "log.jsonl"

    async def run() -> None:
        log = vlog.ValidationLog(path)
        loop = asyncio.get_running_loop()
        for _ in range(3):
            write(log)
        assert path.read_bytes() == b""  # waiting, not written yet
        assert 0 < log._flush_at.when() - loop.time() <= vlog.FLUSH_AFTER_S
        log.flush()  # what the timer calls
        assert len(lines(path)) == 3 and log._flush_at is None
        write(log)
        timer = log._flush_at
        write(log, "x" * vlog.FLUSH_CHARS)  # enough waiting: written at once
        assert len(lines(path)) == 5
        write(log)
        assert len(lines(path)) == 5 and log._flush_at is timer  # the timer set stays for it
        log.close()  # a clean stop writes what waits, the summary last
        assert len(lines(path)) == 7 and "summary" in json.loads(lines(path)[-1])
        assert timer.cancelled()

    asyncio.run(run())
