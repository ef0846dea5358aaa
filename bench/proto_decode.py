"""Decode rates of argus.proto for each signal and encoding, on one core.

    /work/venv/bin/python bench/proto_decode.py [--runs 7] [--seconds 0.5]

For each signal and encoding it times parse_request + validate (what the HTTP receiver
does) and parse_request + to_model (what the indexer does) over realistic requests, and
prints the median rate of several runs in items per second (spans, data points, log
records). Payloads are synthetic but shaped like SDK output: a resource with eight
attributes, spans with about ten attributes and an event on every fourth, metrics a mix of
gauges, sums and 10-bucket histograms, log records with a text body and five attributes.
"""

from __future__ import annotations

import argparse
import base64
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import orjson
from argus.proto.otlp import Encoding, Signal, parse_request, to_model, validate
from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

_ID_KEYS = {"traceId", "spanId", "parentSpanId"}
rng = random.Random(42)


def _kv(key: str, value: object) -> KeyValue:
    pair = KeyValue(key=key)
    if isinstance(value, bool):
        pair.value.bool_value = value
    elif isinstance(value, int):
        pair.value.int_value = value
    elif isinstance(value, float):
        pair.value.double_value = value
    else:
        pair.value.string_value = str(value)
    return pair


def _resource() -> Resource:
    attrs = {
        "service.name": "checkout",
        "service.version": "1.4.2",
        "service.instance.id": "checkout-7d9f8c-abcde",
        "deployment.environment": "production",
        "host.name": "node-17.eu-west-1",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.language": "python",
        "telemetry.sdk.version": "1.45.2",
    }
    return Resource(attributes=[_kv(k, v) for k, v in attrs.items()])


def traces_request(spans: int = 100) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add(resource=_resource())
    ss = rs.scope_spans.add()
    ss.scope.name, ss.scope.version = "opentelemetry.instrumentation.flask", "0.45b0"
    trace_id = rng.randbytes(16)
    for i in range(spans):
        span = ss.spans.add(
            trace_id=trace_id,
            span_id=rng.randbytes(8),
            parent_span_id=rng.randbytes(8) if i else b"",
            name=f"GET /api/v1/items/{{id}} {i % 7}",
            kind=2,
            start_time_unix_nano=1_700_000_000_000_000_000 + i * 1000,
            end_time_unix_nano=1_700_000_000_050_000_000 + i * 1000,
        )
        span.attributes.extend(
            _kv(k, v)
            for k, v in {
                "http.request.method": "GET",
                "http.route": "/api/v1/items/{id}",
                "http.response.status_code": 200,
                "url.scheme": "https",
                "url.path": f"/api/v1/items/{i}",
                "server.address": "api.example.com",
                "server.port": 443,
                "network.protocol.version": "1.1",
                "user_agent.original": "python-requests/2.32",
                "sampled": True,
            }.items()
        )
        if i % 4 == 0:
            event = span.events.add(name="cache.miss", time_unix_nano=1_700_000_000_010_000_000)
            event.attributes.append(_kv("cache.key", f"item:{i}"))
        span.status.code = 2 if i % 50 == 0 else 0
    return request


def metrics_request(points: int = 999) -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add(resource=_resource())
    sm = rm.scope_metrics.add()
    sm.scope.name = "opentelemetry.instrumentation.system_metrics"
    per_metric = 37
    for m in range(points // per_metric):
        metric = sm.metrics.add(name=f"app.metric.{m}", unit="1", description="a metric")
        kind = m % 3
        data: Any = metric.gauge if kind == 0 else metric.sum if kind == 1 else metric.histogram
        if kind == 1:
            data.aggregation_temporality, data.is_monotonic = 2, True
        if kind == 2:
            data.aggregation_temporality = 2
        for p in range(per_metric):
            point = data.data_points.add(
                start_time_unix_nano=1_700_000_000_000_000_000,
                time_unix_nano=1_700_000_060_000_000_000,
            )
            point.attributes.extend(
                [_kv("host.cpu", p), _kv("state", "user"), _kv("region", "eu-west-1")]
            )
            if kind == 2:
                point.count, point.sum = 100, 1234.5
                point.explicit_bounds.extend([0, 5, 10, 25, 50, 75, 100, 250, 500, 1000])
                point.bucket_counts.extend([10] * 11)
            else:
                point.as_double = rng.random() * 100
    return request


def logs_request(records: int = 100) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add(resource=_resource())
    sl = rl.scope_logs.add()
    sl.scope.name = "app.logger"
    for i in range(records):
        record = sl.log_records.add(
            time_unix_nano=1_700_000_000_000_000_000 + i,
            observed_time_unix_nano=1_700_000_000_000_000_500 + i,
            severity_number=9,
            severity_text="INFO",
            trace_id=rng.randbytes(16),
            span_id=rng.randbytes(8),
        )
        record.body.string_value = f"GET /api/v1/items/{i} completed in {i % 97} ms for user {i}"
        record.attributes.extend(
            _kv(k, v)
            for k, v in {
                "code.function": "handle_request",
                "code.lineno": 120 + i % 10,
                "thread.name": "worker-3",
                "http.response.status_code": 200,
                "log.logger": "app.api",
            }.items()
        )
    return request


def to_otlp_json(message: Message) -> bytes:
    """OTLP/JSON of a message: json_format's mapping with ids in hex rather than base64."""

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: base64.b64decode(v).hex() if k in _ID_KEYS else fix(v) for k, v in node.items()
            }
        if isinstance(node, list):
            return [fix(item) for item in node]
        return node

    document = json_format.MessageToDict(message, use_integers_for_enums=True)
    return orjson.dumps(fix(document))


def _rate(step: Callable[[], int], runs: int, seconds: float) -> float:
    """Median over `runs` of items per second, each run repeating `step` for `seconds`."""
    rates = []
    for _ in range(runs):
        items, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            items += step()
        rates.append(items / elapsed)
    return statistics.median(rates)


def measure(
    signal: Signal, encoding: Encoding, body: bytes, runs: int, seconds: float
) -> tuple[float, float]:
    """(parse + validate, parse + to_model) rates in items per second."""

    def check() -> int:
        accepted: int = validate(signal, parse_request(signal, encoding, body)).accepted
        return accepted

    def convert() -> int:
        return len(to_model(signal, parse_request(signal, encoding, body)))

    return _rate(check, runs, seconds), _rate(convert, runs, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.5)
    args = parser.parse_args()
    requests: dict[Signal, tuple[Message, str]] = {
        Signal.TRACES: (traces_request(), "spans/s"),
        Signal.METRICS: (metrics_request(), "points/s"),
        Signal.LOGS: (logs_request(), "records/s"),
    }
    print(f"items per second on one core, median of {args.runs} runs of {args.seconds} s")
    print(
        f"{'signal':8} {'encoding':9} {'B/item':>6} {'parse+validate':>15} {'parse+to_model':>15}"
    )
    for signal, (message, unit) in requests.items():
        for encoding in Encoding:
            if encoding == Encoding.PROTOBUF:
                body = message.SerializeToString()
            else:
                body = to_otlp_json(message)
            items = len(to_model(signal, parse_request(signal, encoding, body)))
            checked, converted = measure(signal, encoding, body, args.runs, args.seconds)
            print(
                f"{signal:8} {encoding:9} {len(body) / items:6.0f}"
                f" {checked:15,.0f} {converted:15,.0f}  {unit}"
            )


if __name__ == "__main__":
    main()
