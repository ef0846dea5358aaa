"""OTLP/JSON ExportTraceServiceRequest: type checks, validation and conversion in one walk."""

from __future__ import annotations

from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status as PbStatus

from ..storage.model import Resource, Scope, Span, SpanEvent, SpanKind, SpanLink, StatusCode
from .json_anyvalue import attributes
from .json_fields import (
    FieldError,
    JsonObject,
    enum,
    index_of,
    objects,
    optional_object,
    string,
    trace_or_span_id,
    uint32,
    uint64,
)
from .json_request import walk
from .pb_traces import SPAN_KINDS, STATUS_CODES
from .rules import Tally, Validation, link_problem, parent_hex, span_problem
from .time_window import TimeWindow

_KIND_NAMES: dict[str, int] = dict(PbSpan.SpanKind.items())
_STATUS_NAMES: dict[str, int] = dict(PbStatus.StatusCode.items())


def convert(
    request: JsonObject, window: TimeWindow | None = None
) -> tuple[list[Span], Validation]:
    """Raises FieldError for a value of the wrong type anywhere in the request."""
    tally = Tally("span", "spans", window)
    spans = walk(request, ("resourceSpans", "scopeSpans", "spans"), _convert_span, tally)
    return spans, tally.validation()


def _convert_span(
    obj: JsonObject, res: Resource, scp: Scope, tally: Tally, out: list[Span]
) -> None:
    span = _span(obj, res, scp)
    if isinstance(span, str):
        tally.reject(span)
        return
    window = tally.window
    if window is not None:
        problem = window.time_problem(span.start_time_unix_nano)
        if problem is not None:
            tally.reject(problem)
            return
    tally.accepted += 1
    out.append(span)


def _span(obj: JsonObject, res: Resource, scp: Scope) -> Span | str:
    """The span, or the reason it is rejected."""
    trace_id = trace_or_span_id(obj, "traceId")
    span_id = trace_or_span_id(obj, "spanId")
    parent_span_id = trace_or_span_id(obj, "parentSpanId")
    problem = span_problem(trace_id, span_id, parent_span_id)
    if problem is not None:
        return problem
    links = _links(objects(obj, "links"))
    if type(links) is str:
        return links
    status = optional_object(obj, "status") or {}
    try:
        status_code = enum(status, "code", _STATUS_NAMES)
        status_message = string(status, "message")
    except FieldError as exc:
        raise exc.at("status") from None
    # Positional, in Span's field order: much faster than keywords on this hot path (the
    # field-by-field tests in tests/proto catch any change of that order).
    return Span(
        trace_id.hex(),
        span_id.hex(),
        string(obj, "name"),
        uint64(obj, "startTimeUnixNano"),
        uint64(obj, "endTimeUnixNano"),
        res,
        scp,
        parent_hex(parent_span_id),
        string(obj, "traceState"),
        uint32(obj, "flags"),
        SPAN_KINDS.get(enum(obj, "kind", _KIND_NAMES), SpanKind.UNSPECIFIED),
        attributes(obj),
        uint32(obj, "droppedAttributesCount"),
        _events(objects(obj, "events")),
        uint32(obj, "droppedEventsCount"),
        links,
        uint32(obj, "droppedLinksCount"),
        STATUS_CODES.get(status_code, StatusCode.UNSET),
        status_message,
    )


def _events(items: list[JsonObject]) -> list[SpanEvent]:
    out = []
    for obj in items:
        try:
            out.append(
                SpanEvent(
                    uint64(obj, "timeUnixNano"),
                    string(obj, "name"),
                    attributes(obj),
                    uint32(obj, "droppedAttributesCount"),
                )
            )
        except FieldError as exc:
            raise exc.at(f"events[{index_of(items, obj)}]") from None
    return out


def _links(items: list[JsonObject]) -> list[SpanLink] | str:
    """The links, or the reason the span is rejected for one of them."""
    out = []
    for obj in items:
        try:
            trace_id = trace_or_span_id(obj, "traceId")
            span_id = trace_or_span_id(obj, "spanId")
            problem = link_problem(trace_id, span_id)
            if problem is not None:
                return problem
            out.append(
                SpanLink(
                    trace_id.hex(),
                    span_id.hex(),
                    string(obj, "traceState"),
                    attributes(obj),
                    uint32(obj, "droppedAttributesCount"),
                    uint32(obj, "flags"),
                )
            )
        except FieldError as exc:
            raise exc.at(f"links[{index_of(items, obj)}]") from None
    return out
