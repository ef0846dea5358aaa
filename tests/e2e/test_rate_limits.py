"""A tenant over its rate limit gets 429 + Retry-After (HTTP) or RESOURCE_EXHAUSTED with
RetryInfo (gRPC); nothing of a refused request is stored."""

from __future__ import annotations

import uuid

import grpc
import httpx
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from tests.e2e.test_http_receiver import PROTOBUF, _status, _trace_request
from tests.harness import ArgusProcess, eventually


def test_requests_over_the_limit_are_throttled(fresh_argus: ArgusProcess) -> None:
    config = fresh_argus.data_dir.parent / "limits.toml"
    config.write_text("[limits]\nrequests_per_second = 0.2\nburst_seconds = 10\n")  # 2 at once
    fresh_argus.extra_args = ["--config", str(config)]
    server = fresh_argus.start()
    service = f"throttled-{uuid.uuid4().hex[:6]}"
    ids = [uuid.uuid4().bytes for _ in range(3)]
    answers = [
        httpx.post(f"{server.otlp_url}/v1/traces", content=_trace_request(service, [trace_id]), headers=PROTOBUF)
        for trace_id in ids
    ]
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert int(answers[2].headers["retry-after"]) >= 1
    status = _status(answers[2])
    assert status.code == 8 and "limit" in status.message

    request = trace_service_pb2.ExportTraceServiceRequest.FromString(
        _trace_request(service, [uuid.uuid4().bytes])
    )
    stub = trace_service_pb2_grpc.TraceServiceStub(grpc.insecure_channel(server.grpc_target))
    try:
        stub.Export(request, timeout=5)
        raise AssertionError("expected RESOURCE_EXHAUSTED")
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        trailers = dict(error.trailing_metadata() or ())  # type: ignore[attr-defined]
        details = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
        info = error_details_pb2.RetryInfo()
        assert details.details[0].Unpack(info) and info.retry_delay.seconds >= 1

    query = "query($s: String!) { traces(filter: {service: $s}) { traceId } }"
    found = eventually(lambda: len(server.graphql(query, {"s": service})["traces"]) == 2 and True)
    assert found
    stored = {item["traceId"] for item in server.graphql(query, {"s": service})["traces"]}
    assert stored == {ids[0].hex(), ids[1].hex()}
    metrics = httpx.get(f"{server.api_url}/metrics").text
    assert 'argus_ingest_refused_requests_total{reason="throttled",signal="traces",transport="http"} 1.0' in metrics
