"""limits.max_past_seconds / max_future_seconds end to end: spans outside the window are
rejected as a partial success, never stored, and counted in /metrics by reason."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.test_http_receiver import PROTOBUF
from tests.harness import ArgusProcess, eventually

HOUR = 3600 * 1_000_000_000


def _request(service: str, spans: dict[str, tuple[bytes, int]]) -> bytes:
    request = trace_service_pb2.ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name").value.string_value = service
    scope_spans = resource_spans.scope_spans.add()
    for index, (name, (trace_id, start)) in enumerate(spans.items()):
        scope_spans.spans.add(
            trace_id=trace_id, span_id=(index + 1).to_bytes(8, "big"), name=name,
            start_time_unix_nano=start, end_time_unix_nano=start + 1_000_000,
        )
    body: bytes = request.SerializeToString()
    return body


def _rejected_counts(server: ArgusProcess) -> dict[str, float]:
    response = httpx.get(f"{server.api_url}/metrics")
    assert response.status_code == 200
    return {
        sample.labels["reason"]: sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == "argus_ingest_items_rejected_total"
        and sample.labels.get("signal") == "traces"
        and sample.labels.get("tenant") == "default"
    }


def test_spans_too_old_or_in_the_future_are_rejected_and_counted(tmp_path: Path) -> None:
    config = tmp_path / "argus.toml"
    config.write_text("[limits]\nmax_past_seconds = 3600\n")  # max_future: default, 1 h
    server = ArgusProcess(tmp_path / "data", ["--config", str(config)]).start()
    try:
        service = f"time-bounds-{uuid.uuid4().hex[:6]}"
        now = time.time_ns()
        good, old, future = (uuid.uuid4().bytes for _ in range(3))
        body = _request(
            service,
            {"good": (good, now - 60_000_000_000), "old": (old, now - 3 * HOUR),
             "future": (future, now + 3 * HOUR)},
        )
        response = httpx.post(f"{server.otlp_url}/v1/traces", content=body, headers=PROTOBUF)
        assert response.status_code == 200
        answer = trace_service_pb2.ExportTraceServiceResponse.FromString(response.content)
        assert answer.partial_success.rejected_spans == 2
        message = answer.partial_success.error_message
        assert "timestamp more than 1h in the past" in message
        assert "timestamp more than 1h in the future" in message

        found = eventually(
            lambda: server.graphql(
                "query($s: String!) { traces(filter: {service: $s}) { traceId } }",
                {"s": service},
            )["traces"]
        )
        assert found == [{"traceId": good.hex()}]
        for rejected in (old, future):
            trace = server.graphql(
                "query($id: String!) { trace(traceId: $id) { spans { name } } }",
                {"id": rejected.hex()},
            )["trace"]
            assert not trace or not trace["spans"]

        counts = _rejected_counts(server)
        assert counts.get("timestamp_too_old") == 1
        assert counts.get("timestamp_in_future") == 1
        assert "invalid" not in counts
    finally:
        assert server.stop() == 0, server.log()
