"""Decoding /query answers: the JSON stream into series, and rows into MetricPoints."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from ..attributes import decode_value
from ..errors import QueryError, StoreError
from ..model import HistogramValue, MetricKind, MetricPoint, Resource, Scope
from . import influxdb_schema as schema
from .duckdb_metrics_codec import decode_exemplars, decode_exponential, decode_summary

_NONFINITE = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


@dataclass(slots=True)
class Series:
    """One series of one statement's answer, its chunks joined."""

    name: str
    tags: dict[str, str]
    columns: list[str]
    values: list[list[Any]]

    def column(self, name: str) -> int | None:
        try:
            return self.columns.index(name)
        except ValueError:
            return None


class SeriesCollector:
    """Joins the chunks of a chunked answer (or reads a plain one) into series, keyed by
    name and tags; raises QueryError once more than `max_series` distinct series arrive."""

    def __init__(self, max_series: int | None = None) -> None:
        self.max_series = max_series
        self.series: dict[tuple[int, str, tuple[tuple[str, str], ...]], Series] = {}

    def feed(self, document: bytes) -> None:
        if not document.strip():
            return
        try:
            body = orjson.loads(document)
        except orjson.JSONDecodeError as exc:
            raise StoreError(f"InfluxDB sent an answer that is not JSON: {exc}") from exc
        if "error" in body:
            raise QueryError(f"InfluxDB refused the query: {body['error']}")
        for result in body.get("results", ()):
            if "error" in result:
                raise QueryError(f"InfluxDB refused the query: {result['error']}")
            for raw in result.get("series", ()):
                self._add(int(result.get("statement_id", 0)), raw)

    def _add(self, statement: int, raw: dict[str, Any]) -> None:
        tags = raw.get("tags") or {}
        key = (statement, raw.get("name", ""), tuple(sorted(tags.items())))
        known = self.series.get(key)
        if known is None:
            if self.max_series is not None and len(self.series) >= self.max_series:
                raise QueryError(
                    f"more than {self.max_series} series match; add matchers to narrow"
                    " the query"
                )
            self.series[key] = Series(key[1], dict(tags), list(raw.get("columns", ())),
                                      list(raw.get("values") or ()))
        else:
            known.values.extend(raw.get("values") or ())

    def result(self, statement: int = 0) -> list[Series]:
        return [s for (i, _, _), s in self.series.items() if i == statement]


def labels_of(tags: dict[str, str]) -> dict[str, str]:
    """The labels of a series from its tags: internal tags and empty values left out."""
    labels = {}
    for key, value in tags.items():
        label = schema.label_key(key)
        if label is not None and value != "":
            labels[label] = schema.label_value(value)
    return labels


# ---------------------------------------------------------------------------- catalog


@dataclass(slots=True)
class VariantInfo:
    unit: str
    description: str
    resource: Resource
    scope: Scope
    attributes: dict[str, Any]
    metadata: dict[str, Any]


def decode_variant(data: str) -> VariantInfo:
    unit, description, resource, scope, attributes, metadata = decode_value(data)
    res_attrs, res_dropped, res_schema = resource
    name, version, scope_attrs, scope_dropped, scope_schema = scope
    return VariantInfo(
        unit, description, Resource(res_attrs, res_dropped, res_schema),
        Scope(name, version, scope_attrs, scope_dropped, scope_schema),
        attributes, metadata,
    )


# ---------------------------------------------------------------------------- points


def decode_points(
    series: Iterable[Series], metric: str, variants: dict[str, VariantInfo]
) -> list[MetricPoint]:
    """Rows of `SELECT *` (tags and fields as columns) as MetricPoints; rows whose variant
    the catalog lacks are skipped (their catalog line was lost, e.g. to retention)."""
    points = []
    for s in series:
        index = {name: i for i, name in enumerate(s.columns)}
        buckets = sorted(
            (int(name[len(schema.BUCKET_PREFIX):]), i) for name, i in index.items()
            if name.startswith(schema.BUCKET_PREFIX) and name[1:].isdigit()
        )
        for row in s.values:
            variant = variants.get(row[index[schema.VARIANT]]) if schema.VARIANT in index else None
            if variant is not None:
                points.append(_point(row, index, buckets, metric, variant))
    return points


def _get(row: list[Any], index: dict[str, int], name: str) -> Any:
    i = index.get(name)
    return None if i is None else row[i]


def _point(row: list[Any], index: dict[str, int], buckets: list[tuple[int, int]],
           metric: str, variant: VariantInfo) -> MetricPoint:
    kind, temporality, monotonic = schema.parse_kind_tag(row[index[schema.KIND_TAG]])
    exemplars = _get(row, index, schema.EXEMPLARS)
    nonfinite_raw = _get(row, index, schema.NONFINITE)
    nonfinite = {k: _NONFINITE[v] for k, v in orjson.loads(nonfinite_raw).items()} \
        if nonfinite_raw else {}
    point = MetricPoint(
        name=metric, kind=kind, time_unix_nano=int(row[index["time"]]),
        resource=variant.resource, scope=variant.scope, attributes=variant.attributes,
        description=variant.description, unit=variant.unit,
        start_time_unix_nano=int(_get(row, index, schema.START) or 0),
        temporality=temporality, is_monotonic=monotonic,
        flags=int(_get(row, index, schema.FLAGS) or 0),
        exemplars=decode_exemplars(exemplars) if exemplars else [],
        metadata=variant.metadata,
    )

    def number(name: str) -> float | None:
        value = _get(row, index, name)
        return float(value) if value is not None else nonfinite.get(name)

    if kind in (MetricKind.GAUGE, MetricKind.SUM):
        exact = _get(row, index, schema.INT)
        point.value = int(exact) if exact is not None else number(schema.VALUE)
    elif kind == MetricKind.HISTOGRAM:
        counts = []
        for position, (n, i) in enumerate(buckets):
            if n != position or row[i] is None:
                break
            counts.append(int(row[i]))
        bounds = decode_value(row[index[schema.BOUNDS_TAG]])
        point.histogram = HistogramValue(
            count=int(_get(row, index, schema.COUNT)), sum=number(schema.SUM),
            bucket_counts=counts, explicit_bounds=[float(b) for b in bounds],
            min=number(schema.MIN), max=number(schema.MAX),
        )
    elif kind == MetricKind.EXPONENTIAL_HISTOGRAM:
        point.exponential_histogram = decode_exponential(row[index[schema.DATA_FIELD]])
    else:
        point.summary = decode_summary(row[index[schema.DATA_FIELD]])
    return point
