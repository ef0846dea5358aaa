"""GraphQL correlation across signals: the logs of a trace or span (`Trace.logs`,
`Span.logs`), the trace of a log record (`LogRecord.trace`), the metrics of a service
(`Service.metrics`, `metricsOfService`) and the traces behind a metric point
(`tracesOfMetricPoint`; how they are found: query.correlation)."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from ...storage import model
from ..context import QueryContext
from ..correlation import TraceSource
from .logs import LogConnection, connection
from .metrics import Exemplar, MetricInfo
from .scalars import JSON, Duration, Time, to_json
from .traces import Trace, TraceSummary, build_trace

strawberry.enum(TraceSource, name="TraceSource")

_DEFAULT_WINDOW_NS = 60 * 1_000_000_000


@strawberry.type(description="The traces behind a metric point, and how they were found.")
class MetricPointTraces:
    source: TraceSource = strawberry.field(
        description="EXEMPLAR: named by the exemplars of the series' points near the time;"
        " WINDOW: no exemplar, the slowest traces of the point's service (and operation:"
        " http.route, rpc.method or span.name label) that started within the window;"
        " NONE: neither (no exemplar and no service.name label)."
    )
    traces: list[TraceSummary] = strawberry.field(
        description="Stored traces: in exemplar order (nearest to the time first), or"
        " slowest first. An exemplar's trace that is not stored is left out."
    )
    exemplars: list[Exemplar] = strawberry.field(
        description="The exemplars with a trace id of the points in the window, nearest"
        " to the time first, one per trace."
    )


async def logs_of_trace(
    info: Info[QueryContext, Any], trace_id: str, span_id: str | None, first: int,
    after: str | None,
) -> LogConnection:
    context = info.context
    page = await context.service.logs_of_trace(context.tenant, trace_id, span_id, first, after)
    return connection(page)


async def trace_of_log(info: Info[QueryContext, Any], trace_id: str) -> Trace | None:
    if not trace_id:
        return None
    spans = await info.context.service.trace(info.context.tenant, trace_id)
    return build_trace(trace_id.strip().lower(), spans)


async def metrics_of_service(info: Info[QueryContext, Any], service: str) -> list[MetricInfo]:
    found = await info.context.service.metrics_of_service(info.context.tenant, service)
    return [MetricInfo.of(item) for item in found]


async def resolve_metrics_of_service(
    info: Info[QueryContext, Any], service: str
) -> list[MetricInfo]:
    return await metrics_of_service(info, service)


def _labels(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError("labels must be an object of string values, as MetricPoint.labels")
    return {str(key): item for key, item in value.items()}


async def resolve_traces_of_metric_point(
    info: Info[QueryContext, Any],
    metric: str,
    time: Time,
    labels: JSON | None = None,
    window: Duration | None = None,
    limit: int = 20,
) -> MetricPointTraces:
    found = await info.context.service.traces_of_metric_point(
        info.context.tenant, metric, _labels(labels), time,
        _DEFAULT_WINDOW_NS if window is None else window, limit,
    )  # fmt: skip
    return MetricPointTraces(
        source=found.source,
        traces=[TraceSummary.of(item) for item in found.traces],
        exemplars=[_exemplar(item) for item in found.exemplars],
    )


def _exemplar(item: model.Exemplar) -> Exemplar:
    return Exemplar(
        time_unix_nano=item.time_unix_nano,
        value=float(item.value),
        trace_id=item.trace_id,
        span_id=item.span_id,
        filtered_attributes=to_json(item.filtered_attributes),
    )
