"""OTLP/JSON ExportLogsServiceRequest: type checks, validation and conversion in one walk."""

from __future__ import annotations

from opentelemetry.proto.logs.v1.logs_pb2 import SeverityNumber

from ..storage.model import LogRecord, Resource, Scope
from .json_anyvalue import any_value, attributes
from .json_fields import (
    FieldError,
    JsonObject,
    enum,
    string,
    trace_or_span_id,
    uint32,
    uint64,
)
from .json_request import walk
from .rules import Tally, Validation, log_problem
from .time_window import TimeWindow

_SEVERITY_NAMES: dict[str, int] = dict(SeverityNumber.items())


def convert(
    request: JsonObject, window: TimeWindow | None = None
) -> tuple[list[LogRecord], Validation]:
    """Raises FieldError for a value of the wrong type anywhere in the request."""
    tally = Tally("log record", "log records", window)
    records = walk(request, ("resourceLogs", "scopeLogs", "logRecords"), _record, tally)
    return records, tally.validation()


def _record(obj: JsonObject, res: Resource, scp: Scope, tally: Tally, out: list[LogRecord]) -> None:
    trace_id = trace_or_span_id(obj, "traceId")
    span_id = trace_or_span_id(obj, "spanId")
    problem = log_problem(trace_id, span_id)
    if problem is not None:
        tally.reject(problem)
        return
    body = obj.get("body")
    try:
        body_value = None if body is None else any_value(body)
    except FieldError as exc:
        raise exc.at("body") from None
    # Positional, in LogRecord's field order: faster than keywords on this hot path (the
    # field-by-field tests in tests/proto catch any change of that order).
    record = LogRecord(
        uint64(obj, "timeUnixNano"),
        uint64(obj, "observedTimeUnixNano"),
        res,
        scp,
        enum(obj, "severityNumber", _SEVERITY_NAMES),
        string(obj, "severityText"),
        body_value,
        attributes(obj),
        uint32(obj, "droppedAttributesCount"),
        uint32(obj, "flags"),
        trace_id.hex(),
        span_id.hex(),
        string(obj, "eventName"),
    )
    window = tally.window
    if window is not None:
        problem = window.log_time_problem(record.time_unix_nano, record.observed_time_unix_nano)
        if problem is not None:
            tally.reject(problem)
            return
    out.append(record)
    tally.accepted += 1
