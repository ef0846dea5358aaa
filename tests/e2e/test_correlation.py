"""Cross-signal correlation and log analytics end to end: a real OpenTelemetry SDK app
sends traces, logs emitted inside its spans and metrics with exemplars over OTLP/HTTP;
GraphQL walks metric point -> traces -> logs -> trace and summarises the logs."""

from __future__ import annotations

import uuid
from typing import Any

from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from tests.harness import ArgusProcess, eventually

LATENCIES = (3.0, 7.0, 20.0)  # one per default histogram bucket: one exemplar each


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x")


def _emit(argus: ArgusProcess, service: str) -> dict[str, dict[str, str]]:
    """Three checkout requests, each a trace with logs in both of its spans; returns
    trace id -> {span name: span id}."""
    resource = Resource.create({"service.name": service})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{argus.otlp_url}/v1/traces"))
    )
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{argus.otlp_url}/v1/logs"))
    )
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{argus.otlp_url}/v1/metrics"),
        export_interval_millis=3_600_000,
    )
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    tracer = tracer_provider.get_tracer("checkout")
    logger = logger_provider.get_logger("checkout")
    meter = meter_provider.get_meter("checkout")
    duration = meter.create_histogram("checkout.duration", unit="s")
    attempts = meter.create_counter("checkout.attempts")

    traces: dict[str, dict[str, str]] = {}
    route = {"http.route": "/pay"}
    for index, latency in enumerate(LATENCIES):
        with tracer.start_as_current_span("GET /pay", kind=SpanKind.SERVER, attributes=route) as server:
            logger.emit(
                body=f"charged order {1000 + index} for user {index}",
                severity_number=SeverityNumber.INFO, severity_text="INFO",
                attributes={"user.id": f"u-{index % 2}"},
            )  # fmt: skip
            with tracer.start_as_current_span("SELECT orders", kind=SpanKind.CLIENT) as client:
                logger.emit(body=f"query took {5 + index} ms",
                            severity_number=SeverityNumber.DEBUG, severity_text="DEBUG")
            if index == 2:
                logger.emit(body="payment failed for order 1002",
                            severity_number=SeverityNumber.ERROR, severity_text="ERROR")
            duration.record(latency, route)  # inside the span: the SDK keeps an exemplar
        server_context, client_context = server.get_span_context(), client.get_span_context()
        traces[_hex(server_context.trace_id, 32)] = {
            "GET /pay": _hex(server_context.span_id, 16),
            "SELECT orders": _hex(client_context.span_id, 16),
        }
    attempts.add(3, route)  # outside any span: no exemplar
    logger.emit(body="shutting down", severity_number=SeverityNumber.WARN, severity_text="WARN")
    tracer_provider.shutdown()
    logger_provider.shutdown()
    meter_provider.shutdown()  # exports the metrics once
    return traces


def _point(argus: ArgusProcess, metric: str, service: str) -> dict[str, Any] | None:
    points = argus.graphql(
        """query($m: String!, $s: String!) { metricPoints(metric: $m,
             matchers: [{label: "service.name", op: "=", value: $s}]) {
             labels timeUnixNano exemplars { traceId spanId value } } }""",
        {"m": metric, "s": service},
    )["metricPoints"]
    return points[-1] if points else None


POINT_TRACES = """query($m: String!, $l: JSON!, $t: Time!) {
  tracesOfMetricPoint(metric: $m, labels: $l, time: $t, window: "5m") {
    source exemplars { traceId spanId value }
    traces { traceId rootName rootService spanCount durationNano } } }"""

TRACE_LOGS = """query($id: String!) { trace(traceId: $id) {
  traceId
  logs { records { bodyText severityText spanId trace { traceId spanCount } } }
  spans { name spanId logs { records { bodyText spanId } } } } }"""


def test_metric_point_to_traces_to_logs_and_back(argus: ArgusProcess) -> None:
    service = f"corr-{uuid.uuid4().hex[:8]}"
    traces = _emit(argus, service)

    # Metric point -> traces, through its exemplars.
    point = eventually(lambda: _point(argus, "checkout.duration", service))
    assert {e["traceId"] for e in point["exemplars"]} == set(traces)
    variables = {"m": "checkout.duration", "l": point["labels"], "t": point["timeUnixNano"]}
    found = eventually(
        lambda: (answer := argus.graphql(POINT_TRACES, variables)["tracesOfMetricPoint"])
        and len(answer["traces"]) == 3 and answer
    )
    assert found["source"] == "EXEMPLAR"
    assert {t["traceId"] for t in found["traces"]} == set(traces)
    assert {e["value"] for e in found["exemplars"]} == set(LATENCIES)
    for summary in found["traces"]:
        assert (summary["rootName"], summary["rootService"]) == ("GET /pay", service)
        assert summary["spanCount"] == 2

    # Trace -> its logs, and each span's; log -> its trace.
    for trace_id, spans in traces.items():
        def logged(trace_id: str = trace_id) -> dict[str, Any] | None:
            trace = argus.graphql(TRACE_LOGS, {"id": trace_id})["trace"]
            expected = 3 if trace_id == list(traces)[2] else 2
            return trace if trace and len(trace["logs"]["records"]) == expected else None

        trace = eventually(logged)
        for record in trace["logs"]["records"]:
            assert record["trace"] == {"traceId": trace_id, "spanCount": 2}
        by_span = {span["name"]: span for span in trace["spans"]}
        server_logs = [r["bodyText"] for r in by_span["GET /pay"]["logs"]["records"]]
        client_logs = by_span["SELECT orders"]["logs"]["records"]
        assert any(body.startswith("charged order") for body in server_logs)
        assert len(client_logs) == 1 and client_logs[0]["bodyText"].startswith("query took")
        assert client_logs[0]["spanId"] == spans["SELECT orders"]
    untraced = argus.graphql(
        'query($s: String!) { logs(filter: {service: $s, contains: "shutting"}) {'
        " records { traceId trace { traceId } } } }", {"s": service},
    )["logs"]["records"]
    assert untraced == [{"traceId": "", "trace": None}]

    # A point without exemplars: the slowest traces of its service and route around it.
    counter = eventually(lambda: _point(argus, "checkout.attempts", service))
    assert counter["exemplars"] == [] and counter["labels"]["http.route"] == "/pay"
    window = argus.graphql(POINT_TRACES, {
        "m": "checkout.attempts", "l": counter["labels"], "t": counter["timeUnixNano"]})  # fmt: skip
    window = window["tracesOfMetricPoint"]
    assert window["source"] == "WINDOW" and window["exemplars"] == []
    assert {t["traceId"] for t in window["traces"]} == set(traces)
    durations = [int(t["durationNano"]) for t in window["traces"]]
    assert durations == sorted(durations, reverse=True)
    nothing = argus.graphql(POINT_TRACES, {
        "m": "checkout.attempts", "l": {"http.route": "/pay"}, "t": counter["timeUnixNano"]})  # fmt: skip
    assert nothing["tracesOfMetricPoint"]["source"] == "NONE"

    # Service -> its metrics.
    names = argus.graphql("query($s: String!) { metricsOfService(service: $s) { name } }",
                          {"s": service})["metricsOfService"]  # fmt: skip
    assert [m["name"] for m in names] == ["checkout.attempts", "checkout.duration"]
    services = argus.graphql("{ services { name metrics { name } } }")["services"]
    mine = next(s for s in services if s["name"] == service)
    assert [m["name"] for m in mine["metrics"]] == ["checkout.attempts", "checkout.duration"]


def test_log_histogram_top_values_and_patterns(argus: ArgusProcess) -> None:
    service = f"logs-{uuid.uuid4().hex[:8]}"
    _emit(argus, service)
    records = 3 + 3 + 1 + 1  # charged, query took, payment failed, shutting down
    eventually(lambda: len(argus.graphql(
        'query($s: String!) { logs(filter: {service: $s}) { records { spanId } } }',
        {"s": service})["logs"]["records"]) == records)  # fmt: skip

    histogram = argus.graphql(
        """query($s: String!) { logHistogram(filter: {service: $s, start: "now-10m"}, step: "1m")
             { step buckets { start total trace debug info warn error fatal unspecified } } }""",
        {"s": service},
    )["logHistogram"]
    assert histogram["step"] == str(60 * 1_000_000_000)
    buckets = histogram["buckets"]
    assert 10 <= len(buckets) <= 11  # every minute of the range, empty ones included
    assert all(int(b["start"]) % (60 * 1_000_000_000) == 0 for b in buckets)
    totals = {key: sum(b[key] for b in buckets)
              for key in ("total", "info", "debug", "error", "warn", "trace", "fatal")}
    assert totals == {"total": 8, "info": 3, "debug": 3, "error": 1, "warn": 1, "trace": 0,
                      "fatal": 0}  # fmt: skip

    def top(field: str) -> list[tuple[str, int]]:
        found = argus.graphql(
            "query($s: String!, $f: String!) { logTopValues(filter: {service: $s}, field: $f)"
            " { value count } }", {"s": service, "f": field},
        )["logTopValues"]  # fmt: skip
        return [(item["value"], item["count"]) for item in found]

    assert top("attributes.user.id") == [("u-0", 2), ("u-1", 1)]
    assert top("severity") == [("DEBUG", 3), ("INFO", 3), ("ERROR", 1), ("WARN", 1)]
    assert top("resource.service.name") == [(service, records)]

    patterns = argus.graphql(
        """query($s: String!) { logPatterns(filter: {service: $s}) {
             records sampled patterns { template count sample { bodyText trace { traceId } } } } }""",
        {"s": service},
    )["logPatterns"]
    assert (patterns["records"], patterns["sampled"]) == (records, False)
    got = {p["template"]: p for p in patterns["patterns"]}
    assert {t: p["count"] for t, p in got.items()} == {
        "charged order <NUM> for user <NUM>": 3, "query took <NUM> ms": 3,
        "payment failed for order <NUM>": 1, "shutting down": 1,
    }  # fmt: skip
    assert got["charged order <NUM> for user <NUM>"]["sample"]["bodyText"] == (
        "charged order 1002 for user 2")  # the newest
    assert got["shutting down"]["sample"]["trace"] is None

    sampled = argus.graphql(
        'query($s: String!) { logPatterns(filter: {service: $s}, sampleLimit: 2) { records sampled } }',
        {"s": service},
    )["logPatterns"]
    assert sampled == {"records": 2, "sampled": True}


def test_query_limits_give_clear_errors(argus: ArgusProcess) -> None:
    cases = {
        '{ logHistogram(filter: {start: "now-1h"}, step: "1ms") { step } }': "buckets",
        '{ logHistogram(filter: {start: "now-40d"}, step: "1d") { step } }': "31 days",
        '{ logTopValues(field: "body") { value } }': "cannot count values of 'body'",
        '{ logTopValues(field: "service", limit: 5000) { value } }': "limit",
        '{ logPatterns(sampleLimit: 20000) { records } }': "sample_limit",
        '{ tracesOfMetricPoint(metric: "m", time: "now", window: "0s") { source } }': "window",
        '{ trace(traceId: "not-hex") { logs { records { bodyText } } } }': "invalid trace id",
    }
    for query, message in cases.items():
        body = argus.graphql_raw(query)
        assert body.get("errors"), query
        assert message in body["errors"][0]["message"], (query, body["errors"])
