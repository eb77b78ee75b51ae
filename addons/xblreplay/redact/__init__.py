"""Secret removal and the leak scan, applied on every path that writes a cassette.

A recording keeps every value the service sent; only what is verifiably a secret is removed.
Headers and query parameters are kept from allow-lists (a token-shaped value never); in bodies,
the exchange's own secrets (Authorization, its userhash and token, Signature, cookie values, in
any form) and verified credentials (``XBL3.0 x=…;…``, a JWT) are replaced, each removal reported
with its JSON path. The serialized bytes are scanned once more before anything is written, and
the caller's userhash is kept only as its SHA-256.
"""

from .allowlist import redact_request_headers, redact_response_headers, redact_url, split_query, written_url
from .body import RecordedBody, Removal, recorded_body, redact_body, removals_in
from .credentials import header_secrets, is_token_shaped, pair_secrets, query_secrets, request_secrets, userhash_sha256
from .leaks import LeakError, leak_scan, redact_interaction
from .pattern import REDACTED, SecretPattern, secret_pattern
from .text import scrub_line

__all__ = [
    "LeakError",
    "REDACTED",
    "RecordedBody",
    "Removal",
    "SecretPattern",
    "header_secrets",
    "is_token_shaped",
    "leak_scan",
    "pair_secrets",
    "query_secrets",
    "recorded_body",
    "redact_body",
    "redact_interaction",
    "redact_request_headers",
    "redact_response_headers",
    "redact_url",
    "removals_in",
    "request_secrets",
    "scrub_line",
    "secret_pattern",
    "split_query",
    "userhash_sha256",
    "written_url",
]
