"""Ingest rejects items outside the time window and counts them by reason; the indexer's
converter, working from the logged receive time, skips exactly those items."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from argus.collector.ingest import ENCODING_CODES, Ingest, record_converter
from argus.collector.telemetry import IngestMetrics
from argus.collector.wal import WalPosition, WalRecord, WriteAheadLog
from argus.proto.otlp import Encoding, Signal
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client import CollectorRegistry

HOUR = 3600 * 1_000_000_000


@dataclasses.dataclass(frozen=True)
class _Limits:
    max_past_seconds: float = 3600.0
    max_future_seconds: float = 3600.0


def _request(now: int) -> bytes:
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    starts = {"good": now, "old": now - 2 * HOUR, "future": now + 2 * HOUR, "bad id": now}
    for index, (name, start) in enumerate(starts.items()):
        trace_id = bytes(16) if name == "bad id" else bytes([7]) * 16
        spans.add(
            trace_id=trace_id, span_id=bytes([index + 1]) * 8, name=name,
            start_time_unix_nano=start, end_time_unix_nano=start + 1,
        )
    body: bytes = request.SerializeToString()
    return body


async def test_accept_rejects_counts_and_logs_the_receive_time(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    wals = {signal: WriteAheadLog.open(tmp_path / signal.value, 1 << 20) for signal in Signal}
    ingest = Ingest(wals, metrics=IngestMetrics.create(registry), time_bounds=_Limits())
    before = time.time_ns()
    result = await ingest.accept(Signal.TRACES, "acme", Encoding.PROTOBUF, _request(before))
    after = time.time_ns()

    assert (result.accepted, result.rejected) == (1, 3)
    assert (result.rejected_too_old, result.rejected_in_future) == (1, 1)
    assert "timestamp more than 1h in the past" in result.message
    assert "timestamp more than 1h in the future" in result.message

    def rejected(reason: str) -> float | None:
        labels = {"signal": "traces", "tenant": "acme", "reason": reason}
        return registry.get_sample_value("argus_ingest_items_rejected_total", labels)

    assert (rejected("timestamp_too_old"), rejected("timestamp_in_future")) == (1, 1)
    assert rejected("invalid") == 1

    (record,) = wals[Signal.TRACES].read(WalPosition(1, 0), 1 << 30)
    assert record.received_unix_nano is not None
    assert before <= record.received_unix_nano <= after
    convert = record_converter(Signal.TRACES, time_bounds=_Limits())
    assert [span.name for span in convert(record)] == ["good"]
    for wal in wals.values():
        wal.close()


def test_converter_judges_by_the_logged_receive_time_not_the_clock() -> None:
    received = time.time_ns() - 10 * HOUR  # converted, say, after a long outage
    body = _request(received)
    record = _record(body, received)
    convert = record_converter(Signal.TRACES, time_bounds=_Limits())
    assert [span.name for span in convert(record)] == ["good"]
    # A record from before the log kept receive times is converted without a window.
    old_format = dataclasses.replace(record, received_unix_nano=None)
    assert [span.name for span in convert(old_format)] == ["good", "old", "future"]
    # And without bounds configured nothing is judged.
    assert len(record_converter(Signal.TRACES)(record)) == 3


def _record(body: bytes, received: int) -> WalRecord:
    return WalRecord(
        WalPosition(1, 0), WalPosition(1, 1), "acme", ENCODING_CODES[Encoding.PROTOBUF], body,
        received,
    )


def test_the_indexer_applies_the_bounds_logged_with_the_record_not_todays_settings() -> None:
    from argus.collector.ingest import ENCODING_CODES, record_converter
    from argus.collector.wal import WalPosition, WalRecord
    from argus.proto.otlp import Encoding, Signal

    from argus.config import LimitSettings
    from tests.e2e.test_http_receiver import _trace_request

    body = _trace_request("bounds", [b"\x01" * 16])  # a span starting at 1_700_000_000 s
    received = 1_700_000_000 * 10**9 + 2 * 3600 * 10**9  # two hours later
    record = WalRecord(
        WalPosition(1, 0), WalPosition(1, 1), "t", ENCODING_CODES[Encoding.PROTOBUF], body,
        received_unix_nano=received, time_bounds=(0, 0),  # accepted with no past bound
    )
    # Since then the operator set a one-hour past bound: the acknowledged span stays.
    convert = record_converter(Signal.TRACES, time_bounds=LimitSettings(max_past_seconds=3600))
    assert len(convert(record)) == 1
    tightened = WalRecord(
        record.position, record.next_position, "t", record.encoding, body,
        received_unix_nano=received, time_bounds=(3600 * 10**9, 0),
    )
    assert convert(tightened) == []
