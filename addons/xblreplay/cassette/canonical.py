"""The written form of a cassette: YAML's JSON subset, keys sorted, one achievement per line (a
recorded body's item array and a dataset's entries, :mod:`.layout`), an interaction's request
and response around its items, each other top-level key on one line; a response body written
with the service's own tokens when they can stand in a line as they are; and the lines a rewrite
reuses instead of serialising an interaction again."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from . import layout

# Characters YAML does not allow raw in a file or reads as line breaks (and lone surrogates):
# written as JSON escapes.
_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")
_HEADER = "# xblreplay cassette, format v1, in YAML's JSON subset: one achievement per line.\n"
_FIRST_KEYS = ("xblreplay", "recorded_at", "bindings", "datasets")
_ROWS_START = ',\n "interactions": [\n'
# An interaction's first line is indented by two spaces, every further line of it by more, so
# this is where one interaction ends and the next begins (a value never holds a raw line break).
_ROW_BREAK = ",\n  {"
# The indents of a recorded body's items and of their closing bracket.
_ITEM, _ITEMS_END = "    ", "   "


def _json(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(", ", ": "), allow_nan=False)
    return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


# A JSON text that can stand in a cassette line as it is: one line, no character YAML reads
# differently, no escaped surrogate pair (YAML decodes \\u escapes one by one).
_RAW_UNSAFE = re.compile(_YAML_UNSAFE.pattern[:-1] + "\n\r]")
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89abAB]")


def raw_json(text: str | None) -> str | None:
    """The tokens of ``text`` (a JSON document) as they stand, if they can be written in a cassette:
    the text itself, or without the whitespace between its tokens when it is broken into lines
    (pretty-printed); None when a token holds something a YAML line cannot (then the body is
    written from its value)."""
    if text is None:
        return None
    text = text.strip()
    if not text:
        return None
    if "\n" in text or "\r" in text:  # no raw line break stands inside a JSON string
        text = layout.compact(text)
    if text.isascii():  # the common case, decided by substring search: ~20x faster than the regex
        unsafe = "\n" in text or "\r" in text or "\x7f" in text
    else:
        unsafe = _RAW_UNSAFE.search(text) is not None
    if unsafe or ("\\u" in text and _ESCAPED_SURROGATE.search(text)):
        return None
    return text


def _items_body(interaction: Any) -> dict | None:
    """The response body of ``interaction`` when it holds a non-empty item array, else None."""
    response = interaction.get("response") if isinstance(interaction, dict) else None
    body = response.get("body") if isinstance(response, dict) else None
    if isinstance(body, dict) and any(isinstance(body.get(k), list) and body[k] for k in layout.ITEM_KEYS):
        return body
    return None


def _items(values: list, pad: str, close: str) -> str:
    """A list written one element per line (each after ``pad``, the ``]`` after ``close``)."""
    return "[\n" + ",\n".join(pad + _json(v) for v in values) + "\n" + close + "]"


def _body_text(body: dict) -> str:
    """A body with an item array written from its value: keys sorted, one item per line."""
    key = next(k for k in layout.ITEM_KEYS if isinstance(body.get(k), list) and body[k])
    members = (f"{_json(k)}: {_items(body[k], _ITEM, _ITEMS_END) if k == key else _json(body[k])}" for k in sorted(body))
    return "{" + ", ".join(members) + "}"


def interaction_line(interaction: dict, raw_body: str | None = None) -> str:
    """One interaction as written in a cassette (its own lines: the request and response on the
    first and last, each item of the body on one in between). With ``raw_body`` (from
    :func:`raw_json`, the JSON text the response body was parsed from) the body is written as
    the service sent it: its own tokens, no second serialization, the service's key order."""
    body = _items_body(interaction)
    if raw_body is not None and body is not None:
        try:
            text, end = layout.lay_out(raw_body, 0, body, _ITEM, _ITEMS_END)
            raw_body = text if end == len(raw_body) else raw_body
        except layout.NotLaidOut:  # not the object it was parsed as: kept on one line as it is
            pass
    elif raw_body is None:
        if body is None:
            return "  " + _json(interaction)
        raw_body = _body_text(body)
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


def _as_written_now(row: str, interaction: Any) -> str:
    """A row of a file written before items had lines of their own (the whole interaction on one
    line) laid out as :func:`interaction_line` lays it out: the same text with line breaks
    between the items, every token kept. Any other row stands as it is."""
    body = _items_body(interaction) if "\n" not in row else None
    if body is None:
        return row
    try:
        start = layout.member_start(row, layout.member_start(row, 2, "response"), "body")
        text, end = layout.lay_out(row, start, body, _ITEM, _ITEMS_END)
    except layout.NotLaidOut:
        return row
    return row[:start] + text + row[end:]


def lines_in(data: bytes, doc: dict) -> list[str]:
    """The lines of each interaction of ``doc`` as they stand in ``data``, the file it was read
    from (none unless the file is in the written form), so that a rewrite keeps every line it
    does not replace byte for byte; an interaction written on one line by an earlier build gets
    its items' lines, tokens unchanged."""
    interactions = doc.get("interactions") or []
    text = data.decode("utf-8")
    start = text.find(_ROWS_START)
    end = text.rfind("\n ]\n}")
    if not interactions or start < 0 or end < start:
        return []
    rows = text[start + len(_ROWS_START):end].split(_ROW_BREAK)
    if len(rows) != len(interactions) or not rows[0].startswith(_ROW_BREAK[2:]):
        return []
    rows[1:] = [_ROW_BREAK[2:] + row for row in rows[1:]]
    return [_as_written_now(row, i) for row, i in zip(rows, interactions)]


def _with_items_last(obj: Any, key: str, items: Any) -> str:
    """``obj`` with sorted keys, ``key`` last, its value written by ``items`` (a non-empty list)."""
    if not (isinstance(obj, dict) and isinstance(obj.get(key), list) and obj[key]):
        return _json(obj)
    head = [f"{_json(k)}: {_json(obj[k])}" for k in sorted(obj) if k != key]
    return "{" + ", ".join([*head, f"{_json(key)}: {items(obj[key])}"]) + "}"


def _datasets(datasets: Any) -> str:
    """Hand-written datasets: a line per dataset and per title (their keys first), one entry per line."""
    if not (isinstance(datasets, list) and datasets):
        return _json(datasets)

    def title(t: Any) -> str:
        return _with_items_last(t, "achievements", lambda entries: _items(entries, "    ", "   "))

    def titles(ts: list) -> str:
        return "[\n" + ",\n".join("   " + title(t) for t in ts) + "\n  ]"

    return "[\n" + ",\n".join("  " + _with_items_last(d, "titles", titles) for d in datasets) + "\n ]"


def dump(doc: Any, lines: list[str] | None = None, unscanned: list[str] | None = None) -> bytes:
    """The canonical form of a written cassette: YAML's JSON subset, keys sorted, one achievement
    per line (a recorded body's items, a dataset's entries), every other top-level key on one line
    and an interaction's request and response on the lines around its items. It is still YAML
    (any YAML reader loads it) and valid JSON, and diffs and merges line by line; writing it runs
    at C speed (a recorded page costs well under a millisecond against ~11 ms for block YAML), so
    recording keeps up with the proxy, and loading takes the JSON path.

    ``lines``: the lines of each of its interactions, from :func:`interaction_lines` (made here
    when None). ``unscanned`` receives every line made here, i.e. what a leak scan still has to see."""
    keys = [k for k in _FIRST_KEYS if k in doc] + sorted(k for k in doc if k not in _FIRST_KEYS and k != "interactions")
    top = [f" {_json(k)}: {_datasets(doc[k]) if k == 'datasets' else _json(doc[k])}" for k in keys]
    if unscanned is not None:
        unscanned += top
    if "interactions" in doc:
        rows = ",\n".join(interaction_lines(doc["interactions"], (), unscanned) if lines is None else lines)
        top.append(_ROWS_START[2:] + rows + "\n ]" if rows else ' "interactions": []')
    return (_HEADER + "{\n" + ",\n".join(top) + "\n}\n").encode("utf-8")
