"""Imports a ``mitmdump -w`` flow file into cassettes (the glue module that reads mitmproxy files)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from mitmproxy import exceptions, http, io

from .. import bounds
from ..model import HOST
from ..proxy import exchange
from ..recording import BACKLOG_BYTES, Recorder, UnreadableBody, decode_body
from ..redact import redact_url
from ..vlog import wire_url
from .translate import lowercase_headers, reply_of


class FlowFileError(Exception):
    """A flow file that cannot be read (missing, unreadable, not a mitmproxy flow file)."""


class UnreadableFlow(FlowFileError):
    """A flow whose response body is not read (over ``max_body``, not decodable, an unknown
    Content-Encoding): it is not recorded; the other flows are."""


def import_flows(
    flow_file: str | Path, cassette_dir: str | Path, on_error: Callable[[Exception], None] | None = None,
    max_body: int = bounds.MAX_BODY_BYTES,
) -> int:
    """Records every answered flow for the achievements host; returns how many were recorded.

    Bodies are decoded as the proxy decodes them (:func:`recorder.decode_body`): a flow whose
    body is over ``max_body`` bytes, or cannot be decoded, is not recorded and is reported as an
    :class:`UnreadableFlow`. Without ``on_error`` the first problem is raised once everything
    else is written. A file that cannot be read as flows raises :class:`FlowFileError` (flows
    read before a damaged part are still recorded).
    """
    try:
        f = open(flow_file, "rb")
    except OSError as exc:
        raise FlowFileError(f"{flow_file}: cannot read flow file: {exc.strerror or exc}") from None
    recorder = Recorder(cassette_dir, on_error=on_error)
    count = 0
    try:
        with f:
            for flow in _flows(f, flow_file):
                if not isinstance(flow, http.HTTPFlow) or flow.response is None:
                    continue
                request = flow.request
                if request.pretty_host != HOST:
                    continue
                reply = reply_of(flow.response)
                try:
                    body = decode_body(reply.raw, reply.headers.get("content-encoding"), max_body)
                except UnreadableBody as exc:
                    recorder.report(UnreadableFlow(f"{flow_file}: {request.method} {wire_url(redact_url(request.pretty_url))}: "
                                                   f"not recorded: {exc.reason}"))
                    continue
                recorder.wait_room(BACKLOG_BYTES)  # read ahead of the writer only so much
                ended = datetime.fromtimestamp(reply.ended or request.timestamp_start, timezone.utc)
                recorder.record_exchange(exchange(request.method, request.pretty_url, lowercase_headers(request.headers),
                                                  request.timestamp_start, reply, body, ended))
                count += 1
    finally:
        recorder.close()
    if on_error is None and recorder.errors:
        raise recorder.errors[0]
    return count


def _flows(f, flow_file: str | Path):
    try:
        yield from io.FlowReader(f).stream()
    except exceptions.FlowReadException as exc:
        raise FlowFileError(f"{flow_file}: not a mitmproxy flow file (`mitmdump -w` writes them): {exc}") from None
    except OSError as exc:
        raise FlowFileError(f"{flow_file}: cannot read flow file: {exc.strerror or exc}") from None
