"""gzip request bodies, inflated under a size limit so that a gzip bomb is refused after
at most `limit` bytes of output instead of being inflated whole."""

from __future__ import annotations

import zlib

from .errors import InvalidRequest, PayloadTooLarge

_GZIP_WBITS = 16 + zlib.MAX_WBITS


def gunzip_limited(data: bytes, limit: int) -> bytes:
    """Inflate every gzip member of `data`; PayloadTooLarge past `limit` output bytes."""
    parts: list[bytes] = []
    size = 0
    remaining = data
    while remaining:
        inflater = zlib.decompressobj(_GZIP_WBITS)
        try:
            chunk = inflater.decompress(remaining, limit - size + 1)
        except zlib.error as exc:
            raise InvalidRequest(f"invalid gzip body: {exc}") from None
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"decompressed body exceeds the limit of {limit} bytes")
        if not inflater.eof:
            raise InvalidRequest("invalid gzip body: truncated stream")
        parts.append(chunk)
        remaining = inflater.unused_data
    return b"".join(parts)
