"""Reading YAML files from outside: rules, fault profiles and cassettes (YAML and its JSON subset).

Such a file may come from anyone who can open a pull request, so reading it is bounded
(README, "Limits on hostile input"); what is refused is a :class:`Refused` with a line (0: the
file as a whole) and a reason, never a hang, a traceback or gigabytes of memory:

* :func:`read_regular` reads regular files only: a FIFO, device, socket or directory is refused
  without being read (checked before opening, opened non-blocking, checked again on the open
  descriptor); with ``inside``, a symbolic link must lead to a file inside that directory; a file
  larger than ``bounds.MAX_FILE_BYTES`` is refused before it is read;
* :func:`load_yaml` builds a document no deeper than ``bounds.MAX_JSON_DEPTH`` levels, whose
  aliases repeat at most ``bounds.MAX_YAML_ALIAS_EXPANSION`` nodes and characters (checked on the
  composed nodes, before anything is built from them, so merge keys cannot multiply either), with
  no collection containing itself, no integer of more than ``bounds.MAX_INT_DIGITS`` digits and
  no NaN or infinity (the values are JSON's);
* :func:`load_json` does the same for JSON text, at the speed of ``json.loads``.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import sys
import threading
from typing import Any

import yaml

from .bounds import MAX_FILE_BYTES, MAX_INT_DIGITS, MAX_JSON_DEPTH, MAX_YAML_ALIAS_EXPANSION, int_text_ok, too_deep

# libyaml refuses nesting deeper than 1,000 levels from 0.2.5 on; an older one would recurse in C
# without a bound, so it is not used (PyYAML's own parser is iterative, its composer recursion
# ends in a RecursionError).
_C_LOADER = getattr(yaml, "CSafeLoader", None)
if _C_LOADER is not None and tuple(yaml._yaml.get_version()) < (0, 2, 5):  # type: ignore[attr-defined]
    _C_LOADER = None

TOO_DEEP = f"nested more than {MAX_JSON_DEPTH} levels deep"


class Refused(ValueError):
    """A file or document that is not read: ``line`` (1-based; 0 is the file as a whole) and why."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


class SafeLoader(_C_LOADER or yaml.SafeLoader):  # type: ignore[misc]
    """The safe loader (libyaml's when present) with integers held to ``MAX_INT_DIGITS`` digits
    (a longer one is refused with its line before Python is asked to convert it) and numbers that
    are finite (``.nan``/``.inf`` are refused: a latency of infinity would wait for ever)."""

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        if len(node.value) > MAX_INT_DIGITS:  # only a long text needs a look before int() reads it
            text = node.value.replace("_", "").lstrip("+-")
            # Decimal (and YAML 1.1 octal) texts by their digits; 0x/0b/sexagesimal ones by value.
            if text.isdigit() and not int_text_ok(text):
                raise Refused(node.start_mark.line + 1, _int_reason(len(text.lstrip("0"))))
            if len(text) > 4 * MAX_INT_DIGITS:
                raise Refused(node.start_mark.line + 1, _int_reason(len(text), "characters"))
        value = super().construct_yaml_int(node)
        if -_INT_BOUND < value < _INT_BOUND:
            return value
        raise Refused(node.start_mark.line + 1, _int_reason(len(str(abs(value)))))

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        value = super().construct_yaml_float(node)
        if not math.isfinite(value):
            raise Refused(node.start_mark.line + 1, _NOT_FINITE.format(node.value))
        return value


SafeLoader.add_constructor("tag:yaml.org,2002:int", SafeLoader.construct_yaml_int)
SafeLoader.add_constructor("tag:yaml.org,2002:float", SafeLoader.construct_yaml_float)
_NOT_FINITE = "{} is not a finite number: values here are JSON's"
_INT_BOUND = 10**MAX_INT_DIGITS


def _int_reason(length: int, unit: str = "digits") -> str:
    return f"integer of {length} {unit}: more than the {MAX_INT_DIGITS} digits any value here can have"


# --- files -----------------------------------------------------------------------------------

_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


def not_regular(mode: int) -> str | None:
    """Why a file of this ``st_mode`` is not read (None: a regular file)."""
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _KINDS if test(mode)), "a special file")
    return f"not a regular file ({kind}): only regular files are read"


def within(real: str, root: str) -> bool:
    """Whether the resolved path ``real`` is ``root`` (resolved) or below it."""
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def outside_reason(real: str) -> str:
    return f"symbolic link leads outside the cassette directory (to {real}): only files inside it are read"


def read_regular(path: str | os.PathLike, inside: str | None = None) -> bytes:
    """The bytes of the regular file at ``path``. With ``inside`` (a resolved directory), the path
    is resolved and must stay inside it. Raises :class:`Refused` (line 0) for what is not read,
    OSError when reading fails."""
    target = os.fspath(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if inside is not None:
        target = os.path.realpath(target)
        if not within(target, inside):
            raise Refused(0, outside_reason(target))
        flags |= getattr(os, "O_NOFOLLOW", 0)  # resolved: a link appearing now is not followed
    why = not_regular(os.stat(target).st_mode)  # a device is refused without being opened
    if why:
        raise Refused(0, why)
    fd = os.open(target, flags)  # non-blocking: a FIFO swapped in now cannot block the open
    with os.fdopen(fd, "rb", buffering=0) as f:
        st = os.fstat(fd)  # what was opened is what is read
        why = not_regular(st.st_mode)
        if why:
            raise Refused(0, why)
        if st.st_size > MAX_FILE_BYTES:
            raise Refused(0, f"{st.st_size} bytes: larger than the {MAX_FILE_BYTES} bytes a file read here may have")
        return f.readall()


# --- YAML ------------------------------------------------------------------------------------

def load_yaml(data: bytes | str, loader: type = SafeLoader) -> Any:
    """The one document of ``data``, bounded (see the module's docstring). Raises
    :class:`Refused` for a bound, yaml.YAMLError for text that is not YAML."""
    try:
        if (b"*" if isinstance(data, bytes) else "*") not in data:
            # No alias: the document is a tree as written; only its depth needs a look.
            doc = yaml.load(data, Loader=loader)
            if too_deep(doc):
                raise Refused(_deep_yaml_line(data, loader), TOO_DEEP)
            return doc
        reader = loader(data)
        try:
            node = reader.get_single_node()
            if node is None:
                return None
            _check_nodes(node, data, loader)
            return reader.construct_document(node)
        finally:
            reader.dispose()
    except RecursionError:  # PyYAML's own composer, without libyaml
        raise Refused(_deep_yaml_line(data, loader), TOO_DEEP) from None
    except yaml.MarkedYAMLError as exc:
        if "maximum nesting depth" in str(exc.problem):  # libyaml's own bound (1,000 levels)
            mark = exc.problem_mark
            raise Refused(_deep_yaml_line(data, loader, mark.line + 1 if mark else 0), TOO_DEEP) from None
        raise


def _deep_yaml_line(data: bytes | str, loader: type, fallback: int = 0) -> int:
    """The line of the first collection more than MAX_JSON_DEPTH levels deep. libyaml scans flow
    collections ahead of its events, so when its own bound stops the events first, the brackets
    are counted in the text; ``fallback`` when neither finds it."""
    level = 0
    try:
        for event in yaml.parse(data, Loader=loader):
            if isinstance(event, yaml.CollectionStartEvent):
                level += 1
                if level > MAX_JSON_DEPTH:
                    return event.start_mark.line + 1
            elif isinstance(event, yaml.CollectionEndEvent):
                level -= 1
    except (yaml.YAMLError, RecursionError):
        pass
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else data
    offset = _deep_offset(raw)
    return raw.count(b"\n", 0, offset) + 1 if offset is not None else fallback


def _check_nodes(root: yaml.Node, data: bytes | str, loader: type) -> None:
    """Aliases, on the composed nodes (an alias is the very node it names), in document order:
    the first time a node is met is where it is written (its anchor), every later time is an
    alias, a copy of all the node stands for. Each distinct node is looked into once, so this is
    linear in the size of the text whatever the aliases multiply to. Raises :class:`Refused`
    with the line of the alias that goes too far (found again in the text: nodes keep no place
    for their aliases)."""
    done: dict[int, tuple[int, int]] = {}  # id(collection) -> (size written out, height)
    seen: set[int] = set()
    on_path: set[int] = set()
    copies = aliases = 0
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        key = id(node)
        if leaving:
            on_path.discard(key)
            size, height = 1, 1
            for child in _children(node):
                if isinstance(child, yaml.ScalarNode):
                    size += 1 + len(child.value)
                else:
                    below = done[id(child)]
                    size += below[0]
                    height = max(height, below[1] + 1)
            done[key] = (size, height)
            continue
        if key in seen:  # an alias
            aliases += 1
            if key in on_path:
                raise Refused(_alias_line(data, loader, aliases),
                              "YAML alias to a collection that contains it: recursive data is not read")
            copies += 1 + len(node.value) if isinstance(node, yaml.ScalarNode) else done[key][0]
            if copies > MAX_YAML_ALIAS_EXPANSION:
                raise Refused(_alias_line(data, loader, aliases),
                              f"YAML aliases repeat more than {MAX_YAML_ALIAS_EXPANSION:,} nodes and characters "
                              "(every alias counts as a copy of what it names)")
            continue
        seen.add(key)
        if isinstance(node, yaml.ScalarNode):
            continue
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(_children(node)))
    if not isinstance(root, yaml.ScalarNode) and done[id(root)][1] > MAX_JSON_DEPTH:
        node = root  # the line: the collection that opens level MAX_JSON_DEPTH + 1, deepest way down
        for _ in range(MAX_JSON_DEPTH):
            node = max((c for c in _children(node) if not isinstance(c, yaml.ScalarNode)), key=lambda c: done[id(c)][1])
        raise Refused(node.start_mark.line + 1, TOO_DEEP)


def _alias_line(data: bytes | str, loader: type, nth: int) -> int:
    """The line of the ``nth`` alias of the text (0 if there is none)."""
    try:
        for event in yaml.parse(data, Loader=loader):
            if isinstance(event, yaml.AliasEvent):
                nth -= 1
                if not nth:
                    return event.start_mark.line + 1
    except yaml.YAMLError:
        pass
    return 0


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return list(node.value)


# --- JSON ------------------------------------------------------------------------------------
#
# json.loads recurses once per level and counts against the interpreter's recursion limit, so
# it is run with the limit set just high enough for MAX_JSON_DEPTH levels above the caller's
# frames: deeper text fails inside the parser as soon as it gets there, and the bound costs
# nothing on the way. The frames json.loads itself needs are found by trial at the call (a few
# microseconds: two tiny documents). An interpreter whose parser does not count against that
# limit (CPython 3.12 on) gets its documents measured afterwards instead. The lock keeps two
# threads from interleaving the change; json.loads holds the GIL, so no other thread runs
# Python code meanwhile.

_LIMIT_LOCK = threading.Lock()
_extra = [3]  # frames json.loads adds above the caller's, as last found
_PROBE_OK = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
_PROBE_DEEP = b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)
# Any integer of more than MAX_INT_DIGITS digits is a run of that many digits plus one in the
# text: found at C speed by mapping every digit to "0" (and everything else to a space).
_DIGITS_TO_ZERO = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))
_LONG_RUN = b"0" * (MAX_INT_DIGITS + 1)
_CHUNK = 1 << 16  # small enough to stay in cache while it is translated and searched
_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


class _LongInt(Exception):
    def __init__(self, text: str) -> None:
        self.text = text


class _Constant(Exception):
    def __init__(self, text: str) -> None:
        self.text = text


def _checked_int(text: str) -> int:
    if not int_text_ok(text):
        raise _LongInt(text)
    return int(text)


def _no_constant(text: str) -> float:
    """json.loads reads NaN and Infinity, which JSON does not have: refused."""
    raise _Constant(text)


def _frames() -> int:
    frame, n = sys._getframe(1), 0
    while frame is not None:
        n, frame = n + 1, frame.f_back
    return n


def _attempt(text: bytes, limit: int) -> Any:
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(limit)
    try:
        return json.loads(text, parse_constant=_no_constant)
    finally:
        sys.setrecursionlimit(old)


def _bounded_loads(text: bytes) -> tuple[Any, bool]:
    """(value, True) when parsed with the depth bound in force; (value, False) when the
    interpreter's parser cannot be bounded this way (the caller measures). RecursionError: deeper.
    The probes and the parse run at the same depth of the stack, so they see the same limit."""
    with _LIMIT_LOCK:
        base = _frames() + MAX_JSON_DEPTH
        for n, extra in enumerate((_extra[0], *range(1, 16))):
            try:
                _attempt(_PROBE_OK, base + extra)
            except RecursionError:
                continue  # too tight for MAX_JSON_DEPTH levels
            try:
                _attempt(_PROBE_DEEP, base + extra)
            except RecursionError:  # exactly MAX_JSON_DEPTH levels
                _extra[0] = extra
                return _attempt(text, base + extra), True
            if n:
                break  # the tightest limit that reads MAX_JSON_DEPTH levels reads more: no bound
        return json.loads(text, parse_constant=_no_constant), False


def _has_long_digit_run(text: bytes) -> bool:
    step = _CHUNK
    for start in range(0, len(text), step):
        if _LONG_RUN in text[start:start + step + MAX_INT_DIGITS].translate(_DIGITS_TO_ZERO):
            return True
    return False


def _deep_offset(text: bytes) -> int | None:
    """Offset of the bracket that opens level MAX_JSON_DEPTH + 1 of JSON ``text`` (None: none)."""
    level = 0
    for m in _JSON_TOKENS.finditer(text):
        c = text[m.start()]
        if c in b"[{":
            level += 1
            if level > MAX_JSON_DEPTH:
                return m.start()
        elif c in b"]}":
            level -= 1
    return None


def _token_offset(text: bytes, token: str) -> int | None:
    """Offset of ``token`` standing as a value of its own in JSON ``text`` (not in a string)."""
    for m in re.finditer(rb"(?<![0-9.\"\w-])" + re.escape(token.encode()) + rb"(?![0-9\w])", text):
        return m.start()
    return None


def load_json(data: bytes, start: int = 0) -> Any:
    """The JSON value of ``data[start:]``, bounded like :func:`load_yaml`. Raises ValueError when
    it is not JSON (:class:`Refused`, a ValueError too, for a bound, with its line in ``data``)."""
    text = data[start:] if start else data

    def refuse(offset: int | None, reason: str) -> Refused:
        return Refused(data.count(b"\n", 0, start + offset) + 1 if offset is not None else 0, reason)

    try:
        value, bounded = _read_json(text)
        if not bounded and too_deep(value):
            raise RecursionError
        return value
    except RecursionError:
        raise refuse(_deep_offset(text), TOO_DEEP) from None
    except _LongInt as exc:
        digits = exc.text
        raise refuse(_token_offset(text, digits), _int_reason(len(digits.lstrip("+-").lstrip("0")))) from None
    except _Constant as exc:
        raise refuse(_token_offset(text, exc.text), _NOT_FINITE.format(exc.text)) from None


def _read_json(text: bytes) -> tuple[Any, bool]:
    """(value, whether its depth is known to be within the bound). RecursionError: too deep."""
    if _has_long_digit_run(text):  # rare: digits in a string, or a refused integer
        return json.loads(text, parse_int=_checked_int, parse_constant=_no_constant), False
    try:
        return _bounded_loads(text)
    except RecursionError:
        if _deep_offset(text) is not None:
            raise
        # The limit was tighter than the levels (frames the count above did not see): read it
        # with the interpreter's own limit and measure.
        return json.loads(text, parse_constant=_no_constant), False


def read_yaml(path: str | os.PathLike, error: type[Exception], what: str) -> Any:
    """The document at `path`; an unreadable file or bad YAML raises `error` naming the file."""
    try:
        return load_yaml(read_regular(path))
    except OSError as e:
        raise error(f"{path}: cannot read {what}: {e.strerror}") from None
    except Refused as e:
        where = f"line {e.line}: " if e.line else ""
        raise error(f"{path}: cannot read {what}: {where}{e.reason}") from None
    except yaml.YAMLError as e:
        raise error(f"{path}: not valid YAML: {e}") from None
