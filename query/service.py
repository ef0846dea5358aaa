"""The one query service: every read of the stores goes through here, whichever front
door (GraphQL now; REST and Socket.IO later) asked. It applies the query limits, so every
front door refuses the same queries with the same message."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from typing import TypeVar

from ..storage.errors import QueryError
from ..storage.logs import LogPage, LogQuery
from ..storage.metrics import MetricInfo, PointQuery, ResultSeries, SeriesQuery
from ..storage.model import MetricPoint, Span
from ..storage.registry import Stores
from ..storage.traces import ServiceOperations, TraceQuery, TraceSummary

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
