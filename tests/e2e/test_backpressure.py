"""When indexing falls behind the configured limit, receivers refuse with a retryable
status instead of growing the unindexed log; nothing acknowledged is lost."""

from __future__ import annotations

import uuid

import grpc
from google.rpc import error_details_pb2, status_pb2
import httpx
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from tests.e2e.test_http_receiver import PROTOBUF, _status, _trace_request
from tests.harness import ArgusProcess, eventually


def _retry_delay_seconds(error: grpc.RpcError) -> int:
    trailers = dict(error.trailing_metadata() or ())  # type: ignore[attr-defined]
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    info = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(info)
    return int(info.retry_delay.seconds)


def test_behind_indexer_gets_503_with_retry_after_then_recovers(fresh_argus: ArgusProcess) -> None:
    config = fresh_argus.data_dir.parent / "tight.toml"
    config.write_text("[ingest]\nmax_unindexed_bytes = 1\n")  # any backlog at all refuses
    fresh_argus.extra_args = ["--config", str(config)]
    server = fresh_argus.start()
    service = f"backpressure-{uuid.uuid4().hex[:6]}"
    acknowledged: set[str] = set()
    refusal: httpx.Response | None = None
    grpc_codes: set[grpc.StatusCode] = set()
    stub = trace_service_pb2_grpc.TraceServiceStub(grpc.insecure_channel(server.grpc_target))
    with httpx.Client() as client:
        for _ in range(500):
            trace_ids = [uuid.uuid4().bytes for _ in range(50)]
            body = _trace_request(service, trace_ids)
            response = client.post(f"{server.otlp_url}/v1/traces", content=body, headers=PROTOBUF)
            if response.status_code == 200:
                acknowledged.update(trace_id.hex() for trace_id in trace_ids)
            else:
                refusal = response
                # gRPC shares the check; the indexer may have caught up meanwhile
                request = trace_service_pb2.ExportTraceServiceRequest()
                request.ParseFromString(_trace_request(service, [grpc_id := uuid.uuid4().bytes]))
                try:
                    stub.Export(request, timeout=5)
                    acknowledged.add(grpc_id.hex())
                except grpc.RpcError as error:
                    grpc_codes.add(error.code())
                    assert _retry_delay_seconds(error) >= 1
                break
    assert refusal is not None, "the indexer never fell behind"
    assert refusal.status_code == 503 and int(refusal.headers["retry-after"]) >= 1
    status = _status(refusal)
    assert status.code == 14 and "behind" in status.message
    assert grpc_codes <= {grpc.StatusCode.UNAVAILABLE}

    def accepted_again() -> bool:
        body = _trace_request(service, [trace_id := uuid.uuid4().bytes])
        ok = httpx.post(f"{server.otlp_url}/v1/traces", content=body, headers=PROTOBUF).status_code == 200
        if ok:
            acknowledged.add(trace_id.hex())
        return ok

    assert eventually(accepted_again, timeout=30)
    query = "query($s: String!) { traces(filter: {service: $s, limit: 1000}) { traceId } }"
    found = eventually(
        lambda: (ids := {t["traceId"] for t in server.graphql(query, {"s": service})["traces"]})
        >= acknowledged and ids,
        timeout=30,
    )
    assert found == acknowledged
