"""The receiver-independent ingest path: decode, validate, make durable.

Receivers (HTTP now, gRPC later) hand over a decompressed body; `Ingest.accept` answers
how many items were taken and why others were not, and returns only once the accepted
request is in the write-ahead log. Indexers turn the log into store rows afterwards.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
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
from ..proto.time_window import TimeBounds, TimeBoundSettings, TimeWindow
from .attribute_limits import AttributeLimits, LimitCounts
from .errors import InvalidRequest, Unavailable
from .ratelimit import TenantRateLimiter
from .telemetry import IngestMetrics
from .wal import WalError, WalPosition, WalRecord, WriteAheadLog

# How an encoding is tagged in the write-ahead log.
ENCODING_CODES: dict[Encoding, int] = {Encoding.PROTOBUF: 1, Encoding.JSON: 2}
_ENCODINGS_BY_CODE = {code: encoding for encoding, code in ENCODING_CODES.items()}

# Bodies above this are decoded in a worker thread so the event loop keeps serving.
_INLINE_DECODE_BYTES = 512 * 1024


def _decode_and_validate(
    signal: Signal, encoding: Encoding, body: bytes, window: TimeWindow | None
) -> Validation:
    try:
        return validate(signal, parse_request(signal, encoding, body), window)
    except DecodeError as exc:
        raise InvalidRequest(str(exc)) from None


@dataclass(frozen=True, slots=True)
class Backlog:
    """How far a signal's indexer is behind its log, and how far it may fall behind."""

    indexed: Callable[[], WalPosition]
    segment_bytes: int
    limit_bytes: int

    def unindexed_bytes(self, durable_end: WalPosition) -> int:
        # O(1) estimate for the request path: whole segments counted at their nominal size.
        applied = self.indexed()
        segments = durable_end.segment - applied.segment
        return segments * self.segment_bytes + durable_end.offset - applied.offset


class Ingest:
    def __init__(
        self,
        wals: Mapping[Signal, WriteAheadLog],
        backlogs: Mapping[Signal, Backlog] | None = None,
        metrics: IngestMetrics | None = None,
        limiter: TenantRateLimiter | None = None,
        time_bounds: TimeBoundSettings | None = None,
    ) -> None:
        """`time_bounds` (e.g. the limits settings): how far in the past or future item
        timestamps may lie; items outside are rejected (partial success). None: no bounds."""
        self._wals = wals
        self._limiter = limiter
        self._time_bounds = TimeBounds.from_settings(time_bounds)
        self._logged_bounds = (
            self._time_bounds.max_past_nanos, self._time_bounds.max_future_nanos
        )
        self._backlogs = backlogs or {}
        self._metrics = metrics or IngestMetrics.create()

    async def accept(
        self, signal: Signal, tenant: str, encoding: Encoding, body: bytes
    ) -> Validation:
        """Validate and log a request. Raises InvalidRequest (nothing stored), Throttled
        (the tenant's rate limit) or Unavailable (nothing acknowledged; the client should
        retry)."""
        self._refuse_when_behind(signal)
        if self._limiter is not None:
            self._limiter.admit_request(tenant)
        # The window is fixed here and the receive time logged with the request, so the
        # indexer, converting it later, skips exactly the items rejected now.
        received = time.time_ns()
        window = self._time_bounds.window(received)
        if len(body) > _INLINE_DECODE_BYTES:
            result = await asyncio.to_thread(_decode_and_validate, signal, encoding, body, window)
        else:
            result = _decode_and_validate(signal, encoding, body, window)
        if self._limiter is not None:
            self._limiter.admit_items(tenant, result.accepted)
        if result.accepted:
            started = time.perf_counter()
            try:
                await self._wals[signal].append(
                    tenant, ENCODING_CODES[encoding], body, received_unix_nano=received,
                    time_bounds=self._logged_bounds,
                )
            except WalError as exc:
                raise Unavailable(str(exc)) from None
            self._metrics.wal_append_seconds.labels(signal.value).observe(
                time.perf_counter() - started
            )
        items = self._metrics.items
        items.labels(signal.value, tenant, "accepted").inc(result.accepted)
        items.labels(signal.value, tenant, "rejected").inc(result.rejected)
        if result.rejected:
            self._count_rejected(signal, tenant, result)
        return result

    def _count_rejected(self, signal: Signal, tenant: str, result: Validation) -> None:
        by_reason = self._metrics.rejected_items
        too_old, in_future = result.rejected_too_old, result.rejected_in_future
        invalid = result.rejected - too_old - in_future
        if invalid:
            by_reason.labels(signal.value, tenant, "invalid").inc(invalid)
        if too_old:
            by_reason.labels(signal.value, tenant, "timestamp_too_old").inc(too_old)
        if in_future:
            by_reason.labels(signal.value, tenant, "timestamp_in_future").inc(in_future)

    def _refuse_when_behind(self, signal: Signal) -> None:
        """Backpressure: while the indexer is further behind than allowed, refuse with a
        retryable error instead of letting the unindexed log grow without bound."""
        backlog = self._backlogs.get(signal)
        if backlog is None:
            return
        behind = backlog.unindexed_bytes(self._wals[signal].durable_end)
        if behind > backlog.limit_bytes:
            raise Unavailable(
                f"{signal.value} indexing is {behind} bytes behind (limit"
                f" {backlog.limit_bytes}); retry later",
                retry_after_seconds=max(1, min(30, behind // max(1, backlog.limit_bytes))),
            )


def record_converter(
    signal: Signal,
    limits: AttributeLimits | None = None,
    on_limited: Callable[[LimitCounts], None] | None = None,
    time_bounds: TimeBoundSettings | None = None,
) -> Callable[[WalRecord], Sequence[Any]]:
    """The indexer's conversion for one signal: a WAL record back into model items, with
    the attribute limits applied. With `time_bounds` (the receiver's), items outside the
    window around the record's receive time are skipped, as the receiver rejected them;
    a record without a receive time (older log format) is converted without a window.
    The bounds logged with a record win over `time_bounds`, which may have been changed
    since the receiver used them."""
    bounds = TimeBounds.from_settings(time_bounds)

    def convert(record: WalRecord) -> Sequence[Any]:
        encoding = _ENCODINGS_BY_CODE[record.encoding]
        received = record.received_unix_nano
        if received is None:
            window = None
        elif record.time_bounds is not None:
            window = TimeBounds(*record.time_bounds).window(received)
        else:
            window = bounds.window(received)
        items = to_model(signal, parse_request(signal, encoding, record.body), window)
        if limits is not None:
            counts = limits.apply(items)
            if on_limited is not None and (counts.dropped or counts.truncated):
                on_limited(counts)
        return items

    return convert
