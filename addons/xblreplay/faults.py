"""Fault and latency profiles (``rules/faults/*.yaml``), seeded so a run can be repeated.

A profile::

    seed: 7                      # optional (default 0); a seed given to FaultInjector wins
    description: "…"             # optional
    latency:                     # optional; one distribution, in milliseconds
      lognormal: {median_ms: 250, sigma: 0.6}   # or fixed: 80 | uniform: [20, 400]
                                                #  | recorded: 3 (x the recorded latency),
                                                #    with fallback_ms: 200 when none was recorded
      per_endpoint:              # optional overrides, same forms
        achievement-update: {fixed: 800}
    faults:                      # optional
      - {endpoint: "*", probability: 0.05, kind: 503, retry_after: 5}
      - {endpoint: achievements, probability: 0.02, kind: truncate}

Endpoints are the names of :mod:`xblreplay.model` (``achievements``, ``achievement-detail``,
``title-history``, ``achievement-update``) or ``"*"`` for all. Kinds: ``503`` and ``500`` are
answered by :func:`fault_answer`; ``reset`` (drop the connection), ``truncate`` (cut the body, see
:func:`truncate_body`) and ``empty`` (drop the body) are applied by the addon to a real answer.

The faults that apply to one endpoint are exclusive: one uniform draw per request picks at most
one of them, so their probabilities may add up to at most 1. All randomness (faults, latency,
truncation points) comes from one ``random.Random``: the same seed and the same sequence of calls
give the same decisions.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from . import DEFAULT_RULES_DIR, answers
from .rulesfile import read_yaml
from .model import EP_DETAIL, EP_HISTORY, EP_LIST, EP_UPDATE, Answer


ENDPOINTS = (EP_LIST, EP_DETAIL, EP_HISTORY, EP_UPDATE)
KINDS = ("503", "500", "reset", "truncate", "empty")
ANSWERED_KINDS = ("503", "500")  # fault_answer builds these; the rest alter a real response
DEFAULT_RETRY_AFTER = 5  # achievements-api.md §4.1: "retry after the client-retry value … (e.g. 5)"
DISTRIBUTIONS = ("fixed", "uniform", "lognormal", "recorded")
PROFILE_KEYS = ("seed", "description", "latency", "faults")


class ProfileError(ValueError):
    """A fault profile is missing or malformed; str() names the profile and the key."""


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do to one request: wait ``delay_s``, then apply ``kind`` (None: no fault)."""

    delay_s: float
    kind: str | None = None
    retry_after: int | None = None


def load_profile(name_or_path: str | Path, rules_dir: Path | str = DEFAULT_RULES_DIR) -> dict[str, Any]:
    """A profile by name (``rules_dir/faults/NAME.yaml``) or by path, checked and normalised."""
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        path = Path(text)
    else:
        path = Path(rules_dir) / "faults" / f"{text}.yaml"
        if not path.is_file():
            names = sorted(p.stem for p in path.parent.glob("*.yaml"))
            raise ProfileError(f"unknown fault profile {text!r} (known: {', '.join(names) or 'none'})")
    doc = read_yaml(path, ProfileError, "fault profile")
    return parse_profile(doc, str(path))


def parse_profile(doc: Any, name: str = "profile") -> dict[str, Any]:
    """Check a profile document; returns ``{name, seed, latency, per_endpoint, faults}``."""

    def fail(where: str, why: str) -> None:
        raise ProfileError(f"{name}: {where}: {why}")

    if not isinstance(doc, dict):
        fail("top level", "expected a mapping")
    for key in doc:
        if key not in PROFILE_KEYS:
            fail(str(key), f"unknown key (expected one of {', '.join(PROFILE_KEYS)})")
    if not isinstance(doc.get("description", ""), str):
        fail("description", "expected a string")
    seed = doc.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        fail("seed", f"expected an integer, got {seed!r}")

    latency = doc.get("latency") or {}
    if not isinstance(latency, dict):
        fail("latency", "expected a mapping")
    overrides = latency.get("per_endpoint") or {}
    if not isinstance(overrides, dict):
        fail("latency.per_endpoint", "expected a mapping of endpoint to distribution")
    default = {k: v for k, v in latency.items() if k != "per_endpoint"}
    per_endpoint = {}
    for endpoint, spec in overrides.items():
        if endpoint not in ENDPOINTS:
            fail(f"latency.per_endpoint.{endpoint}", f"unknown endpoint (expected one of {', '.join(ENDPOINTS)})")
        per_endpoint[endpoint] = _check_latency(spec, f"latency.per_endpoint.{endpoint}", fail)

    faults = doc.get("faults") or []
    if not isinstance(faults, list):
        fail("faults", "expected a list")
    checked = [_check_fault(f, f"faults[{i}]", fail) for i, f in enumerate(faults)]
    for endpoint in ENDPOINTS:
        total = sum(f["probability"] for f in checked if f["endpoint"] in (endpoint, "*"))
        if total > 1 + 1e-9:
            fail("faults", f"probabilities for endpoint {endpoint} add up to {total:g}, more than 1")

    return {
        "name": name,
        "seed": seed,
        "latency": _check_latency(default, "latency", fail) if default else None,
        "per_endpoint": per_endpoint,
        "faults": checked,
    }


def _is_number(value: Any, minimum: float = 0.0) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value >= minimum


def _check_latency(spec: Any, where: str, fail) -> dict[str, Any]:
    if not isinstance(spec, dict):
        fail(where, f"expected a mapping with one of {', '.join(DISTRIBUTIONS)}")
    dists = [k for k in spec if k in DISTRIBUTIONS]
    extra = [k for k in spec if k not in DISTRIBUTIONS and not (k == "fallback_ms" and "recorded" in spec)]
    if len(dists) != 1 or extra:
        fail(where, f"expected exactly one of {', '.join(DISTRIBUTIONS)}, got {', '.join(map(str, spec)) or 'nothing'}")
    (dist,) = dists
    value = spec[dist]
    if dist == "fixed" and not _is_number(value):
        fail(f"{where}.fixed", f"expected milliseconds >= 0, got {value!r}")
    if dist == "uniform" and not (
        isinstance(value, list) and len(value) == 2 and all(map(_is_number, value)) and value[0] <= value[1]
    ):
        fail(f"{where}.uniform", f"expected [low_ms, high_ms] with 0 <= low <= high, got {value!r}")
    if dist == "lognormal" and not (
        isinstance(value, dict) and set(value) == {"median_ms", "sigma"}
        and _is_number(value["median_ms"]) and value["median_ms"] > 0 and _is_number(value["sigma"])
    ):
        fail(f"{where}.lognormal", f"expected {{median_ms: > 0, sigma: >= 0}}, got {value!r}")
    if dist == "recorded" and not _is_number(value):
        fail(f"{where}.recorded", f"expected a multiple >= 0, got {value!r}")
    if not _is_number(spec.get("fallback_ms", 0)):
        fail(f"{where}.fallback_ms", f"expected milliseconds >= 0, got {spec['fallback_ms']!r}")
    return dict(spec)


def _check_fault(fault: Any, where: str, fail) -> dict[str, Any]:
    if not isinstance(fault, dict):
        fail(where, "expected a mapping with endpoint, probability and kind")
    for key in fault:
        if key not in ("endpoint", "probability", "kind", "retry_after"):
            fail(f"{where}.{key}", "unknown key (expected endpoint, probability, kind, retry_after)")
    endpoint = fault.get("endpoint", "*")
    if endpoint != "*" and endpoint not in ENDPOINTS:
        fail(f"{where}.endpoint", f"unknown endpoint {endpoint!r} (expected \"*\" or one of {', '.join(ENDPOINTS)})")
    probability = fault.get("probability")
    if not (_is_number(probability) and probability <= 1):
        fail(f"{where}.probability", f"expected a number from 0 to 1, got {probability!r}")
    kind = str(fault.get("kind"))
    if kind not in KINDS:
        fail(f"{where}.kind", f"unknown kind {fault.get('kind')!r} (expected one of {', '.join(KINDS)})")
    retry_after = fault.get("retry_after")
    if retry_after is not None:
        if kind not in ANSWERED_KINDS:
            fail(f"{where}.retry_after", f"only a {' or '.join(ANSWERED_KINDS)} answer carries Retry-After")
        if isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 0:
            fail(f"{where}.retry_after", f"expected whole seconds >= 0, got {retry_after!r}")
    elif kind == "503":
        retry_after = DEFAULT_RETRY_AFTER
    return {"endpoint": endpoint, "probability": probability, "kind": kind, "retry_after": retry_after}


class FaultInjector:
    """Decides, request by request, the delay and the fault. ``rng`` is public for truncate_body."""

    def __init__(self, profile: dict[str, Any], seed: int | None = None) -> None:
        self.profile = profile
        self.rng = random.Random(profile["seed"] if seed is None else seed)
        self._faults: dict[str, list[dict[str, Any]]] = {}

    def decide(self, endpoint: str, recorded_latency_ms: float | None = None) -> Decision:
        fault = None
        draw = self.rng.random()
        for candidate in self._faults_for(endpoint):
            draw -= candidate["probability"]
            if draw < 0:
                fault = candidate
                break
        spec = self.profile["per_endpoint"].get(endpoint, self.profile["latency"])
        delay_ms = _sample(spec, self.rng, recorded_latency_ms) if spec else 0.0
        if fault is None:
            return Decision(delay_ms / 1000)
        return Decision(delay_ms / 1000, fault["kind"], fault["retry_after"])

    def _faults_for(self, endpoint: str) -> list[dict[str, Any]]:
        faults = self._faults.get(endpoint)
        if faults is None:
            faults = self._faults[endpoint] = [
                f for f in self.profile["faults"] if f["endpoint"] in (endpoint, "*")
            ]
        return faults


def _sample(spec: dict[str, Any], rng: random.Random, recorded_ms: float | None) -> float:
    """One latency in milliseconds."""
    if "fixed" in spec:
        return float(spec["fixed"])
    if "uniform" in spec:
        return rng.uniform(*spec["uniform"])
    if "lognormal" in spec:
        params = spec["lognormal"]
        return rng.lognormvariate(math.log(params["median_ms"]), params["sigma"])
    if recorded_ms is None:
        return float(spec.get("fallback_ms", 0))
    return spec["recorded"] * recorded_ms


def fault_answer(decision: Decision) -> Answer:
    """The answer for a 503 or 500 decision, in the service's error shape (§4.1)."""
    if decision.kind == "503":
        retry_after = DEFAULT_RETRY_AFTER if decision.retry_after is None else decision.retry_after
        return answers.injected(503, f"Service Unavailable. Retry after {retry_after} seconds.",
                                f"fault profile: injected 503 Service Unavailable, Retry-After {retry_after} s",
                                retry_after)
    if decision.kind == "500":
        return answers.injected(500, "Internal Server Error", "fault profile: injected 500 Internal Server Error",
                                decision.retry_after)
    raise ValueError(f"fault kind {decision.kind!r} is applied to a real response, not answered")


def truncate_body(body: bytes, rng: random.Random) -> bytes:
    """A strict prefix of ``body`` (cut at a random point) that no longer parses as JSON."""
    body = body.rstrip()
    cut = rng.randrange(len(body)) if body else 0
    while cut > 0:  # a prefix of a scalar such as 1234 may still parse: cut further
        try:
            json.loads(body[:cut])
        except ValueError:
            break
        cut -= 1
    return body[:cut]
