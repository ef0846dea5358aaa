"""Each validation rule, in both encodings: the item is rejected and counted, the rest is
accepted, the message says why, and to_model skips exactly the rejected items."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from argus.proto import rules
from argus.proto.otlp import Encoding, Signal, Validation, parse_request, to_model, validate
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from .builders import LINK_SPAN_ID, LINK_TRACE_ID, SPAN_ID, TRACE_ID, to_otlp_json


def _check(signal: Signal, message: Message) -> tuple[Validation, list[Any]]:
    """Validate and convert in both encodings; they must agree. Returns the result."""
    results = []
    for encoding, body in (
        (Encoding.PROTOBUF, message.SerializeToString()),
        (Encoding.JSON, to_otlp_json(message)),
    ):
        result = validate(signal, parse_request(signal, encoding, body))
        items = to_model(signal, parse_request(signal, encoding, body))
        assert len(items) == result.accepted
        results.append((result, items))
    assert results[0] == results[1]
    return results[0]


def _spans(*spans: dict[str, Any]) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    scope_spans = request.resource_spans.add().scope_spans.add()
    for span in spans:
        links = span.pop("links", [])
        added = scope_spans.spans.add(**span)
        for link in links:
            added.links.add(**link)
    return request


GOOD = {"trace_id": TRACE_ID, "span_id": SPAN_ID}


@pytest.mark.parametrize(
    ("span", "reason"),
    [
        ({"trace_id": b"", "span_id": SPAN_ID}, rules.BAD_TRACE_ID),
        ({"trace_id": bytes(16), "span_id": SPAN_ID}, rules.BAD_TRACE_ID),
        ({"trace_id": TRACE_ID + b"\x01", "span_id": SPAN_ID}, rules.BAD_TRACE_ID),
        ({"trace_id": TRACE_ID, "span_id": b""}, rules.BAD_SPAN_ID),
        ({"trace_id": TRACE_ID, "span_id": bytes(8)}, rules.BAD_SPAN_ID),
        ({"trace_id": TRACE_ID, "span_id": SPAN_ID[:7]}, rules.BAD_SPAN_ID),
        ({**GOOD, "parent_span_id": SPAN_ID[:4]}, rules.BAD_PARENT_SPAN_ID),
        ({**GOOD, "links": [{"trace_id": b"", "span_id": LINK_SPAN_ID}]}, rules.BAD_LINK),
        ({**GOOD, "links": [{"trace_id": LINK_TRACE_ID, "span_id": bytes(8)}]}, rules.BAD_LINK),
        (
            {
                **GOOD,
                "links": [
                    {"trace_id": LINK_TRACE_ID, "span_id": LINK_SPAN_ID},
                    {"trace_id": LINK_TRACE_ID[:3], "span_id": LINK_SPAN_ID},
                ],
            },
            rules.BAD_LINK,
        ),
    ],
)
def test_span_rules(span: dict[str, Any], reason: str) -> None:
    request = _spans(dict(GOOD, name="before"), dict(span, name="bad"), dict(GOOD, name="after"))
    result, spans = _check(Signal.TRACES, request)
    assert result == Validation(2, 1, f"1 span rejected: {reason}")
    assert [s.name for s in spans] == ["before", "after"]


def test_valid_span_variants_are_accepted() -> None:
    request = _spans(
        dict(GOOD, parent_span_id=SPAN_ID),
        dict(GOOD, parent_span_id=bytes(8)),  # only "empty or 8 bytes" is required
        dict(GOOD, links=[{"trace_id": LINK_TRACE_ID, "span_id": LINK_SPAN_ID}]),
    )
    assert _check(Signal.TRACES, request)[0] == Validation(3, 0, "")


def test_several_reasons_are_counted_each() -> None:
    request = _spans(
        {"trace_id": bytes(16), "span_id": SPAN_ID},
        {"trace_id": b"", "span_id": SPAN_ID},
        {"trace_id": TRACE_ID, "span_id": b""},
        GOOD,
    )
    result, _ = _check(Signal.TRACES, request)
    assert result == Validation(
        1,
        3,
        f"3 spans rejected: 2 with {rules.BAD_TRACE_ID}; 1 with {rules.BAD_SPAN_ID}",
    )


def _json_spans(*spans: dict[str, Any]) -> bytes:
    return orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": list(spans)}]}]})


HEX_TRACE, HEX_SPAN = TRACE_ID.hex(), SPAN_ID.hex()


@pytest.mark.parametrize(
    ("span", "reason"),
    [
        ({"traceId": "zz" * 16, "spanId": HEX_SPAN}, rules.BAD_TRACE_ID),
        ({"traceId": HEX_TRACE[:-1], "spanId": HEX_SPAN}, rules.BAD_TRACE_ID),
        ({"traceId": HEX_TRACE[:30] + " 0", "spanId": HEX_SPAN}, rules.BAD_TRACE_ID),
        ({"traceId": "0x" + HEX_TRACE[2:], "spanId": HEX_SPAN}, rules.BAD_TRACE_ID),
        ({"traceId": HEX_TRACE, "spanId": "g" * 16}, rules.BAD_SPAN_ID),
        ({"traceId": HEX_TRACE, "spanId": SPAN_ID.hex()[:8]}, rules.BAD_SPAN_ID),
        (
            {"traceId": HEX_TRACE, "spanId": HEX_SPAN, "parentSpanId": "xyz"},
            rules.BAD_PARENT_SPAN_ID,
        ),
        (
            {"traceId": HEX_TRACE, "spanId": HEX_SPAN, "links": [{"traceId": "", "spanId": "no"}]},
            rules.BAD_LINK,
        ),
        # Base64, as the plain proto3 JSON mapping would write a 16-byte id, is not hex.
        ({"traceId": "W47/95gDgQPSabYzgT/GDA==", "spanId": HEX_SPAN}, rules.BAD_TRACE_ID),
    ],
)
def test_json_ids_that_are_not_hex_of_the_right_length(span: dict[str, Any], reason: str) -> None:
    good = {"traceId": HEX_TRACE, "spanId": HEX_SPAN}
    parsed = parse_request(Signal.TRACES, Encoding.JSON, _json_spans(good, span, good))
    assert validate(Signal.TRACES, parsed) == Validation(2, 1, f"1 span rejected: {reason}")
    assert len(to_model(Signal.TRACES, parsed)) == 2


def test_json_ids_are_case_insensitive() -> None:
    span = {"traceId": HEX_TRACE.upper(), "spanId": "EeE19b7eC3c1B174"}
    parsed = parse_request(Signal.TRACES, Encoding.JSON, _json_spans(span))
    [converted] = to_model(Signal.TRACES, parsed)
    assert (converted.trace_id, converted.span_id) == (HEX_TRACE, HEX_SPAN)


# ---------------------------------------------------------------------------- logs


@pytest.mark.parametrize(
    ("ids", "reason"),
    [
        ({"trace_id": TRACE_ID[:15]}, rules.BAD_LOG_TRACE_ID),
        ({"trace_id": TRACE_ID + b"\x00"}, rules.BAD_LOG_TRACE_ID),
        ({"span_id": SPAN_ID[:1]}, rules.BAD_LOG_SPAN_ID),
        ({"trace_id": TRACE_ID, "span_id": SPAN_ID * 2}, rules.BAD_LOG_SPAN_ID),
    ],
)
def test_log_rules(ids: dict[str, bytes], reason: str) -> None:
    request = ExportLogsServiceRequest()
    records = request.resource_logs.add().scope_logs.add().log_records
    records.add(severity_text="no ids")
    records.add(severity_text="bad", **ids)
    records.add(severity_text="both ids", trace_id=TRACE_ID, span_id=SPAN_ID)
    result, converted = _check(Signal.LOGS, request)
    assert result == Validation(2, 1, f"1 log record rejected: {reason}")
    assert [r.severity_text for r in converted] == ["no ids", "both ids"]


def test_json_log_id_that_is_not_hex_is_rejected() -> None:
    body = orjson.dumps(
        {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "not hex"}, {}]}]}]}
    )
    parsed = parse_request(Signal.LOGS, Encoding.JSON, body)
    assert validate(Signal.LOGS, parsed) == Validation(
        1, 1, f"1 log record rejected: {rules.BAD_LOG_TRACE_ID}"
    )


# ---------------------------------------------------------------------------- metrics


def _metrics() -> tuple[ExportMetricsServiceRequest, Any]:
    request = ExportMetricsServiceRequest()
    return request, request.resource_metrics.add().scope_metrics.add().metrics


def test_empty_metric_name_rejects_all_its_points() -> None:
    request, metrics = _metrics()
    nameless = metrics.add(name="")
    nameless.sum.data_points.add(as_int=1)
    nameless.sum.data_points.add(as_int=2)
    metrics.add(name="ok").gauge.data_points.add(as_double=1.0)
    result, points = _check(Signal.METRICS, request)
    assert result == Validation(1, 2, f"2 data points rejected: {rules.EMPTY_METRIC_NAME}")
    assert [p.name for p in points] == ["ok"]


def test_metric_without_data_counts_nothing_but_is_noted() -> None:
    request, metrics = _metrics()
    metrics.add(name="empty.metric")
    metrics.add(name="")
    metrics.add(name="ok").gauge.data_points.add(as_double=1.0)
    result, _ = _check(Signal.METRICS, request)
    assert result == Validation(1, 0, "metric 'empty.metric' has no data; metric '' has no data")


def test_number_point_without_value_is_rejected() -> None:
    request, metrics = _metrics()
    gauge = metrics.add(name="g").gauge
    gauge.data_points.add(time_unix_nano=1)
    gauge.data_points.add(time_unix_nano=2, as_int=0)
    total = metrics.add(name="s").sum
    total.data_points.add(time_unix_nano=3, as_double=0.0)
    total.data_points.add(time_unix_nano=4)
    result, points = _check(Signal.METRICS, request)
    assert result == Validation(2, 2, f"2 data points rejected: {rules.NO_NUMBER_VALUE}")
    assert [(p.time_unix_nano, p.value) for p in points] == [(2, 0), (3, 0.0)]


@pytest.mark.parametrize(
    ("point", "reason"),
    [
        ({"bucket_counts": [1], "explicit_bounds": [1.0]}, rules.BAD_BUCKET_COUNTS),
        ({"bucket_counts": [1, 2, 3], "explicit_bounds": [1.0]}, rules.BAD_BUCKET_COUNTS),
        ({"bucket_counts": [0, 0, 0], "explicit_bounds": [2.0, 1.0]}, rules.BAD_EXPLICIT_BOUNDS),
        ({"explicit_bounds": [1.0, 1.0]}, rules.BAD_EXPLICIT_BOUNDS),
        ({"explicit_bounds": [float("nan")]}, rules.BAD_EXPLICIT_BOUNDS),
        ({"explicit_bounds": [1.0, float("nan"), 3.0]}, rules.BAD_EXPLICIT_BOUNDS),
    ],
)
def test_histogram_rules(point: dict[str, Any], reason: str) -> None:
    request, metrics = _metrics()
    histogram = metrics.add(name="h").histogram
    histogram.data_points.add(time_unix_nano=1, bucket_counts=[1, 2], explicit_bounds=[5.0])
    histogram.data_points.add(time_unix_nano=2, **point)
    histogram.data_points.add(time_unix_nano=3)  # no buckets at all is fine
    histogram.data_points.add(time_unix_nano=4, explicit_bounds=[float("-inf"), 0.0, float("inf")])
    result, points = _check(Signal.METRICS, request)
    assert result == Validation(3, 1, f"1 data point rejected: {reason}")
    assert [p.time_unix_nano for p in points] == [1, 3, 4]


def test_notes_are_capped() -> None:
    request, metrics = _metrics()
    for i in range(8):
        metrics.add(name=f"m{i}")
    result, _ = _check(Signal.METRICS, request)
    assert result.message.count("has no data") == 5
    assert result.message.endswith("and 3 more notes")


def test_empty_requests_are_valid() -> None:
    for signal in Signal:
        for encoding, body in ((Encoding.PROTOBUF, b""), (Encoding.JSON, b"{}")):
            parsed = parse_request(signal, encoding, body)
            assert validate(signal, parsed) == Validation(0, 0, "")
            assert to_model(signal, parsed) == []
