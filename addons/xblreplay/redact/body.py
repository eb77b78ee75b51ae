"""Secrets and credentials removed from a recorded body, each removal reported with its JSON
pointer (:class:`Removal`): :func:`recorded_body` makes a response body ready for a cassette,
:func:`removals_in` tells what it would remove, cheaply."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..bounds import depth_guard, json_loads, too_deep
from .credentials import find_credentials
from .pattern import SecretPattern
from .text import redact_text

# A \u escape of a printable ASCII character: with \/ the only escapes that can stand for a
# character of a secret (ASCII, no quote or backslash) or of a credential.
_ASCII_ESCAPE = re.compile(r"\\u00[2-7][0-9A-Fa-f]")


@dataclass(frozen=True, slots=True)
class Removal:
    """One value taken out of a recorded body: where (a JSON pointer; "" for a text body) and
    what it was (the secret's name, or JWT / XBL authorization). Never the value itself."""

    path: str
    what: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "what": self.what}


def _searchable(text: str | None, secret_re: SecretPattern | None) -> str | None:
    """JSON text in which every secret and credential inside its strings stands as in the decoded
    strings (an escaped solidus read as ``/``), or None when only decoding the JSON can tell."""
    if text is None:
        return None
    if secret_re is not None and (secret_re.json_escaped or secret_re.non_ascii):
        return None  # a secret JSON would escape
    if "\\" in text:
        if _ASCII_ESCAPE.search(text):
            return None
        text = text.replace("\\/", "/")
    return text


def _holds_secrets(text: str, secret_re: SecretPattern | None) -> bool:
    return bool(find_credentials(text) or (secret_re is not None and secret_re.search(text)))


def needs_redaction(obj: Any, secret_re: SecretPattern | None = None, text: str | None = None) -> bool:
    """Whether :func:`redact_body` would change anything, decided on the JSON text at C speed
    (a recorded page is thousands of strings; almost none hold anything to redact). ``text`` is
    the JSON the value was parsed from, searched as it is when its escapes cannot hide anything."""
    searchable = _searchable(text, secret_re)
    if searchable is None:
        if secret_re is not None and secret_re.json_escaped:
            return True  # a secret JSON would escape: only the walk can tell
        try:
            searchable = json.dumps(obj, ensure_ascii=False)
        except (TypeError, ValueError):
            return True
    return _holds_secrets(searchable, secret_re)


def redact_body(obj: Any, secret_re: SecretPattern | None = None, text: str | None = None
                ) -> tuple[Any, list[Removal]]:
    """A JSON value with the exchange's secrets and verified credentials replaced inside its
    strings (keys included), and every removal with its JSON pointer. When nothing is removed
    the value itself is returned (``text``: the JSON it was parsed from, if at hand)."""
    with depth_guard():
        if not needs_redaction(obj, secret_re, text):
            return obj, []
        removals: list[Removal] = []
        return _redact_value(obj, secret_re, "", removals), removals


def _pointer_part(key: str) -> str:
    return "/" + key.replace("~", "~0").replace("/", "~1")


def _redact_value(obj: Any, secret_re: SecretPattern | None, path: str, removals: list[Removal]) -> Any:
    if isinstance(obj, str):
        value, removed = redact_text(obj, secret_re)
        removals += [Removal(path, what) for what in removed]
        return value
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if isinstance(k, str):
                k, removed = redact_text(k, secret_re)
                removals += [Removal(path + _pointer_part(k), what) for what in removed]
            out[k] = _redact_value(v, secret_re, path + _pointer_part(str(k)), removals)
        return out
    if isinstance(obj, list):
        return [_redact_value(v, secret_re, f"{path}/{i}", removals) for i, v in enumerate(obj)]
    return obj


@dataclass(slots=True)
class RecordedBody:
    """A response body as it is recorded: ``body`` (parsed JSON) or ``body_text`` (anything
    else), ``raw`` (the service's JSON text, when nothing was removed from it) and the removals."""

    body: Any = None
    body_text: str | None = None
    raw: str | None = None
    removals: list[Removal] = field(default_factory=list)
    is_json: bool = False


def recorded_body(body: bytes, content_type: str | None, secret_re: SecretPattern | None,
                  parsed: tuple[Any] | None = None) -> RecordedBody:
    """The one way a response body is made ready for a cassette: JSON bodies parsed (``parsed``:
    the parsed value, if at hand), everything else as text; secrets and credentials removed
    and reported; a body nothing was removed from keeps the service's text."""
    out = RecordedBody()
    if not body:
        return out
    text = None
    if not (content_type and "json" in content_type.lower()):
        parsed = None  # only a JSON body is recorded as JSON
    else:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if parsed is None:
            try:
                # A body nested deeper than MAX_JSON_DEPTH is kept as text: every later reader
                # of the cassette can hold it.
                parsed = (json_loads(body, limit_depth=True),)
            except ValueError:
                parsed = None
        elif too_deep(parsed[0]):
            parsed = None
    if parsed is not None:
        out.is_json = True
        out.body, out.removals = redact_body(parsed[0], secret_re, text)
        if not out.removals:
            out.raw = text
        return out
    out.body_text, removed = redact_text(body.decode("utf-8", "replace"), secret_re)
    out.removals = [Removal("", what) for what in removed]
    return out


def removals_in(body: bytes, content_type: str | None, secret_re: SecretPattern | None) -> list[Removal]:
    """What :func:`recorded_body` would remove, decided on the bytes first (C-speed substring
    checks; the body is parsed only when something may be there)."""
    if not body:
        return []
    searchable = _searchable(body.decode("utf-8", "replace"), secret_re)
    if searchable is not None and not _holds_secrets(searchable, secret_re):
        return []
    return recorded_body(body, content_type, secret_re).removals
