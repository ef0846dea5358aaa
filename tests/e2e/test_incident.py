"""An incident walked through the API, with data from real OpenTelemetry SDK exporters:
a latency spike on a chart -> the slow traces behind it -> the logs of one of them -> the
service map showing the failing edge.

Three services: frontend calls checkout, checkout calls payment. Payment starts failing
slowly; checkout records its request latency in a histogram inside its spans, so the SDK
attaches exemplars naming the traces."""

from __future__ import annotations

import time
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from tests.harness import ArgusProcess, eventually

MS = 1_000_000


class Service:
    """One instrumented service: its own resource, tracer, logger and meter."""

    def __init__(self, argus: ArgusProcess, name: str) -> None:
        resource = Resource.create({"service.name": name})
        self.traces = TracerProvider(resource=resource)
        self.traces.add_span_processor(
            SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{argus.otlp_url}/v1/traces"))
        )
        self.logs = LoggerProvider(resource=resource)
        self.logs.add_log_record_processor(
            SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{argus.otlp_url}/v1/logs"))
        )
        self.reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(
                endpoint=f"{argus.otlp_url}/v1/metrics",
                preferred_temporality={Histogram: AggregationTemporality.DELTA},
            ),
            export_interval_millis=3_600_000,
        )
        self.metrics = MeterProvider(resource=resource, metric_readers=[self.reader])
        self.tracer = self.traces.get_tracer(name)
        self.logger = self.logs.get_logger(name)

    def shutdown(self) -> None:
        self.traces.shutdown()
        self.logs.shutdown()
        self.metrics.shutdown()


def _request(
    frontend: Service, checkout: Service, payment: Service, latency: Any, failing: bool
) -> str:
    """One request through the three services with explicit timings; returns its trace id."""
    start = time.time_ns()
    duration_ms = 1500 if failing else 40
    end = start + (duration_ms + 20) * MS
    with frontend.tracer.start_as_current_span(
        "GET /checkout", kind=SpanKind.SERVER, start_time=start, end_on_exit=False
    ) as root:
        with frontend.tracer.start_as_current_span(
            "POST checkout", kind=SpanKind.CLIENT, start_time=start + MS, end_on_exit=False
        ) as call:
            context = trace_api.set_span_in_context(call)
            with checkout.tracer.start_as_current_span(
                "POST /checkout", context=context, kind=SpanKind.SERVER,
                start_time=start + 2 * MS, end_on_exit=False,
            ) as handler:
                with checkout.tracer.start_as_current_span(
                    "POST payment", kind=SpanKind.CLIENT, start_time=start + 3 * MS,
                    end_on_exit=False,
                ) as pay_call:
                    pay_context = trace_api.set_span_in_context(pay_call)
                    with payment.tracer.start_as_current_span(
                        "POST /charge", context=pay_context, kind=SpanKind.SERVER,
                        start_time=start + 4 * MS, end_on_exit=False,
                    ) as charge:
                        if failing:
                            payment.logger.emit(
                                body="payment gateway timeout after 1500 ms",
                                severity_number=SeverityNumber.ERROR, severity_text="ERROR",
                            )
                            charge.record_exception(TimeoutError("gateway timeout"))
                            charge.set_status(Status(StatusCode.ERROR, "gateway timeout"))
                        else:
                            payment.logger.emit(body="charged", severity_number=SeverityNumber.INFO)
                        charge.end(end_time=start + (duration_ms + 4) * MS)
                    if failing:
                        pay_call.set_status(Status(StatusCode.ERROR))
                    pay_call.end(end_time=start + (duration_ms + 5) * MS)
                # Inside checkout's span: the histogram keeps this trace as an exemplar.
                latency.record(duration_ms + 10, {"http.route": "/checkout"})
                handler.end(end_time=start + (duration_ms + 12) * MS)
            call.end(end_time=start + (duration_ms + 14) * MS)
        root.end(end_time=end)
        return format(root.get_span_context().trace_id, "032x")


def test_spike_to_traces_to_logs_to_service_map(fresh_argus: ArgusProcess) -> None:
    argus = fresh_argus.start()
    frontend, checkout, payment = (Service(argus, name) for name in ("frontend", "checkout", "payment"))
    latency = checkout.metrics.get_meter("checkout").create_histogram(
        "checkout.request.duration", unit="ms"
    )
    healthy = [_request(frontend, checkout, payment, latency, failing=False) for _ in range(8)]
    checkout.metrics.force_flush()  # one delta point before the incident, one during it
    failing = [_request(frontend, checkout, payment, latency, failing=True) for _ in range(2)]
    for service in (frontend, checkout, payment):
        service.shutdown()

    # 1. The chart: checkout's max latency over the last minutes shows the spike.
    chart = """{ metricSeries(query: {metric: "checkout.request.duration", start: "now-10m",
        step: "1m", aggregation: MAX, quantile: 0.99}) { labels points { timeUnixNano value } } }"""
    series = eventually(lambda: argus.graphql(chart)["metricSeries"], timeout=30)
    spike_time, spike = max(
        ((int(p["timeUnixNano"]), p["value"]) for s in series for p in s["points"] if p["value"] is not None),
        key=lambda point: point[1],
    )
    assert spike > 1000, series

    # 2. The traces behind the spike: the histogram's exemplars name the failing traces.
    behind = """query($time: Time!, $labels: JSON) { tracesOfMetricPoint(
        metric: "checkout.request.duration", time: $time, window: "10m", labels: $labels) {
        source traces { traceId durationNano hasError rootService } } }"""
    labels = series[0]["labels"]
    result = argus.graphql(behind, {"time": str(spike_time), "labels": labels})["tracesOfMetricPoint"]
    assert result["source"] == "EXEMPLAR", result
    slow = [t for t in result["traces"] if t["hasError"]]
    assert slow and {t["traceId"] for t in slow} <= set(failing), result
    slowest = max(slow, key=lambda t: int(t["durationNano"]))
    assert slowest["rootService"] == "frontend" and int(slowest["durationNano"]) >= 1500 * MS

    # 3. The logs of that trace: payment's error, which leads back to the same trace.
    logs = """query($id: String!) { trace(traceId: $id) { services
        logs { records { body severityText service trace { traceId } } } } }"""
    trace = eventually(lambda: argus.graphql(logs, {"id": slowest["traceId"]})["trace"])
    assert trace["services"] == ["checkout", "frontend", "payment"]
    records = eventually(lambda: argus.graphql(logs, {"id": slowest["traceId"]})["trace"]["logs"]["records"])
    error = next(r for r in records if r["severityText"] == "ERROR")
    assert error["service"] == "payment" and "gateway timeout" in error["body"]
    assert error["trace"]["traceId"] == slowest["traceId"]

    # 4. The service map: the failing edge is checkout -> payment.
    service_map = """{ serviceMap(start: "now-15m") {
        nodes { id name stats { count errors } }
        edges { source target stats { count errors errorRate } } } }"""
    graph = eventually(lambda: (
        found if (found := argus.graphql(service_map)["serviceMap"])["edges"] else None
    ), timeout=30)
    names = {node["id"]: node["name"] for node in graph["nodes"]}
    edges = {(names[e["source"]], names[e["target"]]): e["stats"] for e in graph["edges"]}
    assert int(edges[("checkout", "payment")]["count"]) == len(healthy) + len(failing)
    assert int(edges[("checkout", "payment")]["errors"]) == len(failing)
    assert int(edges[("frontend", "checkout")]["errors"]) == 0
    worst = max(edges.items(), key=lambda item: item[1]["errorRate"])
    assert worst[0] == ("checkout", "payment")
