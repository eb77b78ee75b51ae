"""Decoding a response body from its Content-Encoding, never past a bound: bodies as the proxy
validates and records them. mitmproxy's own decoding (``get_content``) has no bound: a 1 MB gzip
body can be 1 GiB."""

from __future__ import annotations

import zlib

from .. import bounds

TOO_LARGE = "body-too-large"
UNDECODABLE = "body-undecodable"
UNKNOWN_ENCODING = "unknown-encoding"
_OUT_STEP = 1 << 20  # zlib: output per decoding step
# brotli's and zstd's Python decoders cannot cap their output, so they are fed a few input bytes
# at a time: 16 bytes of brotli hold at most a few of its (at most 16 MiB) meta-blocks, 64 bytes
# of zstd at most 16 of its (at most 128 KiB) blocks. What a step can decode past the bound is
# the most memory a hostile body costs above it.
_BROTLI_STEP = 16
_ZSTD_STEP = 64
_ZSTD_MIN_WINDOW = 8 << 20  # what HTTP's zstd coding allows (RFC 9659); larger only up to the bound


class UnreadableBody(ValueError):
    """A body the proxy does not read: over the bound, not decodable, or in an encoding it does
    not know. ``code`` is the validation log's violation code; str() says why."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class _Over(Exception):
    pass


class _Bad(Exception):
    pass


def _gather(limit: int):
    """A sink for decoded pieces that raises _Over once more than ``limit`` bytes arrived."""
    pieces: list[bytes] = []
    size = 0

    def add(piece: bytes) -> None:
        nonlocal size
        size += len(piece)
        if size > limit:
            pieces.clear()
            raise _Over()
        if piece:
            pieces.append(piece)

    return pieces, add


def _zlib(raw: bytes, limit: int, wbits: int, name: str) -> bytes:
    pieces, add = _gather(limit)
    data = raw
    while True:
        d = zlib.decompressobj(wbits)
        while not d.eof:
            try:
                piece = d.decompress(data, _OUT_STEP)
            except zlib.error as exc:
                raise _Bad(f"{name} data is corrupt ({exc})") from None
            add(piece)
            data = d.unconsumed_tail
            if not piece and not data:
                raise _Bad(f"{name} data ends before its end of stream (truncated)")
        data = d.unused_data
        if name == "gzip" and data[:2] == b"\x1f\x8b":
            continue  # another gzip member
        if data.strip(b"\0"):
            raise _Bad(f"{len(data)} bytes follow the end of the {name} stream")
        return b"".join(pieces)


def _gzip(raw: bytes, limit: int) -> bytes:
    return _zlib(raw, limit, 16 + zlib.MAX_WBITS, "gzip")


def _deflate(raw: bytes, limit: int) -> bytes:
    # "deflate" is zlib-wrapped by the standard, raw deflate from some servers (as mitmproxy reads it).
    wrapped = len(raw) >= 2 and raw[0] & 0x0F == 8 and (raw[0] << 8 | raw[1]) % 31 == 0
    return _zlib(raw, limit, zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS, "deflate")


def _brotli(raw: bytes, limit: int) -> bytes:
    import brotli  # mitmproxy's dependency

    pieces, add = _gather(limit)
    d = brotli.Decompressor()
    view = memoryview(raw)
    try:
        for i in range(0, len(raw), _BROTLI_STEP):
            add(d.process(bytes(view[i:i + _BROTLI_STEP])))
    except brotli.error as exc:
        raise _Bad(f"br data is corrupt ({exc})") from None
    if not d.is_finished():
        raise _Bad("br data ends before its end of stream (truncated)")
    return b"".join(pieces)


def _zstd(raw: bytes, limit: int) -> bytes:
    import zstandard  # mitmproxy's dependency

    pieces, add = _gather(limit)
    window = min(max(_ZSTD_MIN_WINDOW, 1 << (limit - 1).bit_length()), 1 << 31)
    dctx = zstandard.ZstdDecompressor(max_window_size=window)
    data = raw
    try:
        while data:
            try:
                declared = zstandard.frame_content_size(data)
            except zstandard.ZstdError:
                declared = -1  # not a frame header: the decoder says what is wrong
            if declared > limit:
                raise _Over()
            d = dctx.decompressobj()
            view = memoryview(data)
            for i in range(0, len(data), _ZSTD_STEP):
                add(d.decompress(bytes(view[i:i + _ZSTD_STEP])))
                if d.eof:
                    break
            if not d.eof:
                raise _Bad("zstd data ends before its end of frame (truncated)")
            data = d.unused_data + bytes(view[i + _ZSTD_STEP:])
    except zstandard.ZstdError as exc:
        raise _Bad(f"zstd data cannot be decoded ({exc})") from None
    return b"".join(pieces)


_DECODERS = {"gzip": _gzip, "x-gzip": _gzip, "deflate": _deflate, "br": _brotli, "zstd": _zstd}


def decode_body(raw: bytes | None, content_encoding: str | None, limit: int = bounds.MAX_BODY_BYTES) -> bytes:
    """The body as sent, decoded from its Content-Encoding (a list is undone last coding first),
    never holding more than about ``limit`` bytes of output. :class:`UnreadableBody` when the
    body is over ``limit`` bytes as sent or decoded, cannot be decoded (truncated, corrupt), or
    has a coding other than gzip, x-gzip, deflate, br, zstd and identity."""
    body = raw or b""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
    codings = [c for c in codings if c and c not in ("identity", "none")]
    over = f"body over achievements_max_body ({limit} bytes)"
    if len(body) > limit:
        raise UnreadableBody(TOO_LARGE, over + (" as received" if codings else ""))
    done: list[str] = []
    for coding in reversed(codings):
        if not body:
            break  # an empty body is empty in every coding
        decoder = _DECODERS.get(coding)
        if decoder is None:
            raise UnreadableBody(UNKNOWN_ENCODING, f"Content-Encoding {coding!r} is not one the proxy decodes "
                                                   "(gzip, deflate, br, zstd)")
        done.append(coding)
        try:
            body = decoder(body, limit)
        except _Over:
            raise UnreadableBody(TOO_LARGE, f"{over} after {', '.join(done)} decoding") from None
        except _Bad as exc:
            raise UnreadableBody(UNDECODABLE, str(exc)) from None
    return body
