"""A real OpenTelemetry SDK app exports over OTLP/HTTP; every field reads back via GraphQL."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.metrics import Observation
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import Counter, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import NonRecordingSpan, TraceState

from tests.harness import ArgusProcess, eventually

SPAN_FIELDS = """
  traceId spanId parentSpanId traceState flags name kind service
  startTimeUnixNano endTimeUnixNano durationNano attributes droppedAttributesCount
  events { timeUnixNano name attributes droppedAttributesCount } droppedEventsCount
  links { traceId spanId traceState attributes droppedAttributesCount flags } droppedLinksCount
  statusCode statusMessage
  resource { attributes droppedAttributesCount schemaUrl }
  scope { name version attributes droppedAttributesCount schemaUrl }
"""


def _resource(service: str) -> Resource:
    return Resource.create({"service.name": service, "deployment.environment.name": "test"})


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x")


def test_spans_round_trip_every_field(argus: ArgusProcess) -> None:
    service = f"sdk-traces-{uuid.uuid4().hex[:8]}"
    provider = TracerProvider(
        resource=_resource(service), span_limits=SpanLimits(max_span_attributes=8)
    )
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{argus.otlp_url}/v1/traces"))
    )
    tracer = provider.get_tracer("roundtrip.tests", "1.2.3")
    remote_parent = SpanContext(
        trace_id=uuid.uuid4().int,
        span_id=0xEEE19B7EC3C1B173,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("vendor", "value")]),
    )
    linked = SpanContext(
        trace_id=0x1234, span_id=0x5678, is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    context = trace_api.set_span_in_context(NonRecordingSpan(remote_parent))
    with tracer.start_as_current_span(
        "GET /checkout",
        context=context,
        kind=SpanKind.SERVER,
        links=[Link(linked, {"link.kind": "follows"})],
    ) as server:
        for index in range(4):  # 4 + 6 attributes against a limit of 8: the 2 oldest dropped
            server.set_attribute(f"extra.{index}", index)
        server.set_attributes(
            {
                "http.request.method": "GET",
                "http.response.status_code": 500,
                "sampled.ratio": 0.25,
                "cache.hit": False,
                "tags": ["a", "b"],
                "retries": [1, 2, 3],
            }
        )
        server.add_event("exception", {"exception.type": "ValueError", "attempt": 2})
        with tracer.start_as_current_span("SELECT orders", kind=SpanKind.CLIENT) as client:
            client.set_attribute("db.system", "postgresql")
        server.set_status(Status(StatusCode.ERROR, "card declined"))
    provider.shutdown()

    trace_id = _hex(remote_parent.trace_id, 32)
    query = f"query($id: String!) {{ trace(traceId: $id) {{ traceId spanCount services hasError spans {{ {SPAN_FIELDS} }} }} }}"

    def both_spans() -> dict[str, Any] | None:
        found = argus.graphql(query, {"id": trace_id.upper()})["trace"]
        return found if found and found["spanCount"] == 2 else None

    trace = eventually(both_spans)
    assert trace["traceId"] == trace_id and trace["services"] == [service] and trace["hasError"]
    spans = {span["name"]: span for span in trace["spans"]}
    root, child = spans["GET /checkout"], spans["SELECT orders"]
    assert root["parentSpanId"] == _hex(remote_parent.span_id, 16)
    assert root["traceState"] == "vendor=value"
    assert root["kind"] == "SERVER" and child["kind"] == "CLIENT"
    assert root["service"] == service
    assert root["statusCode"] == "ERROR" and root["statusMessage"] == "card declined"
    assert child["parentSpanId"] == root["spanId"] and child["traceId"] == trace_id
    assert int(root["endTimeUnixNano"]) - int(root["startTimeUnixNano"]) == int(root["durationNano"])
    assert int(root["startTimeUnixNano"]) <= int(child["startTimeUnixNano"])
    # The Python SDK exports only the "parent is remote" bits (0x100 known, 0x200 remote).
    assert int(root["flags"]) == 0x300 and int(child["flags"]) == 0x100
    attributes = root["attributes"]
    assert attributes["http.request.method"] == "GET"
    assert attributes["http.response.status_code"] == 500
    assert attributes["sampled.ratio"] == 0.25 and attributes["cache.hit"] is False
    assert attributes["tags"] == ["a", "b"] and attributes["retries"] == [1, 2, 3]
    assert len(attributes) == 8 and root["droppedAttributesCount"] == 2
    assert "extra.0" not in attributes and attributes["extra.3"] == 3
    (event,) = root["events"]
    assert event["name"] == "exception"
    assert event["attributes"] == {"exception.type": "ValueError", "attempt": 2}
    assert int(event["timeUnixNano"]) >= int(root["startTimeUnixNano"])
    (link,) = root["links"]
    assert link["traceId"] == _hex(0x1234, 32) and link["spanId"] == _hex(0x5678, 16)
    assert link["attributes"] == {"link.kind": "follows"}
    assert root["droppedEventsCount"] == 0 and root["droppedLinksCount"] == 0
    resource = root["resource"]["attributes"]
    assert resource["service.name"] == service
    assert resource["telemetry.sdk.language"] == "python"
    assert root["scope"]["name"] == "roundtrip.tests" and root["scope"]["version"] == "1.2.3"

    summaries = argus.graphql(
        "query($s: String!) { traces(filter: {service: $s}) { traceId rootName rootService spanCount hasError } }",
        {"s": service},
    )["traces"]
    assert summaries == [
        {"traceId": trace_id, "rootName": "GET /checkout", "rootService": service,
         "spanCount": 2, "hasError": True}
    ]
    services = argus.graphql("{ services { name operations } }")["services"]
    assert {"name": service, "operations": ["GET /checkout", "SELECT orders"]} in services


POINT_FIELDS = """
  name description unit kind temporality isMonotonic labels attributes
  startTimeUnixNano timeUnixNano flags value intValue
  histogram { count sum min max bucketCounts explicitBounds }
  exponentialHistogram { count sum min max scale zeroCount zeroThreshold
                         positive { offset bucketCounts } negative { offset bucketCounts } }
  exemplars { timeUnixNano value traceId spanId filteredAttributes }
  resource { attributes } scope { name version }
"""


def _points(argus: ArgusProcess, metric: str, service: str) -> list[dict[str, Any]]:
    query = f"""query($m: String!, $s: String!) {{
      metricPoints(metric: $m, matchers: [{{label: "service.name", op: "=", value: $s}}]) {{ {POINT_FIELDS} }}
    }}"""
    return argus.graphql(query, {"m": metric, "s": service})["metricPoints"]  # type: ignore[no-any-return]


def test_metrics_round_trip_every_instrument(argus: ArgusProcess) -> None:
    service = f"sdk-metrics-{uuid.uuid4().hex[:8]}"
    exporter = OTLPMetricExporter(
        endpoint=f"{argus.otlp_url}/v1/metrics",
        preferred_temporality={Counter: AggregationTemporality.DELTA},
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        resource=_resource(service),
        metric_readers=[reader],
        views=[
            View(instrument_name="payload.size", aggregation=ExponentialBucketHistogramAggregation()),
        ],
    )
    meter = provider.get_meter("roundtrip.metrics", "0.9")
    tracer_provider = TracerProvider(resource=_resource(service))
    tracer = tracer_provider.get_tracer("roundtrip.metrics")

    orders = meter.create_counter("orders.placed", unit="{order}", description="orders placed")
    active = meter.create_up_down_counter("requests.active", unit="{request}")
    latency = meter.create_histogram("request.duration", unit="s", description="latency")
    payload = meter.create_histogram("payload.size", unit="By")
    temperature = meter.create_gauge("room.temperature", unit="Cel")
    meter.create_observable_gauge(
        "queue.depth", callbacks=[lambda _options: [Observation(42, {"queue": "email"})]]
    )
    orders.add(3, {"region": "eu"})
    orders.add(4, {"region": "eu"})
    active.add(5)
    active.add(-2)
    with tracer.start_as_current_span("checkout") as span:
        latency.record(0.2, {"route": "/pay"})
        sampled = span.get_span_context()
    latency.record(7.5, {"route": "/pay"})
    for size in (100, 200, 400, 800):
        payload.record(size)
    temperature.set(21.5, {"room": "lab"})
    provider.shutdown()  # exports once

    counter = eventually(lambda: _points(argus, "orders.placed", service))
    (point,) = counter
    assert point["kind"] == "SUM" and point["temporality"] == "DELTA" and point["isMonotonic"]
    assert point["intValue"] == "7" and point["value"] == 7.0
    assert point["unit"] == "{order}" and point["description"] == "orders placed"
    assert point["attributes"] == {"region": "eu"} and point["labels"]["region"] == "eu"
    assert point["labels"]["service.name"] == service
    assert point["scope"] == {"name": "roundtrip.metrics", "version": "0.9"}
    assert 0 < int(point["startTimeUnixNano"]) <= int(point["timeUnixNano"])

    (updown,) = eventually(lambda: _points(argus, "requests.active", service))
    assert updown["kind"] == "SUM" and updown["temporality"] == "CUMULATIVE"
    assert not updown["isMonotonic"] and updown["intValue"] == "3"

    (histogram,) = eventually(lambda: _points(argus, "request.duration", service))
    assert histogram["kind"] == "HISTOGRAM" and histogram["temporality"] == "CUMULATIVE"
    buckets = histogram["histogram"]
    assert buckets["count"] == "2" and buckets["sum"] == 7.7
    assert buckets["min"] == 0.2 and buckets["max"] == 7.5
    bounds = buckets["explicitBounds"]
    assert len(buckets["bucketCounts"]) == len(bounds) + 1
    assert sum(int(count) for count in buckets["bucketCounts"]) == 2
    exemplars = [item for item in histogram["exemplars"] if item["traceId"]]
    assert exemplars and exemplars[0]["traceId"] == _hex(sampled.trace_id, 32)
    assert exemplars[0]["spanId"] == _hex(sampled.span_id, 16) and exemplars[0]["value"] == 0.2

    (exponential,) = eventually(lambda: _points(argus, "payload.size", service))
    assert exponential["kind"] == "EXPONENTIAL_HISTOGRAM"
    expo = exponential["exponentialHistogram"]
    assert expo["count"] == "4" and expo["sum"] == 1500 and expo["min"] == 100 and expo["max"] == 800
    assert sum(int(count) for count in expo["positive"]["bucketCounts"]) == 4

    (gauge,) = eventually(lambda: _points(argus, "room.temperature", service))
    assert gauge["kind"] == "GAUGE" and gauge["value"] == 21.5 and gauge["intValue"] is None
    (observed,) = eventually(lambda: _points(argus, "queue.depth", service))
    assert observed["intValue"] == "42" and observed["attributes"] == {"queue": "email"}

    names = {item["name"]: item for item in argus.graphql("{ metricNames { name kind unit } }")["metricNames"]}
    assert names["request.duration"] == {"name": "request.duration", "kind": "HISTOGRAM", "unit": "s"}
    values = argus.graphql(
        '{ labelValues(metric: "orders.placed", label: "region") }'
    )["labelValues"]
    assert "eu" in values


def test_logs_round_trip_every_body_kind(argus: ArgusProcess) -> None:
    service = f"sdk-logs-{uuid.uuid4().hex[:8]}"
    provider = LoggerProvider(resource=_resource(service))
    provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{argus.otlp_url}/v1/logs"))
    )
    logger = provider.get_logger("roundtrip.logs", "2.0")
    tracer = TracerProvider(resource=_resource(service)).get_tracer("t")
    bodies: list[Any] = [
        "charged card ending 4242",
        12345678901234,
        2.5,
        True,
        b"\x00\xffraw",
        ["a", 1, {"nested": [True, None]}],
        {"event": "login", "user": {"id": 7, "roles": ["admin"]}},
    ]
    with tracer.start_as_current_span("handle") as span:
        for index, body in enumerate(bodies):
            logger.emit(
                body=body,
                severity_number=SeverityNumber.WARN,
                severity_text="WARN",
                attributes={"index": index, "user.id": "u-7"},
                event_name="test.event" if index == 0 else None,
            )
        context = span.get_span_context()
    logger.emit(body="no trace here", severity_number=SeverityNumber.DEBUG, severity_text="DEBUG")
    provider.shutdown()

    query = """query($s: String!) { logs(filter: {service: $s}, first: 50) { records {
      timeUnixNano observedTimeUnixNano timestamp severityNumber severityText body bodyText
      attributes droppedAttributesCount flags traceId spanId eventName service
      resource { attributes } scope { name version } } nextCursor } }"""
    records = eventually(
        lambda: (found := argus.graphql(query, {"s": service})["logs"]["records"])
        and len(found) == len(bodies) + 1 and found
    )
    by_index = {record["attributes"].get("index"): record for record in records}
    expected_bytes = {"$bytes": base64.b64encode(b"\x00\xffraw").decode()}
    for index, body in enumerate(bodies):
        record = by_index[index]
        expected = expected_bytes if isinstance(body, bytes) else body
        assert record["body"] == expected, (index, record["body"])
        assert record["severityNumber"] == SeverityNumber.WARN.value
        assert record["severityText"] == "WARN"
        assert record["traceId"] == _hex(context.trace_id, 32)
        assert record["spanId"] == _hex(context.span_id, 16)
        assert record["attributes"]["user.id"] == "u-7"
        assert record["service"] == service
        assert int(record["observedTimeUnixNano"]) > 0
    assert by_index[0]["bodyText"] == "charged card ending 4242"
    assert by_index[0]["eventName"] == "test.event"
    assert by_index[0]["scope"] == {"name": "roundtrip.logs", "version": "2.0"}
    untraced = by_index[None]
    assert untraced["traceId"] == "" and untraced["severityText"] == "DEBUG"

    by_trace = argus.graphql(
        "query($t: String!) { logs(filter: {traceId: $t}) { records { bodyText } } }",
        {"t": _hex(context.trace_id, 32)},
    )["logs"]["records"]
    assert len(by_trace) == len(bodies)
    warn_or_worse = argus.graphql(
        'query($s: String!) { logs(filter: {service: $s, minSeverity: "WARN", contains: "CARD ending"}) { records { bodyText } } }',
        {"s": service},
    )["logs"]["records"]
    assert warn_or_worse == [{"bodyText": "charged card ending 4242"}]
