"""OTLP/HTTP requests in, internal model out; and the bodies of OTLP/HTTP responses.

The flow for one request body:

    parsed = parse_request(signal, encoding, body)   # DecodeError: undecodable
    result = validate(signal, parsed, window)        # DecodeError: a field of the wrong type
    items = to_model(signal, parsed, window)         # the items validate() accepted

Each call stands alone: `to_model` may run later in another process on the same bytes
(the collector logs raw bodies and converts them afterwards) and, given an equal window
(see time_window: it is fixed by the receive time), skips exactly the items `validate`
rejected. Without a window no timestamp is judged. For protobuf, `validate` reads only the fields the rules need. For
JSON every field's type must be known good before a request is accepted, so `validate`
walks the whole document; `to_model` walks it again.

Items converted from one ResourceSpans (ResourceMetrics, ResourceLogs) share one Resource
object, items of one scope one Scope object, and points of one metric one metadata dict:
treat them as read-only.

JSON follows the OTLP JSON encoding (hex ids, integer enums, lowerCamelCase keys) and, as
a lenient receiver, also takes enum names and the original snake_case field names.

Where OTLP says more than the model can hold: an enum value the model has no member for
(a span kind, status code or temporality from a newer OTLP) becomes the default member;
an exemplar without a value gets 0.0, as protobuf reads it; `Resource.entity_refs`
(development status) is not kept; the profiles-only `*_strindex` fields read as absent,
as the proto asks of other signals.
"""

from __future__ import annotations

import enum
from typing import Any, Literal, TypeAlias, TypeVar, overload

import orjson
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ..storage.model import LogRecord, MetricPoint, Span
from . import json_logs, json_metrics, json_traces, pb_logs, pb_metrics, pb_traces, responses
from .errors import DecodeError
from .json_fields import FieldError
from .json_keys import camel_case_keys, may_have_snake_keys
from .rules import Validation
from .time_window import TimeBounds, TimeWindow

__all__ = [
    "DecodeError",
    "Encoding",
    "JsonRequest",
    "ParsedRequest",
    "Signal",
    "TimeBounds",
    "TimeWindow",
    "Validation",
    "encode_export_response",
    "encode_status",
    "parse_request",
    "to_model",
    "validate",
]


class Signal(enum.StrEnum):
    TRACES = "traces"
    METRICS = "metrics"
    LOGS = "logs"


class Encoding(enum.StrEnum):
    PROTOBUF = "protobuf"
    JSON = "json"


class JsonRequest(dict[str, Any]):
    """A decoded OTLP/JSON request whose field names are already all lowerCamelCase.

    validate() and to_model() also take a plain dict, and rename its snake_case field
    names in place first.
    """


PbRequest: TypeAlias = (
    ExportTraceServiceRequest | ExportMetricsServiceRequest | ExportLogsServiceRequest
)
ParsedRequest: TypeAlias = PbRequest | dict[str, Any]

_PB_REQUESTS: dict[Signal, type[PbRequest]] = {
    Signal.TRACES: ExportTraceServiceRequest,
    Signal.METRICS: ExportMetricsServiceRequest,
    Signal.LOGS: ExportLogsServiceRequest,
}


def parse_request(signal: Signal, encoding: Encoding, body: bytes) -> ParsedRequest:
    """Decode a request body. Raises DecodeError, and nothing else, for any bytes."""
    if encoding == Encoding.PROTOBUF:
        request_class = _PB_REQUESTS[signal]
        try:
            request: PbRequest = request_class.FromString(body)
        # upb raises protobuf's DecodeError, but the contract is "DecodeError for any bytes"
        # whichever protobuf backend is installed, and no failure here is ours.
        except Exception as exc:  # noqa: BLE001
            raise DecodeError(f"invalid protobuf {request_class.__name__}: {exc}") from None
        return request
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"invalid JSON: {exc}") from None
    if type(document) is not dict:
        raise DecodeError("request body: expected a JSON object")
    if may_have_snake_keys(body):
        camel_case_keys(document)
    return JsonRequest(document)


def validate(
    signal: Signal, parsed: ParsedRequest, window: TimeWindow | None = None
) -> Validation:
    """Count the items to accept and reject, and say why any were rejected. With a
    window, items whose timestamp lies outside it are rejected too (and counted in
    `rejected_too_old` / `rejected_in_future`).

    Raises DecodeError when a JSON field has the wrong type (the message names its path).
    """
    if isinstance(parsed, dict):
        return _convert_json(signal, parsed, window)[1]
    if signal == Signal.TRACES:
        return pb_traces.validate(_pb(signal, parsed, ExportTraceServiceRequest), window)
    if signal == Signal.METRICS:
        return pb_metrics.validate(_pb(signal, parsed, ExportMetricsServiceRequest), window)
    return pb_logs.validate(_pb(signal, parsed, ExportLogsServiceRequest), window)


@overload
def to_model(
    signal: Literal[Signal.TRACES], parsed: ParsedRequest, window: TimeWindow | None = None
) -> list[Span]: ...
@overload
def to_model(
    signal: Literal[Signal.METRICS], parsed: ParsedRequest, window: TimeWindow | None = None
) -> list[MetricPoint]: ...
@overload
def to_model(
    signal: Literal[Signal.LOGS], parsed: ParsedRequest, window: TimeWindow | None = None
) -> list[LogRecord]: ...
@overload
def to_model(
    signal: Signal, parsed: ParsedRequest, window: TimeWindow | None = None
) -> list[Span] | list[MetricPoint] | list[LogRecord]: ...


def to_model(
    signal: Signal, parsed: ParsedRequest, window: TimeWindow | None = None
) -> list[Span] | list[MetricPoint] | list[LogRecord]:
    """The accepted items (by the same window), in request order. Never raises for a
    request that validate() accepted (for JSON it raises DecodeError where validate()
    would have)."""
    if isinstance(parsed, dict):
        return _convert_json(signal, parsed, window)[0]
    if signal == Signal.TRACES:
        return pb_traces.to_model(_pb(signal, parsed, ExportTraceServiceRequest), window)
    if signal == Signal.METRICS:
        return pb_metrics.to_model(_pb(signal, parsed, ExportMetricsServiceRequest), window)
    return pb_logs.to_model(_pb(signal, parsed, ExportLogsServiceRequest), window)


def encode_export_response(
    signal: Signal, encoding: Encoding, rejected: int, message: str
) -> bytes:
    """Export<Signal>ServiceResponse; partial_success is left unset when rejected == 0 and
    message == "" (JSON: `{}`)."""
    if encoding == Encoding.PROTOBUF:
        return responses.export_response_protobuf(signal.value, rejected, message)
    return responses.export_response_json(signal.value, rejected, message)


def encode_status(encoding: Encoding, code: int, message: str) -> bytes:
    """A google.rpc.Status body for a failed request (code is a google.rpc.Code)."""
    if encoding == Encoding.PROTOBUF:
        return responses.status_protobuf(code, message)
    return responses.status_json(code, message)


def _convert_json(
    signal: Signal, document: dict[str, Any], window: TimeWindow | None
) -> tuple[list[Any], Validation]:
    if type(document) is not JsonRequest:
        camel_case_keys(document)
    try:
        if signal == Signal.TRACES:
            return json_traces.convert(document, window)
        if signal == Signal.METRICS:
            return json_metrics.convert(document, window)
        return json_logs.convert(document, window)
    except FieldError as exc:
        raise DecodeError(f"{exc.path}: {exc.reason}" if exc.parts else exc.reason) from None


_R = TypeVar("_R", bound=PbRequest)


def _pb(signal: Signal, parsed: object, expected: type[_R]) -> _R:
    if not isinstance(parsed, expected):
        raise TypeError(f"a {signal} request must be a {expected.__name__}, not {type(parsed)}")
    return parsed
