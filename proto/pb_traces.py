"""Protobuf ExportTraceServiceRequest: validation and conversion to model spans."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

from ..storage.model import Resource, Scope, Span, SpanEvent, SpanKind, SpanLink, StatusCode
from .pb_common import attributes, resource, scope
from .rules import Tally, Validation, link_problem, parent_hex, span_problem
from .time_window import TimeWindow

# Proto3 enums are open: a value this model has no member for falls back to the default
# member rather than failing the request.
SPAN_KINDS: dict[int, SpanKind] = {kind.value: kind for kind in SpanKind}
STATUS_CODES: dict[int, StatusCode] = {code.value: code for code in StatusCode}


def _problem(span: PbSpan) -> str | None:
    problem = span_problem(span.trace_id, span.span_id, span.parent_span_id)
    if problem is None and span.links:
        problem = _links_problem(span.links)
    return problem


def _links_problem(links: Sequence[PbSpan.Link]) -> str | None:
    for link in links:
        problem = link_problem(link.trace_id, link.span_id)
        if problem is not None:
            return problem
    return None


def validate(
    request: ExportTraceServiceRequest, window: TimeWindow | None = None
) -> Validation:
    tally = Tally("span", "spans", window)
    earliest, latest = window.bounds if window is not None else (0, 0)
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                problem = _problem(span)
                if problem is None and window is not None:
                    # Inline bounds check: half the cost of a call per span on this hot path.
                    start = span.start_time_unix_nano
                    if not earliest <= start <= latest:
                        problem = window.time_problem(start)
                if problem is None:
                    tally.accepted += 1
                else:
                    tally.reject(problem)
    return tally.validation()


def to_model(request: ExportTraceServiceRequest, window: TimeWindow | None = None) -> list[Span]:
    out: list[Span] = []
    for resource_spans in request.resource_spans:
        res = resource(resource_spans.resource, resource_spans.schema_url)
        for scope_spans in resource_spans.scope_spans:
            scp = scope(scope_spans.scope, scope_spans.schema_url)
            for span in scope_spans.spans:
                if _problem(span) is None and (
                    window is None or window.time_problem(span.start_time_unix_nano) is None
                ):
                    out.append(_span(span, res, scp))
    return out


def _span(span: PbSpan, res: Resource, scp: Scope) -> Span:
    events, links, status = span.events, span.links, span.status
    # Positional, in Span's field order: much faster than keywords on this hot path (the
    # field-by-field tests in tests/proto catch any change of that order).
    return Span(
        span.trace_id.hex(),
        span.span_id.hex(),
        span.name,
        span.start_time_unix_nano,
        span.end_time_unix_nano,
        res,
        scp,
        parent_hex(span.parent_span_id),
        span.trace_state,
        span.flags,
        SPAN_KINDS.get(span.kind, SpanKind.UNSPECIFIED),
        attributes(span.attributes),
        span.dropped_attributes_count,
        [_event(event) for event in events] if events else [],
        span.dropped_events_count,
        [_link(link) for link in links] if links else [],
        span.dropped_links_count,
        STATUS_CODES.get(status.code, StatusCode.UNSET),
        status.message,
    )


def _event(event: PbSpan.Event) -> SpanEvent:
    return SpanEvent(
        event.time_unix_nano,
        event.name,
        attributes(event.attributes),
        event.dropped_attributes_count,
    )


def _link(link: PbSpan.Link) -> SpanLink:
    return SpanLink(
        link.trace_id.hex(),
        link.span_id.hex(),
        link.trace_state,
        attributes(link.attributes),
        link.dropped_attributes_count,
        link.flags,
    )
