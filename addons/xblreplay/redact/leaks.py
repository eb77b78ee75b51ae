"""The last check before a cassette reaches disk: :func:`redact_interaction` makes an
interaction safe to write, :func:`leak_scan` finds any secret or credential left in the
serialized bytes, and :class:`LeakError` refuses the write."""

from __future__ import annotations

from collections.abc import Mapping

from .allowlist import redact_request_headers, redact_response_headers, redact_url
from .body import redact_body
from .credentials import JWT, XBL_AUTH, find_credentials, request_secrets
from .pattern import secret_pattern
from .text import redact_text


class LeakError(Exception):
    """The serialized output still holds a secret; nothing was written."""

    def __init__(self, target: str, findings: list[str]):
        self.target = target
        self.findings = findings
        super().__init__(f"{target}: refused to write, secret found: {', '.join(findings)}")


def redact_interaction(interaction: dict, secrets: Mapping[str, str] | None = None) -> dict:
    """A redacted copy of one cassette interaction (idempotent); the secrets of its own request
    count, with ``secrets``."""
    out = dict(interaction)
    request = dict(out.get("request") or {})
    response = dict(out.get("response") or {})
    own = request_secrets(str(request.get("url") or ""), {str(k).lower(): str(v) for k, v in (request.get("headers") or {}).items()},
                          {str(k).lower(): str(v) for k, v in (response.get("headers") or {}).items()})
    secret_re = secret_pattern({**own, **(secrets or {})})
    if "url" in request:
        request["url"] = redact_url(request["url"])
    if "headers" in request:
        request["headers"] = redact_request_headers(request["headers"])
    if "headers" in response:
        response["headers"] = redact_response_headers(response["headers"])
    for part in (request, response):
        if "body" in part:
            part["body"] = redact_body(part["body"], secret_re)[0]
        if "body_text" in part:
            part["body_text"] = redact_text(part["body_text"], secret_re)[0]
    out["request"], out["response"] = request, response
    return out


def leak_scan(serialized: bytes, secrets: Mapping[str, str]) -> list[str]:
    """What is present in ``serialized`` (JSON or YAML text about to be written): the secrets
    by field, in any of their forms (raw, percent-encoded, base64, JSON-escaped, each named),
    then the kinds of verified credentials."""
    text = serialized.decode("utf-8", "replace")
    pattern = secret_pattern(secrets)
    found: list[str] = []
    if pattern is not None:
        found = pattern.find(text, in_json=True)
    kinds = {kind for _s, _e, kind in find_credentials(text)}
    found += [kind for kind in (XBL_AUTH, JWT) if kind in kinds]
    return found
