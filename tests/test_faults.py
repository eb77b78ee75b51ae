"""Fault and latency profiles (xblreplay.faults): statistics, seeding, validation, answers."""

import json
import math
import random
import statistics

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from xblreplay import DEFAULT_RULES_DIR
from xblreplay.faults import (
    Decision, FaultInjector, ProfileError, fault_answer, load_profile, parse_profile, truncate_body,
)

N = 4000


def injector(doc: dict, seed: int | None = None) -> FaultInjector:
    return FaultInjector(parse_profile(doc, "test"), seed)


def binomial_ok(hits: int, n: int, p: float, sigmas: float = 4.0) -> bool:
    return abs(hits - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


# ------------------------------------------------------------------ fault rates

def test_fault_rates_match_probabilities_within_4_sigma():
    doc = {"faults": [
        {"endpoint": "*", "probability": 0.10, "kind": 503, "retry_after": 7},
        {"endpoint": "achievements", "probability": 0.05, "kind": "truncate"},
        {"endpoint": "achievements", "probability": 0.20, "kind": "reset"},
    ]}
    fi = injector(doc, seed=11)
    kinds = [fi.decide("achievements", None).kind for _ in range(N)]
    for fault in doc["faults"]:
        assert binomial_ok(kinds.count(str(fault["kind"])), N, fault["probability"]), fault
    assert binomial_ok(kinds.count(None), N, 1 - 0.35)


def test_faults_for_one_endpoint_are_exclusive_one_draw_per_request():
    doc = {"faults": [
        {"endpoint": "*", "probability": 0.5, "kind": 500},
        {"endpoint": "title-history", "probability": 0.5, "kind": "empty"},
    ]}
    fi = injector(doc, seed=5)
    kinds = [fi.decide("title-history").kind for _ in range(N)]
    assert None not in kinds  # the probabilities add up to 1: every request gets exactly one
    assert binomial_ok(kinds.count("500"), N, 0.5)


def test_fault_for_another_endpoint_never_fires():
    fi = injector({"faults": [{"endpoint": "achievement-update", "probability": 1.0, "kind": 503}]})
    assert {fi.decide("achievements").kind for _ in range(200)} == {None}
    assert {fi.decide("achievement-update").kind for _ in range(20)} == {"503"}


def test_503_without_retry_after_defaults_to_5_seconds():
    decision = injector({"faults": [{"probability": 1, "kind": 503}]}).decide("achievements")
    assert decision == Decision(0.0, "503", 5)


# ------------------------------------------------------------------ seeding

FLAKY_LIKE = {
    "latency": {"lognormal": {"median_ms": 100, "sigma": 0.8}},
    "faults": [{"probability": 0.3, "kind": 503}, {"probability": 0.2, "kind": "reset"}],
}


def run(fi: FaultInjector, n: int = 300) -> list[Decision]:
    return [fi.decide("achievements", 50.0) for _ in range(n)]


def test_same_seed_same_sequence_of_decisions():
    assert run(injector(FLAKY_LIKE, seed=42)) == run(injector(FLAKY_LIKE, seed=42))


def test_different_seed_different_sequence():
    assert run(injector(FLAKY_LIKE, seed=42)) != run(injector(FLAKY_LIKE, seed=43))


def test_profile_seed_is_the_default_and_an_explicit_seed_wins():
    assert run(injector({**FLAKY_LIKE, "seed": 9})) == run(injector(FLAKY_LIKE, seed=9))
    assert run(injector({**FLAKY_LIKE, "seed": 9}, seed=10)) == run(injector(FLAKY_LIKE, seed=10))


# ------------------------------------------------------------------ latency

def delays(doc: dict, n: int = N, endpoint: str = "achievements", recorded=None) -> list[float]:
    fi = injector(doc, seed=3)
    return [fi.decide(endpoint, recorded).delay_s for _ in range(n)]


def test_latency_fixed_is_exact():
    assert set(delays({"latency": {"fixed": 125}}, 50)) == {0.125}


def test_latency_uniform_stays_in_bounds_and_spreads():
    values = delays({"latency": {"uniform": [20, 400]}})
    assert 0.020 <= min(values) and max(values) <= 0.400
    width = 0.380
    assert min(values) < 0.020 + 0.01 * width and max(values) > 0.400 - 0.01 * width
    # mean of U(a, b) is (a + b) / 2 with standard error (b - a) / sqrt(12 n)
    assert abs(statistics.fmean(values) - 0.210) <= 4 * width / math.sqrt(12 * N)


def test_latency_lognormal_median_within_tolerance():
    sigma, median_ms = 0.6, 250
    values = delays({"latency": {"lognormal": {"median_ms": median_ms, "sigma": sigma}}}, 4001)
    # log(delay) ~ N(log median, sigma); the sample median's standard error is sqrt(pi/2) sigma / sqrt(n)
    tolerance = 4 * math.sqrt(math.pi / 2) * sigma / math.sqrt(4001)
    assert abs(math.log(statistics.median(values) * 1000) - math.log(median_ms)) <= tolerance
    # and it has the spread of sigma, not a constant
    assert abs(statistics.stdev(math.log(v) for v in values) - sigma) < 0.05


def test_latency_recorded_is_a_multiple_with_fallback():
    doc = {"latency": {"recorded": 2.5, "fallback_ms": 40}}
    assert set(delays(doc, 20, recorded=80.0)) == {2.5 * 80.0 / 1000}
    assert set(delays(doc, 20, recorded=None)) == {0.040}


def test_latency_per_endpoint_override():
    doc = {"latency": {"fixed": 10, "per_endpoint": {"achievement-update": {"fixed": 900}}}}
    assert set(delays(doc, 10, endpoint="achievement-update")) == {0.9}
    assert set(delays(doc, 10, endpoint="achievements")) == {0.01}


def test_no_latency_section_means_no_delay():
    assert set(delays({}, 10)) == {0.0}


# ------------------------------------------------------------------ profile errors

@pytest.mark.parametrize(
    "doc, where",
    [
        ({"faults": [{"probability": 0.1, "kind": "timeout"}]}, "faults[0].kind: unknown kind 'timeout'"),
        ({"faults": [{"probability": 0.7, "kind": 503}, {"endpoint": "achievements", "probability": 0.4,
                                                        "kind": "reset"}]},
         "faults: probabilities for endpoint achievements add up to 1.1"),
        ({"faults": [{"probability": 1.5, "kind": 503}]}, "faults[0].probability"),
        ({"faults": [{"probability": 0.1, "kind": 503, "endpoint": "profile"}]}, "faults[0].endpoint"),
        ({"faults": [{"probability": 0.1, "kind": "reset", "retry_after": 3}]}, "faults[0].retry_after"),
        ({"faults": [{"probability": 0.1, "kind": 503, "retry_after": -1}]}, "faults[0].retry_after"),
        ({"faults": [{"probability": 0.1, "kind": 503, "delay": 1}]}, "faults[0].delay: unknown key"),
        ({"latency": {"gaussian": 3}}, "latency: expected exactly one of"),
        ({"latency": {"fixed": 10, "uniform": [1, 2]}}, "latency: expected exactly one of"),
        ({"latency": {"fixed": -5}}, "latency.fixed"),
        ({"latency": {"uniform": [400, 20]}}, "latency.uniform"),
        ({"latency": {"lognormal": {"median_ms": 0, "sigma": 1}}}, "latency.lognormal"),
        ({"latency": {"lognormal": {"median_ms": 100}}}, "latency.lognormal"),
        ({"latency": {"fixed": 10, "fallback_ms": 5}}, "latency: expected exactly one of"),
        ({"latency": {"per_endpoint": {"nowhere": {"fixed": 1}}}}, "latency.per_endpoint.nowhere"),
        ({"latency": {"per_endpoint": {"achievements": {"recorded": "x2"}}}}, "latency.per_endpoint.achievements"),
        ({"seed": "abc"}, "seed"),
        ({"description": ["x"]}, "description"),
        ({"faultz": []}, "faultz: unknown key"),
        (["not", "a", "mapping"], "top level"),
    ],
)
def test_profile_errors_name_the_key(doc, where):
    with pytest.raises(ProfileError) as e:
        parse_profile(doc, "bad.yaml")
    assert str(e.value).startswith(f"bad.yaml: {where}")


def test_load_profile_unknown_name_lists_the_known_ones(tmp_path):
    (tmp_path / "faults").mkdir()
    (tmp_path / "faults" / "calm.yaml").write_text("seed: 1\n")
    with pytest.raises(ProfileError, match=r"unknown fault profile 'stormy' \(known: calm\)"):
        load_profile("stormy", tmp_path)
    assert load_profile("calm", tmp_path)["seed"] == 1


def test_load_profile_by_path_and_yaml_errors(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"seed": 8, "latency": {"fixed": 3}}))
    assert load_profile(str(path))["seed"] == 8
    path.write_text("faults: [unclosed")
    with pytest.raises(ProfileError, match="not valid YAML"):
        load_profile(path)
    with pytest.raises(ProfileError, match="cannot read"):
        load_profile(tmp_path / "absent.yaml")


@pytest.mark.parametrize("name", sorted(p.stem for p in (DEFAULT_RULES_DIR / "faults").glob("*.yaml")))
def test_shipped_profiles_load_and_decide(name):
    fi = FaultInjector(load_profile(name))
    for endpoint in ("achievements", "achievement-detail", "title-history", "achievement-update", "other"):
        decision = fi.decide(endpoint, 120.0)
        assert decision.delay_s >= 0


def test_shipped_profiles_include_the_four_documented_ones():
    names = {p.stem for p in (DEFAULT_RULES_DIR / "faults").glob("*.yaml")}
    assert {"flaky", "outage", "slow", "mobile"} <= names


def test_outage_profile_is_mostly_503():
    fi = FaultInjector(load_profile("outage"))
    kinds = [fi.decide("achievements").kind for _ in range(1000)]
    assert kinds.count("503") > len(kinds) / 2


# ------------------------------------------------------------------ answers and truncation

def test_fault_answer_503_has_retry_after_and_service_error_body():
    answer = fault_answer(Decision(0.0, "503", 12))
    assert answer.status == 503 and answer.source == "fault"
    assert answer.headers == [("Retry-After", "12")]
    assert set(answer.body) == {"errorCode", "errorMessage"} and "12" in answer.body["errorMessage"]
    assert answer.reason


def test_fault_answer_500():
    answer = fault_answer(Decision(0.0, "500", None))
    assert answer.status == 500 and answer.headers == [] and "errorMessage" in answer.body


@pytest.mark.parametrize("kind", ["reset", "truncate", "empty", None])
def test_fault_answer_refuses_kinds_applied_to_real_responses(kind):
    with pytest.raises(ValueError):
        fault_answer(Decision(0.0, kind, None))


def assert_cut(body: bytes, cut: bytes) -> None:
    assert len(cut) < len(body.rstrip()) or not body.strip()
    assert body.startswith(cut)
    with pytest.raises(ValueError):
        json.loads(cut)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(value=json_values, seed=st.integers(0, 2**32), trailing=st.sampled_from(["", "\n", "  \r\n"]))
def test_truncate_body_never_parses(value, seed, trailing):
    body = (json.dumps(value, ensure_ascii=False) + trailing).encode("utf-8")
    assert_cut(body, truncate_body(body, random.Random(seed)))


def test_truncate_body_cuts_at_varied_points():
    body = json.dumps({"achievements": [{"id": str(i)} for i in range(20)]}).encode()
    rng = random.Random(1)
    lengths = {len(truncate_body(body, rng)) for _ in range(50)}
    assert len(lengths) > 10
