"""The control requests behind the pytest plugin: answered by the addon itself for the reserved host
(never dialled), refused without the process's token, and the rewind putting progress updates,
the validation log's position and the fault sequence back; the store's undo record on its own."""

from __future__ import annotations

import http.client
import json
import os

import pytest

from proxyharness import AUTH, REPO, XUID, Mitmdump, SilentListener
from xblreplay import DEFAULT_RULES_DIR
from xblreplay.contract import Validator
from xblreplay.proxy.control import CONTROL_HOST, MIN_TOKEN_CHARS, TOKEN_ENV, TOKEN_HEADER
from xblreplay.replay import Replayer

pytestmark = pytest.mark.e2e

EXAMPLE = REPO / "cassettes" / "example"
SCID = "a1b2c3d4-0000-4000-8000-00006659fa71"
STARFALL = 1717113201
TOKEN = "t" * MIN_TOKEN_CHARS + "-control"
LISTING = f"/users/xuid({XUID})/achievements?titleId={STARFALL}&maxItems=100"


def control(proxy: Mitmdump, command: str, token: str | None = TOKEN, method: str = "POST") -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=20)
    try:
        conn.request(method, f"http://{CONTROL_HOST}/{command}", headers={TOKEN_HEADER: token} if token else {})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def update_body(achievement: int, percent: int) -> bytes:
    return json.dumps({"action": "progressUpdate", "serviceConfigId": SCID, "titleId": STARFALL,
                       "userId": str(XUID), "achievements": [{"id": str(achievement), "percentComplete": percent}]}).encode()


class TokenProxy(Mitmdump):
    """The harness's mitmdump with a control token in its environment."""

    def __init__(self, workdir, token: str | None, **options) -> None:
        super().__init__(workdir, **options)
        self.env = {**os.environ, TOKEN_ENV: token} if token else {k: v for k, v in os.environ.items() if k != TOKEN_ENV}


def test_control_is_refused_without_the_token_and_never_dialled(tmp_path):
    with SilentListener() as network:
        with TokenProxy(tmp_path, TOKEN, achievements_cassettes=EXAMPLE, achievements_upstream=network.url,
                        achievements_log=tmp_path / "log.jsonl") as proxy:
            refused = [control(proxy, "mark", token=None), control(proxy, "mark", token=TOKEN[:-1] + "x"),
                       control(proxy, "mark", token=TOKEN + "x")]
            wrong_method = control(proxy, "mark", method="GET")
            unknown = control(proxy, "restart")
            status, mark = control(proxy, "mark")
        with TokenProxy(tmp_path / "off", None, achievements_cassettes=EXAMPLE,
                        achievements_upstream=network.url) as off:
            off_status, off_body = control(off, "mark")
        with TokenProxy(tmp_path / "short", "short", achievements_cassettes=EXAMPLE,
                        achievements_upstream=network.url) as short:
            short_status, _ = control(short, "mark", token="short")
            short_output = short.stop()
    assert [s for s, _ in refused] == [403, 403, 403]
    assert all("token" in body["error"] for _, body in refused)
    assert wrong_method[0] == 405 and unknown[0] == 404 and "rewind" in unknown[1]["error"]
    assert status == 200 and mark["log"] == str(tmp_path / "log.jsonl") and mark["pid"] == proxy.pid
    assert off_status == 403 and TOKEN_ENV in off_body["error"]
    assert short_status == 403 and f"{TOKEN_ENV} is shorter than {MIN_TOKEN_CHARS}" in short_output
    assert network.accepted == 0  # the reserved host is answered by the proxy, in every case


def test_rewind_undoes_updates_and_moves_the_log_on(tmp_path):
    log = tmp_path / "log.jsonl"
    with SilentListener() as network:
        with TokenProxy(tmp_path, TOKEN, achievements_cassettes=EXAMPLE, achievements_upstream=network.url,
                        achievements_log=log, achievements_now="2026-11-27T12:00:00Z") as proxy:
            before = proxy.request(LISTING).body
            _, first = control(proxy, "mark")
            locked = next(a["id"] for a in json.loads(before)["achievements"] if a["progressState"] != "Achieved")
            post = {"Content-Type": "application/json"}
            updated = proxy.request(f"/users/xuid({XUID})/achievements/{SCID}/update", post, method="POST",
                                    body=update_body(int(locked), 100))
            changed = proxy.request(LISTING).body
            status, rewound = control(proxy, "rewind")
            after = proxy.request(LISTING).body
            again = proxy.request(f"/users/xuid({XUID})/achievements/{SCID}/update", post, method="POST",
                                  body=update_body(int(locked), 100))
    assert network.accepted == 0
    assert updated.status == 200 and changed != before
    assert status == 200 and rewound["undone"] == 2  # the item in the en-US and the fr-FR dataset
    assert after == before  # byte for byte the listing as loaded
    assert again.status == 200  # unlocked afresh, not 304
    lines = log.read_bytes()
    assert first["log_offset"] == len(lines.splitlines(keepends=True)[0])  # one entry before the mark
    assert rewound["log_offset"] == sum(map(len, lines.splitlines(keepends=True)[:3]))


def test_rewind_starts_the_fault_sequence_again(tmp_path):
    with SilentListener() as network:
        with TokenProxy(tmp_path, TOKEN, achievements_cassettes=EXAMPLE, achievements_upstream=network.url,
                        achievements_faults="flaky", achievements_seed=11) as proxy:
            def statuses() -> list[int]:
                found = []
                for n in range(12):
                    try:
                        found.append(proxy.request(f"{LISTING}&skipItems={n}", timeout=5).status)
                    except (OSError, http.client.HTTPException):
                        found.append(0)  # a dropped connection
                return found

            first = statuses()
            assert control(proxy, "rewind")[0] == 200
            second = statuses()
    assert network.accepted == 0
    assert first == second and set(first) != {200}, first


def test_the_undo_record_puts_every_updated_item_back():
    replayer = Replayer.from_dir(Validator.from_rules(DEFAULT_RULES_DIR), EXAMPLE)
    headers = {"authorization": AUTH, "x-xbl-contract-version": "2", "accept-language": "en-US"}
    url = f"https://achievements.xboxlive.com{LISTING}"
    history = f"https://achievements.xboxlive.com/users/xuid({XUID})/history/titles"

    def answers() -> tuple[bytes, bytes]:
        return (replayer.handle("GET", url, headers)[1].body_bytes(),
                replayer.handle("GET", history, headers)[1].body_bytes())

    before = answers()
    items = json.loads(before[0])["achievements"]
    progress = [a["id"] for a in items if a["progressState"] != "Achieved"][:3]
    update = f"https://achievements.xboxlive.com/users/xuid({XUID})/achievements/{SCID}/update"
    for n, achievement in enumerate(progress):
        for percent in (40, 100) if n else (100,):
            done = replayer.handle("POST", update, {**headers, "content-type": "application/json"},
                                   update_body(int(achievement), percent))[1]
            assert done.status in (200, 304)
    assert answers() != before and replayer.store.updated
    assert replayer.store.drop_updates() == 2 * len(progress)  # each in the en-US and the fr-FR dataset
    assert answers() == before and not replayer.store.updated
    assert replayer.store.drop_updates() == 0
