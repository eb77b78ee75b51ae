"""Cost of Validator.check_request and check_response.

Prints the median cost per request of check_request over a realistic mix (valid and invalid
requests), a same-run baseline (urllib.parse.urlsplit + parse_qsl of the same URLs) with the
ratio, the typical request alone against its 20 us target, and check_response for a 32-item
V2 page: its items seen before and new, the same new pages through the Python jsonschema alone,
and a replayed answer whose items the engine already checked (the envelope only).

    .venv/bin/python benchmarks/bench_validator.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "addons"))
sys.path.insert(0, str(ROOT / "tests"))

from jsonschema import Draft202012Validator  # noqa: E402
from test_contract import v2_body  # noqa: E402
from xblreplay.contract import Validator  # noqa: E402
from xblreplay.contract.schema_errors import schema_errors  # noqa: E402
from xblreplay.model import Answer  # noqa: E402

TARGET_US = 20.0
HOST = "https://achievements.xboxlive.com"
SCID = "00000000-0000-0000-0000-0000000004d2"
AUTH = "XBL3.0 x=1234567890123456789;eyJhbGciOiJSU0EtT0FFUCJ9.payload.signature"
HEADERS = {
    "authorization": AUTH,
    "x-xbl-contract-version": "2",
    "accept-language": "en-US",
    "content-type": "application/json; charset=utf-8",
}
TYPICAL = f"{HOST}/users/xuid(2533274800000001)/achievements?titleId=1234&maxItems=100&orderBy=unlocktime"
MIX = [
    TYPICAL,
    f"{HOST}/users/xuid(2533274800000001)/achievements?titleId=1234",
    f"{HOST}/users/xuid(2533274800000001)/achievements?titleId=1234&maxItems=1000&continuationToken=32",
    f"{HOST}/users/xuid(2533274800000001)/achievements?titleId=1,2,3&types=Persistent&unlockedOnly=true",
    f"{HOST}/users/xuid(2533274800000001)/achievements/{SCID}/7",
    f"{HOST}/users/xuid(2533274800000001)/history/titles?maxItems=32",
    f"{HOST}/users/xuid(2533274800000001)/achievements?maxItems=0",  # 400
    f"{HOST}/users/xuid(2533274800000001)/achievements?orderBy=random&skipItems=-1",  # 400
    f"{HOST}/users/xuid(abc)/achievements",  # 400
    f"{HOST}/users/xuid(2533274800000001)/achievements?titleId=1234&colour=blue",  # warning
]


def median_us(fn, items: list, rounds: int = 41, loops: int = 200) -> float:
    """Median over rounds of the mean cost per item (microseconds)."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(loops):
            for item in items:
                fn(item)
        samples.append((time.perf_counter() - start) / (loops * len(items)) * 1e6)
    return statistics.median(samples)


def main() -> None:
    validator = Validator.from_rules(ROOT / "rules")

    def check(url: str) -> object:
        return validator.check_request("GET", url, HEADERS)

    def baseline(url: str) -> object:
        return parse_qsl(urlsplit(url).query)

    mix = median_us(check, MIX)
    base = median_us(baseline, MIX)
    typical = median_us(check, [TYPICAL])
    print(f"check_request, mix of {len(MIX)} requests:  median {mix:7.2f} us/request")
    print(f"baseline urlsplit+parse_qsl, same URLs:    median {base:7.2f} us/request")
    print(f"ratio check_request / baseline:            {mix / base:7.2f}x")
    print(f"check_request, typical valid request:      median {typical:7.2f} us/request")

    page_check = check(TYPICAL)
    page = v2_body(32, total=73, token="32")
    assert validator.check_response(page_check, 200, {}, page) == []
    response = median_us(lambda body: validator.check_response(page_check, 200, {}, body), [page],
                         rounds=15, loops=5)
    print(f"check_response, 32-item V2 page, repeated: median {response / 1000:7.2f} ms/page")
    # First sight of every item: fresh pages whose items differ (names), so nothing is remembered.
    fresh = [v2_body(32, total=73, token="32") for _ in range(15)]
    for n, body in enumerate(fresh):
        for item in body["achievements"]:
            item["name"] = f"{item['name']} #{n}"
    cold_samples = []
    for body in fresh:
        start = time.perf_counter()
        validator.check_response(page_check, 200, {}, body)
        cold_samples.append((time.perf_counter() - start) * 1e3)
    print(f"check_response, 32-item V2 page, new items: median {statistics.median(cold_samples):7.2f} ms/page"
          f"  (ratio new/repeated {statistics.median(cold_samples) * 1000 / response:.1f}x)")
    # The same fresh pages through the Python jsonschema alone (envelope, then each item): what
    # the Rust fast path saves.
    whole = validator.schema("AchievementsResponseV2")
    item_schema = Draft202012Validator({**whole.schema["properties"]["achievements"]["items"],
                                        "components": whole.schema.get("components", {})})
    python_samples = []
    for body in fresh:
        start = time.perf_counter()
        schema_errors(whole, {**body, "achievements": []})
        for item in body["achievements"]:
            schema_errors(item_schema, item)
        python_samples.append((time.perf_counter() - start) * 1e3)
    print(f"python jsonschema alone, same new pages:    median {statistics.median(python_samples):7.2f} ms/page"
          f"  (ratio python/check_response {statistics.median(python_samples) / statistics.median(cold_samples):.1f}x)")
    # A replayed answer whose items the engine checked as it served them: the envelope only.
    answer = Answer(200, page, item_violations=[])  # the engine found every item valid
    checked = median_us(lambda body: validator.check_response(page_check, 200, {}, body, answer), [page],
                        rounds=15, loops=200)
    print(f"check_response, 32-item page, items checked by the engine: median {checked:7.2f} us/page")
    print(f"target <= {TARGET_US:.0f} us: {'PASS' if typical <= TARGET_US else 'FAIL'}")


if __name__ == "__main__":
    main()
