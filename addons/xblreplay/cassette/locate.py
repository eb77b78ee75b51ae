"""Where a node of a cassette file is: the YAML loader cassettes are read with, and the 1-based
line of the node at a path of keys and indexes (a file re-composed to locate schema errors)."""

from __future__ import annotations

import os

import yaml

from .. import rulesfile

_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class Loader(rulesfile.SafeLoader):
    """The safe loader without the implicit timestamp type: times stay the strings they were written as."""

    yaml_implicit_resolvers = {
        first: [r for r in resolvers if r[0] != _TIMESTAMP]
        for first, resolvers in rulesfile.SafeLoader.yaml_implicit_resolvers.items()
    }


def lines_of(data: bytes, paths: list[list]) -> list[int]:
    """1-based line of the node at each path (mapping steps point at the key); one compose."""
    root = yaml.compose(data, Loader=Loader)
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


def line_of(data: bytes, path: list) -> int:
    return lines_of(data, [path])[0]


def line_in_file(path: str | os.PathLike, where: list) -> int:
    """1-based line of the node at ``where`` in the cassette at ``path`` (0 when unreadable)."""
    try:
        data = rulesfile.read_regular(path)
        return line_of(data, where)
    except (OSError, ValueError, yaml.YAMLError):
        return 0
