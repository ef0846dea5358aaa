"""Building model metric points, for both encodings: the fields every point of one
metric shares are gathered once per metric in a `Series`."""

from __future__ import annotations

from dataclasses import dataclass

from ..storage.model import (
    Attributes,
    Exemplar,
    MetricKind,
    MetricPoint,
    Resource,
    Scope,
    Temporality,
)

# `Metric.data` member names in protobuf and in JSON, and the kind of point each holds.
KIND_BY_PB_FIELD: dict[str, MetricKind] = {
    "gauge": MetricKind.GAUGE,
    "sum": MetricKind.SUM,
    "histogram": MetricKind.HISTOGRAM,
    "exponential_histogram": MetricKind.EXPONENTIAL_HISTOGRAM,
    "summary": MetricKind.SUMMARY,
}
KIND_BY_JSON_FIELD: dict[str, MetricKind] = {
    "gauge": MetricKind.GAUGE,
    "sum": MetricKind.SUM,
    "histogram": MetricKind.HISTOGRAM,
    "exponentialHistogram": MetricKind.EXPONENTIAL_HISTOGRAM,
    "summary": MetricKind.SUMMARY,
}

# Proto3 enums are open: a temporality this model has no member for is kept as
# UNSPECIFIED rather than failing the request.
_TEMPORALITIES: dict[int, Temporality] = {t.value: t for t in Temporality}


def temporality(value: int) -> Temporality:
    return _TEMPORALITIES.get(value, Temporality.UNSPECIFIED)


@dataclass(frozen=True, slots=True)
class Series:
    """What every point of one OTLP Metric has in common. Points of one metric share the
    `metadata` dict, as points of one resource and scope share those objects."""

    name: str
    kind: MetricKind
    description: str
    unit: str
    temporality: Temporality
    is_monotonic: bool
    metadata: Attributes
    resource: Resource
    scope: Scope


def new_point(
    series: Series,
    time_unix_nano: int,
    start_time_unix_nano: int,
    attributes: Attributes,
    flags: int,
    exemplars: list[Exemplar],
) -> MetricPoint:
    """A point with no value yet: the caller sets the one value field of its kind."""
    # Positional, in MetricPoint's field order: twice as fast as keywords on this hot path
    # (the field-by-field tests in tests/proto catch any change of that order).
    return MetricPoint(
        series.name,
        series.kind,
        time_unix_nano,
        series.resource,
        series.scope,
        attributes,
        series.description,
        series.unit,
        start_time_unix_nano,
        series.temporality,
        series.is_monotonic,
        flags,
        None,  # value
        None,  # histogram
        None,  # exponential_histogram
        None,  # summary
        exemplars,
        series.metadata,
    )
