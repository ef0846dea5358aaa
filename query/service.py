"""The one query service: every read of the stores goes through here, whichever front
door (GraphQL now; REST and Socket.IO later) asked. It applies the query limits, so every
front door refuses the same queries with the same message."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from typing import TypeVar

from ..storage import capabilities
from ..storage.errors import QueryError, Unsupported
from ..storage.log_patterns import check_patterns
from ..storage.logs import (
    MAX_HISTOGRAM_BUCKETS,
    LogPage,
    LogPatterns,
    LogQuery,
    SeverityBucket,
    ValueCount,
    check_top_values,
    top_field,
)
from ..storage.metrics import MetricInfo, PointQuery, ResultSeries, SeriesQuery
from ..storage.model import MetricPoint, Span, SpanKind
from ..storage.registry import Stores
from ..storage.span_analytics import check_bounds, check_step
from ..storage.traces import (
    ErrorGroup,
    LatencyBucket,
    OperationStats,
    RedPoint,
    ServiceMap,
    ServiceOperations,
    TopBy,
    TraceQuery,
    TraceSummary,
    minute_range,
)
from . import correlation
from .correlation import PointTraces, TraceSource

T = TypeVar("T")
_NS_PER_DAY = 86400 * 1_000_000_000


@dataclass(frozen=True, slots=True)
class QueryLimits:
    max_series: int = 10_000
    max_points: int = 1_000_000
    max_range_days: int = 31
    max_limit: int = 1_000
    timeout_seconds: float = 30.0


class QueryService:
    def __init__(self, stores: Stores, limits: QueryLimits) -> None:
        self._stores = stores
        self._limits = limits

    async def services(self, tenant: str) -> list[ServiceOperations]:
        return await self._timed(self._stores.traces.services(tenant))

    async def trace(self, tenant: str, trace_id: str) -> list[Span]:
        normalized = trace_id.strip().lower()
        if len(normalized) != 32 or not _is_hex(normalized):
            raise QueryError(f"invalid trace id {trace_id!r}: expected 32 hex digits")
        return await self._timed(self._stores.traces.get_trace(tenant, normalized))

    async def traces(self, query: TraceQuery) -> list[TraceSummary]:
        self._check_range(query.start_unix_nano, query.end_unix_nano)
        self._check_limit(query.limit)
        return await self._timed(self._stores.traces.find_traces(query))

    # ------------------------------------------------------------ trace analytics

    def _check_analytics(self, start: int, end: int) -> None:
        capabilities.check(self._stores.traces, capabilities.TRACE_ANALYTICS)
        if end <= start:
            raise QueryError("the end of the time range must be after its start")
        self._check_range(*minute_range(start, end))

    async def service_map(self, tenant: str, start: int, end: int) -> ServiceMap:
        self._check_analytics(start, end)
        found = await self._timed(self._stores.traces.service_map(tenant, start, end))
        size = len(found.nodes) + len(found.edges)
        if size > self._limits.max_series:
            raise QueryError(
                f"the service map has {size} nodes and edges, more than the limit of"
                f" {self._limits.max_series}; use a shorter time range"
            )
        return found

    async def red_metrics(
        self, tenant: str, service: str, operation: str | None, start: int, end: int, step: int,
        span_kinds: list[SpanKind] | None = None,
    ) -> list[RedPoint]:  # fmt: skip
        self._check_analytics(start, end)
        check_step(step)
        low, high = minute_range(start, end)
        steps = -(-(high - low) // step)
        if steps > self._limits.max_points:
            raise QueryError(
                f"the query asks for {steps} steps, more than the limit of"
                f" {self._limits.max_points}; use a larger step or a shorter range"
            )
        return await self._timed(self._stores.traces.red_series(
            tenant, start, end, step, service, operation, span_kinds))  # fmt: skip

    async def latency_histogram(
        self, tenant: str, service: str, operation: str | None, start: int, end: int,
        bounds: list[int] | None = None, span_kinds: list[SpanKind] | None = None,
    ) -> list[LatencyBucket]:  # fmt: skip
        self._check_analytics(start, end)
        check_bounds(bounds)
        return await self._timed(self._stores.traces.latency_histogram(
            tenant, start, end, service, operation, bounds, span_kinds))  # fmt: skip

    async def top_operations(
        self, tenant: str, start: int, end: int, by: TopBy, limit: int,
        span_kinds: list[SpanKind] | None = None,
    ) -> list[OperationStats]:  # fmt: skip
        self._check_analytics(start, end)
        self._check_limit(limit)
        if by not in ("p95", "count", "error_rate"):
            raise QueryError(f"cannot rank operations by {by!r}: use p95, count or error_rate")
        return await self._timed(
            self._stores.traces.top_operations(tenant, start, end, by, limit, span_kinds)
        )

    async def top_errors(
        self, tenant: str, start: int, end: int, service: str | None, limit: int
    ) -> list[ErrorGroup]:
        self._check_analytics(start, end)
        self._check_limit(limit)
        return await self._timed(
            self._stores.traces.top_errors(tenant, start, end, service, limit)
        )

    async def logs(self, query: LogQuery) -> LogPage:
        self._check_range(query.start_unix_nano, query.end_unix_nano)
        self._check_limit(query.limit)
        if query.trace_id is not None:
            query = replace(query, trace_id=query.trace_id.strip().lower())
        return await self._timed(self._stores.logs.search(query))

    async def metric_names(self, tenant: str) -> list[MetricInfo]:
        return await self._timed(self._stores.metrics.metric_names(tenant))

    async def label_names(self, tenant: str, metric: str) -> list[str]:
        return await self._timed(self._stores.metrics.label_names(tenant, metric))

    async def label_values(self, tenant: str, metric: str, label: str) -> list[str]:
        return await self._timed(self._stores.metrics.label_values(tenant, metric, label))

    async def metric_series(self, query: SeriesQuery) -> list[ResultSeries]:
        self._check_range(query.start_unix_nano, query.end_unix_nano)
        if query.end_unix_nano <= query.start_unix_nano:
            raise QueryError("the end of the time range must be after its start")
        if query.step_nano <= 0:
            raise QueryError("step must be positive")
        steps = -(-(query.end_unix_nano - query.start_unix_nano) // query.step_nano)
        if steps > self._limits.max_points:
            raise QueryError(
                f"the query asks for {steps} steps, more than the limit of"
                f" {self._limits.max_points}; use a larger step or a shorter range"
            )
        if query.quantile is not None and not 0 <= query.quantile <= 1:
            raise QueryError("quantile must be between 0 and 1")
        result = await self._timed(self._stores.metrics.query_range(query))
        if len(result) > self._limits.max_series:
            raise QueryError(
                f"the query returns {len(result)} series, more than the limit of"
                f" {self._limits.max_series}; filter or group by fewer labels"
            )
        if sum(len(series.values) for series in result) > self._limits.max_points:
            raise QueryError(f"the query returns more than {self._limits.max_points} points")
        return result

    async def metric_points(self, query: PointQuery) -> list[MetricPoint]:
        self._check_range(query.start_unix_nano, query.end_unix_nano)
        self._check_limit(query.limit)
        return await self._timed(self._stores.metrics.points(query))

    # ------------------------------------------------------------ log analytics

    def _log_filters(self, query: LogQuery) -> LogQuery:
        """The checks and normalisation of `logs` for the analytics over its filters."""
        self._check_range(query.start_unix_nano, query.end_unix_nano)
        if query.trace_id is not None:
            query = replace(query, trace_id=query.trace_id.strip().lower())
        return replace(query, cursor=None)

    async def log_histogram(self, query: LogQuery, step_nano: int) -> list[SeverityBucket]:
        """Records per step and severity over [start, end), every step of the range
        included (empty ones with no counts), oldest first."""
        start, end = query.start_unix_nano, query.end_unix_nano
        if start is None or end is None:
            raise QueryError("a log histogram needs the start and end of its time range")
        if end <= start:
            raise QueryError("the end of the time range must be after its start")
        if step_nano <= 0:
            raise QueryError("step must be positive")
        first = start - start % step_nano
        steps = -(-(end - first) // step_nano)
        most = min(self._limits.max_points, MAX_HISTOGRAM_BUCKETS)
        if steps > most:
            raise QueryError(
                f"the histogram would have {steps} buckets, more than the limit of {most};"
                " use a larger step or a shorter range"
            )
        query = self._log_filters(query)
        found = await self._timed(self._stores.logs.severity_histogram(query, step_nano))
        by_start = {bucket.start_unix_nano: bucket for bucket in found}
        return [
            by_start.get(first + i * step_nano) or SeverityBucket(first + i * step_nano, {})
            for i in range(steps)
        ]

    async def log_top_values(self, query: LogQuery, field: str, limit: int) -> list[ValueCount]:
        top_field(field)
        check_top_values(limit)
        self._check_limit(limit)
        query = self._log_filters(query)
        return await self._timed(self._stores.logs.top_values(query, field, limit))

    async def log_patterns(self, query: LogQuery, limit: int, sample_limit: int) -> LogPatterns:
        self._check_limit(limit)
        check_patterns(limit, sample_limit)
        query = self._log_filters(query)
        return await self._timed(self._stores.logs.patterns(query, limit, sample_limit))

    # ------------------------------------------------------------ correlation

    async def logs_of_trace(
        self, tenant: str, trace_id: str, span_id: str | None = None, limit: int = 100,
        cursor: str | None = None,
    ) -> LogPage:
        """The log records of a trace (of one of its spans, with `span_id`), newest first."""
        normalized = trace_id.strip().lower()
        if len(normalized) != 32 or not _is_hex(normalized):
            raise QueryError(f"invalid trace id {trace_id!r}: expected 32 hex digits")
        span = None if span_id is None else span_id.strip().lower()
        if span is not None and (len(span) != 16 or not _is_hex(span)):
            raise QueryError(f"invalid span id {span_id!r}: expected 16 hex digits")
        query = LogQuery(tenant, trace_id=normalized, span_id=span, limit=limit, cursor=cursor)
        return await self.logs(query)

    async def traces_of_metric_point(
        self, tenant: str, metric: str, labels: dict[str, str], time_unix_nano: int,
        window_nano: int, limit: int = 20,
    ) -> PointTraces:
        """The traces behind the point of `metric`'s series `labels` at the time: those its
        exemplars within [time - window, time + window] name, else the slowest traces of
        its service (and operation) that started in that window (see query.correlation)."""
        if window_nano <= 0:
            raise QueryError("window must be positive")
        self._check_limit(limit)
        start, end = time_unix_nano - window_nano, time_unix_nano + window_nano + 1
        self._check_range(start, end)
        return await self._timed(
            self._point_traces(tenant, metric, labels, time_unix_nano, start, end, limit)
        )

    async def _point_traces(
        self, tenant: str, metric: str, labels: dict[str, str], time_unix_nano: int,
        start: int, end: int, limit: int,
    ) -> PointTraces:
        stores = self._stores
        query = PointQuery(tenant, metric, correlation.series_matchers(labels), start, end,
                           self._limits.max_limit)
        try:
            points = await stores.metrics.points(query)
        except Unsupported:
            points = []  # a store that cannot read points back: fall back to the window
        exemplars = correlation.nearest_exemplars(points, time_unix_nano)
        if exemplars:
            traces = []
            for exemplar in exemplars[:limit]:
                summary = correlation.summarize(
                    exemplar.trace_id, await stores.traces.get_trace(tenant, exemplar.trace_id)
                )
                if summary is not None:
                    traces.append(summary)
            return PointTraces(TraceSource.EXEMPLAR, traces, exemplars)
        search = correlation.window_query(
            tenant, labels, start, end, max(limit, correlation.WINDOW_CANDIDATES)
        )
        if search is None:
            return PointTraces(TraceSource.NONE)
        found = await stores.traces.find_traces(search)
        return PointTraces(TraceSource.WINDOW, correlation.slowest(found, limit))

    async def metrics_of_service(self, tenant: str, service: str) -> list[MetricInfo]:
        """The metrics with a series whose service.name is `service`."""
        return await self._timed(
            self._stores.metrics.metrics_with_label(tenant, "service.name", service)
        )

    def _check_range(self, start: int | None, end: int | None) -> None:
        if start is None or end is None:
            return
        if end - start > self._limits.max_range_days * _NS_PER_DAY:
            raise QueryError(
                f"the time range is longer than the limit of {self._limits.max_range_days} days"
            )

    def _check_limit(self, limit: int) -> None:
        if not 1 <= limit <= self._limits.max_limit:
            raise QueryError(f"limit must be between 1 and {self._limits.max_limit}")

    async def _timed(self, call: Awaitable[T]) -> T:
        try:
            return await asyncio.wait_for(call, self._limits.timeout_seconds)
        except TimeoutError:
            raise QueryError(
                f"the query took longer than {self._limits.timeout_seconds:g} s; narrow it"
            ) from None


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)
