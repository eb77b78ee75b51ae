"""The written form of a cassette: YAML's JSON subset, keys sorted, one top-level key and one
interaction per line; a response body written as the service sent it when it can stand in a
line as it is; and the lines a rewrite reuses instead of serialising an interaction again."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

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


def interaction_lines(interactions: Iterable[dict], known: Iterable[tuple[dict, str]] = (),
                      unscanned: list[str] | None = None) -> list[str]:
    """The line of each interaction: the one ``known`` for that very object (interactions are
    never changed in place, so their line stays right), else one made now and added to
    ``unscanned``, the lines a leak scan still has to see."""
    # Keyed by id() for this call only, and each entry holds its object: an id in the table
    # belongs to a live object, so it is the id of no other.
    table = {id(i): (i, line) for i, line in known}
    lines = []
    for i in interactions:
        hit = table.get(id(i))
        if hit is None:
            hit = table[id(i)] = (i, interaction_line(i))
            if unscanned is not None:
                unscanned.append(hit[1])
        lines.append(hit[1])
    return lines


def lines_in(data: bytes, doc: dict) -> list[str]:
    """The line of each interaction of ``doc`` as it stands in ``data``, the file it was read
    from (none unless the file is in the written form), so that a rewrite keeps every line it
    does not replace byte for byte."""
    interactions = doc.get("interactions") or []
    text = data.decode("utf-8")
    start = text.find(_ROWS_START)
    end = text.rfind("\n ]\n}")
    if not interactions or start < 0 or end < start:
        return []
    rows = text[start + len(_ROWS_START):end].split(",\n")
    return rows if len(rows) == len(interactions) else []


def dump(doc: Any, lines: list[str] | None = None, unscanned: list[str] | None = None) -> bytes:
    """The canonical form of a written cassette: YAML's JSON subset, keys sorted, one top-level
    key and one interaction per line. It is still YAML (any YAML reader loads it) and diffs and
    merges line by line; writing it runs at C speed (a recorded page costs ~0.2 ms against ~11 ms
    for block YAML), so recording keeps up with the proxy, and loading takes the JSON path.

    ``lines``: the line of each of its interactions, from :func:`interaction_lines` (made here
    when None). ``unscanned`` receives every line made here, i.e. what a leak scan still has to see."""
    keys = [k for k in _FIRST_KEYS if k in doc] + sorted(k for k in doc if k not in _FIRST_KEYS and k != "interactions")
    top = [f" {_json(k)}: {_json(doc[k])}" for k in keys]
    if unscanned is not None:
        unscanned += top
    if "interactions" in doc:
        rows = ",\n".join(interaction_lines(doc["interactions"], (), unscanned) if lines is None else lines)
        top.append(_ROWS_START[2:] + rows + "\n ]" if rows else ' "interactions": []')
    return (_HEADER + "{\n" + ",\n".join(top) + "\n}\n").encode("utf-8")
