"""Argus's own metrics, sent to itself over OTLP/HTTP (off unless `telemetry.self_export`).

Every interval the main process collects the same merged registry that `/metrics` shows
and posts it to its own OTLP/HTTP receiver as an ExportMetricsServiceRequest, so Argus can
be watched with its own queries, dashboards and alerts. Prometheus counters become
cumulative monotonic sums, gauges gauges, histograms explicit-bucket histograms (bucket
counts un-accumulated from `le`); the resource is `service.name = argus`.

Sending over the real receiver, not writing to the store directly, means self-telemetry
meets the same limits, keys and backpressure as anyone else's: with keys enforced it
needs an ingest key (`telemetry.self_export_key`). A failed export is logged and the next
one carries the cumulative values anyway.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2

log = logging.getLogger("argus.selfexport")
_CUMULATIVE = metrics_pb2.AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
SCOPE_NAME = "argus.selfexport"


def _attributes(labels: dict[str, str]) -> list[KeyValue]:
    return [KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in sorted(labels.items())]


def to_otlp(families: Iterable[Any], start_unix_nano: int, now_unix_nano: int) -> bytes:
    """An ExportMetricsServiceRequest body from prometheus_client metric families."""
    request = ExportMetricsServiceRequest()
    resource_metrics = request.resource_metrics.add()
    resource_metrics.resource.attributes.extend(_attributes({
        "service.name": "argus",
        "service.instance.id": f"{socket.gethostname()}:{os.getpid()}",
    }))
    scope_metrics = resource_metrics.scope_metrics.add()
    scope_metrics.scope.name = SCOPE_NAME
    for family in families:
        metric = metrics_pb2.Metric(name=family.name, description=family.documentation)
        if family.type == "counter":
            _sum(metric, family.samples, family.name, start_unix_nano, now_unix_nano)
        elif family.type == "gauge":
            for sample in family.samples:
                point = metric.gauge.data_points.add(time_unix_nano=now_unix_nano)
                point.as_double = float(sample.value)
                point.attributes.extend(_attributes(sample.labels))
        elif family.type == "histogram":
            _histogram(metric, family.samples, family.name, start_unix_nano, now_unix_nano)
        else:
            continue  # summaries, info and state sets: Argus exposes none
        if metric.WhichOneof("data") is not None:
            scope_metrics.metrics.append(metric)
    return request.SerializeToString()


def _sum(metric: metrics_pb2.Metric, samples: Iterable[Any], name: str, start: int, now: int) -> None:
    metric.sum.aggregation_temporality = _CUMULATIVE
    metric.sum.is_monotonic = True
    for sample in samples:
        if sample.name != f"{name}_total":
            continue  # the `_created` companions
        point = metric.sum.data_points.add(start_time_unix_nano=start, time_unix_nano=now)
        point.as_double = float(sample.value)
        point.attributes.extend(_attributes(sample.labels))


def _histogram(
    metric: metrics_pb2.Metric, samples: Iterable[Any], name: str, start: int, now: int
) -> None:
    metric.histogram.aggregation_temporality = _CUMULATIVE
    series: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for sample in samples:
        labels = {k: v for k, v in sample.labels.items() if k != "le"}
        entry = series.setdefault(tuple(sorted(labels.items())), {"buckets": []})
        if sample.name == f"{name}_bucket":
            entry["buckets"].append((float(sample.labels["le"]), float(sample.value)))
        elif sample.name == f"{name}_sum":
            entry["sum"] = float(sample.value)
        elif sample.name == f"{name}_count":
            entry["count"] = int(sample.value)
    for key, entry in series.items():
        buckets = sorted(entry["buckets"])
        if not buckets:
            continue
        point = metric.histogram.data_points.add(start_time_unix_nano=start, time_unix_nano=now)
        point.attributes.extend(_attributes(dict(key)))
        point.explicit_bounds.extend(bound for bound, _ in buckets if not math.isinf(bound))
        previous = 0.0
        for _, cumulative in buckets:
            point.bucket_counts.append(int(cumulative - previous))
            previous = cumulative
        point.count = entry.get("count", int(previous))
        point.sum = entry.get("sum", 0.0)


class SelfExporter:
    def __init__(self, endpoint: str, token: str = "", interval_seconds: float = 15.0) -> None:
        self._endpoint = endpoint
        self._headers = {"Content-Type": "application/x-protobuf"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._interval = interval_seconds
        self._start = time.time_ns()

    async def export_once(
        self, client: httpx.AsyncClient, collect: Callable[[], Iterable[Any]]
    ) -> None:
        """One export; `collect` gives the metric families (it may block: run in a thread)."""
        families = await asyncio.to_thread(lambda: list(collect()))
        body = to_otlp(families, self._start, time.time_ns())
        response = await client.post(self._endpoint, content=body, headers=self._headers)
        if response.status_code != 200:
            log.warning("self-telemetry export refused: HTTP %s %s",
                        response.status_code, response.text[:200])

    async def run(self, collect: Callable[[], Iterable[Any]]) -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            while True:
                await asyncio.sleep(self._interval)
                try:
                    await self.export_once(client, collect)
                except httpx.HTTPError as exc:
                    log.warning("self-telemetry export failed: %s", exc)
