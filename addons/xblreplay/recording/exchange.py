"""One recorded exchange: the request and response as the recorder takes them, and its stamp."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone


@dataclass(frozen=True, slots=True)
class Exchange:
    """A request and its response, ``body`` already decoded (:func:`decode.decode_body`). It
    crosses the pipe to the recorder child as it is (pickled)."""

    method: str
    url: str
    request_headers: Mapping[str, str]
    status: int
    response_headers: Mapping[str, str]
    body: bytes
    content_type: str | None
    latency_ms: float
    recorded_at: datetime | str | None = None  # None: now, when recorded


def timestamp(value: datetime | str | None) -> str:
    """``recorded_at`` as the cassette writes it (UTC, to the second); None is now."""
    if isinstance(value, str):
        return value
    value = value or datetime.now(timezone.utc)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
