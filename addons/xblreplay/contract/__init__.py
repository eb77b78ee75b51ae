"""The API contract and the one reading of a request.

The contract is data, ``rules/achievements.openapi.yaml``, compiled once into a
:class:`Validator`: requests are checked against it (R8 and the R3/R5/R6 warnings) and answers
of the service or of replay against its response schemas (R7). Every part of the proxy reads a
request with the functions of :mod:`.request`, so "the same request" means one thing everywhere.
"""

from .languages import parse_accept_language
from .request import (
    CONTRACT_HEADER,
    KNOWN_PARAMS,
    parse_authorization,
    query_pairs,
    query_params,
    request_key,
    request_language,
    split_url,
)
from .schema_errors import MAX_RESPONSE_VIOLATIONS
from .validator import Validator

__all__ = [
    "CONTRACT_HEADER",
    "KNOWN_PARAMS",
    "MAX_RESPONSE_VIOLATIONS",
    "Validator",
    "parse_accept_language",
    "parse_authorization",
    "query_pairs",
    "query_params",
    "request_key",
    "request_language",
    "split_url",
]
