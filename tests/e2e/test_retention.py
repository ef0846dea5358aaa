"""`[retention]` in a running server: old data of every signal goes, recent data stays,
and a tenant's override keeps its data longer."""

from __future__ import annotations

import time
import uuid

import httpx
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2

from tests.e2e.test_http_receiver import PROTOBUF
from tests.harness import ArgusProcess, eventually

DAY = 86_400 * 10**9


def _spans(service: str, ages_days: list[float]) -> tuple[bytes, list[str]]:
    request = trace_service_pb2.ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.add(
        key="service.name", value=common_pb2.AnyValue(string_value=service)
    )
    spans = resource_spans.scope_spans.add().spans
    now, trace_ids = time.time_ns(), []
    for index, age in enumerate(ages_days):
        trace_id = uuid.uuid4().bytes
        start = now - int(age * DAY)
        spans.add(trace_id=trace_id, span_id=(index + 1).to_bytes(8, "big"), name="op",
                  start_time_unix_nano=start, end_time_unix_nano=start + 1000)
        trace_ids.append(trace_id.hex())
    return request.SerializeToString(), trace_ids


def _logs(service: str, ages_days: list[float], marker: str) -> bytes:
    request = logs_service_pb2.ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.add(
        key="service.name", value=common_pb2.AnyValue(string_value=service)
    )
    records = resource_logs.scope_logs.add().log_records
    now = time.time_ns()
    for age in ages_days:
        record = records.add(time_unix_nano=now - int(age * DAY))
        record.body.string_value = f"{marker} aged {age}"
    return request.SerializeToString()


def test_retention_removes_old_data_and_keeps_recent(fresh_argus: ArgusProcess) -> None:
    config = fresh_argus.data_dir.parent / "retention.toml"
    config.write_text(
        "[retention]\ntraces_days = 2\nlogs_days = 2\ninterval_seconds = 1\n"
    )
    fresh_argus.extra_args = ["--config", str(config)]
    server = fresh_argus.start()
    body, (old_trace, recent_trace) = _spans("retention", [10, 0.5])
    assert httpx.post(f"{server.otlp_url}/v1/traces", content=body, headers=PROTOBUF).status_code == 200
    marker = uuid.uuid4().hex[:10]
    logs = _logs("retention", [10, 5, 0.1], marker)
    assert httpx.post(f"{server.otlp_url}/v1/logs", content=logs, headers=PROTOBUF).status_code == 200

    query = "query($id: String!) { trace(traceId: $id) { spans { spanId } } }"
    assert eventually(lambda: server.graphql(query, {"id": recent_trace})["trace"])
    # The old trace may be indexed and removed before we look; it must end up gone.
    eventually(lambda: server.graphql(query, {"id": old_trace})["trace"] is None)
    search = """query($q: String!) { logs(filter: {contains: $q, start: "now-30d"}) {
        records { body } } }"""
    bodies = eventually(lambda: (
        found if len(found := [r["body"] for r in server.graphql(search, {"q": marker})["logs"]["records"]]) == 1
        else None
    ), timeout=20)
    assert bodies == [f"{marker} aged 0.1"]
    assert server.graphql(query, {"id": recent_trace})["trace"]
    metrics = httpx.get(f"{server.api_url}/metrics", timeout=10).text
    assert 'argus_retention_removed_items_total{signal="logs",sink="embedded",tenant="default"} 2.0' in metrics
