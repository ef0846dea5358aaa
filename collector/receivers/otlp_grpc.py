"""OTLP/gRPC receiver: the three `Export` services, on the same ingest path as HTTP.

Requests reach us as raw bytes (no deserializer is registered), so the write-ahead log
stores exactly what was sent and decoding happens once, in `Ingest`. gRPC itself handles
gzip and refuses messages above `max_message_bytes` with RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

from ...proto.otlp import Encoding, Signal, encode_export_response
from ..errors import (
    IngestError,
    InvalidRequest,
    PayloadTooLarge,
    PermissionDenied,
    Throttled,
    Unauthenticated,
    Unavailable,
    UnsupportedMediaType,
)
from ..inflight import InflightBytes
from ..ingest import Ingest
from ..telemetry import IngestMetrics, refusal_reason
from ..tenancy import TenantResolver

_SERVICES = {
    Signal.TRACES: "opentelemetry.proto.collector.trace.v1.TraceService",
    Signal.METRICS: "opentelemetry.proto.collector.metrics.v1.MetricsService",
    Signal.LOGS: "opentelemetry.proto.collector.logs.v1.LogsService",
}

# The gRPC status for each refusal; the only place that maps them.
_ERROR_CODES: dict[type[IngestError], grpc.StatusCode] = {
    InvalidRequest: grpc.StatusCode.INVALID_ARGUMENT,
    PayloadTooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    UnsupportedMediaType: grpc.StatusCode.INVALID_ARGUMENT,
    Throttled: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
}

MAX_CONCURRENT_CALLS = 128

Export = Callable[[bytes, grpc.aio.ServicerContext[bytes, bytes]], Awaitable[bytes]]


def _retry_info(
    exc: Unavailable | Throttled, code: grpc.StatusCode
) -> tuple[tuple[str, bytes], ...]:
    """A google.rpc.Status with RetryInfo in the trailers, where OTLP clients look for how
    long to wait before retrying (the `grpc-status-details-bin` convention)."""
    detail = any_pb2.Any()
    detail.Pack(
        error_details_pb2.RetryInfo(
            retry_delay=duration_pb2.Duration(seconds=exc.retry_after_seconds)
        )
    )
    status = status_pb2.Status(code=code.value[0], message=str(exc), details=[detail])
    return (("grpc-status-details-bin", status.SerializeToString()),)


class OtlpGrpcReceiver:
    def __init__(
        self,
        ingest: Ingest,
        resolve_tenant: TenantResolver,
        metrics: IngestMetrics | None = None,
        inflight: InflightBytes | None = None,
    ) -> None:
        self._ingest = ingest
        self._resolve_tenant = resolve_tenant
        self._metrics = metrics or IngestMetrics.create()
        self._inflight = inflight or InflightBytes(sys.maxsize)

    def server(self, address: str, max_message_bytes: int) -> grpc.aio.Server:
        """A server with the OTLP services bound to `address` (not started)."""
        server = grpc.aio.server(
            # gRPC reads a whole message before our handler sees it: this caps how many it
            # may hold at once (excess calls get RESOURCE_EXHAUSTED from gRPC itself).
            maximum_concurrent_rpcs=MAX_CONCURRENT_CALLS,
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.so_reuseport", 0),  # a second Argus on the port must fail, not share
            ]
        )
        for signal, service in _SERVICES.items():
            handler = grpc.unary_unary_rpc_method_handler(self._export(signal))
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(service, {"Export": handler}),)
            )
        server.add_insecure_port(address)
        return server

    def _export(self, signal: Signal) -> Export:
        async def export(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
            started = time.perf_counter()
            metadata = {key: str(value) for key, value in context.invocation_metadata() or ()}
            try:
                tenant = self._resolve_tenant(metadata)
                with self._inflight.hold() as held:
                    held.add(len(request))
                    result = await self._ingest.accept(signal, tenant, Encoding.PROTOBUF, request)
            except IngestError as exc:
                code = _ERROR_CODES[type(exc)]
                self._record(signal, code, started)
                self._metrics.refused_requests.labels("grpc", signal.value, refusal_reason(exc)).inc()
                if isinstance(exc, (Unavailable, Throttled)):
                    context.set_trailing_metadata(_retry_info(exc, code))
                await context.abort(code, str(exc))
            self._record(signal, grpc.StatusCode.OK, started)
            return encode_export_response(signal, Encoding.PROTOBUF, result.rejected, result.message)

        return export

    def _record(self, signal: Signal, code: grpc.StatusCode, started: float) -> None:
        self._metrics.request_seconds.labels("grpc", signal.value, code.name).observe(
            time.perf_counter() - started
        )
