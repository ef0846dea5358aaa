"""Protobuf ExportLogsServiceRequest: validation and conversion to model log records."""

from __future__ import annotations

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from ..storage.model import LogRecord
from .pb_common import any_value, attributes, resource, scope
from .rules import Tally, Validation, log_problem
from .time_window import TimeWindow


def validate(request: ExportLogsServiceRequest, window: TimeWindow | None = None) -> Validation:
    tally = Tally("log record", "log records", window)
    earliest, latest = window.bounds if window is not None else (0, 0)
    for resource_logs in request.resource_logs:
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                problem = log_problem(record.trace_id, record.span_id)
                if problem is None and window is not None:
                    # window.log_time_problem, inlined: half the cost on this hot path.
                    timestamp = record.time_unix_nano or record.observed_time_unix_nano
                    if timestamp and not earliest <= timestamp <= latest:
                        problem = window.time_problem(timestamp)
                if problem is None:
                    tally.accepted += 1
                else:
                    tally.reject(problem)
    return tally.validation()


def to_model(
    request: ExportLogsServiceRequest, window: TimeWindow | None = None
) -> list[LogRecord]:
    out: list[LogRecord] = []
    for resource_logs in request.resource_logs:
        res = resource(resource_logs.resource, resource_logs.schema_url)
        for scope_logs in resource_logs.scope_logs:
            scp = scope(scope_logs.scope, scope_logs.schema_url)
            for record in scope_logs.log_records:
                trace_id, span_id = record.trace_id, record.span_id
                if log_problem(trace_id, span_id) is not None:
                    continue
                time_unix_nano = record.time_unix_nano
                observed_time_unix_nano = record.observed_time_unix_nano
                if (
                    window is not None
                    and window.log_time_problem(time_unix_nano, observed_time_unix_nano)
                    is not None
                ):
                    continue
                # Positional, in LogRecord's field order: faster than keywords here (the
                # field-by-field tests in tests/proto catch any change of that order).
                out.append(
                    LogRecord(
                        time_unix_nano,
                        observed_time_unix_nano,
                        res,
                        scp,
                        record.severity_number,
                        record.severity_text,
                        any_value(record.body),
                        attributes(record.attributes),
                        record.dropped_attributes_count,
                        record.flags,
                        trace_id.hex(),
                        span_id.hex(),
                        record.event_name,
                    )
                )
    return out
