"""Reading cassettes: a file parsed (JSON form at JSON speed, any other YAML with the safe
loader) within the bounds of :mod:`..rulesfile`, its format version and schema checked, large
YAML files kept parsed in a cache; a directory's cassettes loaded, or every problem listed."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

from .. import rulesfile
from .errors import CassetteError
from .locate import Loader, line_of
from .schema import SCHEMA_PATH, schema_errors
from .walk import walk

VERSION = 1
CACHE_MIN_BYTES = 256 * 1024
_CHECKER = b"2\0"  # part of the parse cache key: bump when the checks change


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
        return rulesfile.load_yaml(data, Loader)
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


def check(path: Path, data: bytes, keep_proofs: bool = False) -> tuple[Any, list[CassetteError]]:
    """The document and every problem found in it (the first parse error stops the check);
    ``keep_proofs``: see :func:`.schema.schema_errors`."""
    doc = _parse(path, data)
    if not isinstance(doc, dict):
        kind = "empty file" if doc is None else f"top level is a {type(doc).__name__}"
        return doc, [CassetteError(path, 1, f"{kind}: a cassette is a mapping starting with `xblreplay: {VERSION}`")]
    version = doc.get("xblreplay")
    if "xblreplay" not in doc:
        return doc, [CassetteError(path, 1, f"missing format version: add `xblreplay: {VERSION}`")]
    if type(version) is not int or version != VERSION:
        reason = f"unknown cassette format version {version!r} (this build reads version {VERSION})"
        return doc, [CassetteError(path, line_of(data, ["xblreplay"]), reason)]
    return doc, schema_errors(path, data, doc, keep_proofs)


def read(path: Path, inside: str | None = None) -> bytes:
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
    data = read(path, inside)
    cache = _cache_file(data)
    if cache is not None:
        try:
            return rulesfile.load_json(rulesfile.read_regular(cache))
        except (OSError, ValueError):
            pass
    doc, errors = check(path, data, keep_proofs=True)
    if errors:
        first = errors[0]
        if len(errors) > 1:
            more = f" (+{len(errors) - 1} more problem(s): `xblreplay lint` lists all)"
            raise CassetteError(first.file, first.line, first.reason + more)
        raise first
    if cache is not None:
        _store(cache, doc)
    return doc


def _cassette_files(root: Path) -> list[Path]:
    files, problems = walk(root)
    if problems:
        raise problems[0]
    return files


def load_dir(path: str | os.PathLike) -> list[tuple[Path, dict]]:
    """Every ``*.yaml``/``*.yml`` below ``path`` (see :func:`.walk.walk`), sorted."""
    root = Path(path)
    files = _cassette_files(root)
    inside = os.path.realpath(root)
    return [(f, load_file(f, inside)) for f in files]


def lint(path: str | os.PathLike) -> list[CassetteError]:
    """All problems of one cassette file or of every cassette below a directory."""
    path = Path(path)
    if path.is_dir() or not path.exists():
        try:
            files, errors = walk(path)
        except CassetteError as exc:
            return [exc]
        inside: str | None = os.path.realpath(path)
    else:  # a file named on its own: read if it is a regular file (a link to one is followed)
        files, errors, inside = [path], [], None
    for f in files:
        try:
            errors += check(f, read(f, inside))[1]
        except CassetteError as exc:
            errors.append(exc)
    return sorted(errors, key=lambda e: e.file)  # stable: each file's own problems stay in line order
