"""Cassette format v1 on disk: safe loading with file:line errors, lint, canonical atomic writes.

Reading uses the libyaml C safe loader when present, without the implicit timestamp type so that
times stay the strings they were written as. Only regular files inside the cassette directory
are read, and every document is bounded in nesting, alias expansion and integer size
(:mod:`.rulesfile`): a hostile cassette is a ``FILE:LINE: reason`` like any other bad one.
Schema errors are located by re-composing the document and following the error's path to its
node. Writing is canonical (sorted keys, no line folding), leak-scanned, and atomic: a temp file
in the same directory, fsync, rename, fsync of the directory, all under an exclusive lock on the
target's directory (nothing is left beside the cassette). A file that does not load is never
overwritten.
"""

from __future__ import annotations

import copy
import fcntl
import functools
import hashlib
import json
import re
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from .. import DEFAULT_RULES_DIR, redact, rulesfile
from ..model import closest

VERSION = 1
SCHEMA_PATH = DEFAULT_RULES_DIR / "cassette.schema.json"
SUFFIXES = (".yaml", ".yml")
CACHE_MIN_BYTES = 256 * 1024
_CHECKER = b"2\0"  # part of the parse cache key: bump when the checks change
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class _Loader(rulesfile.SafeLoader):
    yaml_implicit_resolvers = {
        first: [r for r in resolvers if r[0] != _TIMESTAMP]
        for first, resolvers in rulesfile.SafeLoader.yaml_implicit_resolvers.items()
    }


class CassetteError(Exception):
    """A cassette problem located in a file (line 0: the file or directory as a whole)."""

    def __init__(self, file: str | os.PathLike, line: int, reason: str):
        self.file = str(file)
        self.line = line
        self.reason = reason
        super().__init__(f"{self.file}:{line}: {reason}")


@functools.cache
def _schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def _strict_validator_class():
    """Draft 2020-12 with integers that are ints (the engine refuses 1.0 as an id or a count)."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine("integer", lambda _checker, v: type(v) is int)
    return jsonschema.validators.extend(base, type_checker=checker)


@functools.cache
def _validators():
    """(full validator, validator that leaves achievement entries to :func:`_achievement_errors`)."""
    schema = _schema()
    envelope = copy.deepcopy(schema)
    # Achievements are checked by _achievement_errors, compiled from the same definitions: a
    # $ref per item costs jsonschema a reference lookup each, most of a large cassette's load.
    envelope["$defs"]["datasetAchievements"] = True
    cls = _strict_validator_class()
    return cls(schema), cls(envelope)


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


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


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
            return [(path, f"expected {what}, not {_KINDS.get(type(v), type(v).__name__)} {_short(v)}")]
        if not self.title and type(v) in (int, float) and type(v) is not bool:
            if "minimum" in self.node and v < self.node["minimum"]:
                return [(path, f"{_short(v)} is less than the minimum of {self.node['minimum']}")]
            if "maximum" in self.node and v > self.node["maximum"]:
                return [(path, f"{_short(v)} is more than the maximum of {self.node['maximum']}")]
        return [(path, f"{_short(v)} is not {what}")]

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
        return found or [(path, f"{_short(v)} is not {self.describe()}")]


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


def _achievement_errors(doc: dict) -> Iterator[tuple[list, str]]:
    """The schema's achievement rules (per dataset shape: a full wire object or a compact entry),
    checked without jsonschema. Datasets and titles that the envelope refuses are skipped."""
    rules = _achievement_rules()
    for d, dataset in enumerate(doc.get("datasets") or ()):
        if not isinstance(dataset, dict):
            continue
        shape = dataset.get("shape", "V2")
        key, wire, compact = rules.get(shape) or rules["V2"]
        others = {k: s for s, (k, _, _) in rules.items() if s != shape}
        wire_ok, compact_ok = wire.ok, compact.ok
        titles = dataset.get("titles")
        for t, title in enumerate(titles if isinstance(titles, list) else ()):
            entries = title.get("achievements") if isinstance(title, dict) else None
            for a, entry in enumerate(entries if isinstance(entries, list) else ()):
                if type(entry) is dict and (wire_ok(entry) if key in entry else compact_ok(entry)):
                    continue
                where = ["datasets", d, "titles", t, "achievements", a]
                if type(entry) is not dict:
                    yield where, f"an achievement is a mapping, not {_KINDS.get(type(entry), 'a value')} {_short(entry)}"
                else:
                    for path, message in (wire if key in entry else compact).explain(entry, where):
                        if len(path) == len(where) + 1 and path[-1] in others:  # a wire object of the other shape
                            message += f" (a {others[path[-1]]} wire object in a {shape} dataset: set `shape: {others[path[-1]]}`)"
                        yield path, message


def _lines_of(data: bytes, paths: list[list]) -> list[int]:
    """1-based line of the node at each path (mapping steps point at the key); one compose."""
    root = yaml.compose(data, Loader=_Loader)
    lines = []
    for path in paths:
        node = root
        line = node.start_mark.line if node is not None else 0
        for step in path:
            if isinstance(node, yaml.MappingNode):
                for key, value in node.value:
                    if key.value == str(step):
                        line, node = key.start_mark.line, value
                        break
                else:
                    break
            elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
                node = node.value[step]
                line = node.start_mark.line
            else:
                break
        lines.append(line + 1)
    return lines


def _line_of(data: bytes, path: list) -> int:
    return _lines_of(data, [path])[0]


def line_in_file(path: str | os.PathLike, where: list) -> int:
    """1-based line of the node at ``where`` in the cassette at ``path`` (0 when unreadable)."""
    try:
        data = rulesfile.read_regular(path)
        return _line_of(data, where)
    except (OSError, ValueError, yaml.YAMLError):
        return 0


def _schema_errors(path: Path, data: bytes, doc: dict) -> list[CassetteError]:
    found: list[tuple[list, str]] = []
    for err in _validators()[1].iter_errors(doc):
        where = list(err.absolute_path)
        message = err.message if len(err.message) <= 160 else err.message[:157] + "..."
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            allowed = err.schema.get("properties", {})
            for extra in (k for k in err.instance if k not in allowed):
                found.append((where + [extra], _unknown_key(extra, allowed)))
            continue
        found.append((where, message))
    found += _achievement_errors(doc)
    if not found:
        return []
    lines = _lines_of(data, [where for where, _ in found])
    errors = [CassetteError(path, line, f"{'/'.join(map(str, where)) or 'top level'}: {message}")
              for line, (where, message) in zip(lines, found)]
    # By line; on one line an unknown key first (a typo is the likeliest cause of the rest).
    return sorted(errors, key=lambda e: (e.line, "unknown key" not in e.reason))


# A cassette in the JSON subset of YAML (a `{` after any leading comment lines) is read with the
# JSON parser: the same document, about 30 times faster than building it through libyaml.
_JSON_START = re.compile(rb"\A(?:[ \t\r\n]*#[^\n]*\n)*[ \t\r\n]*\{")


def _parse(path: Path, data: bytes) -> Any:
    start = _JSON_START.match(data)
    try:
        if start:
            try:
                return rulesfile.load_json(data, start.end() - 1)
            except rulesfile.Refused:
                raise
            except ValueError:
                pass  # not plain JSON after all: YAML reads it and reports any error with its line
        return rulesfile.load_yaml(data, _Loader)
    except rulesfile.Refused as exc:  # a bound on hostile input: nesting, aliases, integers
        raise CassetteError(path, exc.line, exc.reason) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        problem = exc.problem or ""
        if "tag:yaml.org,2002:python/" in problem:
            tag = problem.split("'")[1].replace("tag:yaml.org,2002:", "!!")
            reason = f"Python object tag {tag} is not allowed (cassettes are plain data, read with a safe loader)"
        elif "could not determine a constructor" in problem:
            reason = f"unsupported YAML tag: {problem.split(chr(39))[1]}"
        else:
            reason = f"YAML syntax error: {problem}" + (f" ({exc.context})" if exc.context else "")
        raise CassetteError(path, line, reason) from None
    except yaml.YAMLError as exc:
        raise CassetteError(path, 0, f"YAML error: {exc}") from None
    except (ValueError, OverflowError, RecursionError) as exc:  # text no bound above foresaw
        raise CassetteError(path, 0, f"cannot read the document: {exc}") from None


def _check(path: Path, data: bytes) -> tuple[Any, list[CassetteError]]:
    """The document and every problem found in it (the first parse error stops the check)."""
    doc = _parse(path, data)
    if not isinstance(doc, dict):
        kind = "empty file" if doc is None else f"top level is a {type(doc).__name__}"
        return doc, [CassetteError(path, 1, f"{kind}: a cassette is a mapping starting with `xblreplay: {VERSION}`")]
    version = doc.get("xblreplay")
    if "xblreplay" not in doc:
        return doc, [CassetteError(path, 1, f"missing format version: add `xblreplay: {VERSION}`")]
    if type(version) is not int or version != VERSION:
        reason = f"unknown cassette format version {version!r} (this build reads version {VERSION})"
        return doc, [CassetteError(path, _line_of(data, ["xblreplay"]), reason)]
    return doc, _schema_errors(path, data, doc)


def _read(path: Path, inside: str | None = None) -> bytes:
    """The bytes of a cassette: a regular file (inside the resolved directory ``inside``)."""
    try:
        return rulesfile.read_regular(path, inside)
    except rulesfile.Refused as exc:
        raise CassetteError(path, 0, exc.reason) from None
    except OSError as exc:
        raise CassetteError(path, 0, f"cannot read file: {exc.strerror or exc}") from None


def _cache_file(data: bytes) -> Path | None:
    """Where the parsed form of a large YAML cassette with exactly these bytes is kept (None:
    small, or already in the JSON form, which parses as fast as the cache would)."""
    if len(data) < CACHE_MIN_BYTES or _JSON_START.match(data):
        return None
    root = os.environ.get("XBLREPLAY_CACHE_DIR") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "xblreplay", "parsed"
    )
    key = hashlib.sha256(_CHECKER + SCHEMA_PATH.read_bytes() + b"\0" + data).hexdigest()
    return Path(root, key + ".json")


def _store(cache: Path, doc: dict) -> None:
    """Keeps ``doc`` as JSON when JSON holds it exactly (no non-string keys, dates, NaN)."""
    try:
        text = json.dumps(doc, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return
    if json.loads(text) != doc:
        return
    tmp = None
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, cache)
    except OSError:  # the cache is an optimisation only
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def load_file(path: str | os.PathLike, inside: str | None = None) -> dict:
    """A validated cassette; the first problem raises :class:`CassetteError`. ``inside``: the
    resolved cassette directory the file must be in (a symbolic link must not lead out of it).

    Large YAML cassettes are parsed once: the validated document is kept as JSON under a key made
    of the file's bytes and the schema, so an unchanged file loads at JSON speed. The kept form is
    read with the same bounds as a cassette; one that does not read is parsed again.
    """
    path = Path(path)
    data = _read(path, inside)
    cache = _cache_file(data)
    if cache is not None:
        try:
            return rulesfile.load_json(rulesfile.read_regular(cache))
        except (OSError, ValueError):
            pass
    doc, errors = _check(path, data)
    if errors:
        first = errors[0]
        if len(errors) > 1:
            more = f" (+{len(errors) - 1} more problem(s): `xblreplay lint` lists all)"
            raise CassetteError(first.file, first.line, first.reason + more)
        raise first
    if cache is not None:
        _store(cache, doc)
    return doc


def _is_cassette(name: str) -> bool:
    return name.endswith(SUFFIXES) and not name.startswith((".", "~", "#"))


def _walk(root: Path) -> tuple[list[Path], list[CassetteError]]:
    """The cassette files below ``root``, sorted, and the entries refused on the way.

    Hidden directories and hidden or temporary files are skipped, and names without a cassette
    suffix are not looked at. A cassette is a regular file: a FIFO, device or socket is refused
    by name, unopened. A symbolic link is followed only to a file or directory inside ``root``
    (one leading outside is refused); one to a directory that contains it is refused as a loop.
    Every file and directory is read once (directories known by device and inode, so a bind
    mount of a directory inside itself is not walked again): a file with a name of its own is read
    under it, otherwise under the first link to it; directories reached only through links are
    walked last.
    """
    if not root.exists():
        raise CassetteError(root, 0, "cassette directory does not exist")
    if not root.is_dir():
        raise CassetteError(root, 0, "not a directory")
    top = os.path.realpath(root)
    found: dict[str, tuple[bool, Path]] = {}  # real path -> (through a link, name)
    problems: list[CassetteError] = []
    st = os.stat(top)
    visited = {(st.st_dev, st.st_ino)}
    dirs: list[Path] = [root]
    linked: list[tuple[Path, tuple[int, int]]] = []  # (link, its directory): walked when no plain one is left
    while dirs or linked:
        if not dirs:
            link, key = linked.pop(0)
            if key not in visited:
                visited.add(key)
                dirs.append(link)
            continue
        current = dirs.pop()
        try:
            with os.scandir(current) as it:
                entries = sorted(it, key=lambda e: e.name)
            here = os.path.realpath(current)
        except OSError as exc:
            problems.append(CassetteError(exc.filename or current, 0, f"cannot read directory: {exc.strerror or exc}"))
            continue
        for entry in entries:
            name, path = entry.name, Path(current, entry.name)
            try:
                if entry.is_symlink():
                    if name.startswith("."):
                        continue
                    real = os.path.realpath(path)
                    if os.path.isdir(real):
                        if not rulesfile.within(real, top):
                            problems.append(CassetteError(path, 0, rulesfile.outside_reason(real)))
                        elif rulesfile.within(here, real):
                            problems.append(CassetteError(
                                path, 0, f"symbolic link loop: leads back to {real}, a directory it is in"))
                        else:
                            st = os.stat(real)
                            linked.append((path, (st.st_dev, st.st_ino)))
                        continue
                    if not _is_cassette(name):
                        continue
                    if not rulesfile.within(real, top):
                        problems.append(CassetteError(path, 0, rulesfile.outside_reason(real)))
                        continue
                    mode, through_link = os.stat(real).st_mode, True
                elif entry.is_dir(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    if not name.startswith(".") and (st.st_dev, st.st_ino) not in visited:
                        visited.add((st.st_dev, st.st_ino))
                        dirs.append(path)
                    continue
                elif _is_cassette(name):
                    mode, through_link, real = entry.stat(follow_symlinks=False).st_mode, False, os.path.join(here, name)
                else:
                    continue
            except OSError as exc:
                problems.append(CassetteError(path, 0, f"cannot read file: {exc.strerror or exc}"))
                continue
            why = rulesfile.not_regular(mode)
            if why:
                problems.append(CassetteError(path, 0, why))
            elif real not in found or (through_link, str(path)) < (found[real][0], str(found[real][1])):
                found[real] = (through_link, path)
    return sorted(p for _, p in found.values()), sorted(problems, key=lambda e: e.file)


def _cassette_files(root: Path) -> list[Path]:
    files, problems = _walk(root)
    if problems:
        raise problems[0]
    return files


def load_dir(path: str | os.PathLike) -> list[tuple[Path, dict]]:
    """Every ``*.yaml``/``*.yml`` below ``path`` (see :func:`_walk`), sorted."""
    root = Path(path)
    files = _cassette_files(root)
    inside = os.path.realpath(root)
    return [(f, load_file(f, inside)) for f in files]


def lint(path: str | os.PathLike) -> list[CassetteError]:
    """All problems of one cassette file or of every cassette below a directory."""
    path = Path(path)
    if path.is_dir() or not path.exists():
        try:
            files, errors = _walk(path)
        except CassetteError as exc:
            return [exc]
        inside: str | None = os.path.realpath(path)
    else:  # a file named on its own: read if it is a regular file (a link to one is followed)
        files, errors, inside = [path], [], None
    for f in files:
        try:
            errors += _check(f, _read(f, inside))[1]
        except CassetteError as exc:
            errors.append(exc)
    return sorted(errors, key=lambda e: e.file)  # stable: each file's own problems stay in line order


# Characters YAML does not allow raw in a file or reads as line breaks (and lone surrogates):
# written as JSON escapes.
_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")
_HEADER = "# xblreplay cassette, format v1, in YAML's JSON subset: one interaction per line.\n"
_FIRST_KEYS = ("xblreplay", "recorded_at", "bindings", "datasets")
_ROWS_START = ',\n "interactions": [\n'


def _json(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(", ", ": "), allow_nan=False)
    return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


# A JSON text that can stand in a cassette line as it is: one line, no character YAML reads
# differently, no escaped surrogate pair (YAML decodes \\u escapes one by one).
_RAW_UNSAFE = re.compile(_YAML_UNSAFE.pattern[:-1] + "\n\r]")
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89abAB]")


def raw_json(text: str | None) -> str | None:
    """``text`` (a JSON document) if it can be written verbatim in a cassette line, else None."""
    if text is None:
        return None
    text = text.strip()
    if not text:
        return None
    if text.isascii():  # the common case, decided by substring search: ~20x faster than the regex
        unsafe = "\n" in text or "\r" in text or "\x7f" in text
    else:
        unsafe = _RAW_UNSAFE.search(text) is not None
    if unsafe or ("\\u" in text and _ESCAPED_SURROGATE.search(text)):
        return None
    return text


def interaction_line(interaction: dict, raw_body: str | None = None) -> str:
    """One interaction as written in a cassette (its own line). With ``raw_body`` (from
    :func:`raw_json`, the JSON text the response body was parsed from) the body is written as
    the service sent it: no second serialization, and the service's own key order."""
    if raw_body is None:
        return "  " + _json(interaction)
    rest = _json({k: v for k, v in interaction.items() if k != "response"})
    response = _json({k: v for k, v in interaction["response"].items() if k != "body"})
    # Sorted keys: "response" comes after "recorded_at" and "request", "body" first in it.
    response = '{"body": ' + raw_body + (", " + response[1:] if response != "{}" else "}")
    return "  " + rest[:-1] + ', "response": ' + response + "}"


def _line_memo(data: bytes, doc: dict) -> dict[int, tuple[Any, str]]:
    """The line of each interaction of a file in the written form, as it stands in the file,
    so that a rewrite keeps every line it does not replace byte for byte."""
    interactions = doc.get("interactions") or []
    text = data.decode("utf-8")
    start = text.find(_ROWS_START)
    end = text.rfind("\n ]\n}")
    if not interactions or start < 0 or end < start:
        return {}
    rows = text[start + len(_ROWS_START):end].split(",\n")
    if len(rows) != len(interactions):
        return {}
    return {id(i): (i, row) for i, row in zip(interactions, rows)}


def remember_line(path: str | os.PathLike, interaction: dict, line: str) -> None:
    """Offer the next write of ``path`` a line already made, and leak-scanned, for ``interaction``."""
    _lines.setdefault(Path(path), {})[id(interaction)] = (interaction, line)


def dump(doc: Any, memo: dict[int, tuple[Any, str]] | None = None, unscanned: list[str] | None = None) -> bytes:
    """The canonical form of a written cassette: YAML's JSON subset, keys sorted, one top-level
    key and one interaction per line. It is still YAML (any YAML reader loads it) and diffs and
    merges line by line; writing it runs at C speed (a recorded page costs ~0.2 ms against ~11 ms
    for block YAML), so recording keeps up with the proxy, and loading takes the JSON path.

    ``memo`` (id -> (interaction, line)) reuses the lines of interactions already written or
    offered by :func:`remember_line` (interactions are never changed in place); on return it
    holds exactly the lines of this document. ``unscanned`` receives every line that did not
    come from the memo, i.e. what a leak scan still has to see."""
    keys = [k for k in _FIRST_KEYS if k in doc] + sorted(k for k in doc if k not in _FIRST_KEYS and k != "interactions")
    lines = [f" {_json(k)}: {_json(doc[k])}" for k in keys]
    if unscanned is not None:
        unscanned += lines
    if "interactions" in doc:
        old, fresh = memo or {}, {}
        for i in doc["interactions"]:
            hit = old.get(id(i))
            if hit is None or hit[0] is not i:
                hit = (i, interaction_line(i))
                if unscanned is not None:
                    unscanned.append(hit[1])
            fresh[id(i)] = hit
        if memo is not None:
            memo.clear()
            memo.update(fresh)
        rows = ",\n".join(line for _, line in fresh.values())
        lines.append(_ROWS_START[2:] + rows + "\n ]" if rows else ' "interactions": []')
    return (_HEADER + "{\n" + ",\n".join(lines) + "\n}\n").encode("utf-8")


@contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """Exclusive inter-process lock for writing ``path``: a ``flock`` on the directory that holds
    it (a file cannot carry the lock, the rename replaces it), so no lock file is left beside it.
    Writers of other files in the same directory wait too; a write takes milliseconds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# Temp files are mkstemp's `.<name>.XXXXXXXX.tmp` beside the cassette (hidden: never loaded).
_TEMP = re.compile(r"\..+\.ya?ml\.[a-z0-9_]{8}\.tmp")


def _replace(path: Path, data: bytes) -> None:
    """Atomically puts ``data`` at ``path``; call under :func:`file_lock`. The temp file lives only
    while it is written; one left by a writer killed in the middle is removed here, for every
    cassette of the directory (holding the directory's lock, no other writer is at work in it)."""
    for stale in path.parent.glob(".*.tmp"):
        if _TEMP.fullmatch(stale.name):
            stale.unlink(missing_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o644)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def update_file(
    path: str | os.PathLike, merge: Callable[[dict | None], dict], secrets: Mapping[str, str] | None = None
) -> None:
    """Under the lock: load the current cassette (None if absent), ``merge`` it, leak-scan, write.

    A current file that does not load raises :class:`CassetteError` and is left untouched; a leak
    raises :class:`redact.LeakError` and nothing is written. Unchanged content is not rewritten.
    """
    path = Path(path)
    with file_lock(path):
        old_bytes, old, from_disk = _current(path)
        memo = _lines.setdefault(path, {})
        unscanned: list[str] = []
        if from_disk:  # written by another process or by hand: keep its lines, scan it once
            memo.clear()
            memo.update(_line_memo(old_bytes, old))
            unscanned.append(old_bytes.decode("utf-8", "replace"))
        doc = merge(old)
        data = dump(doc, memo, unscanned)
        # Lines already written or offered by the recorder were scanned then; the rest is now.
        findings = redact.leak_scan("\n".join(unscanned).encode("utf-8"), secrets or {})
        if findings:
            raise redact.LeakError(str(path), findings)
        if data != old_bytes:
            _replace(path, data)
        st = path.stat()
        _last_written[path] = ((st.st_ino, st.st_mtime_ns, st.st_size), data, doc)


def forget(path: str | os.PathLike) -> None:
    """Drop what this process keeps of its last write of ``path`` (its bytes, document and lines):
    the next write reads the file again. For a writer that must not hold large files in memory."""
    _last_written.pop(Path(path), None)
    _lines.pop(Path(path), None)


# path -> the JSON lines of the interactions of this process's last write (see dump).
_lines: dict[Path, dict[int, tuple[Any, str]]] = {}
# path -> ((inode, mtime, size), bytes, doc) of this process's last write: an unchanged file is
# not parsed again (every write is a new inode, so another writer's change is always seen).
_last_written: dict[Path, tuple[tuple[int, int, int], bytes, dict]] = {}


def _current(path: Path) -> tuple[bytes | None, dict | None, bool]:
    """The bytes and document of the cassette at ``path`` (None, None if absent), and whether
    they were read from disk rather than known from this process's last write; call under the lock."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None, None, False
    cached = _last_written.get(path)
    if cached and cached[0] == (st.st_ino, st.st_mtime_ns, st.st_size):
        return cached[1], cached[2], False
    data = _read(path, os.path.realpath(path.parent))
    try:
        doc, errors = _check(path, data)
    except CassetteError as exc:
        errors = [exc]
    if errors:
        raise CassetteError(path, errors[0].line, f"{errors[0].reason} (file left untouched)")
    return data, doc, True


def write_atomic(path: str | os.PathLike, doc: dict, secrets: Mapping[str, str] | None = None) -> None:
    """Writes ``doc`` (interactions redacted) in place of ``path``; see :func:`update_file`."""
    doc = dict(doc)
    if "interactions" in doc:
        doc["interactions"] = [redact.redact_interaction(i, secrets) for i in doc["interactions"]]
    update_file(path, lambda _old: doc, secrets)
