"""End-to-end: the hostile-network features through a real mitmdump in replay mode on the shipped
example cassette -- fault profiles (rates, reproducibility), latency that does not block other
flows, R10 throttling, and the call-pattern findings of the validation log.

Expected values are derived here from the test's own inputs (the profile written into tmp_path,
the numbers of achievements-api.md §4.2, the request script), never read back from the addon."""

from __future__ import annotations

import http.client
import json
import math
import ssl
import threading
import time
from pathlib import Path

import pytest

from proxyharness import AUTH, HOST, REPO, XUID, Mitmdump, SilentListener, read_log

pytestmark = pytest.mark.e2e

EXAMPLE = REPO / "cassettes" / "example"
STARFALL = 1717113201  # V2, 23 achievements
HARBOR = 1829000002  # V2, 8 achievements
CLASSIC = 1297290392  # V1
LISTING = f"/users/xuid({XUID})/achievements?titleId={STARFALL}&maxItems=5"
HISTORY = f"/users/xuid({XUID})/history/titles"

# achievements-api.md §4.2: Achievements burst limit 100 per 15 s.
BURST_LIMIT, BURST_PERIOD = 100, 15
# rules/limits.yaml call_patterns, as shipped (the test uses the shipped thresholds).
POLLING_MIN_CALLS = 5


class Client:
    """A keep-alive HTTPS client through the proxy's CONNECT tunnel; reconnects after a drop."""

    def __init__(self, proxy: Mitmdump, timeout: float = 20.0) -> None:
        self.proxy = proxy
        self.timeout = timeout
        self.ctx = ssl.create_default_context(cafile=str(proxy.ca))
        self.conn: http.client.HTTPSConnection | None = None
        self.connects = 0

    def _connect(self) -> http.client.HTTPSConnection:
        conn = http.client.HTTPSConnection("127.0.0.1", self.proxy.port, context=self.ctx, timeout=self.timeout)
        conn.set_tunnel(HOST, 443)
        self.connects += 1
        return conn

    def get(self, path: str, contract: str | None = "2", *, drop_ok: bool = False
            ) -> tuple[int, dict[str, str], bytes] | None:
        """One GET; None when the connection was dropped instead of answered (only if drop_ok)."""
        if self.conn is None:
            self.conn = self._connect()
        headers = {"Authorization": AUTH, "Accept-Language": "en-US"}
        if contract is not None:
            headers["x-xbl-contract-version"] = contract
        try:
            self.conn.request("GET", path, headers=headers)
            resp = self.conn.getresponse()
            body = resp.read()
        except (http.client.RemoteDisconnected, http.client.IncompleteRead, ConnectionError, ssl.SSLError):
            self.close()
            if not drop_ok:
                raise AssertionError(f"connection dropped on GET {path}") from None
            return None
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def four_sigma(n: int, p: float) -> float:
    """Half-width of a 4-sigma band for a binomial count (false alarm about 6e-5 per check)."""
    return 4 * math.sqrt(n * p * (1 - p))


# --------------------------------------------------------------------------------------- faults

FAULT_RATES = {"503": 0.15, "500": 0.10, "empty": 0.10, "truncate": 0.10, "reset": 0.05}
RETRY_AFTER = 7
N_FAULT_REQUESTS = 300


def write_fault_profile(tmp_path: Path) -> Path:
    path = tmp_path / "hostile.yaml"
    path.write_text(
        "description: test profile with known fault rates\n"
        "seed: 999\n"
        "faults:\n"
        f"  - {{endpoint: '*', probability: {FAULT_RATES['503']}, kind: 503, retry_after: {RETRY_AFTER}}}\n"
        f"  - {{endpoint: '*', probability: {FAULT_RATES['500']}, kind: 500}}\n"
        f"  - {{endpoint: achievements, probability: {FAULT_RATES['empty']}, kind: empty}}\n"
        f"  - {{endpoint: achievements, probability: {FAULT_RATES['truncate']}, kind: truncate}}\n"
        f"  - {{endpoint: '*', probability: {FAULT_RATES['reset']}, kind: reset}}\n"
    )
    return path


def classify(reply: tuple[int, dict[str, str], bytes] | None, full_body: bytes | None) -> tuple[str, int]:
    """What the client saw: (kind, body length). Kinds: ok, 503, 500, empty, truncate, reset."""
    if reply is None:
        return "reset", 0
    status, headers, body = reply
    if status == 503:
        assert headers.get("retry-after") == str(RETRY_AFTER), headers
        return "503", len(body)
    if status == 500:
        return "500", len(body)
    assert status == 200, (status, body[:200])
    if body == b"":
        return "empty", 0
    try:
        json.loads(body)
    except ValueError:
        # A cut body: a strict prefix of the real answer.
        assert full_body is None or (full_body.startswith(body) and len(body) < len(full_body)), body[-80:]
        return "truncate", len(body)
    assert full_body is None or body == full_body
    return "ok", len(body)


def run_fault_profile(tmp_path: Path, profile: Path, seed: int, n: int) -> tuple[list[tuple[str, int]], list, Client]:
    log = tmp_path / "validation.jsonl"
    with SilentListener() as upstream:
        with Mitmdump(tmp_path, achievements_mode="replay", achievements_cassettes=EXAMPLE,
                      achievements_upstream=upstream.url, achievements_log=log,
                      achievements_faults=profile, achievements_seed=seed) as proxy:
            client = Client(proxy)
            replies = [client.get(LISTING, drop_ok=True) for _ in range(n)]
            client.close()
    assert upstream.accepted == 0
    entries, _ = read_log(log)
    return replies, entries, client


def test_faults_occur_at_their_configured_rates_and_a_seed_reproduces_them(tmp_path):
    profile = write_fault_profile(tmp_path)
    # The undisturbed answer, from a proxy without a fault profile, to compare cut bodies with.
    with Mitmdump(tmp_path / "clean", achievements_mode="replay", achievements_cassettes=EXAMPLE) as clean:
        full = Client(clean).get(LISTING)
    assert full is not None and full[0] == 200
    full_body = full[2]

    n = N_FAULT_REQUESTS
    runs = {}
    for label, seed in (("a", 20261127), ("b", 20261127), ("c", 20261128)):
        replies, entries, client = run_fault_profile(tmp_path / label, profile, seed, n)
        runs[label] = ([classify(r, full_body) for r in replies], entries, client)

    outcomes, entries, client = runs["a"]
    kinds = [k for k, _ in outcomes]
    counts = {kind: kinds.count(kind) for kind in ("ok", *FAULT_RATES)}
    expected_ok = 1 - sum(FAULT_RATES.values())
    for kind, p in (*FAULT_RATES.items(), ("ok", expected_ok)):
        assert abs(counts[kind] - n * p) <= four_sigma(n, p), (kind, counts, n * p, four_sigma(n, p))
    assert sum(counts.values()) == n
    # Every dropped connection made the client reconnect; nothing else did.
    assert client.connects == 1 + sum(k == "reset" for k in kinds[:-1])

    # The validation log has one line per request, and agrees with what the client saw.
    assert len(entries) == n
    for (kind, _), entry in zip(outcomes, entries):
        if kind == "reset":
            assert (entry["status"], entry["source"]) == (None, "fault:reset"), entry
        elif kind in ("503", "500"):
            assert (entry["status"], entry["source"]) == (int(kind), "fault"), entry
        elif kind in ("empty", "truncate"):
            # Replay answered, then the fault altered the answer: the log says which fault.
            assert (entry["status"], entry["source"]) == (200, f"fault:{kind}"), entry
        else:
            assert (entry["status"], entry["source"]) == (200, "dataset"), entry

    # Same seed: the same outcomes, to the length of every cut body. Another seed: different.
    assert runs["b"][0] == outcomes
    assert runs["c"][0] != outcomes
    assert [k for k, _ in runs["c"][0]] != kinds


# -------------------------------------------------------------------------------------- latency

SLOW_S = 3.0


def test_fixed_latency_on_one_endpoint_does_not_block_other_flows(tmp_path):
    profile = tmp_path / "slow-history.yaml"
    profile.write_text(f"latency:\n  per_endpoint:\n    title-history: {{fixed: {int(SLOW_S * 1000)}}}\n")
    with Mitmdump(tmp_path, achievements_mode="replay", achievements_cassettes=EXAMPLE,
                  achievements_faults=profile) as proxy:
        # Warm-up on the listing (no latency configured): the CA and first-flow costs are paid here.
        assert proxy.request(LISTING).status == 200

        slow: dict[str, object] = {}

        def slow_request(key: str) -> None:
            t0 = time.monotonic()
            reply = proxy.request(HISTORY)
            slow[key] = (reply.status, time.monotonic() - t0, time.monotonic())

        threads = [threading.Thread(target=slow_request, args=(k,)) for k in ("one", "two")]
        started = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(0.3)  # both slow requests are now waiting inside the proxy
        t0 = time.monotonic()
        fast = proxy.request(LISTING)
        fast_s = time.monotonic() - t0
        fast_done = time.monotonic()
        still_pending = [t.is_alive() for t in threads]
        for t in threads:
            t.join(timeout=SLOW_S + 10)
        total_s = time.monotonic() - started

    assert fast.status == 200
    assert fast_s < 1.5, fast_s
    assert still_pending == [True, True]
    for key in ("one", "two"):
        status, elapsed, done_at = slow[key]
        assert status == 200
        assert elapsed >= SLOW_S - 0.05, elapsed  # the configured delay was applied
        assert done_at > fast_done
    # The two slow ones waited side by side, not one after the other (that would take 2 x 3 s).
    assert total_s < 2 * SLOW_S - 0.5, total_s


# ------------------------------------------------------------------------------------ throttling

def test_r10_101st_request_in_15s_is_429_with_retry_after_and_rate_body_other_title_passes(tmp_path):
    log = tmp_path / "validation.jsonl"
    path = f"/users/xuid({XUID})/achievements?titleId={STARFALL}&maxItems=2"
    with Mitmdump(tmp_path, achievements_mode="replay", achievements_cassettes=EXAMPLE,
                  achievements_throttle=True, achievements_log=log) as proxy:
        client = Client(proxy)
        first_sent = time.monotonic()
        passed = [client.get(path) for _ in range(BURST_LIMIT)]
        rejected = client.get(path)
        elapsed = time.monotonic() - first_sent
        again = client.get(path)
        other_title = client.get(f"/users/xuid({XUID})/achievements?titleId={HARBOR}&maxItems=2")
        client.close()
    # The premise: all of it happened inside one burst window.
    assert elapsed < BURST_PERIOD, elapsed
    assert [r[0] for r in passed] == [200] * BURST_LIMIT
    status, headers, body = rejected
    assert status == 429, (status, body)
    retry_after = headers["retry-after"]
    assert retry_after.isdigit(), retry_after
    # The window frees a slot when the first request leaves it: BURST_PERIOD after it was counted,
    # which is at most `elapsed` before this answer, so the wait is in [15 - elapsed, 15].
    assert math.ceil(BURST_PERIOD - elapsed) <= int(retry_after) <= BURST_PERIOD
    assert 1 <= int(retry_after) <= 15
    doc = json.loads(body)
    assert set(doc) == {"version", "currentRequests", "maxRequests", "periodInSeconds", "limitType"}
    assert doc["maxRequests"] == BURST_LIMIT and doc["periodInSeconds"] == BURST_PERIOD
    assert doc["limitType"] == "rate"
    assert isinstance(doc["version"], int) and isinstance(doc["currentRequests"], int)
    assert doc["currentRequests"] >= BURST_LIMIT
    # Still inside the window: still rejected. Another title of the same user: its own window.
    assert again[0] == 429
    assert other_title[0] == 200

    entries, _ = read_log(log)
    assert [e["status"] for e in entries] == [200] * BURST_LIMIT + [429, 429, 200]
    assert entries[BURST_LIMIT]["source"] == "throttle"
    assert any(v["rule"] == "R10" and v["code"] == "throttled" for v in entries[BURST_LIMIT]["violations"])


# --------------------------------------------------------------------------------- call patterns

def pattern_codes(entry: dict) -> list[str]:
    return [v["code"] for v in entry["violations"] if v["rule"] == "call-pattern"]


def test_call_patterns_burst_repeat_polling_flagged_and_paging_client_is_clean(tmp_path):
    log = tmp_path / "validation.jsonl"
    interval = 0.4  # the shipped tolerance (20 %) leaves 80 ms for scheduling jitter
    with Mitmdump(tmp_path, achievements_mode="replay", achievements_cassettes=EXAMPLE,
                  achievements_log=log) as proxy:
        client = Client(proxy)
        # 1. A well-behaved client: pages Starfall to the end with continuation tokens.
        token, pages = None, 0
        while True:
            path = f"/users/xuid({XUID})/achievements?titleId={STARFALL}&maxItems=5"
            if token is not None:
                path += f"&continuationToken={token}"
            status, _, body = client.get(path)
            assert status == 200
            pages += 1
            token = json.loads(body)["pagingInfo"]["continuationToken"]
            if token is None:
                break
        # 2. The same request twice in a row (well within 5 s).
        repeat = f"/users/xuid({XUID})/achievements?titleId={HARBOR}&maxItems=3"
        assert client.get(repeat)[0] == 200 and client.get(repeat)[0] == 200
        # 3. A polling loop: one request every `interval` seconds, on an absolute schedule.
        poll = f"/users/xuid({XUID})/achievements?titleId={HARBOR}&maxItems=4"
        t0 = time.monotonic()
        for i in range(POLLING_MIN_CALLS):
            time.sleep(max(0.0, t0 + i * interval - time.monotonic()))
            assert client.get(poll)[0] == 200
        # 4. A burst: 101 different requests for one (xuid, title) within 15 s, throttle off.
        t0 = time.monotonic()
        burst = [client.get(f"/users/xuid({XUID})/achievements?titleId={CLASSIC}&skipItems={i}", contract=None)
                 for i in range(BURST_LIMIT + 1)]
        burst_s = time.monotonic() - t0
        client.close()
    assert burst_s < BURST_PERIOD, burst_s
    assert all(r[0] == 200 for r in burst)

    entries, summary = read_log(log)
    assert len(entries) == pages + 2 + POLLING_MIN_CALLS + BURST_LIMIT + 1
    codes = [pattern_codes(e) for e in entries]
    it = iter(codes)
    paging = [next(it) for _ in range(pages)]
    repeats = [next(it) for _ in range(2)]
    polling = [next(it) for _ in range(POLLING_MIN_CALLS)]
    bursts = list(it)
    assert pages == math.ceil(23 / 5)
    assert paging == [[]] * pages
    assert repeats == [[], ["repeated-request"]]
    # The polling loop is also a run of repeats: reported once, on the second call.
    assert polling == [[], ["repeated-request"]] + [[]] * (POLLING_MIN_CALLS - 3) + [["polling"]]
    assert bursts == [[]] * BURST_LIMIT + [["burst-limit"]]
    flagged = entries[pages + 2 + POLLING_MIN_CALLS + BURST_LIMIT]
    assert next(v for v in flagged["violations"] if v["code"] == "burst-limit")["severity"] == "warning"

    assert summary is not None
    assert summary["requests"] == len(entries)
    assert summary["call_patterns"] == {
        "burst-limit": 1, "sustain-limit": 0, "certification-limit": 0,
        "repeated-request": 2, "polling": 1, "ignored-retry-after": 0,
    }
    for code in ("burst-limit", "repeated-request", "polling"):
        assert summary["violations_by_code"][code] == summary["call_patterns"][code]
