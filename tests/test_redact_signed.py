"""A client that signs every request (a new Signature beside the same Authorization, as Xbox
clients do): each secret value's forms are compiled once, a value that never shows up is never
compiled, and every form of every value is still found and named."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

from xblreplay.redact import pattern as pattern_module
from xblreplay.redact import secret_pattern

TOKEN = "XBL3.0 x=3141592653589793238;" + base64.b64encode(bytes(range(256)) * 5).decode()


def signature(n: int) -> str:
    return base64.b64encode(n.to_bytes(4, "big") * 19).decode()


def test_a_new_signature_costs_no_compile_until_it_shows_up():
    line = '{"url":"https://achievements.xboxlive.com/users/xuid(1)/achievements?titleId=1","violations":[]}'
    compiled = []
    real = pattern_module._Forms._compile

    def counting(self):
        compiled.append(self.name)
        return real(self)

    pattern_module._Forms._compile = counting
    try:
        for n in range(50):
            p = secret_pattern({"authorization": TOKEN, "signature": signature(n)})
            assert p.sub(line, in_json=True) == (line, [])
    finally:
        pattern_module._Forms._compile = real
    assert compiled.count("signature") == 0  # never seen in the text: never compiled
    assert compiled.count("authorization") <= 1  # one value, compiled at most once


def test_every_form_of_each_value_is_found_and_named():
    sig = signature(7)
    p = secret_pattern({"authorization": TOKEN, "signature": sig})
    text = f"a {sig} b {quote(TOKEN, safe='')} c {json.dumps(sig)[1:-1]}"
    redacted, removed = p.sub(text)
    assert sig not in redacted and quote(TOKEN, safe="") not in redacted
    assert removed == ["authorization (percent-encoded)", "signature", "signature"]
    body = json.dumps({"echo": sig.replace("/", "\\/")})
    assert p.search(body, in_json=True)
    assert p.find(base64.b64encode(TOKEN.encode()).decode()) == ["authorization (base64)"]


def test_a_longer_value_holding_a_shorter_one_is_named_as_the_longer():
    short = "S3cr3tValue123"
    p = secret_pattern({"authorization": f"XBL3.0 x=1;{short}Tail", "query parameter token": short})
    redacted, removed = p.sub(f"x XBL3.0 x=1;{short}Tail y {short}")
    assert redacted == "x <redacted> y <redacted>"
    assert removed == ["authorization", "query parameter token"]
