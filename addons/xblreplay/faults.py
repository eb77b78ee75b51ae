"""Fault and latency profiles (``rules/faults/*.yaml``): each request's delay and fault, decided
with a seed so a run can be repeated, and what each kind of fault does.

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

``rules/faults.schema.json`` is its definition: the kinds, endpoints and distributions there are
the ones this module knows. Endpoints are the names of :mod:`xblreplay.model` or ``"*"`` for all.
Every kind is applied here too (:data:`_EFFECTS`): ``503`` and ``500`` are answered instead of
the request (:func:`fault_answer`), ``reset`` drops the connection, ``truncate`` (see
:func:`truncate_body`) and ``empty`` alter the body of the real answer. The proxy asks
:class:`FaultInjector` what to do and carries it out without knowing the kinds.

The faults that apply to one endpoint are exclusive: one uniform draw per request picks at most
one of them, so their probabilities may add up to at most 1. All randomness (faults, latency,
truncation points) comes from one ``random.Random``: the same seed and the same sequence of calls
give the same decisions.
"""

from __future__ import annotations

import functools
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import DEFAULT_RULES_DIR, answers
from .model import Answer
from .rulesfile import first_error, read_yaml, strict_validator

SCHEMA_PATH = DEFAULT_RULES_DIR / "faults.schema.json"
_SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
_FAULT = _SCHEMA["$defs"]["fault"]
KINDS: tuple[str, ...] = tuple(dict.fromkeys(str(k) for k in _FAULT["properties"]["kind"]["enum"]))
ENDPOINTS: tuple[str, ...] = tuple(e for e in _FAULT["properties"]["endpoint"]["enum"] if e != "*")
DEFAULT_RETRY_AFTER = 5  # achievements-api.md §4.1: "retry after the client-retry value … (e.g. 5)"


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
    """Check a profile document against the schema (then what a schema cannot say: uniform's
    low <= high, and the probabilities per endpoint); returns ``{name, seed, latency,
    per_endpoint, faults}``."""
    problem = first_error(_validator(), doc)
    if problem is not None:
        raise ProfileError(f"{name}: {problem}")
    latency = dict(doc.get("latency") or {})
    per_endpoint = {endpoint: _latency(spec, f"latency.per_endpoint.{endpoint}", name)
                    for endpoint, spec in (latency.pop("per_endpoint", None) or {}).items()}
    faults = [_fault(f) for f in doc.get("faults") or []]
    for endpoint in ENDPOINTS:
        total = sum(f["probability"] for f in faults if f["endpoint"] in (endpoint, "*"))
        if total > 1 + 1e-9:
            raise ProfileError(f"{name}: faults: probabilities for endpoint {endpoint} add up to {total:g}, more than 1")
    return {
        "name": name,
        "seed": doc.get("seed", 0),
        "latency": _latency(latency, "latency", name) if latency else None,
        "per_endpoint": per_endpoint,
        "faults": faults,
    }


@functools.cache
def _validator():
    """The validator of faults.schema.json, built when the first profile is checked."""
    return strict_validator(_SCHEMA)


def _latency(spec: dict[str, Any], where: str, name: str) -> dict[str, Any]:
    low, high = spec.get("uniform", (0, 0))
    if low > high:
        raise ProfileError(f"{name}: {where}.uniform: expected [low_ms, high_ms] with 0 <= low <= high, "
                           f"got {spec['uniform']!r}")
    return dict(spec)


def _fault(fault: dict[str, Any]) -> dict[str, Any]:
    kind = str(fault["kind"])
    retry_after = fault.get("retry_after")
    if retry_after is None and kind == "503":
        retry_after = DEFAULT_RETRY_AFTER
    return {"endpoint": fault.get("endpoint", "*"), "probability": fault["probability"], "kind": kind,
            "retry_after": retry_after}


class FaultInjector:
    """Decides, request by request, the delay and the fault (:meth:`decide`), and alters a real
    answer's body for it (:meth:`body`) with the same randomness."""

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

    def body(self, kind: str | None, read: Callable[[], bytes]) -> bytes | None:
        """The body a real answer goes on with under fault ``kind`` (``read`` gives the body as
        it came); None: as it came."""
        alter = effect(kind).body
        return alter(read, self.rng) if alter is not None else None

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
    """The answer for a fault that is answered instead of the request (503, 500), in the
    service's error shape (§4.1); ValueError for the other kinds."""
    answer = effect(decision.kind).answer
    if answer is None:
        raise ValueError(f"fault kind {decision.kind!r} is applied to a real response, not answered")
    return answer(decision)


def _answer_503(decision: Decision) -> Answer:
    retry_after = DEFAULT_RETRY_AFTER if decision.retry_after is None else decision.retry_after
    return answers.injected(503, f"Service Unavailable. Retry after {retry_after} seconds.",
                            f"fault profile: injected 503 Service Unavailable, Retry-After {retry_after} s",
                            retry_after)


def _answer_500(decision: Decision) -> Answer:
    return answers.injected(500, "Internal Server Error", "fault profile: injected 500 Internal Server Error",
                            decision.retry_after)


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


@dataclass(frozen=True, slots=True)
class Effect:
    """What a kind of fault does; the proxy carries it out without knowing the kind."""

    answer: Callable[[Decision], Answer] | None = None  # the answer given instead of the request
    drops: bool = False  # the connection is dropped: the client gets no answer
    # The body the real answer goes on with (None: as it came), given a reader of the body as it
    # came (decoded; read only when needed: it may not decode) and the randomness.
    body: Callable[[Callable[[], bytes], random.Random], bytes | None] | None = None


_EFFECTS: dict[str, Effect] = {
    "503": Effect(answer=_answer_503),
    "500": Effect(answer=_answer_500),
    "reset": Effect(drops=True),
    "truncate": Effect(body=lambda read, rng: truncate_body(body, rng) if (body := read()) else None),
    "empty": Effect(body=lambda read, rng: b""),
}
if set(_EFFECTS) != set(KINDS):  # the schema and this module name the same kinds
    raise ImportError(f"fault kinds in {SCHEMA_PATH.name} and faults.py differ: {sorted(set(_EFFECTS) ^ set(KINDS))}")


def effect(kind: str | None) -> Effect:
    """What fault ``kind`` does (nothing for None)."""
    return _EFFECTS[kind] if kind is not None else Effect()
