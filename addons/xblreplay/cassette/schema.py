"""The checks of ``rules/cassette.schema.json``: jsonschema for the envelope, and the achievement
rules compiled from the same definitions into Python predicates (a cassette's achievements are
most of its load time); every failure a :class:`CassetteError` on the line of its node."""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from pathlib import Path
from typing import Any

from .. import DEFAULT_RULES_DIR
from ..model import closest
from ..rulesfile import short_repr, strict_validator
from .errors import CassetteError
from .locate import lines_of
from .plain import keep, plain, read_rules as plain_rules

SCHEMA_PATH = DEFAULT_RULES_DIR / "cassette.schema.json"


@functools.cache
def _schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@functools.cache
def _validators():
    """(full validator, validator that leaves achievement entries to :func:`_achievement_errors`)."""
    schema = _schema()
    envelope = copy.deepcopy(schema)
    # Achievements are checked by _achievement_errors, compiled from the same definitions: a
    # $ref per item costs jsonschema a reference lookup each, most of a large cassette's load.
    envelope["$defs"]["datasetAchievements"] = True
    return strict_validator(schema), strict_validator(envelope)


# --- the achievement rules of the schema, compiled -------------------------------------------
# A subset of JSON Schema (the keywords below) compiled into Python code: one predicate per
# rule for the fast path, and an explanation, for the (rare) entry that fails, that walks the
# rule and its parts with the same predicates. A keyword outside the subset in an achievement
# definition is an error when the rules are compiled, so the schema file stays the one source.

_ANNOTATIONS = {"title", "description", "$comment"}
_KEYWORDS = _ANNOTATIONS | {
    "$ref", "type", "enum", "const", "pattern", "minimum", "maximum", "anyOf", "properties", "required",
    "additionalProperties", "dependentSchemas", "prefixItems", "items", "minItems", "maxItems",
}
_TYPE_TESTS = {
    "object": "type({v}) is dict", "array": "type({v}) is list", "string": "type({v}) is str",
    "integer": "type({v}) is int", "number": "(type({v}) is int or type({v}) is float)",
    "boolean": "type({v}) is bool", "null": "{v} is None",
}
_IS: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: type(v) is dict, "array": lambda v: type(v) is list, "string": lambda v: type(v) is str,
    "integer": lambda v: type(v) is int, "number": lambda v: type(v) is int or type(v) is float,
    "boolean": lambda v: type(v) is bool, "null": lambda v: v is None,
}
_SCALARS = (str, int, float, bool, type(None))
_KINDS = {dict: "a mapping", list: "a list", str: "a string", int: "an integer", float: "a number",
          bool: "a boolean", type(None): "null"}


class _Compiler:
    """Turns schema nodes into Python predicates (JSON semantics: true is not 1, integers are
    ints, each keyword applies to the instance types it is defined for)."""

    def __init__(self, root: dict) -> None:
        self.root = root
        self.ns: dict[str, Any] = {"_SCALARS": _SCALARS}
        self.defs: list[str] = []
        self.count = 0

    def resolve(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            raise ValueError(f"{SCHEMA_PATH}: only local references are supported, not {ref!r}")
        node: Any = self.root
        for step in ref[2:].split("/"):
            node = node[step]
        return node

    def _name(self, prefix: str, value: Any = None) -> str:
        self.count += 1
        name = f"_{prefix}{self.count}"
        if value is not None:
            self.ns[name] = value
        return name

    def expr(self, node: Any, v: str, stack: tuple = ()) -> str:
        """A Python expression, true when the value named ``v`` satisfies ``node``."""
        if node is True or node == {}:
            return "True"
        if node is False:
            return "False"
        unknown = set(node) - _KEYWORDS
        if unknown:
            raise ValueError(f"{SCHEMA_PATH}: keyword {sorted(unknown)[0]!r} is not supported in achievement rules")
        if id(node) in stack:
            raise ValueError(f"{SCHEMA_PATH}: recursive achievement rules are not supported")
        stack += (id(node),)
        parts = []
        if "$ref" in node:
            parts.append(self.expr(self.resolve(node["$ref"]), v, stack))
        types = node.get("type")
        types = [types] if isinstance(types, str) else types
        objects = any(k in node for k in ("properties", "required", "additionalProperties", "dependentSchemas"))
        if types == ["object"] and objects:  # one call: the object function checks the type too
            parts.append(f"{self._object(node, stack, typed=True)}({v})")
            objects = False
        elif types is not None:
            parts.append("(" + " or ".join(_TYPE_TESTS[t].format(v=v) for t in types) + ")")
        for word in ("enum", "const"):
            if word in node:
                values = node["enum"] if word == "enum" else [node["const"]]
                if not all(isinstance(e, _SCALARS) for e in values):
                    raise ValueError(f"{SCHEMA_PATH}: {word} of non-scalar values is not supported")
                pairs = self._name("E", frozenset((type(e), e) for e in values))
                parts.append(f"(type({v}) in _SCALARS and (type({v}), {v}) in {pairs})")
        numeric = types is not None and set(types) <= {"integer", "number"}
        for word, op in (("minimum", ">="), ("maximum", "<=")):
            if word in node:
                test = f"{v} {op} {node[word]!r}"
                parts.append(test if numeric else f"(not {_TYPE_TESTS['number'].format(v=v)} or {test})")
        if "pattern" in node:
            search = self._name("P", re.compile(node["pattern"]).search)
            test = f"{search}({v}) is not None"
            parts.append(test if types == ["string"] else f"(type({v}) is not str or {test})")
        if "anyOf" in node:
            parts.append("(" + " or ".join(self.expr(n, v, stack) for n in node["anyOf"]) + ")")
        if objects:
            parts.append(f"{self._object(node, stack)}({v})")
        if any(k in node for k in ("prefixItems", "items", "minItems", "maxItems")):
            parts.append(f"{self._array(node, stack)}({v})")
        return "(" + " and ".join(parts) + ")" if parts else "True"

    def _object(self, node: dict, stack: tuple, typed: bool = False) -> str:
        """A function checking the object keywords of ``node`` (``typed``: and that it is a dict)."""
        name = self._name("O")
        props = node.get("properties", {})
        lines = [f"def {name}(v):", "    if type(v) is not dict:", f"        return {not typed}"]
        required = node.get("required", ())
        if required:
            lines += [f"    if not ({' and '.join(f'{k!r} in v' for k in required)}):", "        return False"]
        additional = node.get("additionalProperties", True)
        if additional is False:
            lines += [f"    if not v.keys() <= {self._name('K', frozenset(props))}:", "        return False"]
        elif additional is not True:
            raise ValueError(f"{SCHEMA_PATH}: additionalProperties must be true or false in achievement rules")
        tests: dict[str, list[str]] = {}  # test -> the keys it checks, in the schema's order
        for key, sub in props.items():
            test = self.expr(sub, "x", stack)
            if test != "True":
                tests.setdefault(test, []).append(key)
        if tests:  # an if-chain per item: faster than a table of functions
            lines.append("    for k, x in v.items():")
            for n, (test, keys) in enumerate(tests.items()):
                lines += [f"        {'elif' if n else 'if'} {' or '.join(f'k == {k!r}' for k in keys)}:",
                          f"            if not {test}:", "                return False"]
        for key, sub in node.get("dependentSchemas", {}).items():
            lines += [f"    if {key!r} in v and not {self.expr(sub, 'v', stack)}:", "        return False"]
        self.defs.append("\n".join(lines + ["    return True"]) + "\n")
        return name

    def _array(self, node: dict, stack: tuple) -> str:
        name = self._name("A")
        lines = [f"def {name}(v):", "    if type(v) is not list:", "        return True", "    n = len(v)"]
        if "minItems" in node:
            lines += [f"    if n < {int(node['minItems'])}:", "        return False"]
        if "maxItems" in node:
            lines += [f"    if n > {int(node['maxItems'])}:", "        return False"]
        prefix = node.get("prefixItems", [])
        for i, sub in enumerate(prefix):
            lines += [f"    if n > {i}:", f"        x = v[{i}]", f"        if not {self.expr(sub, 'x', stack)}:",
                      "            return False"]
        if "items" in node:
            lines += [f"    for x in v[{len(prefix)}:]:", f"        if not {self.expr(node['items'], 'x', stack)}:",
                      "            return False"]
        self.defs.append("\n".join(lines + ["    return True"]) + "\n")
        return name

    def predicate(self, node: Any) -> Callable[[Any], bool]:
        name = self._name("ok")
        test = self.expr(node, "v")
        self.defs.append(f"def {name}(v):\n    return {test}\n")
        source, self.defs = "\n".join(self.defs), []
        exec(compile(source, f"<{SCHEMA_PATH.name} rules>", "exec"), self.ns)
        alone = re.fullmatch(r"\(*(_O\d+)\(v\)\)*", test)  # a node that is one object function
        return self.ns[alone[1] if alone else name]


class _Rule:
    """One schema node: ``ok(value)`` (compiled) and ``explain(value, path)`` -> [(path, message)]."""

    def __init__(self, node: Any, compiler: _Compiler) -> None:
        node = {} if node is True else node
        self.node = node
        self.ok = compiler.predicate(node)

        def sub(n: Any) -> "_Rule":
            return _Rule(n, compiler)

        self.title = node.get("title")
        self.ref = sub(compiler.resolve(node["$ref"])) if "$ref" in node else None
        self.types = [node["type"]] if isinstance(node.get("type"), str) else node.get("type")
        self.props = {k: sub(v) for k, v in node.get("properties", {}).items()}
        self.additional = node.get("additionalProperties", True)
        self.required = tuple(node.get("required", ()))
        self.deps = {k: sub(v) for k, v in node.get("dependentSchemas", {}).items()}
        self.any = [sub(n) for n in node.get("anyOf", ())]
        self.items = sub(node["items"]) if "items" in node else None

    def describe(self) -> str:
        if self.title:
            return self.title
        if self.ref is not None and not self.types:
            return self.ref.describe()
        if "enum" in self.node:
            return "one of " + ", ".join(map(str, self.node["enum"]))
        if "const" in self.node:
            return repr(self.node["const"])
        if self.any:
            return " or ".join(r.describe() for r in self.any)
        if self.types:
            return " or ".join("null" if t == "null" else f"{'an' if t[0] in 'aeiou' else 'a'} {t}" for t in self.types)
        return "valid"

    def explain(self, v: Any, path: list) -> list[tuple[list, str]]:
        """Why ``v`` fails this rule (empty when it does not)."""
        if self.ok(v):
            return []
        if self.ref is not None and not self.ref.ok(v):
            return self.ref.explain(v, path)
        if type(v) is dict and (self.types is None or "object" in self.types):
            return self._explain_object(v, path)
        what = self.describe()
        if type(v) is list and self.types == ["array"] and not self.title and self.items is not None:
            return [e for i, x in enumerate(v) for e in self.items.explain(x, path + [i])]
        if self.types and not any(_IS[t](v) for t in self.types):
            return [(path, f"expected {what}, not {_KINDS.get(type(v), type(v).__name__)} {short_repr(v)}")]
        if not self.title and type(v) in (int, float) and type(v) is not bool:
            if "minimum" in self.node and v < self.node["minimum"]:
                return [(path, f"{short_repr(v)} is less than the minimum of {self.node['minimum']}")]
            if "maximum" in self.node and v > self.node["maximum"]:
                return [(path, f"{short_repr(v)} is more than the maximum of {self.node['maximum']}")]
        return [(path, f"{short_repr(v)} is not {what}")]

    def _explain_object(self, v: dict, path: list) -> list[tuple[list, str]]:
        found = [(path, f"has no {k!r} (required)") for k in self.required if k not in v]
        for k, x in v.items():
            rule = self.props.get(k)
            if rule is None:
                if self.additional is False:
                    found.append((path + [k], _unknown_key(k, self.props)))
            else:
                found += rule.explain(x, path + [k])
        for k, rule in self.deps.items():
            if k in v:
                why = rule.node.get("$comment") or f"with {k!r}"
                found += [(where, f"{message} ({why})") for where, message in rule.explain(v, path)]
        return found or [(path, f"{short_repr(v)} is not {self.describe()}")]


def _unknown_key(key: Any, allowed: Iterable[str]) -> str:
    close = closest(str(key), allowed, cutoff=0.5)
    return f"unknown key {key!r}" + (f" (did you mean {close!r}?)" if close else "")


@functools.cache
def _achievement_rules() -> dict[str, tuple[str, _Rule, _Rule]]:
    """shape -> (key that marks a full wire object, wire-object rule, compact-entry rule), from the
    schema's ``achievementV1``/``achievementV2`` definitions (``if: {required: [KEY]}``)."""
    schema = _schema()
    rules = {}
    for shape in ("V1", "V2"):
        node = schema["$defs"][f"achievement{shape}"]
        (key,) = node["if"]["required"]
        compiler = _Compiler(schema)
        wire, compact = (_Rule(node[b], compiler) for b in ("then", "else"))
        rules[shape] = (key, wire, compact)
    return rules


def prepare() -> None:
    """Compiles the checks a load runs, before the first document is parsed: made later, their
    objects would sit among the document's and keep its memory from going back when it is freed."""
    _validators()
    _achievement_rules()
    _title_ok()
    plain_rules()


def _achievement_errors(doc: dict, proofs: list | None = None) -> Iterator[tuple[list, str]]:
    """The schema's achievement rules (per dataset shape: a full wire object or a compact entry),
    checked without jsonschema. Datasets and titles that the envelope refuses are skipped. A
    dataset whose entries are all proven plain (:mod:`.plain`) adds (its lists, the proof) to
    ``proofs``, when given."""
    rules = _achievement_rules()
    for d, dataset in enumerate(doc.get("datasets") or ()):
        if not isinstance(dataset, dict):
            continue
        shape = dataset.get("shape", "V2")
        key, wire, compact = rules.get(shape) or rules["V2"]
        others = {k: s for s, (k, _, _) in rules.items() if s != shape}
        wire_ok, compact_ok = wire.ok, compact.ok
        titles = dataset.get("titles") if isinstance(dataset.get("titles"), list) else []
        lists = [title.get("achievements") if isinstance(title, dict) else None for title in titles]
        # Entries are compact (a wire object's key is not among a compact entry's keys) unless
        # shown otherwise: when every one is plain, or passes, there is nothing to explain.
        if key not in compact.props and all(type(entries) is list for entries in lists):
            proof = plain(lists)
            if proof is not None:
                if proofs is not None:
                    proofs.append((lists, proof))
                continue
            if all(map(compact_ok, chain.from_iterable(lists))):
                continue
        for t, entries in enumerate(lists):
            for a, entry in enumerate(entries if isinstance(entries, list) else ()):
                if type(entry) is dict and (wire_ok(entry) if key in entry else compact_ok(entry)):
                    continue
                where = ["datasets", d, "titles", t, "achievements", a]
                if type(entry) is not dict:
                    kind = _KINDS.get(type(entry), "a value")
                    yield where, f"an achievement is a mapping, not {kind} {short_repr(entry)}"
                else:
                    for path, message in (wire if key in entry else compact).explain(entry, where):
                        if len(path) == len(where) + 1 and path[-1] in others:  # a wire object of the other shape
                            message += f" (a {others[path[-1]]} wire object in a {shape} dataset: set `shape: {others[path[-1]]}`)"
                        yield path, message


@functools.cache
def _title_ok() -> Callable[[Any], bool]:
    schema = _schema()
    return _Compiler(schema).predicate(schema["$defs"]["title"])


def _envelope(doc: dict) -> dict:
    """``doc`` as jsonschema is to see it: a dataset whose titles all pass the schema's title rule
    (compiled, as the achievement rules are) holds no titles, so that jsonschema, which takes a
    hundred times as long over a title, finds the same problems everywhere else."""
    datasets = doc.get("datasets")
    if type(datasets) is not list:
        return doc
    ok = _title_ok()
    return {**doc, "datasets": [
        {**d, "titles": []} if type(d) is dict and type(d.get("titles")) is list and all(map(ok, d["titles"])) else d
        for d in datasets]}


def schema_errors(path: Path, data: bytes, doc: dict, keep_proofs: bool = False) -> list[CassetteError]:
    """Every schema problem of ``doc``, read from ``data`` (the file at ``path``), by line.
    ``keep_proofs``: the columns of its plain datasets kept for their build (:func:`.plain.proven`)."""
    found: list[tuple[list, str]] = []
    for err in _validators()[1].iter_errors(_envelope(doc)):
        where = list(err.absolute_path)
        message = err.message if len(err.message) <= 160 else err.message[:157] + "..."
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            allowed = err.schema.get("properties", {})
            for extra in (k for k in err.instance if k not in allowed):
                found.append((where + [extra], _unknown_key(extra, allowed)))
            continue
        found.append((where, message))
    proofs: list = []
    found += _achievement_errors(doc, proofs)
    if keep_proofs:
        keep([] if found else proofs)
    if not found:
        return []
    lines = lines_of(data, [where for where, _ in found])
    errors = [CassetteError(path, line, f"{'/'.join(map(str, where)) or 'top level'}: {message}")
              for line, (where, message) in zip(lines, found)]
    # By line; on one line an unknown key first (a typo is the likeliest cause of the rest).
    return sorted(errors, key=lambda e: (e.line, "unknown key" not in e.reason))
