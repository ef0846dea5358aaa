"""The official OTLP/JSON examples decode to exactly the expected model, through JSON and,
converted with json_format as an independent oracle, through protobuf."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from argus.proto.otlp import Encoding, Signal, Validation, parse_request, to_model, validate
from argus.storage.model import (
    ExponentialBuckets,
    ExponentialHistogramValue,
    HistogramValue,
    LogRecord,
    MetricKind,
    MetricPoint,
    Resource,
    Scope,
    Span,
    SpanKind,
    StatusCode,
    Temporality,
)
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from .builders import from_otlp_json

# The official examples, copied from open-telemetry/opentelemetry-proto (see SOURCE_COMMIT).
EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "otlp-examples"

RESOURCE = Resource(attributes={"service.name": "my.service"})
SCOPE = Scope(
    name="my.library",
    version="1.0.0",
    attributes={"my.scope.attribute": "some scope attribute"},
)
T0 = 1544712660300000000

EXPECTED_SPANS = [
    Span(
        trace_id="5b8efff798038103d269b633813fc60c",
        span_id="eee19b7ec3c1b174",
        parent_span_id="eee19b7ec3c1b173",
        name="I'm a server span",
        start_time_unix_nano=1544712660000000000,
        end_time_unix_nano=1544712661000000000,
        kind=SpanKind.SERVER,
        attributes={"my.span.attr": "some value"},
        resource=RESOURCE,
        scope=SCOPE,
        trace_state="",
        flags=0,
        dropped_attributes_count=0,
        events=[],
        dropped_events_count=0,
        links=[],
        dropped_links_count=0,
        status_code=StatusCode.UNSET,
        status_message="",
    )
]

EXPECTED_POINTS = [
    MetricPoint(
        name="my.counter",
        kind=MetricKind.SUM,
        unit="1",
        description="I am a Counter",
        temporality=Temporality.DELTA,
        is_monotonic=True,
        value=5.0,
        start_time_unix_nano=T0,
        time_unix_nano=T0,
        attributes={"my.counter.attr": "some value"},
        resource=RESOURCE,
        scope=SCOPE,
    ),
    MetricPoint(
        name="my.gauge",
        kind=MetricKind.GAUGE,
        unit="1",
        description="I am a Gauge",
        value=10.0,
        time_unix_nano=T0,
        attributes={"my.gauge.attr": "some value"},
        resource=RESOURCE,
        scope=SCOPE,
    ),
    MetricPoint(
        name="my.histogram",
        kind=MetricKind.HISTOGRAM,
        unit="1",
        description="I am a Histogram",
        temporality=Temporality.DELTA,
        histogram=HistogramValue(
            count=2, sum=2.0, bucket_counts=[1, 1], explicit_bounds=[1.0], min=0.0, max=2.0
        ),
        start_time_unix_nano=T0,
        time_unix_nano=T0,
        attributes={"my.histogram.attr": "some value"},
        resource=RESOURCE,
        scope=SCOPE,
    ),
    MetricPoint(
        name="my.exponential.histogram",
        kind=MetricKind.EXPONENTIAL_HISTOGRAM,
        unit="1",
        description="I am an Exponential Histogram",
        temporality=Temporality.DELTA,
        exponential_histogram=ExponentialHistogramValue(
            count=3,
            sum=10.0,
            scale=0,
            zero_count=1,
            positive=ExponentialBuckets(offset=1, bucket_counts=[0, 2]),
            negative=ExponentialBuckets(offset=0, bucket_counts=[]),
            min=0.0,
            max=5.0,
            zero_threshold=0.0,
        ),
        start_time_unix_nano=T0,
        time_unix_nano=T0,
        attributes={"my.exponential.histogram.attr": "some value"},
        resource=RESOURCE,
        scope=SCOPE,
    ),
]

EXPECTED_LOGS = [
    LogRecord(
        time_unix_nano=T0,
        observed_time_unix_nano=T0,
        severity_number=10,
        severity_text="Information",
        trace_id="5b8efff798038103d269b633813fc60c",
        span_id="eee19b7ec3c1b174",
        body="Example log record",
        attributes={
            "string.attribute": "some string",
            "boolean.attribute": True,
            "int.attribute": 10,
            "double.attribute": 637.704,
            "array.attribute": ["many", "values"],
            "map.attribute": {"some.map.key": "some value"},
        },
        resource=RESOURCE,
        scope=SCOPE,
    )
]

CASES: list[tuple[Signal, str, type[Any], list[Any]]] = [
    (Signal.TRACES, "trace.json", ExportTraceServiceRequest, EXPECTED_SPANS),
    (Signal.METRICS, "metrics.json", ExportMetricsServiceRequest, EXPECTED_POINTS),
    (Signal.LOGS, "logs.json", ExportLogsServiceRequest, EXPECTED_LOGS),
]


@pytest.mark.parametrize(("signal", "file", "pb_class", "expected"), CASES)
def test_official_example_via_json(
    signal: Signal, file: str, pb_class: type[Any], expected: list[Any]
) -> None:
    parsed = parse_request(signal, Encoding.JSON, (EXAMPLES / file).read_bytes())
    assert validate(signal, parsed) == Validation(len(expected), 0, "")
    assert to_model(signal, parsed) == expected


@pytest.mark.parametrize(("signal", "file", "pb_class", "expected"), CASES)
def test_official_example_via_protobuf(
    signal: Signal, file: str, pb_class: type[Any], expected: list[Any]
) -> None:
    message = from_otlp_json(orjson.loads((EXAMPLES / file).read_bytes()), pb_class())
    parsed = parse_request(signal, Encoding.PROTOBUF, message.SerializeToString())
    assert validate(signal, parsed) == Validation(len(expected), 0, "")
    assert to_model(signal, parsed) == expected


def test_types_of_converted_values() -> None:
    """Equality would let 5 pass for 5.0 and 1 for True: check the Python types too."""
    points = to_model(
        Signal.METRICS,
        parse_request(Signal.METRICS, Encoding.JSON, (EXAMPLES / "metrics.json").read_bytes()),
    )
    assert type(points[0].value) is float
    assert points[2].histogram is not None
    assert [type(b) for b in points[2].histogram.explicit_bounds] == [float]
    logs = to_model(
        Signal.LOGS,
        parse_request(Signal.LOGS, Encoding.JSON, (EXAMPLES / "logs.json").read_bytes()),
    )
    attributes = logs[0].attributes
    assert type(attributes["int.attribute"]) is int
    assert type(attributes["boolean.attribute"]) is bool
    assert type(attributes["double.attribute"]) is float


def test_items_share_resource_and_scope_objects() -> None:
    points = to_model(
        Signal.METRICS,
        parse_request(Signal.METRICS, Encoding.JSON, (EXAMPLES / "metrics.json").read_bytes()),
    )
    assert all(p.resource is points[0].resource and p.scope is points[0].scope for p in points)
