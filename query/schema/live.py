"""GraphQL subscriptions (graphql-transport-ws on /graphql): live log tail and live series.

Both run on the `LiveHub` (see `query/live.py` for cursors and resume). The caller's key
is checked again every `RECHECK_SECONDS` while a subscription runs, so a revoked key
stops its subscriptions within about two seconds (the server learns of a revocation
within a second).

`alertEvents` is not here: alerting does not exist yet.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import strawberry
from strawberry.types import Info

from ...auth import Authenticator, Principal
from ...storage.errors import QueryError
from ...storage.logs import LogQuery
from ...storage.metrics import ResultSeries
from ..context import QueryContext
from ..live import (
    LiveHub,
    SubscriberDropped,
    log_partition,
    log_predicate,
    metric_partition,
    metric_predicate,
    resume_logs,
)
from .common import attribute_map
from .logs import LogFilter, LogRecord, severity_number
from .metrics import MetricQuery, Series, SeriesPoint, _series_query
from .scalars import Time

RECHECK_SECONDS = 1.0
SERIES_INTERVAL_SECONDS = 0.5  # a live series is re-evaluated at most this often
PROGRESS_SECONDS = 1.0  # an idle logs tail still sends its advancing cursor this often
_DEFAULT_RANGE_NS = 3600 * 1_000_000_000


@dataclass(slots=True)
class LiveContext(QueryContext):
    """QueryContext plus what subscriptions need. Over a WebSocket, `principal` is set by
    the upgrade request's Authorization header or, failing that, by the connection_init
    payload (see ArgusGraphQL.on_ws_connect)."""

    live: LiveHub | None = None
    authenticator: Authenticator | None = None
    authorization: str | None = None  # what authenticated the caller, rechecked while live
    connection_params: dict[str, Any] = field(default_factory=dict)
    _checked_at: float = 0.0

    def recheck(self) -> Principal:
        """The caller, its key checked again if RECHECK_SECONDS have passed (AuthError when
        it was revoked meanwhile)."""
        principal = self.caller
        now = time.monotonic()
        if self.authenticator is not None and now - self._checked_at >= RECHECK_SECONDS:
            again = self.authenticator.authenticate(self.authorization)
            again.require(again.role.may_read(), "query data")
            self._checked_at = now
        return principal


def _live(info: Info[QueryContext, Any]) -> tuple[LiveContext, LiveHub]:
    context = info.context
    if not isinstance(context, LiveContext) or context.live is None:
        raise QueryError("live data is not available on this server")
    context.recheck()
    return context, context.live


@strawberry.type(description="Log records just indexed, oldest first, and where they end.")
class LogTailBatch:
    records: list[LogRecord]
    cursor: str = strawberry.field(
        description="Pass as `after` when subscribing again to resume right after this batch."
    )
    replay: bool = strawberry.field(
        description="The first batch of a subscription: what was missed since `after` (empty"
        " without `after`). Its cursor marks where the live part starts."
    )
    gap: bool = strawberry.field(
        description="The replay came from the store, not the live buffer (the server"
        " restarted, or the client was away for long): records indexed late with an older"
        " timestamp, or beyond 1000, may be missing."
    )


def log_query(tenant: str, given: LogFilter | None) -> LogQuery:
    """A LogFilter as the LogQuery that the logs query would run (limit and cursor unset)."""
    given = given or LogFilter()
    return LogQuery(
        tenant=tenant,
        start_unix_nano=given.start,
        end_unix_nano=given.end,
        contains=given.contains,
        min_severity=severity_number(given.min_severity),
        service=given.service,
        trace_id=given.trace_id.strip().lower() if given.trace_id else given.trace_id,
        span_id=given.span_id.strip().lower() if given.span_id else given.span_id,
        attributes=attribute_map(given.attributes),
    )


class SeriesWindow:
    """A live series query's time range at each evaluation: fixed when `end` was given;
    otherwise sliding, ending now, as long as it was at subscription time (default 1 h)."""

    def __init__(self, query: MetricQuery, now: int | None = None) -> None:
        self._query = query
        now = time.time_ns() if now is None else now
        self._fixed = query.end is not None
        self._range = (now - query.start) if query.start is not None else _DEFAULT_RANGE_NS
        if not self._fixed and self._range <= 0:
            raise QueryError("the start of a live series must be in the past")

    def query_at(self, tenant: str, now: int | None = None) -> Any:
        if self._fixed:
            return _series_query(tenant, self._query)
        end = time.time_ns() if now is None else now
        sliding = MetricQuery(
            metric=self._query.metric, matchers=self._query.matchers,
            start=Time(end - self._range), end=Time(end), step=self._query.step,
            aggregation=self._query.aggregation, group_by=self._query.group_by,
            rate=self._query.rate, quantile=self._query.quantile,
        )
        return _series_query(tenant, sliding)


def series_of(result: list[ResultSeries]) -> list[Series]:
    return [
        Series(
            labels=series.labels,
            points=[SeriesPoint(time_unix_nano=ts, value=value)
                    for ts, value in zip(series.timestamps, series.values)],
        )
        for series in result
    ]


async def live_series(
    hub: LiveHub,
    tenant: str,
    query: MetricQuery,
    evaluate: Callable[[Any], Awaitable[list[ResultSeries]]],
    keep_going: Callable[[], object] = lambda: None,
) -> AsyncGenerator[list[ResultSeries], None]:
    """The series now, then again whenever points of the metric (passing the matchers)
    arrive for the tenant, at most every SERIES_INTERVAL_SECONDS."""
    window = SeriesWindow(query)
    matchers = [item.to_matcher() for item in query.matchers or []]
    subscription = hub.subscribe(
        tenant, "metrics", metric_predicate(query.metric, matchers), notify_only=True,
        partition=metric_partition(query.metric),
    )
    try:
        yield await evaluate(window.query_at(tenant))
        last = time.monotonic()
        while True:
            while await subscription.next(progress_after=RECHECK_SECONDS) is None:
                keep_going()  # idle: the key is still rechecked every second
            keep_going()
            wait = last + SERIES_INTERVAL_SECONDS - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)  # points arriving meanwhile join this evaluation
            last = time.monotonic()
            yield await evaluate(window.query_at(tenant))
    finally:
        subscription.close()


async def subscribe_logs_tail(
    info: Info[QueryContext, Any],
    filter: LogFilter | None = None,
    after: str | None = None,
) -> AsyncGenerator[LogTailBatch, None]:
    context, hub = _live(info)
    query = log_query(context.tenant, filter)
    predicate = log_predicate(query)
    replay = await resume_logs(hub, query, after, context.service.logs)
    subscription = hub.subscribe(  # nothing awaited since resume_logs: no gap, no repeat
        context.tenant, "logs", predicate, partition=log_partition(query)
    )
    try:
        batch: Any = replay
        while True:
            for records, cursor in batch.chunks(hub.epoch, 1_000, after):
                yield LogTailBatch(
                    records=[LogRecord.of(record) for record in records], cursor=cursor,
                    replay=batch.replay, gap=batch.gap,
                )
                after = cursor
            batch = None
            while batch is None:  # idle: the key is still rechecked every second
                batch = await subscription.next(progress_after=PROGRESS_SECONDS)
                context.recheck()
    except SubscriberDropped as exc:
        raise QueryError(str(exc)) from None
    finally:
        subscription.close()


async def subscribe_metric_series(
    info: Info[QueryContext, Any], query: MetricQuery
) -> AsyncGenerator[list[Series], None]:
    context, hub = _live(info)
    updates = live_series(hub, context.tenant, query, context.service.metric_series, context.recheck)
    try:
        async for result in updates:
            yield series_of(result)
    except SubscriberDropped as exc:
        raise QueryError(str(exc)) from None
    finally:
        await updates.aclose()


@strawberry.type
class Subscription:
    logs_tail: AsyncGenerator[LogTailBatch, None] = strawberry.subscription(
        resolver=subscribe_logs_tail,
        description="Live tail: log records matching the filter as they are indexed, in"
        " batches, oldest first. The first batch comes at once (replay: true) with what was"
        " missed since `after`, a cursor from an earlier batch. A tail whose filter matches"
        " nothing while other records arrive still gets an empty batch with its advancing"
        " cursor about once a second.",
    )
    metric_series: AsyncGenerator[list[Series], None] = strawberry.subscription(
        resolver=subscribe_metric_series,
        description="The metricSeries query, re-evaluated whenever new points of the metric"
        " arrive (at most every 500 ms). Without `end` the window slides: it ends now and is"
        " as long as at subscription time (default 1 h).",
    )
