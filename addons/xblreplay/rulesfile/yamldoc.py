"""YAML text from outside, bounded: :func:`load_yaml` builds a document no deeper than
``bounds.MAX_JSON_DEPTH`` levels, whose aliases repeat at most ``bounds.MAX_YAML_ALIAS_EXPANSION``
nodes and characters (checked on the composed nodes, before anything is built from them, so merge
keys cannot multiply either), with no collection containing itself, no integer of more than
``bounds.MAX_INT_DIGITS`` digits and no NaN or infinity (the values are JSON's); :func:`read_yaml`
reads a regular file that way, every failure one line naming the file."""

from __future__ import annotations

import math
import os
from typing import Any

import yaml

from ..bounds import MAX_INT_DIGITS, MAX_JSON_DEPTH, MAX_YAML_ALIAS_EXPANSION, int_text_ok, too_deep
from .jsondoc import deep_offset
from .refused import NOT_FINITE, TOO_DEEP, Refused, int_reason
from .regular import read_regular

# libyaml refuses nesting deeper than 1,000 levels from 0.2.5 on; an older one would recurse in C
# without a bound, so it is not used (PyYAML's own parser is iterative, its composer recursion
# ends in a RecursionError).
_C_LOADER = getattr(yaml, "CSafeLoader", None)
if _C_LOADER is not None and tuple(yaml._yaml.get_version()) < (0, 2, 5):  # type: ignore[attr-defined]
    _C_LOADER = None

_INT_BOUND = 10**MAX_INT_DIGITS


class SafeLoader(_C_LOADER or yaml.SafeLoader):  # type: ignore[misc]
    """The safe loader (libyaml's when present) with integers held to ``MAX_INT_DIGITS`` digits
    (a longer one is refused with its line before Python is asked to convert it) and numbers that
    are finite (``.nan``/``.inf`` are refused: a latency of infinity would wait for ever)."""

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        if len(node.value) > MAX_INT_DIGITS:  # only a long text needs a look before int() reads it
            text = node.value.replace("_", "").lstrip("+-")
            # Decimal (and YAML 1.1 octal) texts by their digits; 0x/0b/sexagesimal ones by value.
            if text.isdigit() and not int_text_ok(text):
                raise Refused(node.start_mark.line + 1, int_reason(len(text.lstrip("0"))))
            if len(text) > 4 * MAX_INT_DIGITS:
                raise Refused(node.start_mark.line + 1, int_reason(len(text), "characters"))
        value = super().construct_yaml_int(node)
        if -_INT_BOUND < value < _INT_BOUND:
            return value
        raise Refused(node.start_mark.line + 1, int_reason(len(str(abs(value)))))

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        value = super().construct_yaml_float(node)
        if not math.isfinite(value):
            raise Refused(node.start_mark.line + 1, NOT_FINITE.format(node.value))
        return value


SafeLoader.add_constructor("tag:yaml.org,2002:int", SafeLoader.construct_yaml_int)
SafeLoader.add_constructor("tag:yaml.org,2002:float", SafeLoader.construct_yaml_float)


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
    offset = deep_offset(raw)
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
