"""Who a request counts for: the (xuid, title) key of the rate limits and the call patterns."""

from __future__ import annotations

from ..model import RequestCheck


def caller_key(check: RequestCheck) -> tuple[int, str]:
    """(xuid, title) of a checked request: the title is the request's titleId list, or '*' (see
    README, choices)."""
    q = check.query
    xuid = q.xuid if q is not None else check.path_params.get("xuid", 0)
    ids = q.title_ids if q is not None else None
    if not ids:
        return xuid, "*"
    return xuid, str(ids[0]) if len(ids) == 1 else ",".join([str(t) for t in sorted(ids)])
