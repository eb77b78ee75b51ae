"""End-to-end: schemathesis, driven by the contract (rules/achievements.openapi.yaml), against a
real mitmdump in replay mode on the shipped example cassette. The contract and the proxy must
agree: no answer >= 500, every status documented, every documented body and header conforming,
valid data accepted, invalid data refused, an undocumented method answered 405 with ``Allow``.

How the addon sees its host: mitmdump runs as a reverse proxy (``mode=reverse:<local sink>``)
with ``keep_host_header``, and every request carries ``Host: achievements.xboxlive.com``. In
reverse mode mitmproxy replaces the Host header with the reverse target unless
``keep_host_header`` is set; with it, ``pretty_host`` is the host the client named, so the addon
answers. Anything it did not answer would go to the local sink, which must see no connection.

The run is bounded (a fixed seed, a few examples per operation and phase) so it takes seconds.
"""

from __future__ import annotations

import pytest
import yaml

schemathesis = pytest.importorskip("schemathesis")

from proxyharness import AUTH, HOST, REPO, XUID, Mitmdump, SilentListener  # noqa: E402

pytestmark = pytest.mark.e2e

CONTRACT = REPO / "rules" / "achievements.openapi.yaml"
EXAMPLE = REPO / "cassettes" / "example"
PATH_FIELDS = "x-xblreplay-path-fields"
SEED = 20261127
MAX_EXAMPLES = 12

SCID = "a1b2c3d4-0000-4000-8000-00006659fa71"  # a title of the example cassette (xuid XUID)


def config(mode: str, **parameters: str) -> "schemathesis.Config":
    """A bounded, seeded run of every phase but the stateful one."""
    return schemathesis.Config.from_dict({
        "seed": SEED,
        "generation": {"max-examples": MAX_EXAMPLES, "mode": mode, "database": "none"},
        "phases": {"examples": {"enabled": True}, "coverage": {"enabled": True},
                   "fuzzing": {"enabled": True}, "stateful": {"enabled": False}},
        "parameters": parameters,
    })


# Any user, valid and invalid data: mostly R8 answers (400, 401, 403 for a caller bound to
# another xuid, 404, 405).
schema = schemathesis.openapi.from_path(CONTRACT, config=config("all"))
# The recorded user and title, valid data (a pinned path parameter cannot be made invalid): 200
# answers, whose bodies the response schemas check (R7).
recorded = schemathesis.openapi.from_path(
    CONTRACT, config=config("positive", **{"path.xuid": str(XUID), "path.scid": SCID, "path.achievementId": "1"}))


def _path_fields() -> dict[tuple[str, str], dict[str, str]]:
    """(METHOD, path template) -> {body field: path parameter} read from the contract."""
    document = yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))
    found = {}
    for template, item in document["paths"].items():
        for method, op in item.items():
            fields = (op.get("requestBody") or {}).get(PATH_FIELDS) if isinstance(op, dict) else None
            if fields:
                found[(method.upper(), template)] = fields
    return found


FIELDS = _path_fields()


def tie_body_to_path(case) -> None:
    """Valid data is valid as a whole: in a positive case, a body field the contract ties to a
    path parameter (``x-xblreplay-path-fields``) repeats the path's value."""
    fields = FIELDS.get((case.method.upper(), case.operation.path))
    positive = case.meta is None or case.meta.generation.mode.is_positive
    if fields and positive and isinstance(case.body, dict) and case.path_parameters:
        for field, param in fields.items():
            if param in case.path_parameters:
                case.body[field] = str(case.path_parameters[param])


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("schemathesis")
    with SilentListener() as sink:
        with Mitmdump(workdir, mode=f"reverse:{sink.url}", keep_host_header=True,
                      achievements_mode="replay", achievements_cassettes=EXAMPLE,
                      achievements_now="2026-11-27T12:00:00Z", achievements_log=workdir / "v.jsonl") as running:
            yield running
            output = running.stop()
        assert sink.accepted == 0, "a request for the host left the proxy"
    assert "Traceback" not in output, output


def call(case, proxy: Mitmdump) -> None:
    tie_body_to_path(case)
    case.call_and_validate(base_url=f"http://127.0.0.1:{proxy.port}",
                           headers={"Host": HOST, "Authorization": AUTH}, timeout=20)


@schema.parametrize()
def test_contract_and_replay_agree_for_any_user(case, proxy):
    call(case, proxy)


@recorded.parametrize()
def test_contract_and_replay_agree_for_the_recorded_user(case, proxy):
    call(case, proxy)
