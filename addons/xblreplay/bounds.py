"""Bounds on what the proxy accepts from outside: one place for the documented limits on hostile
input (README, "Hostile input").

Requests from titles under development, bodies from staging upstreams and cassettes from anyone
who can open a pull request are all read through these, so a hostile value gets a clear answer
instead of an exception, and memory stays bounded:

* :func:`json_loads` / :func:`depth_guard` -- JSON text to a value, and walks over a value; too
  deep a nesting is a :class:`TooDeep` (a ``ValueError``), like any other text that is not JSON
  the proxy can use; :func:`too_deep` measures a value without recursing;
* :data:`MAX_INT_DIGITS` -- the longest decimal integer any field of the contract can hold
  (uint64: 20 digits); longer ones are refused before ``int()`` is asked to read them;
* :data:`MAX_BODY_BYTES` -- the default bound on a decoded body (``achievements_max_body``);
* the YAML alias, file-size, header-cache, key-length and secret-length bounds below.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import chain, compress
from typing import Any

# The largest value of any integer in the contract is 2**64 - 1 (an xuid): 20 digits.
MAX_INT_DIGITS = 20
# Decoded (after Content-Encoding) body size above which a body is forwarded untouched and
# neither parsed, checked nor recorded. The option achievements_max_body changes it.
MAX_BODY_BYTES = 32 * 1024 * 1024
# How deep a JSON value may nest. The service's bodies nest 6 levels. Everything that is kept --
# cassettes (rulesfile), recorded bodies, request bodies -- is held to MAX_JSON_DEPTH exactly
# (too_deep() does not recurse). A body that is only read (a response checked on its way to the
# client) is bounded by the interpreter's recursion limit instead: deeper is a TooDeep wherever
# it is read (json_loads, depth_guard), never a RecursionError and never half-processed.
MAX_JSON_DEPTH = 200


class TooDeep(ValueError):
    """A JSON or YAML value nested too deep to read."""

    def __init__(self, what: str = "JSON") -> None:
        super().__init__(f"{what} nested too deep to read")


def json_loads(data: bytes | str, limit_depth: bool = False) -> Any:
    """``json.loads`` for text from outside: ValueError when it is not JSON, :class:`TooDeep`
    (a ValueError too) when it nests deeper than the parser can follow or, with
    ``limit_depth``, deeper than :data:`MAX_JSON_DEPTH` (a walk that does not recurse, for values
    that are kept: a recorded body, a request body)."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise TooDeep() from None
    if limit_depth and too_deep(value):
        raise TooDeep()
    return value


@contextmanager
def depth_guard(what: str = "JSON") -> Iterator[None]:
    """Turns a RecursionError of a walk over a deep value into :class:`TooDeep`."""
    try:
        yield
    except RecursionError:
        raise TooDeep(what) from None


_CONTAINER = frozenset((dict, list)).__contains__


def _is_dict(v: Any) -> bool:
    return type(v) is dict


def _is_list(v: Any) -> bool:
    return type(v) is list


def too_deep(value: Any, levels: int = MAX_JSON_DEPTH) -> bool:
    """Whether a tree of dicts and lists nests more than ``levels`` levels (``[]`` is one), without
    recursion: level by level, the children of a level gathered and filtered by C-level iteration
    (about 2.5 times as fast as a walk node by node on a large cassette)."""
    level = [value] if _CONTAINER(type(value)) else []
    for _ in range(levels):
        if not level:
            return False
        children = list(chain(chain.from_iterable(map(dict.values, filter(_is_dict, level))),
                              chain.from_iterable(filter(_is_list, level))))
        level = list(compress(children, map(_CONTAINER, map(type, children))))
    return bool(level)


def int_text_ok(raw: str) -> bool:
    """Whether a decimal integer text is short enough to read (sign and leading zeros aside)."""
    return len(raw.lstrip("+-").lstrip("0")) <= MAX_INT_DIGITS


# How much YAML aliases may repeat in one document: every alias counts as a full copy of what it
# names (expanded), one per node and one per character of each scalar, and the copies of a
# document may total at most this much. Hand-written cassettes alias a few shared mappings; a
# "billion laughs" document would repeat 10**9 and more. A collection that contains itself
# through an alias is refused whatever its size.
MAX_YAML_ALIAS_EXPANSION = 10_000_000
# The largest file read as a cassette, rules file or fault profile: 4 GiB, far above the largest
# recorded cassettes (about 1 GB for a million achievements). Only regular files are read at
# all (FIFOs, devices and sockets are refused unopened or unread), so this bounds every read.
MAX_FILE_BYTES = 4 * 1024**3

# A header value longer than this is parsed every time it comes, never kept in a cache (a cache
# of 1,024 megabyte-long Accept-Language values would be a gigabyte).
MAX_CACHED_HEADER_CHARS = 256
# "The same request" key (request.request_key) is kept by call patterns for thousands of requests:
# a longer one keeps its beginning and a hash of the whole.
MAX_KEY_CHARS = 2048
# A secret longer than this (a token of real clients is ~1,500 characters) is searched as it is and
# fully percent-encoded only: every other form costs per character, and a megabyte-long
# "token" would cost seconds per request.
MAX_SECRET_CHARS = 4096
