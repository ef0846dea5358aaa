"""GraphQL types and resolvers for metrics."""

from __future__ import annotations

import time
from typing import Any

import strawberry
from strawberry.types import Info

from ...storage import model
from ...storage.metrics import (
    Aggregation as StoreAggregation,
)
from ...storage.metrics import (
    LabelMatcher,
    MatchOp,
    PointQuery,
    SeriesQuery,
    series_labels,
)
from ...storage.metrics import (
    MetricInfo as StoredMetricInfo,
)
from ..context import QueryContext
from .common import Resource, Scope
from .scalars import JSON, Duration, Int64, Time, to_json

strawberry.enum(model.MetricKind, name="MetricKind")
strawberry.enum(model.Temporality, name="Temporality")
strawberry.enum(StoreAggregation, name="Aggregation")

_DEFAULT_RANGE_NS = 3600 * 1_000_000_000
_DEFAULT_STEPS = 300


@strawberry.type
class MetricInfo:
    name: str
    kind: model.MetricKind
    unit: str
    description: str
    temporality: model.Temporality
    is_monotonic: bool

    @classmethod
    def of(cls, info: StoredMetricInfo) -> MetricInfo:
        return cls(
            name=info.name,
            kind=info.kind,
            unit=info.unit,
            description=info.description,
            temporality=info.temporality,
            is_monotonic=info.is_monotonic,
        )


@strawberry.type
class SeriesPoint:
    time_unix_nano: Int64
    value: float


@strawberry.type
class Series:
    labels: JSON
    points: list[SeriesPoint]


@strawberry.type
class Exemplar:
    time_unix_nano: Int64
    value: float
    trace_id: str
    span_id: str
    filtered_attributes: JSON


@strawberry.type
class Histogram:
    count: Int64
    sum: float | None
    min: float | None
    max: float | None
    bucket_counts: list[Int64]
    explicit_bounds: list[float]


@strawberry.type
class ExponentialBuckets:
    offset: int
    bucket_counts: list[Int64]


@strawberry.type
class ExponentialHistogram:
    count: Int64
    sum: float | None
    min: float | None
    max: float | None
    scale: int
    zero_count: Int64
    zero_threshold: float
    positive: ExponentialBuckets
    negative: ExponentialBuckets


@strawberry.type
class QuantileValue:
    quantile: float
    value: float


@strawberry.type
class Summary:
    count: Int64
    sum: float
    quantile_values: list[QuantileValue]


@strawberry.type(description="A stored data point with every field it was sent with.")
class MetricPoint:
    name: str
    description: str
    unit: str
    kind: model.MetricKind
    temporality: model.Temporality
    is_monotonic: bool
    labels: JSON = strawberry.field(description="Series labels: resource + point attributes.")
    attributes: JSON
    start_time_unix_nano: Int64
    time_unix_nano: Int64
    flags: Int64
    value: float | None = strawberry.field(description="Gauge or sum value.")
    int_value: Int64 | None = strawberry.field(
        description="The value when it was sent as an integer (as_int)."
    )
    histogram: Histogram | None
    exponential_histogram: ExponentialHistogram | None
    summary: Summary | None
    exemplars: list[Exemplar]
    metadata: JSON
    resource: Resource
    scope: Scope

    @classmethod
    def of(cls, point: model.MetricPoint) -> MetricPoint:
        return cls(
            name=point.name,
            description=point.description,
            unit=point.unit,
            kind=point.kind,
            temporality=point.temporality,
            is_monotonic=point.is_monotonic,
            labels=series_labels(point),
            attributes=to_json(point.attributes),
            start_time_unix_nano=point.start_time_unix_nano,
            time_unix_nano=point.time_unix_nano,
            flags=point.flags,
            value=None if point.value is None else float(point.value),
            int_value=Int64(point.value) if isinstance(point.value, int) else None,
            histogram=_histogram(point.histogram),
            exponential_histogram=_exponential(point.exponential_histogram),
            summary=_summary(point.summary),
            exemplars=[_exemplar(item) for item in point.exemplars],
            metadata=to_json(point.metadata),
            resource=Resource.of(point.resource),
            scope=Scope.of(point.scope),
        )


def _histogram(value: model.HistogramValue | None) -> Histogram | None:
    if value is None:
        return None
    return Histogram(
        count=value.count,
        sum=value.sum,
        min=value.min,
        max=value.max,
        bucket_counts=list(value.bucket_counts),
        explicit_bounds=list(value.explicit_bounds),
    )


def _exponential(value: model.ExponentialHistogramValue | None) -> ExponentialHistogram | None:
    if value is None:
        return None
    return ExponentialHistogram(
        count=value.count,
        sum=value.sum,
        min=value.min,
        max=value.max,
        scale=value.scale,
        zero_count=value.zero_count,
        zero_threshold=value.zero_threshold,
        positive=ExponentialBuckets(
            offset=value.positive.offset, bucket_counts=list(value.positive.bucket_counts)
        ),
        negative=ExponentialBuckets(
            offset=value.negative.offset, bucket_counts=list(value.negative.bucket_counts)
        ),
    )


def _summary(value: model.SummaryValue | None) -> Summary | None:
    if value is None:
        return None
    return Summary(
        count=value.count,
        sum=value.sum,
        quantile_values=[
            QuantileValue(quantile=item.quantile, value=item.value)
            for item in value.quantile_values
        ],
    )


def _exemplar(item: model.Exemplar) -> Exemplar:
    return Exemplar(
        time_unix_nano=item.time_unix_nano,
        value=float(item.value),
        trace_id=item.trace_id,
        span_id=item.span_id,
        filtered_attributes=to_json(item.filtered_attributes),
    )


@strawberry.input(description="Label matcher: op is one of =, !=, =~, !~ (anchored regex).")
class LabelMatcherInput:
    label: str
    op: str = "="
    value: str = ""

    def to_matcher(self) -> LabelMatcher:
        try:
            op = MatchOp(self.op)
        except ValueError:
            raise ValueError(f"invalid matcher op {self.op!r}: use =, !=, =~ or !~") from None
        return LabelMatcher(self.label, op, self.value)


@strawberry.input(description="A range query over one metric; see SeriesQuery semantics.")
class MetricQuery:
    metric: str
    matchers: list[LabelMatcherInput] | None = None
    start: Time | None = strawberry.field(
        default=None, description="Default: end - 1h."
    )
    end: Time | None = strawberry.field(
        default=None, description="Default: now."
    )
    step: Duration | None = strawberry.field(
        default=None,
        description="Default: the range / 300, at least 1s. The start is aligned down to a"
        " multiple of the step.",
    )
    aggregation: StoreAggregation = StoreAggregation.AVG
    group_by: list[str] | None = None
    rate: bool = False
    quantile: float | None = None


def _series_query(tenant: str, given: MetricQuery) -> SeriesQuery:
    end = given.end if given.end is not None else time.time_ns()
    start = given.start if given.start is not None else end - _DEFAULT_RANGE_NS
    step = given.step or max(1_000_000_000, (end - start) // _DEFAULT_STEPS)
    # Steps start on multiples of the step, as in Prometheus: stable buckets between
    # refreshes, and the store can answer from its pre-aggregated rollups.
    if step > 0:
        start -= start % step
    return SeriesQuery(
        tenant=tenant,
        metric=given.metric,
        start_unix_nano=start,
        end_unix_nano=end,
        step_nano=step,
        matchers=tuple(item.to_matcher() for item in given.matchers or []),
        aggregation=StoreAggregation(given.aggregation),
        group_by=tuple(given.group_by or ()),
        rate=given.rate,
        quantile=given.quantile,
    )


async def resolve_metric_names(info: Info[QueryContext, Any]) -> list[MetricInfo]:
    names = await info.context.service.metric_names(info.context.tenant)
    return [MetricInfo.of(item) for item in names]


async def resolve_label_names(info: Info[QueryContext, Any], metric: str) -> list[str]:
    return await info.context.service.label_names(info.context.tenant, metric)


async def resolve_label_values(
    info: Info[QueryContext, Any], metric: str, label: str
) -> list[str]:
    return await info.context.service.label_values(info.context.tenant, metric, label)


async def resolve_metric_series(info: Info[QueryContext, Any], query: MetricQuery) -> list[Series]:
    result = await info.context.service.metric_series(_series_query(info.context.tenant, query))
    return [
        Series(
            labels=series.labels,
            points=[
                SeriesPoint(time_unix_nano=ts, value=value)
                for ts, value in zip(series.timestamps, series.values)
            ],
        )
        for series in result
    ]


async def resolve_metric_points(
    info: Info[QueryContext, Any],
    metric: str,
    matchers: list[LabelMatcherInput] | None = None,
    start: Time | None = None,
    end: Time | None = None,
    limit: int = 1000,
) -> list[MetricPoint]:
    query = PointQuery(
        tenant=info.context.tenant,
        metric=metric,
        matchers=tuple(item.to_matcher() for item in matchers or []),
        start_unix_nano=start,
        end_unix_nano=end,
        limit=limit,
    )
    return [MetricPoint.of(point) for point in await info.context.service.metric_points(query)]
