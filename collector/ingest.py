"""The receiver-independent ingest path: decode, validate, make durable.

Receivers (HTTP now, gRPC later) hand over a decompressed body; `Ingest.accept` answers
how many items were taken and why others were not, and returns only once the accepted
request is in the write-ahead log. Indexers turn the log into store rows afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from ..proto.otlp import (
    DecodeError,
    Encoding,
    Signal,
    Validation,
    parse_request,
    to_model,
    validate,
)
from .errors import InvalidRequest, Unavailable
from .wal import WalError, WalRecord, WriteAheadLog

# How an encoding is tagged in the write-ahead log.
ENCODING_CODES: dict[Encoding, int] = {Encoding.PROTOBUF: 1, Encoding.JSON: 2}
_ENCODINGS_BY_CODE = {code: encoding for encoding, code in ENCODING_CODES.items()}

# Bodies above this are decoded in a worker thread so the event loop keeps serving.
_INLINE_DECODE_BYTES = 512 * 1024


def _decode_and_validate(signal: Signal, encoding: Encoding, body: bytes) -> Validation:
    try:
        return validate(signal, parse_request(signal, encoding, body))
    except DecodeError as exc:
        raise InvalidRequest(str(exc)) from None


class Ingest:
    def __init__(self, wals: Mapping[Signal, WriteAheadLog]) -> None:
        self._wals = wals

    async def accept(
        self, signal: Signal, tenant: str, encoding: Encoding, body: bytes
    ) -> Validation:
        """Validate and log a request. Raises InvalidRequest (nothing stored) or
        Unavailable (nothing acknowledged; the client should retry)."""
        if len(body) > _INLINE_DECODE_BYTES:
            result = await asyncio.to_thread(_decode_and_validate, signal, encoding, body)
        else:
            result = _decode_and_validate(signal, encoding, body)
        if result.accepted:
            try:
                await self._wals[signal].append(tenant, ENCODING_CODES[encoding], body)
            except WalError as exc:
                raise Unavailable(str(exc)) from None
        return result


def record_converter(signal: Signal) -> Any:
    """The indexer's conversion for one signal: a WAL record back into model items."""

    def convert(record: WalRecord) -> Sequence[Any]:
        encoding = _ENCODINGS_BY_CODE[record.encoding]
        return to_model(signal, parse_request(signal, encoding, record.body))

    return convert
