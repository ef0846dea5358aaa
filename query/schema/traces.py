"""GraphQL types and resolvers for traces."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.types import Info

from ...storage import model
from ...storage.traces import TraceQuery
from ...storage.traces import TraceSummary as StoredSummary
from ..context import QueryContext
from .common import AttributeFilter, Resource, Scope, attribute_map
from .scalars import JSON, Duration, Int64, Time, to_json

if TYPE_CHECKING:
    from .logs import LogConnection
    from .metrics import MetricInfo

_LOGS = strawberry.lazy(".logs")
_METRICS = strawberry.lazy(".metrics")

# The model's enums, exposed by name (SERVER, ERROR, ...).
strawberry.enum(model.SpanKind, name="SpanKind")
strawberry.enum(model.StatusCode, name="StatusCode")


# Correlation fields (query.schema.correlate has the logic; imported when called, as it
# imports this module).


async def resolve_span_logs(
    root: Any, info: Info[QueryContext, Any], first: int = 100, after: str | None = None
) -> Annotated[LogConnection, _LOGS]:
    from .correlate import logs_of_trace

    return await logs_of_trace(info, root.trace_id, root.span_id, first, after)


async def resolve_trace_logs(
    root: Any, info: Info[QueryContext, Any], first: int = 100, after: str | None = None
) -> Annotated[LogConnection, _LOGS]:
    from .correlate import logs_of_trace

    return await logs_of_trace(info, root.trace_id, None, first, after)


async def resolve_service_metrics(
    root: Any, info: Info[QueryContext, Any]
) -> list[Annotated[MetricInfo, _METRICS]]:
    from .correlate import metrics_of_service

    return await metrics_of_service(info, root.name)


@strawberry.type
class SpanEvent:
    time_unix_nano: Int64
    name: str
    attributes: JSON
    dropped_attributes_count: int


@strawberry.type
class SpanLink:
    trace_id: str
    span_id: str
    trace_state: str
    attributes: JSON
    dropped_attributes_count: int
    flags: Int64


@strawberry.type
class Span:
    trace_id: str
    span_id: str
    parent_span_id: str
    trace_state: str
    flags: Int64
    name: str
    kind: model.SpanKind
    service: str
    start_time_unix_nano: Int64
    end_time_unix_nano: Int64
    duration_nano: Int64
    attributes: JSON
    dropped_attributes_count: int
    events: list[SpanEvent]
    dropped_events_count: int
    links: list[SpanLink]
    dropped_links_count: int
    status_code: model.StatusCode
    status_message: str
    resource: Resource
    scope: Scope

    logs = strawberry.field(
        resolver=resolve_span_logs,
        description="Log records emitted inside this span, newest first.",
    )

    @classmethod
    def of(cls, span: model.Span) -> Span:
        return cls(
            trace_id=span.trace_id,
            span_id=span.span_id,
            parent_span_id=span.parent_span_id,
            trace_state=span.trace_state,
            flags=span.flags,
            name=span.name,
            kind=span.kind,
            service=span.service_name,
            start_time_unix_nano=span.start_time_unix_nano,
            end_time_unix_nano=span.end_time_unix_nano,
            duration_nano=span.duration_nano,
            attributes=to_json(span.attributes),
            dropped_attributes_count=span.dropped_attributes_count,
            events=[
                SpanEvent(
                    time_unix_nano=event.time_unix_nano,
                    name=event.name,
                    attributes=to_json(event.attributes),
                    dropped_attributes_count=event.dropped_attributes_count,
                )
                for event in span.events
            ],
            dropped_events_count=span.dropped_events_count,
            links=[
                SpanLink(
                    trace_id=link.trace_id,
                    span_id=link.span_id,
                    trace_state=link.trace_state,
                    attributes=to_json(link.attributes),
                    dropped_attributes_count=link.dropped_attributes_count,
                    flags=link.flags,
                )
                for link in span.links
            ],
            dropped_links_count=span.dropped_links_count,
            status_code=span.status_code,
            status_message=span.status_message,
            resource=Resource.of(span.resource),
            scope=Scope.of(span.scope),
        )


@strawberry.type
class Trace:
    trace_id: str
    spans: list[Span]
    services: list[str]
    start_time_unix_nano: Int64
    duration_nano: Int64
    span_count: int
    has_error: bool

    logs = strawberry.field(
        resolver=resolve_trace_logs,
        description="Log records of this trace (of any span), newest first.",
    )


@strawberry.type
class TraceSummary:
    trace_id: str
    root_service: str
    root_name: str
    start_time_unix_nano: Int64
    duration_nano: Int64
    span_count: int
    error_count: int
    has_error: bool
    services: list[str]

    @classmethod
    def of(cls, summary: StoredSummary) -> TraceSummary:
        return cls(
            trace_id=summary.trace_id,
            root_service=summary.root_service,
            root_name=summary.root_name,
            start_time_unix_nano=summary.start_unix_nano,
            duration_nano=summary.duration_nano,
            span_count=summary.span_count,
            error_count=summary.error_count,
            has_error=summary.has_error,
            services=summary.services,
        )


@strawberry.type
class Service:
    name: str
    operations: list[str]

    metrics = strawberry.field(
        resolver=resolve_service_metrics,
        description="Metrics with a series of this service (service.name).",
    )


@strawberry.input(description="Trace search; every field is optional. Newest traces first.")
class TraceFilter:
    service: str | None = None
    operation: str | None = None
    min_duration: Duration | None = None
    max_duration: Duration | None = None
    errors_only: bool = False
    attributes: list[AttributeFilter] | None = None
    start: Time | None = None
    end: Time | None = None
    limit: int = 20


def build_trace(trace_id: str, spans: list[model.Span]) -> Trace | None:
    if not spans:
        return None
    start = min(span.start_time_unix_nano for span in spans)
    end = max(span.end_time_unix_nano for span in spans)
    return Trace(
        trace_id=trace_id,
        spans=[Span.of(span) for span in spans],
        services=sorted({span.service_name for span in spans}),
        start_time_unix_nano=start,
        duration_nano=max(0, end - start),
        span_count=len(spans),
        has_error=any(span.is_error for span in spans),
    )


async def resolve_services(info: Info[QueryContext, Any]) -> list[Service]:
    found = await info.context.service.services(info.context.tenant)
    return [Service(name=item.service, operations=item.operations) for item in found]


async def resolve_trace(info: Info[QueryContext, Any], trace_id: str) -> Trace | None:
    spans = await info.context.service.trace(info.context.tenant, trace_id)
    return build_trace(trace_id.strip().lower(), spans)


async def resolve_traces(
    info: Info[QueryContext, Any], filter: TraceFilter | None = None
) -> list[TraceSummary]:
    given = filter or TraceFilter()
    query = TraceQuery(
        tenant=info.context.tenant,
        start_unix_nano=given.start,
        end_unix_nano=given.end,
        service=given.service,
        operation=given.operation,
        min_duration_nano=given.min_duration,
        max_duration_nano=given.max_duration,
        errors_only=given.errors_only,
        attributes=attribute_map(given.attributes),
        limit=given.limit,
    )
    return [TraceSummary.of(item) for item in await info.context.service.traces(query)]
