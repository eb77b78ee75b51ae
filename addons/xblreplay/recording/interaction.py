"""An exchange as a cassette holds it: the redacted interaction, what recording removes from its
body, and how new interactions merge into a cassette file.

Within a file interactions are keyed by :func:`request.request_key` ("the same request", as
replay matches it) and sorted; re-recording a key replaces it, but an identical exchange
(ignoring latency) keeps the stored entry, so the file stays byte-identical.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import cassette, redact
from ..contract import request_key, request_language
from .exchange import Exchange, timestamp


def interaction_key(interaction: dict) -> tuple[str, str]:
    """What makes two interactions "the same request" within a file."""
    request = interaction["request"]
    headers = request.get("headers") or {}
    return request_key(request["method"], request["url"], headers), request_language(headers)


def _content(interaction: dict) -> tuple:
    response = {k: v for k, v in interaction["response"].items() if k != "latency_ms"}
    return interaction["request"], response


def recorded_interaction(exchange: Exchange, parsed: tuple | None = None) -> tuple[dict, dict[str, str], redact.RecordedBody]:
    """A redacted cassette interaction, the exchange's secrets (for the leak scan) and its
    recorded body (what was removed; the service's own JSON text when nothing was). ``parsed``:
    the JSON body already parsed, if at hand."""
    e = exchange
    secrets = redact.request_secrets(e.url, e.request_headers, e.response_headers)
    response: dict = {
        "status": int(e.status),
        "headers": redact.redact_response_headers(e.response_headers),
        "latency_ms": round(max(float(e.latency_ms), 0.0), 1),
    }
    recorded = redact.recorded_body(e.body, e.content_type, redact.secret_pattern(secrets), parsed)
    if recorded.is_json:
        response["body"] = recorded.body
    elif recorded.body_text is not None:
        response["body_text"] = recorded.body_text
    interaction = {
        "recorded_at": timestamp(e.recorded_at),
        "request": {
            "method": e.method.upper(),
            "url": redact.redact_url(e.url, redact.secret_pattern(secrets)),
            "headers": redact.redact_request_headers(e.request_headers),
        },
        "response": response,
    }
    return interaction, secrets, recorded


def build_interaction(exchange: Exchange) -> tuple[dict, dict[str, str], str]:
    """:func:`recorded_interaction` of an exchange, with the interaction's cassette line."""
    interaction, secrets, recorded = recorded_interaction(exchange)
    return interaction, secrets, cassette.interaction_line(interaction, cassette.raw_json(recorded.raw))


def body_removals(exchange: Exchange) -> list[redact.Removal]:
    """What recording this exchange removes from its body (the proxy reports it as the exchange
    is answered; the writer, in its own process, removes exactly this). Costs a few substring
    searches when there is nothing to remove."""
    e = exchange
    secrets = redact.request_secrets(e.url, e.request_headers, e.response_headers)
    return redact.removals_in(e.body, e.content_type, redact.secret_pattern(secrets))


def file_update(new: dict[tuple, dict], bindings: set[tuple[str, int]]) -> Callable[[dict | None], dict]:
    """The update :func:`cassette.update_file` applies to a file's document: ``new``
    interactions (by :func:`interaction_key`) and xuid ``bindings`` merged in."""

    def merge(old: dict | None) -> dict:
        doc = dict(old) if old else {"xblreplay": cassette.VERSION}
        by_key = {interaction_key(i): i for i in doc.get("interactions") or ()}
        for key, interaction in new.items():
            prev = by_key.get(key)
            if prev is None or _content(prev) != _content(interaction):
                by_key[key] = interaction
        if by_key:
            doc["interactions"] = [by_key[k] for k in sorted(by_key)]
            doc["recorded_at"] = max(i.get("recorded_at", "") for i in doc["interactions"])
        known = {(b["userhash_sha256"], int(b["xuid"])) for b in doc.get("bindings") or ()}
        if bindings - known:
            doc["bindings"] = [{"userhash_sha256": h, "xuid": x} for h, x in sorted(known | bindings)]
        return doc

    return merge
