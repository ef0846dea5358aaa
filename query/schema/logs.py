"""GraphQL types and resolvers for logs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.types import Info

from ...storage import model
from ...storage.attributes import encode_value
from ...storage.logs import LogPage, LogQuery
from ..context import QueryContext
from .common import AttributeFilter, Resource, Scope, attribute_map
from .scalars import JSON, Int64, Time, to_json

if TYPE_CHECKING:
    from .traces import Trace

# OTLP severity number ranges (SeverityNumber): TRACE 1-4, DEBUG 5-8, INFO 9-12,
# WARN 13-16, ERROR 17-20, FATAL 21-24.
SEVERITY_LEVELS = {"TRACE": 1, "DEBUG": 5, "INFO": 9, "WARN": 13, "ERROR": 17, "FATAL": 21}


async def resolve_log_trace(
    root: Any, info: Info[QueryContext, Any]
) -> Annotated[Trace, strawberry.lazy(".traces")] | None:
    from .correlate import trace_of_log  # it imports this module

    return await trace_of_log(info, root.trace_id)


@strawberry.type
class LogRecord:
    time_unix_nano: Int64
    observed_time_unix_nano: Int64
    timestamp: Int64 = strawberry.field(
        description="The record's time: time_unix_nano, else observed_time_unix_nano."
    )
    severity_number: int
    severity_text: str
    body: JSON | None = strawberry.field(
        description="The body as JSON, of whatever AnyValue kind; null when empty."
    )
    body_text: str = strawberry.field(description="The body as text (non-strings as JSON).")
    attributes: JSON
    dropped_attributes_count: int
    flags: Int64
    trace_id: str
    span_id: str
    event_name: str
    service: str
    resource: Resource
    scope: Scope

    trace = strawberry.field(
        resolver=resolve_log_trace,
        description="The trace the record was logged in; null when it has no trace id or"
        " the trace is not stored.",
    )

    @classmethod
    def of(cls, record: model.LogRecord) -> LogRecord:
        return cls(
            time_unix_nano=record.time_unix_nano,
            observed_time_unix_nano=record.observed_time_unix_nano,
            timestamp=record.timestamp,
            severity_number=record.severity_number,
            severity_text=record.severity_text,
            body=to_json(record.body),
            body_text=body_text(record.body),
            attributes=to_json(record.attributes),
            dropped_attributes_count=record.dropped_attributes_count,
            flags=record.flags,
            trace_id=record.trace_id,
            span_id=record.span_id,
            event_name=record.event_name,
            service=record.service_name,
            resource=Resource.of(record.resource),
            scope=Scope.of(record.scope),
        )


def body_text(body: model.AnyValue) -> str:
    if isinstance(body, str):
        return body
    return "" if body is None else encode_value(body).decode()


@strawberry.type
class LogConnection:
    records: list[LogRecord]
    next_cursor: str | None = strawberry.field(
        description="Pass as `after` to fetch the next (older) page; null at the end."
    )


@strawberry.input(description="Log search; every field is optional. Newest records first.")
class LogFilter:
    start: Time | None = None
    end: Time | None = None
    contains: str | None = strawberry.field(
        default=None, description="Case-insensitive substring of the body."
    )
    min_severity: str | None = strawberry.field(
        default=None,
        description="TRACE, DEBUG, INFO, WARN, ERROR, FATAL, or a severity number 1-24.",
    )
    service: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    attributes: list[AttributeFilter] | None = None


def severity_number(level: str | None) -> int | None:
    if level is None:
        return None
    text = level.strip().upper()
    if text.isdigit() and 1 <= int(text) <= 24:
        return int(text)
    if text in SEVERITY_LEVELS:
        return SEVERITY_LEVELS[text]
    raise ValueError(f"invalid severity {level!r}: use {', '.join(SEVERITY_LEVELS)} or 1-24")


def log_query(
    tenant: str, filter: LogFilter | None, limit: int = 100, cursor: str | None = None
) -> LogQuery:
    given = filter or LogFilter()
    return LogQuery(
        tenant=tenant,
        start_unix_nano=given.start,
        end_unix_nano=given.end,
        contains=given.contains,
        min_severity=severity_number(given.min_severity),
        service=given.service,
        trace_id=given.trace_id,
        span_id=given.span_id.strip().lower() if given.span_id else None,
        attributes=attribute_map(given.attributes),
        limit=limit,
        cursor=cursor,
    )


def connection(page: LogPage) -> LogConnection:
    return LogConnection(
        records=[LogRecord.of(record) for record in page.records], next_cursor=page.next_cursor
    )


async def resolve_logs(
    info: Info[QueryContext, Any],
    filter: LogFilter | None = None,
    first: int = 100,
    after: str | None = None,
) -> LogConnection:
    query = log_query(info.context.tenant, filter, first, after)
    return connection(await info.context.service.logs(query))
