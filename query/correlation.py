"""Cross-signal correlation: the pieces QueryService puts together to go from a metric
point to the traces behind it.

A metric point leads to traces two ways, best first:

1. Exemplars: SDKs attach to a point some of the measurements taken inside a sampled
   span, with that span's trace and span ids. The exemplars of the series' points near
   the asked time name the very traces that produced the value.
2. The window: without exemplars (not recorded, or a store that keeps none), the traces of
   the point's service (its `service.name` label) that started within the window around
   the time, narrowed to the point's operation when one of its labels names one
   (OPERATION_LABELS), slowest first: what usually explains a latency or error spike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from ..storage.metrics import LabelMatcher, MatchOp
from ..storage.model import Exemplar, MetricPoint, Span
from ..storage.traces import TraceQuery, TraceSummary

# Labels that name a point's operation, with how a trace search narrows to it: http.route
# and rpc.method are span attributes too (semantic conventions), a span.name label is the
# span name (spanmetrics-style connectors).
OPERATION_LABELS = ("http.route", "rpc.method", "span.name")
WINDOW_CANDIDATES = 200  # newest traces of the window that the slowest are picked from


class TraceSource(str, Enum):
    EXEMPLAR = "exemplar"  # traces named by the exemplars of the points near the time
    WINDOW = "window"  # the service's (and operation's) traces around the time
    NONE = "none"  # neither: no exemplar, and no service.name label to search by


@dataclass(slots=True)
class PointTraces:
    """The traces behind a metric point, and how they were found. `exemplars` are those
    of the points near the time, nearest first (with source EXEMPLAR); `traces` the
    stored traces, in the order of their exemplars, or slowest first (WINDOW)."""

    source: TraceSource
    traces: list[TraceSummary] = field(default_factory=list)
    exemplars: list[Exemplar] = field(default_factory=list)


def series_matchers(labels: dict[str, str]) -> tuple[LabelMatcher, ...]:
    """Equality on every given label: the series the point belongs to (a subset of its
    labels selects every series that has them)."""
    return tuple(LabelMatcher(key, MatchOp.EQ, value) for key, value in sorted(labels.items()))


def nearest_exemplars(points: list[MetricPoint], time_unix_nano: int) -> list[Exemplar]:
    """The exemplars with a trace id of `points`, nearest to the time first, one per trace."""
    found = [e for point in points for e in point.exemplars if e.trace_id]
    found.sort(key=lambda e: (abs(e.time_unix_nano - time_unix_nano), e.trace_id))
    seen: set[str] = set()
    unique = []
    for exemplar in found:
        if exemplar.trace_id not in seen:
            seen.add(exemplar.trace_id)
            unique.append(exemplar)
    return unique


def window_query(
    tenant: str, labels: dict[str, str], start: int, end: int, limit: int
) -> TraceQuery | None:
    """The trace search of the window, or None without a service.name label."""
    service = labels.get("service.name")
    if not service:
        return None
    operation = None
    attributes: dict[str, str] = {}
    for label in OPERATION_LABELS:
        value = labels.get(label)
        if value:
            if label == "span.name":
                operation = value
            else:
                attributes[label] = value
            break
    return TraceQuery(
        tenant=tenant, start_unix_nano=start, end_unix_nano=end, service=service,
        operation=operation, attributes=attributes, limit=limit,
    )  # fmt: skip


def slowest(summaries: list[TraceSummary], limit: int) -> list[TraceSummary]:
    return sorted(summaries, key=lambda s: (-s.duration_nano, s.trace_id))[:limit]


def summarize(trace_id: str, spans: list[Span]) -> TraceSummary | None:
    """A trace's summary from its spans, as TraceStore.find_traces reports it: the root is
    the span without a parent, else the earliest; None without spans."""
    if not spans:
        return None
    roots = [span for span in spans if not span.parent_span_id]
    root = min(roots or spans, key=lambda span: span.start_time_unix_nano)
    start = min(span.start_time_unix_nano for span in spans)
    end = max(span.end_time_unix_nano for span in spans)
    return TraceSummary(
        trace_id=trace_id,
        root_service=root.service_name,
        root_name=root.name,
        start_unix_nano=start,
        duration_nano=max(0, end - start),
        span_count=len(spans),
        error_count=sum(1 for span in spans if span.is_error),
        services=sorted({span.service_name for span in spans}),
    )
