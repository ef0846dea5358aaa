"""Reading stored points back as full-fidelity MetricPoints."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import duckdb
import pyarrow as pa

from ..metrics import PointQuery
from ..model import HistogramValue, MetricKind, MetricPoint
from .duckdb_metrics_catalog import Catalog, Variant
from .duckdb_metrics_codec import (
    decode_exemplars,
    decode_exponential,
    decode_map,
    decode_resource,
    decode_scope,
    decode_summary,
)

_SELECTS = {
    "numeric_points": "value, is_int, big_int",
    "histogram_points": "count, sum, min, max, bounds_id, counts",
    "other_points": "data",
}


def fetch_points(
    cur: duckdb.DuckDBPyConnection, catalog: Catalog, series_ids: list[int], query: PointQuery
) -> list[MetricPoint]:
    """The oldest `query.limit` points of `series_ids` in the query's time range."""
    if not series_ids or query.limit <= 0:
        return []
    cur.register("sel_ids", pa.table({"series_id": pa.array(series_ids, pa.int32())}))
    try:
        rows: list[tuple[Any, ...]] = []
        for order, (table, columns) in enumerate(_SELECTS.items()):
            rows.extend((*row, order) for row in cur.execute(_sql(table, columns, query)).fetchall())
    finally:
        cur.unregister("sel_ids")
    rows.sort(key=lambda row: (row[1], row[0], row[-1]))  # ts, series, table
    builders: dict[int, Callable[[tuple[Any, ...]], MetricPoint]] = {
        0: lambda row: _numeric(row, catalog),
        1: lambda row: _histogram(row, catalog),
        2: lambda row: _other(row, catalog),
    }
    points = []
    for row in rows[: query.limit]:
        try:
            points.append(builders[row[-1]](row))
        except _SeriesRemoved:
            continue
    return points


class _SeriesRemoved(Exception):
    """Retention removed the series of a row after the row was read."""


def _sql(table: str, columns: str, query: PointQuery) -> str:
    where = ["series_id IN (SELECT series_id FROM sel_ids)"]
    if query.start_unix_nano is not None:
        where.append(f"ts >= {int(query.start_unix_nano)}")
    if query.end_unix_nano is not None:
        where.append(f"ts < {int(query.end_unix_nano)}")
    return (
        f"SELECT series_id, ts, start_ts, flags, exemplars, {columns} FROM {table}"
        f" WHERE {' AND '.join(where)} ORDER BY ts, series_id LIMIT {int(query.limit)}"
    )


def _base(row: tuple[Any, ...], catalog: Catalog) -> tuple[MetricPoint, Variant]:
    series_id, ts, start_ts, flags, exemplars = row[:5]
    variant = catalog.variants.get(series_id)
    logical = None if variant is None else catalog.logical.get(variant.lid)
    if variant is None or logical is None:
        raise _SeriesRemoved(series_id)
    point = MetricPoint(
        name=logical.name,
        kind=logical.kind,
        time_unix_nano=ts,
        resource=decode_resource(variant.resource),
        scope=decode_scope(variant.scope),
        attributes=decode_map(variant.attributes),
        description=variant.description,
        unit=variant.unit,
        start_time_unix_nano=start_ts,
        temporality=variant.temporality,
        is_monotonic=variant.monotonic,
        flags=flags,
        exemplars=decode_exemplars(exemplars),
        metadata=decode_map(variant.metadata),
    )
    return point, variant


def _numeric(row: tuple[Any, ...], catalog: Catalog) -> MetricPoint:
    point, _ = _base(row, catalog)
    value, is_int, big_int = row[5:8]
    point.value = (big_int if big_int is not None else int(value)) if is_int else value
    return point


def _histogram(row: tuple[Any, ...], catalog: Catalog) -> MetricPoint:
    point, _ = _base(row, catalog)
    count, total, low, high, bounds_id, counts = row[5:11]
    point.histogram = HistogramValue(
        count=count, sum=total, bucket_counts=list(counts),
        explicit_bounds=list(catalog.bounds[bounds_id]), min=low, max=high,
    )
    return point


def _other(row: tuple[Any, ...], catalog: Catalog) -> MetricPoint:
    point, _ = _base(row, catalog)
    if point.kind == MetricKind.EXPONENTIAL_HISTOGRAM:
        point.exponential_histogram = decode_exponential(row[5])
    else:
        point.summary = decode_summary(row[5])
    return point
