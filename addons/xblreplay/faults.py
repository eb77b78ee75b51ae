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

import jsonschema

from . import DEFAULT_RULES_DIR, answers
from .model import Answer
from .rulesfile import read_yaml

SCHEMA_PATH = DEFAULT_RULES_DIR / "faults.schema.json"
_SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
_FAULT = _SCHEMA["$defs"]["fault"]
KINDS: tuple[str, ...] = tuple(dict.fromkeys(str(k) for k in _FAULT["properties"]["kind"]["enum"]))
ENDPOINTS: tuple[str, ...] = tuple(e for e in _FAULT["properties"]["endpoint"]["enum"] if e != "*")
DISTRIBUTIONS: tuple[str, ...] = tuple(
    one["required"][0] for one in _SCHEMA["$defs"]["distribution"]["oneOf"])
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
    errors = list(_validator().iter_errors(doc))
    if errors:
        # The most specific finding: the one deepest in the document, first among equals.
        where, why = _explain(max(errors, key=lambda e: len(e.absolute_path)))
        raise ProfileError(f"{name}: {where}: {why}")
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


# --- the schema's findings as one line ----------------------------------------------------------

@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    """Draft 2020-12 where an integer is an int (not 5.0) and a number is finite (not .nan, .inf)."""
    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine_many({
        "integer": lambda _checker, v: type(v) is int,
        "number": lambda _checker, v: type(v) in (int, float) and math.isfinite(v),
    })
    return jsonschema.validators.extend(base, type_checker=checker)(_SCHEMA)


_TYPE_NAMES = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
               "number": "a number"}
# Schema keywords followed by the name of a subschema (a property, an index) in a schema path,
# whether they lead one level down the document; "items" leads down with nothing after it.
_NAMED = {"properties": True, "prefixItems": True, "oneOf": False, "anyOf": False, "allOf": False}
_INNER = {"items": True, "if": False, "then": False, "else": False, "not": False}


def _explain(error: jsonschema.ValidationError) -> tuple[str, str]:
    """(where, why) for a finding: the errorMessage of the innermost schema node about the same
    value, else a line made from the keyword that failed."""
    path = list(error.absolute_path)
    value = error.instance
    if error.validator == "additionalProperties":
        known = error.schema.get("properties", {})
        key = next(k for k in value if k not in known)
        return _where(path + [key]), f"unknown key (expected one of {', '.join(known)})"
    if error.validator == "required":
        key = next(k for k in error.validator_value if k not in value)
        return _where(path + [key]), "missing"
    message = _error_message(list(error.absolute_schema_path), len(path))
    if message is not None:
        keys = ", ".join(map(str, value)) if isinstance(value, dict) else repr(value)
        return _where(path), message.format(value=value, keys=keys or "nothing")
    wanted = error.validator_value
    if error.validator == "type":
        types = [wanted] if isinstance(wanted, str) else wanted
        why = f"expected {' or '.join(_TYPE_NAMES[t] for t in types if t != 'null')}"
    elif error.validator == "enum":
        noun = error.schema.get("title", "value")
        why = f"unknown {noun} {value!r} (expected one of {', '.join(dict.fromkeys(map(str, wanted)))})"
        return _where(path), why
    elif error.validator in ("minimum", "maximum", "exclusiveMinimum"):
        sign = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">"}[error.validator]
        why = f"expected a number {sign} {wanted}"
    else:
        why = error.message
    return _where(path), f"{why}, got {value!r}"


def _error_message(schema_path: list, depth: int) -> str | None:
    """The errorMessage of the innermost node, on the way down ``schema_path``, that is about the
    value at document ``depth`` (following $ref, which jsonschema leaves out of the path)."""
    node, level, found = _SCHEMA, 0, None
    steps = iter(schema_path)
    for step in steps:
        while step not in node and "$ref" in node:
            found = node.get("errorMessage", found) if level == depth else found
            node = _resolve(node["$ref"])
        found = node.get("errorMessage", found) if level == depth else found
        name = next(steps, None) if step in _NAMED else None
        if name is not None:
            node, level = node[step][name], level + _NAMED[step]
        elif step in _INNER:
            node, level = node[step], level + _INNER[step]
        else:  # the keyword that failed (oneOf, properties… as the failing keyword end the path)
            break
    return found


def _resolve(ref: str) -> dict[str, Any]:
    node: Any = _SCHEMA
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _where(path: list) -> str:
    where = ""
    for step in path:
        where += f"[{step}]" if isinstance(step, int) else (f".{step}" if where else str(step))
    return where or "top level"


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
