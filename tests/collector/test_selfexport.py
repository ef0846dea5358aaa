"""Prometheus metric families to OTLP metrics, as the self-telemetry exporter sends them."""

from __future__ import annotations

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from argus.selfexport import to_otlp


def test_counters_gauges_and_histograms_convert() -> None:
    registry = CollectorRegistry()
    Counter("requests", "Requests.", ["code"], registry=registry).labels("200").inc(3)
    Gauge("queue_bytes", "Bytes queued.", registry=registry).set(42)
    latency = Histogram("latency_seconds", "Latency.", buckets=(0.1, 1.0), registry=registry)
    for value in (0.05, 0.5, 0.7, 5.0):
        latency.observe(value)

    request = ExportMetricsServiceRequest.FromString(to_otlp(registry.collect(), 10, 20))
    resource_metrics = request.resource_metrics[0]
    assert {kv.key: kv.value.string_value for kv in resource_metrics.resource.attributes}[
        "service.name"
    ] == "argus"
    metrics = {m.name: m for m in resource_metrics.scope_metrics[0].metrics}

    counter = metrics["requests"].sum
    assert counter.is_monotonic and counter.aggregation_temporality == 2
    (point,) = counter.data_points
    assert point.as_double == 3 and (point.start_time_unix_nano, point.time_unix_nano) == (10, 20)
    assert [(kv.key, kv.value.string_value) for kv in point.attributes] == [("code", "200")]

    assert metrics["queue_bytes"].gauge.data_points[0].as_double == 42

    (histogram,) = metrics["latency_seconds"].histogram.data_points
    assert list(histogram.explicit_bounds) == [0.1, 1.0]
    assert list(histogram.bucket_counts) == [1, 2, 1]  # un-accumulated from `le`
    assert histogram.count == 4 and histogram.sum == 6.25
