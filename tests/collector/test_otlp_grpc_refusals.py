"""The gRPC receiver's UNAVAILABLE carries RetryInfo, as OTLP clients expect."""

from __future__ import annotations

import uuid
from pathlib import Path

import grpc
from argus.collector.ingest import Backlog, Ingest
from argus.collector.receivers.otlp_grpc import OtlpGrpcReceiver
from argus.collector.tenancy import single_tenant
from argus.collector.wal import WalPosition, WriteAheadLog
from argus.proto.otlp import Signal
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from tests.e2e.test_http_receiver import _trace_request
from tests.harness import free_port


async def test_backlog_refusal_is_unavailable_with_retry_info(tmp_path: Path) -> None:
    wals = {signal: WriteAheadLog.open(tmp_path / signal.value, 1 << 20) for signal in Signal}
    await wals[Signal.TRACES].append("default", 1, b"x" * 5000)  # 5 kB never indexed
    never_indexed = Backlog(indexed=lambda: WalPosition(1, 0), segment_bytes=1 << 20, limit_bytes=1000)
    ingest = Ingest(wals, {Signal.TRACES: never_indexed})
    address = f"127.0.0.1:{free_port()}"
    server = OtlpGrpcReceiver(ingest, single_tenant).server(address, 1 << 20)
    await server.start()
    try:
        request = trace_service_pb2.ExportTraceServiceRequest.FromString(
            _trace_request("refused", [uuid.uuid4().bytes])
        )
        async with grpc.aio.insecure_channel(address) as channel:
            export = channel.unary_unary(
                "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                request_serializer=trace_service_pb2.ExportTraceServiceRequest.SerializeToString,
            )
            try:
                await export(request, timeout=5)
                raise AssertionError("expected UNAVAILABLE")
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.UNAVAILABLE
                assert "behind" in (error.details() or "")
                trailers = dict(error.trailing_metadata() or ())
                status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
                info = error_details_pb2.RetryInfo()
                assert status.code == 14 and status.details[0].Unpack(info)
                assert info.retry_delay.seconds == 5
    finally:
        await server.stop(None)
        for wal in wals.values():
            wal.close()
