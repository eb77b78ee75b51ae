"""Every answer the proxy makes up: each status, body and header it sends without the service.

The engine computes *what* to answer (a page of a dataset, that a dataset is missing); this
module says *how* it looks on the wire, once, in the service's own shapes:

* the ServiceErrorResponse ``{"errorCode": …, "errorMessage": …}`` of 400, 403, 404, 405 and
  the 5xx answers (spec §4.1);
* the 401 of a missing or malformed token (empty body, ``WWW-Authenticate``), R8;
* the 429 body of a fine-grained rate limit, R10;
* the empty listing of an unsupported contract version, R6;
* the replay of a recorded interaction.

Every synthesised answer that is not a plain replay says why in ``X-Xblreplay-Reason`` (R9) or,
for invalid requests, lists its errors in ``X-Xblreplay-Violations`` (R8).
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from .model import ERROR, WARNING, Answer, RequestCheck, Violation, r8_status, readable, violations_header

REASON = "X-Xblreplay-Reason"
VIOLATIONS = "X-Xblreplay-Violations"
JSON = ("Content-Type", "application/json; charset=utf-8")
# 4000 is the generic client-error code of the Xbox Live service error list.
BAD_REQUEST_CODE = 4000
# "XUID specified in the claim does not match URI XUID." (as observed)
XUID_MISMATCH_CODE = 8377
WWW_AUTHENTICATE = 'Token realm="xboxlive.com", error="token_required"'


def service_error(code: int | None, message: str) -> dict[str, Any]:
    """The service's error body (ServiceErrorResponse)."""
    return {"errorCode": code, "errorMessage": message}


def invalid_request(check: RequestCheck) -> Answer:
    """The R8 answer of an invalid request.

    401: empty body and ``WWW-Authenticate: Token realm="xboxlive.com", error="token_required"``
    (as observed). 400 and 405: a ServiceErrorResponse ``{"errorCode": 4000, "errorMessage": ...}``
    whose message is the first error deciding the status, in API terms; 405 also carries ``Allow``
    (RFC 9110), the methods the path documents. Every answer carries ``X-Xblreplay-Violations``
    with all errors as compact JSON. An answer to HEAD has no body (RFC 9110 §9.3.2).
    """
    errors = check.errors
    status = check.status or 400
    deciding = next((v for v in errors if r8_status(v) == status), None)
    headers = [(VIOLATIONS, violations_header(errors))]
    body = None
    if status == 401:
        headers.append(("WWW-Authenticate", WWW_AUTHENTICATE))
    else:
        if status == 405:
            headers.append(("Allow", ", ".join(getattr(check, "allow", ()))))
        headers.append(JSON)
        if getattr(check, "method", "") != "HEAD":
            message = readable(deciding.message) if deciding else "the request is invalid"
            body = service_error(BAD_REQUEST_CODE, message)
    what = f"{deciding.rule} {status}: {deciding.message}" if deciding else f"R8 {status}"
    return Answer(status=status, body=body, headers=headers, violations=errors, source="error", reason=what)


def bound_elsewhere(xuid: int) -> Answer:
    """R8 403: the caller's token is bound to another xuid than the path's."""
    reason = f"R8: the caller is bound to another xuid than {xuid} in the cassette"
    return Answer(
        status=403,
        body=service_error(XUID_MISMATCH_CODE, "XUID specified in the claim does not match URI XUID."),
        headers=[(REASON, reason)],
        violations=[Violation("R8", "path", "xuid", ERROR, reason, code="xuid-mismatch")],
        source="error",
        reason=reason,
    )


def diagnostic(rule: str, code: str, location: str, name: str, reason: str, message: str = "") -> Answer:
    """R9: the 404 of what the recording cannot give (a dataset, an achievement or an exchange
    that was not recorded; a coverage gap under strict coverage), saying why in the body (its
    ``message``, else the reason), a header and a warning."""
    return Answer(
        status=404,
        body=service_error(404, message or reason),
        headers=[(REASON, reason)],
        violations=[Violation(rule, location, name, WARNING, reason, code=code)],
        source="error",
        reason=reason,
    )


def not_recorded(check: RequestCheck, method: str, path: str) -> Answer:
    """R9: a request matching no recorded interaction, on an endpoint datasets do not answer."""
    what = "this endpoint" if check.endpoint == "other" else f"the {check.endpoint} endpoint"
    reason = f"no recorded interaction for {method} {path} and {what} is not answered from datasets"
    return diagnostic("R9", "not-recorded", "path", path, reason, message="Not recorded: " + reason)


def unsupported_contract(items: str, contract: str | None) -> Answer:
    """R6: a listing under a contract version the service does not support is an empty 200 (as
    observed); ``items`` names the list ("achievements", "titles")."""
    shown = "unsupported contract version" if contract is None else f"contract version {contract!r} is not supported"
    reason = f"R6: {shown}; empty list as observed"
    return Answer(
        status=200,
        body={items: [], "pagingInfo": {"continuationToken": None, "totalRecords": 0}},
        headers=[(REASON, reason)],
        violations=[Violation("R6", "header", "x-xbl-contract-version", WARNING, reason, code="contract-version")],
        reason=reason,
    )


def from_dataset(body: Any, reasons: Iterable[str] = (), violations: list[Violation] | None = None,
                 *, encoded: bool = False) -> Answer:
    """A 200 computed from a dataset; the reasons (a locale fallback, a coverage gap) go in
    ``X-Xblreplay-Reason``. ``encoded``: ``body`` is a page of encoded items (``Answer.page``)."""
    reason = "; ".join(r for r in reasons if r)
    return Answer(status=200, body=None if encoded else body, page=body if encoded else None,
                  headers=[(REASON, reason)] if reason else [], violations=violations or [], reason=reason)


def updated(changed: bool) -> Answer:
    """A progress update: 200 (empty) when something changed, 304 (empty) when nothing did."""
    if changed:
        return Answer(status=200)
    return Answer(status=304, reason="no change: already unlocked or not above the stored progress")


def recorded(interaction: dict[str, Any], note: str = "") -> Answer:
    """The recorded response of an interaction, as recorded (``note``: why this one, R9)."""
    response = interaction["response"]
    headers = [(k, str(v)) for k, v in (response.get("headers") or {}).items()]
    if "body" in response:
        body: Any = response["body"]
    else:
        body = (response.get("body_text") or "").encode("utf-8") or None
    if note:
        headers.append((REASON, note))
    return Answer(status=int(response["status"]), body=body, headers=headers, source="interaction", reason=note)


def throttled(xuid: int, title: str, window: str, period: float, limit: int, current: int,
              retry_after: int) -> Answer:
    """R10: 429 with ``Retry-After`` and the service's rate-limit body."""
    message = (f"{window} limit reached for xuid({xuid}) and title {title}: {current} requests in "
               f"the last {period:g} s (limit {limit}); retry after {retry_after} s")
    return Answer(
        status=429,
        source="throttle",
        headers=[("Retry-After", str(retry_after))],
        body={"version": 1, "currentRequests": current, "maxRequests": limit,
              "periodInSeconds": math.ceil(period), "limitType": "rate"},
        violations=[Violation("R10", "traffic", window, ERROR, message, "throttled")],
        reason="R10: " + message,
    )


def injected(status: int, message: str, reason: str, retry_after: int | None = None) -> Answer:
    """A server error a fault profile injects, in the service's error shape (no error code)."""
    headers = [] if retry_after is None else [("Retry-After", str(retry_after))]
    return Answer(status=status, source="fault", headers=headers, body=service_error(None, message),
                  reason=reason)


def proxy_error(status: int, reason: str) -> Answer:
    """An answer about the proxy itself (500: an internal error; 502: no configuration in force),
    in the service's error shape, saying why."""
    return Answer(status=status, body=service_error(status, reason), headers=[(REASON, reason)],
                  source="error", reason=reason)
