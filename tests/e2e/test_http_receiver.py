"""Every answer of the OTLP/HTTP receiver, against a running server."""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path

import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from tests.harness import ArgusProcess, eventually

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "otlp-examples"
PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


def _trace_request(service: str, trace_ids: list[bytes]) -> bytes:
    request = trace_service_pb2.ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.CopyFrom(
        resource_pb2.Resource(
            attributes=[common_pb2.KeyValue(key="service.name", value=common_pb2.AnyValue(string_value=service))]
        )
    )
    scope_spans = resource_spans.scope_spans.add()
    for index, trace_id in enumerate(trace_ids):
        scope_spans.spans.append(
            trace_pb2.Span(
                trace_id=trace_id,
                span_id=(index + 1).to_bytes(8, "big"),
                name=f"op-{index}",
                start_time_unix_nano=1_700_000_000_000_000_000,
                end_time_unix_nano=1_700_000_000_500_000_000,
            )
        )
    return request.SerializeToString()


def _status(response: httpx.Response) -> status_pb2.Status:
    assert response.headers["content-type"] == "application/x-protobuf"
    status = status_pb2.Status()
    status.ParseFromString(response.content)
    return status


def test_protobuf_success_leaves_partial_success_unset(argus: ArgusProcess) -> None:
    body = _trace_request("recv-ok", [uuid.uuid4().bytes])
    response = httpx.post(f"{argus.otlp_url}/v1/traces", content=body, headers=PROTOBUF)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    answer = trace_service_pb2.ExportTraceServiceResponse()
    answer.ParseFromString(response.content)
    assert not answer.HasField("partial_success")


def test_partial_success_counts_invalid_spans_and_stores_the_rest(argus: ArgusProcess) -> None:
    service = f"recv-partial-{uuid.uuid4().hex[:6]}"
    good = uuid.uuid4().bytes
    body = _trace_request(service, [good, b"\x01" * 8, bytes(16)])
    response = httpx.post(f"{argus.otlp_url}/v1/traces", content=body, headers=PROTOBUF)
    assert response.status_code == 200
    answer = trace_service_pb2.ExportTraceServiceResponse()
    answer.ParseFromString(response.content)
    assert answer.partial_success.rejected_spans == 2
    assert "trace id" in answer.partial_success.error_message
    found = eventually(
        lambda: argus.graphql(
            "query($s: String!) { traces(filter: {service: $s}) { traceId } }", {"s": service}
        )["traces"]
    )
    assert found == [{"traceId": good.hex()}]


def test_json_answers_in_json(argus: ArgusProcess) -> None:
    response = httpx.post(f"{argus.otlp_url}/v1/logs", content=b"{}", headers=JSON)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {}


def test_gzip_body_is_accepted(argus: ArgusProcess) -> None:
    service = f"recv-gzip-{uuid.uuid4().hex[:6]}"
    request = logs_service_pb2.ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.add(key="service.name").value.string_value = service
    resource_logs.scope_logs.add().log_records.append(
        logs_pb2.LogRecord(time_unix_nano=1, body=common_pb2.AnyValue(string_value="zipped"))
    )
    response = httpx.post(
        f"{argus.otlp_url}/v1/logs",
        content=gzip.compress(request.SerializeToString()),
        headers={**PROTOBUF, "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200
    records = eventually(
        lambda: argus.graphql(
            "query($s: String!) { logs(filter: {service: $s}) { records { bodyText } } }", {"s": service}
        )["logs"]["records"]
    )
    assert records == [{"bodyText": "zipped"}]


@pytest.mark.parametrize("signal", ["traces", "metrics", "logs"])
def test_undecodable_protobuf_is_400_with_status(argus: ArgusProcess, signal: str) -> None:
    response = httpx.post(f"{argus.otlp_url}/v1/{signal}", content=b"\xff\xff\xff", headers=PROTOBUF)
    assert response.status_code == 400
    status = _status(response)
    assert status.code == 3 and status.message


def test_invalid_json_is_400_with_json_status(argus: ArgusProcess) -> None:
    response = httpx.post(
        f"{argus.otlp_url}/v1/traces", content=b'{"resourceSpans": 5}', headers=JSON
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["code"] == 3 and "resourceSpans" in body["message"]


def test_other_content_type_is_415(argus: ArgusProcess) -> None:
    response = httpx.post(
        f"{argus.otlp_url}/v1/traces", content=b"x", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    assert "text/plain" in response.json()["message"]


def test_unknown_content_encoding_is_415(argus: ArgusProcess) -> None:
    response = httpx.post(
        f"{argus.otlp_url}/v1/traces", content=b"x", headers={**PROTOBUF, "Content-Encoding": "br"}
    )
    assert response.status_code == 415


def test_broken_gzip_is_400(argus: ArgusProcess) -> None:
    response = httpx.post(
        f"{argus.otlp_url}/v1/traces",
        content=gzip.compress(b"abc")[:-6],
        headers={**PROTOBUF, "Content-Encoding": "gzip"},
    )
    assert response.status_code == 400


def test_other_method_is_405_with_allow(argus: ArgusProcess) -> None:
    response = httpx.get(f"{argus.otlp_url}/v1/metrics")
    assert response.status_code == 405
    assert "POST" in response.headers["allow"]


def test_other_path_is_404(argus: ArgusProcess) -> None:
    assert httpx.post(f"{argus.otlp_url}/v1/profiles", content=b"", headers=PROTOBUF).status_code == 404


def _limited(server: ArgusProcess) -> ArgusProcess:
    """A server with small body limits, set in a config file as a user would."""
    config = server.data_dir.parent / "limits.toml"
    config.write_text("[ingest]\nmax_request_bytes = 100000\nmax_decompressed_bytes = 1048576\n")
    server.extra_args = ["--config", str(config)]
    return server.start()


def test_oversized_bodies_are_413(fresh_argus: ArgusProcess) -> None:
    server = _limited(fresh_argus)
    declared = httpx.post(f"{server.otlp_url}/v1/traces", content=b"\x00" * 100_001, headers=PROTOBUF)
    assert declared.status_code == 413 and "100000" in _status(declared).message

    def chunks():  # no Content-Length: the limit applies while streaming
        for _ in range(20):
            yield b"\x00" * 10_000

    streamed = httpx.post(f"{server.otlp_url}/v1/traces", content=chunks(), headers=PROTOBUF)
    assert streamed.status_code == 413
    ok = httpx.post(f"{server.otlp_url}/v1/traces", content=b"", headers=PROTOBUF)
    assert ok.status_code == 200


def test_gzip_bomb_is_413_without_inflating_it(fresh_argus: ArgusProcess) -> None:
    server = _limited(fresh_argus)
    bomb = gzip.compress(b"\x00" * (64 * 1024 * 1024), 9)  # 64 MiB of zeros in ~64 KB
    assert len(bomb) < 100_000  # passes the raw limit; only inflating reveals it
    response = httpx.post(
        f"{server.otlp_url}/v1/traces",
        content=bomb,
        headers={**PROTOBUF, "Content-Encoding": "gzip"},
        timeout=30,
    )
    assert response.status_code == 413
    assert "decompressed" in _status(response).message


def test_official_examples_are_accepted_and_stored(argus: ArgusProcess) -> None:
    for signal, name in (("traces", "trace.json"), ("metrics", "metrics.json"), ("logs", "logs.json")):
        body = (EXAMPLES / name).read_bytes()
        response = httpx.post(f"{argus.otlp_url}/v1/{signal}", content=body, headers=JSON)
        assert response.status_code == 200, response.text
        assert response.json() == {}, (name, response.json())
    example = json.loads((EXAMPLES / "trace.json").read_text())
    span = example["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    trace = eventually(
        lambda: argus.graphql(
            "query($id: String!) { trace(traceId: $id) { spans { spanId parentSpanId name kind service attributes } } }",
            {"id": span["traceId"]},
        )["trace"]
    )
    (stored,) = trace["spans"]
    assert stored["spanId"] == span["spanId"].lower()
    assert stored["parentSpanId"] == span["parentSpanId"].lower()
    assert stored["name"] == span["name"] and stored["kind"] == "SERVER"
    assert stored["service"] == "my.service"
    assert stored["attributes"] == {"my.span.attr": "some value"}

    logs_example = json.loads((EXAMPLES / "logs.json").read_text())
    record = logs_example["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    logs = eventually(
        lambda: argus.graphql(
            "query($t: String!) { logs(filter: {traceId: $t}) { records { bodyText severityText attributes } } }",
            {"t": record["traceId"]},
        )["logs"]["records"]
    )
    assert logs[0]["bodyText"] == record["body"]["stringValue"]
    assert logs[0]["severityText"] == record["severityText"]

    metrics_example = json.loads((EXAMPLES / "metrics.json").read_text())
    names = {m["name"] for rm in metrics_example["resourceMetrics"] for sm in rm["scopeMetrics"] for m in sm["metrics"]}
    stored_names = eventually(
        lambda: (found := {item["name"] for item in argus.graphql("{ metricNames { name } }")["metricNames"]})
        >= names and found
    )
    assert names <= stored_names
