"""Encoding OTLP/HTTP response bodies: Export*ServiceResponse and google.rpc.Status.

JSON bodies follow the proto3 JSON mapping as `json_format` would write them (int64 as a
string, default values left out), built with orjson since the shapes are this small.
"""

from __future__ import annotations

from typing import Any

import orjson
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

# Per signal, keyed by its value ("traces", ...): the response class and the name of its
# rejected-count field, in protobuf and in JSON.
_RESPONSES: dict[str, tuple[type[Any], str, str]] = {
    "traces": (ExportTraceServiceResponse, "rejected_spans", "rejectedSpans"),
    "metrics": (ExportMetricsServiceResponse, "rejected_data_points", "rejectedDataPoints"),
    "logs": (ExportLogsServiceResponse, "rejected_log_records", "rejectedLogRecords"),
}


def export_response_protobuf(signal: str, rejected: int, message: str) -> bytes:
    response_class, rejected_field, _ = _RESPONSES[signal]
    response = response_class()
    if rejected or message:
        # Setting a field of the sub-message marks partial_success as present; with
        # rejected == 0 and a message, it carries a warning, as the spec allows.
        setattr(response.partial_success, rejected_field, rejected)
        response.partial_success.error_message = message
        response.partial_success.SetInParent()
    body: bytes = response.SerializeToString()
    return body


def export_response_json(signal: str, rejected: int, message: str) -> bytes:
    _, _, rejected_key = _RESPONSES[signal]
    if not rejected and not message:
        return b"{}"
    partial: dict[str, str] = {}
    if rejected:
        partial[rejected_key] = str(rejected)
    if message:
        partial["errorMessage"] = message
    return orjson.dumps({"partialSuccess": partial})


def status_protobuf(code: int, message: str) -> bytes:
    body: bytes = Status(code=code, message=message).SerializeToString()
    return body


def status_json(code: int, message: str) -> bytes:
    status: dict[str, int | str] = {}
    if code:
        status["code"] = code
    if message:
        status["message"] = message
    return orjson.dumps(status)
