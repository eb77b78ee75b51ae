"""Redaction on every write path and the leak scan: random secrets in headers, query and body
never reach the bytes on disk; a leak refuses the write, names the field and writes nothing."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xblreplay import cassette, redact
from xblreplay.recording import Recorder
from xblreplay.redact.body import _redact_value

XUID = 2533274800000001
BASE = f"https://achievements.xboxlive.com/users/xuid({XUID})/achievements"
IMAGE = "https://images-eds-ssl.xboxlive.com/image?url=27S1DHqE.cs_gLnFaQu7NxQ2f8sDbFYrtTS5y_QoFsdOpk8vu3bYVTJTjzWkqxsk"


def random_secrets(rng: random.Random) -> dict[str, str]:
    def b64url(n: int) -> str:
        return base64.urlsafe_b64encode(rng.randbytes(n)).rstrip(b"=").decode()

    return {
        "jwt": "eyJ" + b64url(24) + "." + b64url(rng.randint(40, 200)) + "." + b64url(32),
        "userhash": "".join(rng.choices(string.digits, k=19)),
        "signature": base64.b64encode(rng.randbytes(rng.randint(40, 90))).decode(),
        "cookie": b64url(rng.randint(30, 60)),
        "set_cookie": b64url(rng.randint(30, 60)),
        "hex": rng.randbytes(rng.randint(20, 40)).hex(),
        "xbl_token": b64url(rng.randint(30, 80)),
    }


def all_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def test_random_secrets_never_reach_disk(tmp_path):
    rng = random.Random()
    rec = Recorder(tmp_path)
    planted = []
    for n in range(25):
        s = random_secrets(rng)
        planted.append(s)
        url = f"{BASE}?titleId=1234&skipItems={n}&access_token={s['hex']}&sig={s['signature']}"
        request_headers = {
            "Authorization": f"XBL3.0 x={s['userhash']};{s['jwt']}",
            "Signature": s["signature"],
            "Cookie": f"session={s['cookie']}; theme=dark",
            "x-xbl-contract-version": "2",
            "accept-language": "en-US",
            "x-custom-auth": s["xbl_token"],
        }
        response_headers = {
            "content-type": "application/json",
            "set-cookie": f"sid={s['set_cookie']}; Path=/",
            "x-xbl-session": s["hex"],
            "x-xbl-correlation-id": "0d4f1c2e-7a9b-4c3d-8e5f-6a7b8c9d0e1f",
        }
        body = {
            "achievements": [{"id": "1", "name": "First Steps", "serviceConfigId": "00000000-0000-0000-0000-0000000004d2",
                              "mediaAssets": [{"url": IMAGE}], "timeUnlocked": "2024-01-02T03:04:05.0000000Z"}],
            "echo": {"auth": f"XBL3.0 x={s['userhash']};{s['jwt']}", "list": [s["jwt"], s["signature"]],
                     "blob": s["xbl_token"], "note": f"cookie was {s['cookie']}"},
            "pagingInfo": {"continuationToken": None, "totalRecords": 1},
        }
        rec.record("GET", url, request_headers, 200, response_headers, json.dumps(body).encode(),
                   "application/json", 10.0, "2026-11-27T12:00:00Z")
        rec.record("GET", f"{BASE}?titleId=1234&maxItems={n + 1}", request_headers, 500, response_headers,
                   f"failed for {s['jwt']} and XBL3.0 x={s['userhash']};{s['jwt']}".encode(), "text/plain", 1.0,
                   "2026-11-27T12:00:00Z")
    rec.close()
    assert not rec.errors, list(rec.errors)
    on_disk = all_bytes(tmp_path)
    for s in planted:
        for name, value in s.items():
            assert value.encode() not in on_disk, f"{name} reached the disk"
    # What is not secret is kept.
    items = cassette.load_file(tmp_path / f"recorded/{XUID}/1234.yaml")["interactions"]
    assert len(items) == 50
    ok = next(i for i in items if i["response"]["status"] == 200)
    assert ok["request"]["headers"] == {"x-xbl-contract-version": "2", "accept-language": "en-US"}
    assert ok["request"]["url"].startswith(f"{BASE}?titleId=1234&skipItems=")
    # Parameters outside the contract keep their names, never their values.
    assert ok["request"]["url"].endswith("&access_token=<redacted>&sig=<redacted>")
    assert ok["response"]["headers"] == {"content-type": "application/json",
                                         "x-xbl-correlation-id": "0d4f1c2e-7a9b-4c3d-8e5f-6a7b8c9d0e1f"}
    body = ok["response"]["body"]
    assert body["achievements"][0]["mediaAssets"][0]["url"] == IMAGE
    assert body["achievements"][0]["timeUnlocked"] == "2024-01-02T03:04:05.0000000Z"
    assert body["echo"]["list"] == [redact.REDACTED, redact.REDACTED]
    assert body["echo"]["blob"] == redact.REDACTED
    assert body["echo"]["note"] == f"cookie was {redact.REDACTED}"
    # The binding keeps only the userhash's SHA-256.
    hashes = {b["userhash_sha256"] for b in cassette.load_file(tmp_path / f"recorded/{XUID}/1234.yaml")["bindings"]}
    assert hashes == {hashlib.sha256(s["userhash"].encode()).hexdigest() for s in planted}


def test_leak_scan_refuses_and_names_the_field_nothing_written(tmp_path):
    userhash = "2535467123456789012"
    seen = []
    rec = Recorder(tmp_path, on_error=seen.append)
    # The userhash echoed as a JSON number is not token-shaped, so only the leak scan can catch it.
    rec.record("GET", f"{BASE}?titleId=77", {"authorization": f"XBL3.0 x={userhash};eyJ0eXAiOiJKV1QiLCJhbGciOi.x.y"},
               200, {"content-type": "application/json"}, b'{"uhs": %s}' % userhash.encode(), "application/json",
               1.0, "2026-11-27T12:00:00Z")
    rec.close()
    assert len(seen) == 1 and isinstance(seen[0], redact.LeakError)
    assert seen[0].findings == ["authorization userhash"]
    assert userhash not in str(seen[0])
    assert not (tmp_path / "recorded").exists() or all_bytes(tmp_path / "recorded") == b""


def test_leak_scan_names_secrets_and_generic_patterns():
    sig = base64.b64encode(random.randbytes(48)).decode()
    data = f"a: {sig}\nb: XBL3.0 x=123;abc\n".encode()
    assert redact.leak_scan(data, {"request header signature": sig}) == ["request header signature",
                                                                         "XBL authorization"]
    assert redact.leak_scan(b"x: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", {}) == ["JWT"]
    assert redact.leak_scan(b"x: harmless", {"request header signature": sig}) == []


def real_jwt(claims: dict | None = None) -> str:
    """A JWS as services issue them: base64url JSON header with alg, payload, signature."""
    def seg(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return ".".join([seg(json.dumps({"alg": "RS256", "typ": "JWT"}).encode()),
                     seg(json.dumps(claims or {"sub": "1", "xid": "2533274800000001"}).encode()),
                     seg(random.randbytes(64))])


def test_write_atomic_redacts_and_refuses_leaks(tmp_path):
    jwt = "eyJ" + base64.urlsafe_b64encode(random.randbytes(60)).decode()
    path = tmp_path / "hand.yaml"
    doc = {"xblreplay": 1, "interactions": [{"request": {"method": "GET", "url": f"{BASE}?token={jwt}",
                                                         "headers": {"authorization": jwt}},
                                             "response": {"status": 200, "body": {"t": jwt}}}]}
    cassette.write_atomic(path, doc)
    assert jwt.encode() not in path.read_bytes()
    assert cassette.load_file(path)["interactions"][0]["request"]["url"] == f"{BASE}?token=<redacted>"
    leaky = tmp_path / "leaky.yaml"
    with pytest.raises(redact.LeakError) as info:
        cassette.write_atomic(leaky, {"xblreplay": 1, "recorded_at": real_jwt()})  # not a redacted field
    assert info.value.findings == ["JWT"]
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["hand.yaml"]


@pytest.mark.parametrize("value", ["00000000-0000-0000-0000-0000000004d2", IMAGE, "2024-01-02T03:04:05.0000000Z",
                                   "First Steps", "32", "32,2018-03-28T01:28:51.8070000Z", "application/json"])
def test_ordinary_values_are_not_token_shaped(value):
    assert not redact.is_token_shaped(value)


def test_redact_url_keeps_known_parameters_and_only_the_names_of_others():
    token_like = "A" * 20 + "b" * 30
    url = f"{BASE}?titleId=1,2&continuationToken=32&maxItems=5&debug=1&key={token_like}&flag&empty=#frag"
    assert redact.redact_url(url) == \
        f"{BASE}?titleId=1,2&continuationToken=32&maxItems=5&debug=<redacted>&key=<redacted>&flag&empty="
    # A value of the contract's own parameter is dropped too when it is token-shaped.
    assert redact.redact_url(f"{BASE}?titleId={token_like}") == f"{BASE}?titleId=<redacted>"
    assert redact.redact_url("https://user:pw@achievements.xboxlive.com/x?a=1") == \
        "https://achievements.xboxlive.com/x?a=<redacted>"

# ---------------------------------------------------------------- lossless bodies

# Values real Xbox One pages carry (tests/data/real/): long, blob-shaped, and not secrets.
REAL_VALUES = [
    "80d93993-c58a-44c0-8863-6e4d0b4ee5fc.png",
    "afef6035-74c3-4c32-9c31-33853cad886e_persona",
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "A" * 44,
    "Decode eyJhbGciOi to win: the prefix of a JWT header is not a JWT",
    "eyJub3QiOiJhIGhlYWRlciJ9.e30.c2ln",  # decodes, but to a JSON object without alg
    IMAGE,
]


def test_bodies_keep_every_value_that_is_not_verifiably_a_secret():
    body = {"achievements": [{"id": str(n), "description": v, "mediaAssets": [{"name": v}]}
                             for n, v in enumerate(REAL_VALUES)]}
    pattern = redact.secret_pattern(redact.request_secrets(BASE, {"authorization": f"XBL3.0 x=3141592653589793238;{real_jwt()}"}))
    assert redact.redact_body(body, pattern) == (body, [])
    text = json.dumps(body)
    assert redact.redact_body(body, pattern, text)[0] is body
    recorded = redact.recorded_body(text.encode(), "application/json", pattern)
    assert (recorded.body, recorded.raw, recorded.removals) == (body, text, [])


def test_secrets_and_verified_credentials_are_removed_and_reported_by_path():
    token = real_jwt()
    other = real_jwt({"sub": "someone else"})
    headers = {"authorization": f"XBL3.0 x=2535467123456789012;{token}", "signature": "AAAAAQHa" + "x" * 60}
    pattern = redact.secret_pattern(redact.request_secrets(BASE, headers))
    body = {"achievements": [
        {"id": "1", "description": f"echo {token} end", "name": "kept"},
        {"id": "2", "description": "uhs 2535467123456789012", "rewards": [{"value": f"Bearer {other}"}]},
        {"id": "3", "lockedDescription": "XBL3.0 x=99;sometoken and more", f"k{token}": 1},
    ]}
    redacted, removals = redact.redact_body(body, pattern)
    a = redacted["achievements"]
    assert a[0] == {"id": "1", "description": f"echo {redact.REDACTED} end", "name": "kept"}
    assert a[1]["description"] == f"uhs {redact.REDACTED}"
    assert a[1]["rewards"][0]["value"] == f"Bearer {redact.REDACTED}"
    assert a[2]["lockedDescription"] == f"{redact.REDACTED} and more"
    assert f"k{redact.REDACTED}" in a[2]
    assert [(r.path, r.what) for r in removals] == [
        ("/achievements/0/description", "authorization token"),
        ("/achievements/1/description", "authorization userhash"),
        ("/achievements/1/rewards/0/value", "JWT"),
        ("/achievements/2/lockedDescription", "XBL authorization"),
        (f"/achievements/2/k{redact.REDACTED}", "authorization token"),
    ]
    assert body["achievements"][0]["description"] == f"echo {token} end"  # the input is not touched
    # The bytes-level check and the full recording path agree.
    raw = json.dumps(body).encode()
    assert redact.removals_in(raw, "application/json", pattern) == removals
    assert redact.recorded_body(raw, "application/json", pattern).body == redacted


def test_the_leak_scan_and_redaction_agree_on_credentials():
    assert redact.leak_scan(f"x: {real_jwt()}".encode(), {}) == ["JWT"]
    for value in REAL_VALUES:
        assert redact.leak_scan(json.dumps({"v": value}).encode(), {}) == []


_pieces = st.sampled_from(["", "ok", "eyJhbGciOiJIUzI1NiJ9.e30.sig", "XBL3.0 x=1;t", "A" * 44, "\"", "\\",
                           "s3cr3t-value", "a\"b\\c-secret", "https://x.invalid/a", "0001-01-01T00:00:00Z",
                           "eyJhbGciOi", "/", "\u00e9"])
_strings = st.lists(_pieces, max_size=3).map("".join)
_json = st.recursive(st.none() | st.booleans() | st.integers() | _strings,
                     lambda kids: st.lists(kids, max_size=4) | st.dictionaries(_strings, kids, max_size=4),
                     max_leaves=20)


@given(body=_json, secret=st.sampled_from(["s3cr3t-value", "a\"b\\c-secret", "no-such-secret"]))
@settings(max_examples=300, deadline=None)
def test_fast_redaction_check_agrees_with_the_full_walk(body, secret):
    """redact_body skips the walk only when the walk would change nothing; removals_in (the
    proxy's check on the bytes) reports exactly what the recording removes."""
    pattern = redact.secret_pattern({"header": secret})
    walked: list = []
    expected = _redact_value(body, pattern, "", walked)
    assert redact.redact_body(body, pattern) == (expected, walked)
    # With the JSON text the body came from (escaped or not) the answer is the same.
    for text in (json.dumps(body), json.dumps(body, ensure_ascii=False), json.dumps(body).replace("/", "\\/")):
        assert redact.redact_body(body, pattern, text) == (expected, walked)
        assert redact.removals_in(text.encode(), "application/json", pattern) == walked


# ---------------------------------------------------------------- every form of a secret

def _written_forms(secret: str) -> dict[str, str]:
    """The forms a secret can take in written text, computed with the standard library."""
    from urllib.parse import quote, quote_plus

    out = {"raw": secret, "percent": quote(secret, safe=""), "form": quote_plus(secret, safe=""),
           "percent, lower-case": "".join(c if c.isalnum() else quote(c, safe="").lower() for c in secret),
           "percent, partly": secret.replace("/", "%2F")}
    for offset in range(3):
        encoded = base64.b64encode(b"\x07" * offset + secret.encode() + b"\x07\x07").decode()
        core = encoded[-(-8 * offset // 6):8 * (offset + len(secret)) // 6]
        out[f"base64 {offset}"] = core
        out[f"base64url {offset}"] = core.replace("+", "-").replace("/", "_")
    return out


@given(secret=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_.~ %",
                      min_size=8, max_size=40).filter(lambda s: sum(c.isalnum() for c in s) >= 6),
       prefix=st.sampled_from(["", "x", "ab", "abc"]))
@settings(max_examples=200, deadline=None)
def test_the_leak_scan_finds_every_form_of_a_secret_and_scrubbing_removes_it(secret, prefix):
    name = "authorization token"
    pattern = redact.secret_pattern({name: secret})
    for form_name, form in _written_forms(secret).items():
        line = json.dumps({"url": f"https://h/p?zq={prefix}{form}&b=1", "note": f"{prefix}{form} end"})
        found = redact.leak_scan(line.encode(), {name: secret})
        assert found and all(f.startswith(name) for f in found), form_name
        scrubbed, removed = redact.scrub_line(line, pattern)
        assert removed and form not in scrubbed, form_name
        json.loads(scrubbed)  # still one valid JSON line
        assert redact.leak_scan(scrubbed.encode(), {name: secret}) == []
    # JSON-escaped, as a serializer that escapes the solidus writes it.
    escaped = json.dumps({"v": secret}).replace("/", "\\/")
    assert redact.leak_scan(escaped.encode(), {name: secret})


def test_body_strings_lose_percent_and_base64_forms_and_each_removal_is_named():
    secret = "Zk9+a/b=QWxpY2UtMTIzNDU2Nzg"
    pattern = redact.secret_pattern(redact.request_secrets(BASE, {"authorization": f"XBL3.0 x=99887766554433;{secret}"}))
    from urllib.parse import quote
    body = {"a": "cb?t=" + quote(secret, safe=""), "b": base64.b64encode(b"k=" + secret.encode()).decode(),
            "c": "First Steps", "d": "https://images-eds-ssl.xboxlive.com/image?url=abc%2Bdef"}
    redacted, removals = redact.redact_body(body, pattern)
    assert redacted["a"] == "cb?t=<redacted>" and redacted["c"] == "First Steps" and redacted["d"] == body["d"]
    assert secret not in json.dumps(redacted) and not redact.leak_scan(json.dumps(redacted).encode(),
                                                                         {"t": secret})
    assert [(r.path, r.what) for r in removals] == [("/a", "authorization token (percent-encoded)"),
                                                   ("/b", "authorization token (base64)")]


def test_a_url_keeps_the_contract_and_loses_every_form_of_a_secret():
    secret = "Zk9+a/b=QWxpY2UtMTIzNDU2Nzg"
    pattern = redact.secret_pattern({"authorization token": secret})
    from urllib.parse import quote
    url = f"{BASE}?titleId=1&maxItems={quote(secret, safe='')}&zq=7"
    assert redact.redact_url(url, pattern) == f"{BASE}?titleId=1&maxItems=<redacted>&zq=<redacted>"
    in_path = f"https://achievements.xboxlive.com/users/xuid({quote(secret, safe='')})/achievements"
    assert secret not in redact.redact_url(in_path, pattern) and "<redacted>" in redact.redact_url(in_path, pattern)


def test_a_secret_longer_than_the_bound_is_found_as_it_is_and_percent_encoded():
    from urllib.parse import quote

    from xblreplay.bounds import MAX_SECRET_CHARS

    secret = ("Ab+/" * (MAX_SECRET_CHARS // 2))[:MAX_SECRET_CHARS * 2]
    pattern = redact.secret_pattern({"query parameter zq": secret})
    assert not pattern.names  # no regex of its other forms is built
    for form, what in ((secret, "query parameter zq"), (quote(secret, safe=""), "query parameter zq (percent-encoded)")):
        line = json.dumps({"url": f"https://h/p?zq={form}", "m": f"x {form} y"})
        assert redact.leak_scan(line.encode(), {"query parameter zq": secret}) == [what]
        scrubbed, removed = redact.scrub_line(line, pattern)
        assert removed == [what, what] and form not in scrubbed
        json.loads(scrubbed)
    url = f"{BASE}?titleId=1&maxItems={quote(secret, safe='')}&zq={quote(secret, safe='')}"
    assert redact.redact_url(url, pattern) == f"{BASE}?titleId=1&maxItems=<redacted>&zq=<redacted>"
