"""End-to-end: no form of a secret reaches any file the proxy writes (cassettes, the validation
log, mitmproxy's event log), through a real mitmdump and a real local upstream.

The secrets are random (27 characters of the base64 alphabet, with '+', '/' and '='), sent as
the Authorization token and again in a parameter outside the contract, percent-encoded, and
echoed by the upstream in its body raw, percent-encoded, base64-encoded and JSON-escaped. The forms
this test looks for are computed here with the standard library, independently of the proxy's
own search."""

from __future__ import annotations

import base64
import json
import random
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

import pytest

import refservice
from proxyharness import XUID, Mitmdump, Upstream, read_log

pytestmark = pytest.mark.e2e

BASE = f"/users/xuid({XUID})/achievements"
TITLE = 1111
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="


def random_secret(rng: random.Random) -> str:
    while True:
        value = "".join(rng.choice(ALPHABET) for _ in range(27))
        if any(c in value for c in "+/=") and any(c.isalnum() for c in value[:4]):
            return value


def forms(secret: str) -> dict[str, str]:
    """Every written form of ``secret`` that must never reach a file."""
    out = {
        "raw": secret,
        "percent": quote(secret, safe=""),
        "percent, lower-case hex": "".join(c if c.isalnum() else quote(c, safe="").lower() for c in secret),
        "form-encoded": quote_plus(secret, safe=""),
        "JSON-escaped": json.dumps(secret)[1:-1].replace("/", "\\/"),
    }
    data = secret.encode()
    for offset in range(3):
        encoded = base64.b64encode(b"\x01" * offset + data + b"\x01\x01").decode()
        core = encoded[-(-8 * offset // 6):8 * (offset + len(data)) // 6]
        out[f"base64 at offset {offset}"] = core
        out[f"base64url at offset {offset}"] = core.replace("+", "-").replace("/", "_")
    return out


def echoing_upstream(items: list[dict]):
    """A listing answer with the request's own secrets echoed in every form."""
    def serve(method, path, headers, body):
        token = headers["authorization"].partition(";")[2]
        page = refservice.answer(items, path)
        page["echo"] = {
            "raw": f"token {token} end",
            "percent": "https://example.invalid/cb?t=" + quote(token, safe=""),
            "base64": base64.b64encode(b"prefix:" + token.encode()).decode(),
            "query": dict(parse_qsl(urlsplit(path).query)).get("zq", ""),
        }
        # JSON-escaped: the solidus written as \/ (valid JSON the proxy must read through).
        text = json.dumps(page).replace("/", "\\/")
        return 200, {"Content-Type": "application/json"}, text.encode()
    return serve


def test_no_form_of_a_secret_reaches_cassettes_log_or_event_log(tmp_path):
    rng = random.Random(20261201)
    items = refservice.make_dataset(3, {TITLE: 12})
    cassettes, log = tmp_path / "cassettes", tmp_path / "validation.jsonl"
    secrets = [random_secret(rng) for _ in range(12)]
    with Upstream(echoing_upstream(items)) as up:
        with Mitmdump(tmp_path, achievements_mode="record", achievements_upstream=up.url,
                      achievements_cassettes=cassettes, achievements_log=log) as proxy:
            for n, secret in enumerate(secrets):
                auth = f"XBL3.0 x=3141592653589793238;{secret}"
                path = f"{BASE}?titleId={TITLE}&maxItems={n + 1}&zq={quote(secret, safe='')}"
                reply = proxy.request(path, {"Authorization": auth})
                assert reply.status == 200, reply.body
                # The client gets what the upstream sent, secrets and all (it sent them).
                assert reply.json()["echo"]["raw"] == f"token {secret} end"
        event_log = proxy.stop()
    assert len(up.requests) == len(secrets)

    # Replaying: a parameter of the contract that carries a secret is a 400 whose message would
    # echo it.
    replay_log = tmp_path / "replay.jsonl"
    with Mitmdump(tmp_path, achievements_mode="replay", achievements_cassettes=cassettes,
                  achievements_log=replay_log) as proxy:
        bad = secrets[0]
        reply = proxy.request(f"{BASE}?titleId={quote(bad, safe='')}", {"Authorization": f"XBL3.0 x=1;{bad}"})
        assert reply.status == 400
    replay_event_log = proxy.stop()

    files = {p: p.read_bytes() for p in cassettes.rglob("*") if p.is_file()}
    assert files, event_log
    written = {**{str(p): b.decode() for p, b in files.items()}, "validation log": log.read_text(),
               "event log": event_log, "replay validation log": replay_log.read_text(),
               "replay event log": replay_event_log}
    for secret in secrets:
        for form_name, form in forms(secret).items():
            for where, text in written.items():
                assert form not in text, f"{form_name} form of a secret in {where}"

    # What is not a secret is kept: the parameter's name, the page, the echo's other text.
    entries, summary = read_log(log)
    interactions = [i for _p, b in files.items() for i in json.loads(b.decode().split("\n", 1)[1])["interactions"]]
    assert len(interactions) == len(secrets)
    for interaction in interactions:
        url = interaction["request"]["url"]
        assert "&zq=<redacted>" in url and f"titleId={TITLE}" in url
        body = interaction["response"]["body"]
        assert body["echo"]["raw"] == "token <redacted> end"
        assert body["echo"]["percent"] == "https://example.invalid/cb?t=<redacted>"
        assert len(body["achievements"]) == int(dict(parse_qsl(urlsplit(url).query))["maxItems"])
    # Every removal from a recorded body is reported, by path and by what the value was.
    recorded = [e for e in entries if e["status"] == 200]
    assert len(recorded) == len(secrets)
    for entry in recorded:
        removed = {(r["path"], r["what"]) for r in entry["redactions"]}
        assert ("/echo/raw", "authorization token") in removed
        assert ("/echo/percent", "authorization token (percent-encoded)") in removed
        assert ("/echo/base64", "authorization token (base64)") in removed
    assert summary["redactions"] >= 4 * len(secrets)
    # The 400's message echoed the secret: the log line says what it replaced.
    rejected = [e for e in read_log(replay_log)[0] if e["status"] == 400]
    assert len(rejected) == 1 and rejected[0]["log_redactions"]
    assert "<redacted>" in rejected[0]["url"]
