"""mitmproxy script: the floor, the least any addon that answers requests locally can cost.

`request(flow)` answers every request for achievements.xboxlive.com with one fixed,
pre-serialised ~3 KB JSON body (an achievements page lookalike); nothing is parsed, filtered
or paged and no upstream connection is made (run it with connection_strategy=lazy so mitmproxy
does not dial the real host on CONNECT). Whatever a real addon costs above this is its own.

    mitmdump -q --set connection_strategy=lazy -s benchmarks/proxybench/floor_addon.py

`--set floor_body_bytes=N` answers a body of N bytes instead, built the same way: the floor for a
page as big as the addon's, which separates what a bigger body costs mitmproxy from the addon's
own work.
"""

import json

from mitmproxy import http

HOST = "achievements.xboxlive.com"
BODY_BYTES = 3072
HEADERS = {"Content-Type": "application/json"}


def _make_body(target: int) -> bytes:
    """A listing page of achievements, padded to `target` bytes."""
    achievements = []
    i = 0
    while True:
        i += 1
        achievements.append({
            "id": str(i),
            "serviceConfigId": "00000000-0000-0000-0000-00007a1b2c3d",
            "name": f"Achievement {i}",
            "progressState": "Achieved" if i % 2 else "NotStarted",
            "rewards": [{"type": "Gamerscore", "value": "10"}],
            "isSecret": False,
        })
        doc = {"achievements": achievements, "pagingInfo": {"continuationToken": "10", "totalRecords": 100}}
        raw = json.dumps(doc, separators=(",", ":")).encode()
        if len(raw) >= target - 150:
            doc["_pad"] = "x" * max(target - len(raw) - len(',"_pad":""'), 0)
            return json.dumps(doc, separators=(",", ":")).encode()


_body = [_make_body(BODY_BYTES)]


def load(loader) -> None:
    loader.add_option("floor_body_bytes", int, BODY_BYTES, "Size of the fixed answer body.")


def configure(updated) -> None:
    from mitmproxy import ctx

    if "floor_body_bytes" in updated:
        _body[0] = _make_body(ctx.options.floor_body_bytes)


def request(flow: http.HTTPFlow) -> None:
    if flow.request.pretty_host == HOST:
        flow.response = http.Response.make(200, _body[0], HEADERS)
