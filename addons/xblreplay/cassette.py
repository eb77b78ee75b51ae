"""Cassette format v1 on disk: safe loading with file:line errors, lint, canonical atomic writes.

Reading uses the libyaml C safe loader when present, without the implicit timestamp type so that
times stay the strings they were written as. Schema errors are located by re-composing the
document and following the error's path to its node. Writing is canonical (sorted keys, no
line folding), leak-scanned, and atomic: a temp file in the same directory, fsync, rename, fsync
of the directory, all under an exclusive lock on the target. A file that does not load is never
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
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from . import DEFAULT_RULES_DIR, redact

VERSION = 1
SCHEMA_PATH = DEFAULT_RULES_DIR / "cassette.schema.json"
SUFFIXES = (".yaml", ".yml")
CACHE_MIN_BYTES = 256 * 1024
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    yaml_implicit_resolvers = {
        first: [r for r in resolvers if r[0] != _TIMESTAMP]
        for first, resolvers in getattr(yaml, "CSafeLoader", yaml.SafeLoader).yaml_implicit_resolvers.items()
    }




class CassetteError(Exception):
    """A cassette problem located in a file (line 0: the file or directory as a whole)."""

    def __init__(self, file: str | os.PathLike, line: int, reason: str):
        self.file = str(file)
        self.line = line
        self.reason = reason
        super().__init__(f"{self.file}:{line}: {reason}")


@functools.cache
def _validators():
    """(full validator, validator that leaves achievement entries to :func:`_achievement_errors`)."""
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    envelope = copy.deepcopy(schema)
    # Achievements are checked by _achievement_errors: a $ref per item costs jsonschema a
    # reference lookup each, most of a large cassette's load time.
    envelope["$defs"]["title"]["properties"]["achievements"] = {"type": "array"}
    cls = jsonschema.Draft202012Validator
    return cls(schema), cls(envelope)


def _achievement_errors(doc: dict) -> Iterator[tuple[list, str]]:
    """The schema's ``achievement`` rule (an object with ``id``), checked without jsonschema."""
    for d, dataset in enumerate(doc.get("datasets") or ()):
        titles = dataset.get("titles") if isinstance(dataset, dict) else None
        for t, title in enumerate(titles if isinstance(titles, list) else ()):
            entries = title.get("achievements") if isinstance(title, dict) else None
            for a, entry in enumerate(entries if isinstance(entries, list) else ()):
                if not isinstance(entry, dict):
                    yield ["datasets", d, "titles", t, "achievements", a], "achievement is not a mapping"
                elif "id" not in entry:
                    yield ["datasets", d, "titles", t, "achievements", a], "achievement has no 'id'"


def _line_of(data: bytes, path: list) -> int:
    """1-based line of the node at ``path`` (mapping steps point at the key)."""
    node = yaml.compose(data, Loader=_Loader)
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
    return line + 1


def _schema_errors(path: Path, data: bytes, doc: dict) -> list[CassetteError]:
    found: list[tuple[list, str]] = []
    for err in _validators()[1].iter_errors(doc):
        where = list(err.absolute_path)
        message = err.message if len(err.message) <= 160 else err.message[:157] + "..."
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            allowed = err.schema.get("properties", {})
            for extra in (k for k in err.instance if k not in allowed):
                found.append((where + [extra], f"unknown key {extra!r}"))
            continue
        found.append((where, message))
    found += _achievement_errors(doc)
    errors = []
    for where, message in found:
        at = "/".join(map(str, where)) or "top level"
        errors.append(CassetteError(path, _line_of(data, where), f"{at}: {message}"))
    return sorted(errors, key=lambda e: e.line)


# A cassette in the JSON subset of YAML (a `{` after any leading comment lines) is read with the
# JSON parser: the same document, about 30 times faster than building it through libyaml.
_JSON_START = re.compile(rb"\A(?:[ \t\r\n]*#[^\n]*\n)*[ \t\r\n]*\{")


def _parse(path: Path, data: bytes) -> Any:
    start = _JSON_START.match(data)
    if start:
        try:
            return json.loads(data[start.end() - 1:])
        except ValueError:
            pass  # not plain JSON after all: YAML reads it and reports any error with its line
    try:
        return yaml.load(data, Loader=_Loader)
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


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
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
    key = hashlib.sha256(SCHEMA_PATH.read_bytes() + b"\0" + data).hexdigest()
    return Path(root, key + ".json")


def _store(cache: Path, doc: dict) -> None:
    """Keeps ``doc`` as JSON when JSON holds it exactly (no non-string keys, dates, NaN)."""
    try:
        text = json.dumps(doc, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return
    if json.loads(text) != doc:
        return
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, cache)
    except OSError:  # the cache is an optimisation only
        pass


def load_file(path: str | os.PathLike) -> dict:
    """A validated cassette; the first problem raises :class:`CassetteError`.

    Large YAML cassettes are parsed once: the validated document is kept as JSON under a key made
    of the file's bytes and the schema, so an unchanged file loads at JSON speed.
    """
    path = Path(path)
    data = _read(path)
    cache = _cache_file(data)
    if cache is not None:
        try:
            return json.loads(cache.read_bytes())
        except (OSError, ValueError):
            pass
    doc, errors = _check(path, data)
    if errors:
        raise errors[0]
    if cache is not None:
        _store(cache, doc)
    return doc


def _cassette_files(root: Path) -> list[Path]:
    if not root.exists():
        raise CassetteError(root, 0, "cassette directory does not exist")
    if not root.is_dir():
        raise CassetteError(root, 0, "not a directory")

    def fail(exc: OSError):
        raise CassetteError(exc.filename or root, 0, f"cannot read directory: {exc.strerror or exc}")

    found = []
    for current, dirs, files in os.walk(root, onerror=fail):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(current, f) for f in files if f.endswith(SUFFIXES) and not f.startswith((".", "~", "#"))]
    return sorted(found)


def load_dir(path: str | os.PathLike) -> list[tuple[Path, dict]]:
    """Every ``*.yaml``/``*.yml`` below ``path`` (hidden dirs and temp files skipped), sorted."""
    return [(f, load_file(f)) for f in _cassette_files(Path(path))]


def lint(path: str | os.PathLike) -> list[CassetteError]:
    """All problems of one cassette file or of every cassette below a directory."""
    path = Path(path)
    try:
        files = [path] if path.is_file() else _cassette_files(path)
    except CassetteError as exc:
        return [exc]
    errors: list[CassetteError] = []
    for f in files:
        try:
            errors += _check(f, _read(f))[1]
        except CassetteError as exc:
            errors.append(exc)
    return errors


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
    """Exclusive inter-process lock for writing ``path`` (``.<name>.lock`` beside it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.parent / f".{path.name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _replace(path: Path, data: bytes) -> None:
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a killed writer; we hold the lock
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o644)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
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
    data = _read(path)
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
