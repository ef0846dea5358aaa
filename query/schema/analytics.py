"""GraphQL types and resolvers for trace analytics: service map, RED metrics from spans,
latency histograms, top operations and top errors (semantics: storage/traces.py)."""

from __future__ import annotations

import enum
import time
from typing import Annotated, Any, cast

import strawberry
from strawberry.types import Info

from ...storage import model
from ...storage import traces as stored
from ..context import QueryContext
from .scalars import Duration, Int64, Time

_DEFAULT_RANGE_NS = 3600 * 1_000_000_000

strawberry.enum(stored.NodeType, name="NodeType", description=stored.NodeType.__doc__)


@strawberry.enum(description="What top operations are ranked by (highest first).")
class TopOperationsBy(enum.Enum):
    P95 = "p95"
    COUNT = "count"
    ERROR_RATE = "error_rate"


@strawberry.type(description="Requests over the range: counts, per-second rates, duration"
                 " percentiles (null when there were none).")  # fmt: skip
class RequestStats:
    count: Int64
    errors: Int64
    rate: float
    error_rate: float
    p50: Duration | None
    p95: Duration | None
    p99: Duration | None

    @classmethod
    def of(cls, stats: stored.RequestStats) -> RequestStats:
        return cls(
            count=Int64(stats.count), errors=Int64(stats.errors), rate=stats.rate,
            error_rate=stats.error_rate, p50=_duration(stats.p50), p95=_duration(stats.p95),
            p99=_duration(stats.p99),
        )  # fmt: skip


def _duration(value: int | None) -> Duration | None:
    return None if value is None else Duration(value)


@strawberry.type
class ServiceMapNode:
    id: str
    type: stored.NodeType
    system: str = strawberry.field(
        description="The database or messaging system (postgresql, kafka); empty otherwise."
    )
    name: str
    stats: RequestStats


@strawberry.type
class ServiceMapEdge:
    source: str = strawberry.field(description="The caller's node id.")
    target: str
    stats: RequestStats


@strawberry.type(description="The dependency graph derived from spans over [start, end),"
                 " rounded to whole minutes.")  # fmt: skip
class ServiceMap:
    start: Time
    end: Time
    nodes: list[ServiceMapNode]
    edges: list[ServiceMapEdge]


@strawberry.type
class RedPoint:
    time_unix_nano: Int64
    count: Int64
    errors: Int64
    rate: float
    error_rate: float
    p50: Duration | None
    p95: Duration | None
    p99: Duration | None


@strawberry.type(description="Spans with a duration from the previous bound up to (not"
                 " including) upperBound; null: above the last explicit bound.")  # fmt: skip
class LatencyBucket:
    upper_bound: Duration | None
    count: Int64


@strawberry.type
class OperationStats:
    service: str
    operation: str
    stats: RequestStats


@strawberry.type(description="Error spans with the same exception type and message.")
class ErrorGroup:
    exception_type: str
    message: str
    count: Int64
    services: list[str]
    sample_trace_id: str
    last_seen: Time


def _window(start: int | None, end: int | None) -> tuple[int, int]:
    """Default: the hour before now."""
    end = end if end is not None else time.time_ns()
    return (start if start is not None else end - _DEFAULT_RANGE_NS), end


def _kinds(kinds: list[model.SpanKind] | None) -> list[model.SpanKind] | None:
    return None if kinds is None else [model.SpanKind(kind) for kind in kinds]


_KINDS = strawberry.argument(
    description="Span kinds counted; default: entry spans (SERVER, CONSUMER, and root spans)."
)
_STEP_HELP = "A whole number of minutes; default 1m. The start is aligned down to a multiple."
_BOUNDS_HELP = "Ascending upper bounds; default: powers of two of ns covering the durations."


async def resolve_service_map(
    info: Info[QueryContext, Any], start: Time | None = None, end: Time | None = None
) -> ServiceMap:
    low, high = _window(start, end)
    found = await info.context.service.service_map(info.context.tenant, low, high)
    return ServiceMap(
        start=Time(found.start_unix_nano),
        end=Time(found.end_unix_nano),
        nodes=[
            ServiceMapNode(
                id=node.id,
                type=node.type,
                system=node.system,
                name=node.name,
                stats=RequestStats.of(node.stats),
            )
            for node in found.nodes
        ],
        edges=[
            ServiceMapEdge(
                source=edge.source, target=edge.target, stats=RequestStats.of(edge.stats)
            )
            for edge in found.edges
        ],
    )


async def resolve_red_metrics(
    info: Info[QueryContext, Any],
    service: str,
    operation: str | None = None,
    start: Time | None = None,
    end: Time | None = None,
    step: Annotated[Duration | None, strawberry.argument(description=_STEP_HELP)] = None,
    kinds: Annotated[list[model.SpanKind] | None, _KINDS] = None,
) -> list[RedPoint]:
    low, high = _window(start, end)
    every = step if step is not None else 60_000_000_000
    if every > 0:
        low -= low % every
    points = await info.context.service.red_metrics(
        info.context.tenant, service, operation, low, high, every, _kinds(kinds)
    )
    return [
        RedPoint(time_unix_nano=Int64(p.time_unix_nano), count=Int64(p.count),
                 errors=Int64(p.errors), rate=p.rate, error_rate=p.error_rate,
                 p50=_duration(p.p50), p95=_duration(p.p95), p99=_duration(p.p99))
        for p in points
    ]  # fmt: skip


async def resolve_latency_histogram(
    info: Info[QueryContext, Any],
    service: str,
    operation: str | None = None,
    start: Time | None = None,
    end: Time | None = None,
    bounds: Annotated[list[Duration] | None, strawberry.argument(description=_BOUNDS_HELP)] = None,
    kinds: Annotated[list[model.SpanKind] | None, _KINDS] = None,
) -> list[LatencyBucket]:
    low, high = _window(start, end)
    found = await info.context.service.latency_histogram(
        info.context.tenant, service, operation, low, high,
        None if bounds is None else [int(b) for b in bounds], _kinds(kinds),
    )  # fmt: skip
    return [
        LatencyBucket(upper_bound=_duration(b.upper_bound_nano), count=Int64(b.count))
        for b in found
    ]


async def resolve_top_operations(
    info: Info[QueryContext, Any],
    start: Time | None = None,
    end: Time | None = None,
    by: TopOperationsBy = TopOperationsBy.P95,
    limit: int = 10,
    kinds: Annotated[list[model.SpanKind] | None, _KINDS] = None,
) -> list[OperationStats]:
    low, high = _window(start, end)
    found = await info.context.service.top_operations(
        info.context.tenant, low, high, cast(stored.TopBy, TopOperationsBy(by).value), limit,
        _kinds(kinds),
    )
    return [
        OperationStats(service=o.service, operation=o.operation, stats=RequestStats.of(o.stats))
        for o in found
    ]


async def resolve_top_errors(
    info: Info[QueryContext, Any],
    start: Time | None = None,
    end: Time | None = None,
    service: str | None = None,
    limit: int = 10,
) -> list[ErrorGroup]:
    low, high = _window(start, end)
    found = await info.context.service.top_errors(info.context.tenant, low, high, service, limit)
    return [
        ErrorGroup(exception_type=g.exception_type, message=g.message, count=Int64(g.count),
                   services=g.services, sample_trace_id=g.sample_trace_id,
                   last_seen=Time(g.last_seen_unix_nano))
        for g in found
    ]  # fmt: skip
