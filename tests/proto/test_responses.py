"""Response bodies: Export*ServiceResponse with partial_success set only when needed, and
google.rpc.Status, in protobuf and in JSON as json_format would write them."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from argus.proto.otlp import Encoding, Signal, encode_export_response, encode_status
from google.protobuf import json_format
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

RESPONSES: dict[Signal, tuple[type[Any], str]] = {
    Signal.TRACES: (ExportTraceServiceResponse, "rejected_spans"),
    Signal.METRICS: (ExportMetricsServiceResponse, "rejected_data_points"),
    Signal.LOGS: (ExportLogsServiceResponse, "rejected_log_records"),
}


@pytest.mark.parametrize("signal", list(Signal))
def test_full_success_leaves_partial_success_unset(signal: Signal) -> None:
    response_class, _ = RESPONSES[signal]
    body = encode_export_response(signal, Encoding.PROTOBUF, 0, "")
    assert not response_class.FromString(body).HasField("partial_success")
    assert encode_export_response(signal, Encoding.JSON, 0, "") == b"{}"


@pytest.mark.parametrize(("rejected", "message"), [(3, "3 spans rejected: why"), (0, "a warning")])
@pytest.mark.parametrize("signal", list(Signal))
def test_partial_success(signal: Signal, rejected: int, message: str) -> None:
    response_class, field = RESPONSES[signal]
    decoded = response_class.FromString(
        encode_export_response(signal, Encoding.PROTOBUF, rejected, message)
    )
    assert decoded.HasField("partial_success")
    assert getattr(decoded.partial_success, field) == rejected
    assert decoded.partial_success.error_message == message
    as_json = orjson.loads(encode_export_response(signal, Encoding.JSON, rejected, message))
    assert as_json == json_format.MessageToDict(decoded)


def test_rejections_without_a_message() -> None:
    body = encode_export_response(Signal.LOGS, Encoding.JSON, 2, "")
    assert orjson.loads(body) == {"partialSuccess": {"rejectedLogRecords": "2"}}


@pytest.mark.parametrize(("code", "message"), [(3, "bad: ✗"), (14, ""), (0, "odd")])
def test_status(code: int, message: str) -> None:
    decoded = Status.FromString(encode_status(Encoding.PROTOBUF, code, message))
    assert (decoded.code, decoded.message, list(decoded.details)) == (code, message, [])
    as_json = orjson.loads(encode_status(Encoding.JSON, code, message))
    assert as_json == json_format.MessageToDict(decoded)
