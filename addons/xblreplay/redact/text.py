"""Secrets and credentials removed from one string: decoded text (:func:`redact_text`) or a
serialized JSON line the proxy writes (:func:`scrub_line`)."""

from __future__ import annotations

from .credentials import find_credentials
from .pattern import REDACTED, SecretPattern


def redact_text(value: str, secret_re: SecretPattern | None = None) -> tuple[str, list[str]]:
    """``value`` (decoded text: a body's string, a URL part) with every form of the exchange's
    secrets and every verified credential replaced, and what was removed (names, in order)."""
    return _scrub(value, secret_re, in_json=False)


def scrub_line(text: str, secret_re: SecretPattern | None = None) -> tuple[str, list[str]]:
    """:func:`redact_text` for a serialized JSON line the proxy writes about a request (a
    validation-log entry, an event-log line): JSON-escaped forms too, and the replacement keeps
    the JSON valid. Costs a few substring searches when there is nothing to remove."""
    return _scrub(text, secret_re, in_json=True)


def _scrub(text: str, secret_re: SecretPattern | None, in_json: bool) -> tuple[str, list[str]]:
    removed: list[str] = []
    if secret_re is not None:
        text, removed = secret_re.sub(text, in_json)
    found = find_credentials(text)
    if found:
        out, at = [], 0
        for start, end, kind in found:
            out += [text[at:start], REDACTED]
            removed.append(kind)
            at = end
        text = "".join(out) + text[at:]
    return text, removed
