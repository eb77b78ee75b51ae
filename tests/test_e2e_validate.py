"""End-to-end: a real mitmdump in validate mode between an HTTPS client and a local upstream."""

from __future__ import annotations

import json
import subprocess

import pytest

from proxyharness import AUTH, XUID, Mitmdump, Upstream, read_log

pytestmark = pytest.mark.e2e

# A V2 page as the service sends it (shape of spec §2.1 captures).
V2_PAGE = {
    "achievements": [{
        "id": "5", "serviceConfigId": "a1b2c3d4-0000-4000-8000-000000000001", "name": "Go Time",
        "titleAssociations": [{"name": "Sample", "id": 1234}], "progressState": "Achieved",
        "progression": {"requirements": [{"id": "00000000-0000-0000-0000-000000000000", "current": "1",
                                          "target": "1", "operationType": "Sum", "valueType": "Integer",
                                          "ruleParticipationType": "Individual"}],
                        "timeUnlocked": "2015-10-26T18:11:03.6689508Z"},
        "mediaAssets": [{"name": "icon.png", "type": "Icon", "url": "https://images-eds-ssl.xboxlive.com/image?url=x"}],
        "platforms": ["Durango"], "isSecret": False, "description": "Done.", "lockedDescription": "Do it.",
        "productId": "12345678-1234-1234-1234-123456789012", "achievementType": "Persistent",
        "participationType": "Individual", "timeWindow": None,
        "rewards": [{"name": None, "description": None, "value": "10", "type": "Gamerscore",
                     "valueType": "Int", "mediaAsset": None}],
        "estimatedTime": "00:00:00", "deeplink": None, "isRevoked": False,
    }],
    "pagingInfo": {"continuationToken": None, "totalRecords": 1},
}

BAD_REQUESTS = [
    # (path, send Authorization?, expected status, expected violation name)
    (f"/users/xuid({XUID})/achievements?titleId=1234&maxItems=abc", True, 400, "maxItems"),
    (f"/users/xuid({XUID})/achievements?titleId=1234&orderBy=Sideways", True, 400, "orderBy"),
    (f"/users/xuid({XUID})/achievements?titleId=1234&skipItems=-1", True, 400, "skipItems"),
    (f"/users/xuid({XUID})/achievements?titleId=12,x", True, 400, "titleId"),
    (f"/users/xuid({XUID})/achievements?titleId=1234", False, 401, "Authorization"),
    ("/users/xuid(notanumber)/achievements?titleId=1234", True, 400, "xuid"),
]


def serve_page(method, path, headers, body):
    return 200, {"Content-Type": "application/json"}, json.dumps(V2_PAGE).encode()


def test_validate_mode_forwards_valid_request_over_https_and_logs_no_violation(tmp_path):
    log = tmp_path / "validation.jsonl"
    with Upstream(serve_page) as up:
        with Mitmdump(tmp_path, achievements_mode="validate", achievements_upstream=up.url,
                      achievements_log=log) as proxy:
            reply = proxy.request(f"/users/xuid({XUID})/achievements?titleId=1234&maxItems=100&orderBy=unlocktime")
        out = proxy.stop()
    assert reply.status == 200, out
    assert reply.json() == V2_PAGE
    assert len(up.requests) == 1
    method, path, headers = up.requests[0]
    assert path == f"/users/xuid({XUID})/achievements?titleId=1234&maxItems=100&orderBy=unlocktime"
    entries, summary = read_log(log)
    assert [e["status"] for e in entries] == [200]
    assert entries[0]["violations"] == []
    assert entries[0]["mode"] == "validate" and entries[0]["source"] == "upstream"
    assert summary["requests"] == 1 and summary["violations"] == 0
    assert "xblreplay summary" in out
    # The token never reaches the log.
    assert AUTH.split(";")[1] not in log.read_text()


def test_validate_mode_forwards_and_logs_each_r8_violation(tmp_path):
    """R8 cases in (non-strict) validate mode: forwarded to the upstream, each logged with its rule."""
    log = tmp_path / "validation.jsonl"
    with Upstream(serve_page) as up:
        with Mitmdump(tmp_path, achievements_mode="validate", achievements_upstream=up.url,
                      achievements_log=log) as proxy:
            replies = [proxy.request(path, auth=AUTH if with_auth else None)
                       for path, with_auth, _, _ in BAD_REQUESTS]
    assert [r.status for r in replies] == [200] * len(BAD_REQUESTS)
    assert len(up.requests) == len(BAD_REQUESTS)
    entries, summary = read_log(log)
    assert len(entries) == len(BAD_REQUESTS)
    for entry, (path, _, _, name) in zip(entries, BAD_REQUESTS):
        errors = [v for v in entry["violations"] if v["severity"] == "error"]
        assert [(v["rule"], v["name"]) for v in errors] == [("R8", name)], (path, entry)
    assert summary["violations_by_rule"]["R8"] == len(BAD_REQUESTS)


def test_strict_validate_mode_answers_r8_status_without_reaching_upstream(tmp_path):
    with Upstream(serve_page) as up:
        with Mitmdump(tmp_path, achievements_mode="validate", achievements_upstream=up.url,
                      achievements_strict=True) as proxy:
            replies = [proxy.request(path, auth=AUTH if with_auth else None)
                       for path, with_auth, _, _ in BAD_REQUESTS]
            good = proxy.request(f"/users/xuid({XUID})/achievements?titleId=1234")
    assert [r.status for r in replies] == [status for _, _, status, _ in BAD_REQUESTS]
    for reply, (_, _, status, name) in zip(replies, BAD_REQUESTS):
        violations = json.loads(reply.headers["x-xblreplay-violations"])
        assert [v["name"] for v in violations if v["severity"] == "error"] == [name]
        if status == 401:
            assert reply.body == b""
            assert reply.headers["www-authenticate"].startswith("Token realm=")
        else:
            assert set(reply.json()) == {"errorCode", "errorMessage"}
    # Only the one valid request reached the upstream.
    assert good.status == 200
    assert [p for _, p, _ in up.requests] == [f"/users/xuid({XUID})/achievements?titleId=1234"]


@pytest.mark.parametrize("options, expected", [
    ({"achievements_mode": "sideways"}, "achievements_mode"),
    ({"achievements_rules": "/nonexistent/rules"}, "rules file not found"),
    ({"achievements_cassettes": "/nonexistent/cassettes"}, "/nonexistent/cassettes"),
])
def test_bad_option_stops_mitmdump_at_start_with_one_clear_line(tmp_path, options, expected):
    proxy = Mitmdump(tmp_path, **options)
    proxy.confdir.mkdir(parents=True)
    done = subprocess.run(proxy.argv(), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert expected in out
    assert "Traceback" not in out
    lines = [line for line in out.splitlines() if expected in line]
    assert len(lines) == 1, out
