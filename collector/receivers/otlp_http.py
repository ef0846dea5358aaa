"""OTLP/HTTP receiver (`/v1/traces`, `/v1/metrics`, `/v1/logs`), per the OTLP spec:

* `application/x-protobuf` and `application/json` bodies, optionally gzip-encoded; the
  answer uses the request's content type;
* 200 with an `Export*ServiceResponse`, `partial_success` set only when items were
  rejected;
* errors carry a `google.rpc.Status`: 400 invalid data, 413 too large, 415 unsupported
  content type or encoding, 429 + Retry-After over the tenant's rate limit, 503 +
  Retry-After when the data could not be made durable or indexing is too far behind;
  404 / 405 (with `Allow`) come from the router.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...proto.otlp import Encoding, Signal, encode_export_response, encode_status
from ..decompress import gunzip_limited
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
from ..inflight import Held, InflightBytes
from ..ingest import Ingest
from ..telemetry import IngestMetrics, refusal_reason
from ..tenancy import TenantResolver

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_MEDIA_TYPES = {PROTOBUF: Encoding.PROTOBUF, JSON: Encoding.JSON}

# google.rpc.Code values used in Status bodies.
_INVALID_ARGUMENT = 3
_PERMISSION_DENIED = 7
_RESOURCE_EXHAUSTED = 8
_UNAVAILABLE = 14
_UNAUTHENTICATED = 16

# HTTP status and google.rpc code for each refusal; the only place that maps them.
_ERROR_STATUS: dict[type[IngestError], tuple[int, int]] = {
    InvalidRequest: (400, _INVALID_ARGUMENT),
    PayloadTooLarge: (413, _RESOURCE_EXHAUSTED),
    UnsupportedMediaType: (415, _INVALID_ARGUMENT),
    Throttled: (429, _RESOURCE_EXHAUSTED),
    Unavailable: (503, _UNAVAILABLE),
    Unauthenticated: (401, _UNAUTHENTICATED),
    PermissionDenied: (403, _PERMISSION_DENIED),
}


class OtlpHttpReceiver:
    def __init__(
        self,
        ingest: Ingest,
        resolve_tenant: TenantResolver,
        max_request_bytes: int,
        max_decompressed_bytes: int,
        metrics: IngestMetrics | None = None,
        inflight: InflightBytes | None = None,
    ) -> None:
        self._ingest = ingest
        self._metrics = metrics or IngestMetrics.create()
        self._inflight = inflight or InflightBytes(max_request_bytes + max_decompressed_bytes)
        self._resolve_tenant = resolve_tenant
        self._max_request_bytes = max_request_bytes
        self._max_decompressed_bytes = max_decompressed_bytes

    def app(self) -> Starlette:
        routes = [
            Route(f"/v1/{signal.value}", self._endpoint(signal), methods=["POST"])
            for signal in Signal
        ]
        return Starlette(routes=routes)

    def _endpoint(self, signal: Signal) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            response = await self._handle(signal, request)
            self._metrics.request_seconds.labels(
                "http", signal.value, str(response.status_code)
            ).observe(time.perf_counter() - started)
            return response

        return endpoint

    async def _handle(self, signal: Signal, request: Request) -> Response:
        encoding = _encoding_of(request)
        try:
            if encoding is None:
                raise UnsupportedMediaType(
                    f"unsupported content type {request.headers.get('content-type')!r};"
                    f" use {PROTOBUF} or {JSON}"
                )
            tenant = self._resolve_tenant(request.headers)  # before reading the body
            with self._inflight.hold() as held:
                body = await self._read_body(request, held)
                result = await self._ingest.accept(signal, tenant, encoding, body)
        except IngestError as exc:
            self._metrics.refused_requests.labels("http", signal.value, refusal_reason(exc)).inc()
            return _error_response(exc, encoding or Encoding.JSON)
        payload = encode_export_response(signal, encoding, result.rejected, result.message)
        return Response(payload, media_type=_media_type(encoding))

    async def _read_body(self, request: Request, held: Held) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_request_bytes:
            raise PayloadTooLarge(f"body exceeds the limit of {self._max_request_bytes} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self._max_request_bytes:
                raise PayloadTooLarge(f"body exceeds the limit of {self._max_request_bytes} bytes")
            held.add(len(chunk))
            chunks.append(chunk)
        body = b"".join(chunks)
        content_encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if content_encoding == "gzip":
            inflated = gunzip_limited(body, self._max_decompressed_bytes)
            held.add(len(inflated))
            return inflated
        if content_encoding not in ("", "identity"):
            raise UnsupportedMediaType(
                f"unsupported content encoding {content_encoding!r}; use gzip or none"
            )
        return body


def _encoding_of(request: Request) -> Encoding | None:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return _MEDIA_TYPES.get(media_type)


def _media_type(encoding: Encoding) -> str:
    return PROTOBUF if encoding is Encoding.PROTOBUF else JSON


def _error_response(exc: IngestError, encoding: Encoding) -> Response:
    http_status, rpc_code = _ERROR_STATUS[type(exc)]
    headers = {}
    if isinstance(exc, (Unavailable, Throttled)):
        headers["Retry-After"] = str(exc.retry_after_seconds)
    elif isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="argus"'
    return Response(
        encode_status(encoding, rpc_code, str(exc)),
        status_code=http_status,
        media_type=_media_type(encoding),
        headers=headers,
    )
