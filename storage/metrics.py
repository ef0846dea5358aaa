"""The metric store contract, and the series identity every backend shares."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from .attributes import value_as_label
from .errors import QueryError
from .model import MetricKind, MetricPoint, Temporality


def series_labels(point: MetricPoint) -> dict[str, str]:
    """The labels that identify a point's series: resource attributes, then the point's
    own attributes (which win on a clash), all in string form."""
    labels = {key: value_as_label(value) for key, value in point.resource.attributes.items()}
    labels.update((key, value_as_label(value)) for key, value in point.attributes.items())
    return labels


class MatchOp(str, Enum):
    EQ = "="
    NE = "!="
    RE = "=~"
    NRE = "!~"


@dataclass(frozen=True, slots=True)
class LabelMatcher:
    """A PromQL-style matcher. Regexes are anchored (full match); a missing label is ""."""

    label: str
    op: MatchOp
    value: str

    def compiled(self) -> re.Pattern[str]:
        try:
            return re.compile(self.value)
        except re.error as exc:
            raise QueryError(f"invalid regex for label {self.label!r}: {exc}") from exc

    def matches(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.label, "")
        if self.op is MatchOp.EQ:
            return actual == self.value
        if self.op is MatchOp.NE:
            return actual != self.value
        found = self.compiled().fullmatch(actual) is not None
        return found if self.op is MatchOp.RE else not found


class Aggregation(str, Enum):
    SUM = "sum"
    AVG = "avg"
    MIN = "min"
    MAX = "max"
    COUNT = "count"


@dataclass(frozen=True, slots=True)
class SeriesQuery:
    """A range query over one metric.

    Time is cut into steps [t, t+step) from `start_unix_nano`. Within a step each series
    contributes one value: its average for gauges and sums; with `rate`, the per-second
    increase of a counter (cumulative resets handled, delta points summed); with
    `quantile`, the quantile estimated from the histogram buckets that arrived in the step
    (cumulative histograms by their increase). Series are then combined per distinct
    value of `group_by` labels with `aggregation`. Steps without data are left out.
    """

    tenant: str
    metric: str
    start_unix_nano: int
    end_unix_nano: int
    step_nano: int
    matchers: tuple[LabelMatcher, ...] = ()
    aggregation: Aggregation = Aggregation.AVG
    group_by: tuple[str, ...] = ()
    rate: bool = False
    quantile: float | None = None


@dataclass(slots=True)
class ResultSeries:
    labels: dict[str, str]
    timestamps: list[int]
    values: list[float]


@dataclass(slots=True)
class MetricInfo:
    name: str
    kind: MetricKind
    unit: str
    description: str
    temporality: Temporality
    is_monotonic: bool


@dataclass(frozen=True, slots=True)
class PointQuery:
    """Raw points of one metric, for showing stored points with every field."""

    tenant: str
    metric: str
    matchers: tuple[LabelMatcher, ...] = ()
    start_unix_nano: int | None = None
    end_unix_nano: int | None = None
    limit: int = 1000


@dataclass(slots=True)
class SeriesInfo:
    labels: dict[str, str] = field(default_factory=dict)


class MetricStore(Protocol):
    """Stores metric points per tenant. Writes are idempotent per `batch_id`."""

    async def write_points(
        self, tenant: str, points: Sequence[MetricPoint], batch_id: str
    ) -> None: ...

    async def metric_names(self, tenant: str) -> list[MetricInfo]:
        """Every metric name with its latest metadata, sorted by name."""
        ...

    async def label_names(self, tenant: str, metric: str) -> list[str]: ...

    async def label_values(self, tenant: str, metric: str, label: str) -> list[str]:
        """Distinct values of `label` among the metric's series, sorted; [] if unknown."""
        ...

    async def metrics_with_label(self, tenant: str, label: str, value: str) -> list[MetricInfo]:
        """The metrics having at least one series whose label `label` equals `value` (e.g.
        service.name = checkout), with their latest metadata, sorted by name; [] for an
        empty value. Part of `capabilities.CATALOG`."""
        ...

    async def query_range(self, query: SeriesQuery) -> list[ResultSeries]:
        """Raises QueryError for a query the backend refuses (bad regex, quantile of a
        metric without buckets, too many series or points)."""
        ...

    async def points(self, query: PointQuery) -> list[MetricPoint]:
        """Stored points with every field as written, oldest first, at most `limit`."""
        ...

    async def tenants(self) -> list[str]:
        """The tenants that have points stored, sorted (retention walks these)."""
        ...

    async def delete_before(self, tenant: str, cutoff_unix_nano: int) -> int:
        """Remove the tenant's points whose time is before the cutoff, and what was
        derived from them: rollups of those points, and catalog entries (metric names,
        series, label names and values) left without points.

        Returns how many points were removed, or -1 when the backend cannot count them
        cheaply. Other tenants and newer points are untouched; calling it again with the
        same cutoff removes nothing. Safe while writes and queries run: the backend
        deletes in chunks (each its own short transaction) where its engine would
        otherwise hold a write lock for the whole deletion. Raises
        `errors.Unsupported` when the store declares `capabilities.RETENTION`
        unsupported.
        """
        ...

    async def close(self) -> None: ...
