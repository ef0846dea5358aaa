"""Write path: one pass over a batch of points into columns, then one Arrow INSERT per table.

DuckDB ingests Arrow columns at millions of rows per second; the cost that remains is the
Python loop that looks up each point's series (resource and scope encodings are memoised
per object within the batch, so only the point's own attributes are encoded per point).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from ..errors import PermanentStoreError
from ..model import MetricKind, MetricPoint
from .duckdb_metrics_catalog import Catalog, CatalogDelta, VariantKey
from .duckdb_metrics_codec import (
    encode_exemplars,
    encode_exponential,
    encode_map,
    encode_resource,
    encode_scope,
    encode_summary,
)
from .duckdb_metrics_schema import (
    CHUNK_NS,
    HISTOGRAM_COLUMNS,
    LOOKBACK_NS,
    NUMERIC_COLUMNS,
    OTHER_COLUMNS,
    SERIES_COLUMNS,
)

_EXACT_INT_LIMIT = 2**53  # ints at or beyond this lose digits as a double
_GAUGE, _SUM, _HISTOGRAM = MetricKind.GAUGE, MetricKind.SUM, MetricKind.HISTOGRAM


@dataclass(slots=True)
class _Columns:
    """Per-table column lists; `extra` holds the table-specific ones by name."""

    series_id: list[int] = field(default_factory=list)
    ts: list[int] = field(default_factory=list)
    start_ts: list[int] = field(default_factory=list)
    flags: list[int] = field(default_factory=list)
    exemplars: list[str | None] = field(default_factory=list)
    extra: dict[str, list[Any]] = field(default_factory=dict)

    def add(self, series_id: int, point: MetricPoint) -> None:
        self.series_id.append(series_id)
        self.ts.append(point.time_unix_nano)
        self.start_ts.append(point.start_time_unix_nano)
        self.flags.append(point.flags)
        self.exemplars.append(encode_exemplars(point.exemplars) if point.exemplars else None)

    def col(self, name: str) -> list[Any]:
        return self.extra.setdefault(name, [])

    def common_arrays(self) -> dict[str, pa.Array]:
        exemplars = (
            pa.array(self.exemplars, pa.string())
            if any(e is not None for e in self.exemplars)
            else pa.nulls(len(self.exemplars), pa.string())
        )
        return {
            "series_id": pa.array(np.array(self.series_id, dtype=np.int32)),
            "ts": pa.array(np.array(self.ts, dtype=np.int64)),
            "start_ts": pa.array(np.array(self.start_ts, dtype=np.int64)),
            "flags": pa.array(np.array(self.flags, dtype=np.uint32)),
            "exemplars": exemplars,
        }


@dataclass(slots=True)
class PreparedBatch:
    delta: CatalogDelta
    numeric: pa.Table | None
    histogram: pa.Table | None
    other: pa.Table | None

    @property
    def numeric_ts(self) -> np.ndarray:
        if self.numeric is None:
            return np.empty(0, dtype=np.int64)
        return np.asarray(self.numeric.column("ts").to_numpy(), dtype=np.int64)


def prepare_batch(tenant: str, points: Sequence[MetricPoint], catalog: Catalog) -> PreparedBatch:
    """Columns for `points`; raises PermanentStoreError for a point that cannot be stored."""
    try:
        return _prepare(tenant, points, catalog)
    except (TypeError, ValueError, OverflowError, AttributeError, pa.ArrowException) as exc:
        raise PermanentStoreError(f"cannot store metric points: {exc!r}") from exc


def _prepare(tenant: str, points: Sequence[MetricPoint], catalog: Catalog) -> PreparedBatch:
    delta = CatalogDelta(catalog)
    known = catalog.variant_ids.get(tenant, {})
    numeric, histogram, other = _Columns(), _Columns(), _Columns()
    # gauges and sums are most points: their columns are appended to inline, through
    # bound methods (this loop is the store's main CPU cost)
    add_series, add_ts = numeric.series_id.append, numeric.ts.append
    add_start, add_flags = numeric.start_ts.append, numeric.flags.append
    add_exemplars, add_value = numeric.exemplars.append, numeric.col("value").append
    add_is_int = numeric.col("is_int").append
    resources: dict[int, bytes] = {}
    scopes: dict[int, bytes] = {}
    latest: dict[str, VariantKey] = {}
    for point in points:
        resource = resources.get(id(point.resource))
        if resource is None:
            resource = resources[id(point.resource)] = encode_resource(point.resource)
        scope = scopes.get(id(point.scope))
        if scope is None:
            scope = scopes[id(point.scope)] = encode_scope(point.scope)
        key: VariantKey = (
            point.name, point.kind, point.temporality, point.is_monotonic, point.unit,
            point.description, resource, scope, encode_map(point.attributes),
            encode_map(point.metadata),
        )
        series_id = known.get(key) or delta.series_id(tenant, key, point)
        latest[point.name] = key
        kind = point.kind
        if kind == _GAUGE or kind == _SUM:
            value = point.value
            if value is None:
                raise ValueError(f"{point.name}: a {kind!r} point without a value")
            add_series(series_id)
            add_ts(point.time_unix_nano)
            add_start(point.start_time_unix_nano)
            add_flags(point.flags)
            add_exemplars(encode_exemplars(point.exemplars) if point.exemplars else None)
            add_value(value)
            add_is_int(type(value) is int)
        elif kind == _HISTOGRAM:
            _add_histogram(histogram, series_id, point, delta)
        else:
            _add_other(other, series_id, point)
    for key in latest.values():
        delta.note_latest(tenant, key)
    return PreparedBatch(
        delta, _numeric_table(numeric), _histogram_table(histogram), _other_table(other)
    )


def _add_histogram(cols: _Columns, series_id: int, point: MetricPoint, delta: CatalogDelta) -> None:
    h = point.histogram
    if h is None:
        raise ValueError(f"{point.name}: a HISTOGRAM point without histogram data")
    cols.add(series_id, point)
    cols.col("count").append(h.count)
    cols.col("sum").append(h.sum)
    cols.col("min").append(h.min)
    cols.col("max").append(h.max)
    cols.col("bounds_id").append(delta.bounds_id(tuple(h.explicit_bounds)))
    cols.col("counts").extend(h.bucket_counts)
    cols.col("lengths").append(len(h.bucket_counts))


def _add_other(cols: _Columns, series_id: int, point: MetricPoint) -> None:
    if point.kind == MetricKind.EXPONENTIAL_HISTOGRAM and point.exponential_histogram:
        data = encode_exponential(point.exponential_histogram)
    elif point.kind == MetricKind.SUMMARY and point.summary:
        data = encode_summary(point.summary)
    else:
        raise ValueError(f"{point.name}: a {point.kind!r} point without its data")
    cols.add(series_id, point)
    cols.col("data").append(data)


def _numeric_table(cols: _Columns) -> pa.Table | None:
    if not cols.series_id:
        return None
    raw_values = cols.extra["value"]
    values = np.array(raw_values, dtype=np.float64)
    is_int = np.array(cols.extra["is_int"], dtype=bool)
    big = np.flatnonzero(is_int & (np.abs(values) >= _EXACT_INT_LIMIT))
    big_int = pa.nulls(len(values), pa.int64())
    if big.size:  # rare: keep the exact int beside its rounded double
        exact = np.zeros(len(values), dtype=np.int64)
        exact[big] = np.array([raw_values[i] for i in big], dtype=np.int64)
        mask = np.ones(len(values), dtype=bool)
        mask[big] = False
        big_int = pa.array(exact, mask=mask)
    arrays = cols.common_arrays() | {
        "value": pa.array(values), "is_int": pa.array(is_int), "big_int": big_int,
    }
    return _compressible(
        pa.table([arrays[name] for name in NUMERIC_COLUMNS], names=list(NUMERIC_COLUMNS))
    )


def _histogram_table(cols: _Columns) -> pa.Table | None:
    if not cols.series_id:
        return None
    extra = cols.extra
    offsets = np.zeros(len(extra["lengths"]) + 1, dtype=np.int32)
    np.cumsum(extra["lengths"], out=offsets[1:])
    counts = pa.ListArray.from_arrays(
        pa.array(offsets), pa.array(np.array(extra.get("counts", []), dtype=np.uint64))
    )
    arrays = cols.common_arrays() | {
        "count": pa.array(np.array(extra["count"], dtype=np.uint64)),
        "sum": pa.array(extra["sum"], pa.float64()),
        "min": pa.array(extra["min"], pa.float64()),
        "max": pa.array(extra["max"], pa.float64()),
        "bounds_id": pa.array(np.array(extra["bounds_id"], dtype=np.int32)),
        "counts": counts,
    }
    return _compressible(
        pa.table([arrays[name] for name in HISTOGRAM_COLUMNS], names=list(HISTOGRAM_COLUMNS))
    )


def _compressible(table: pa.Table) -> pa.Table:
    """The rows ordered by (start_ts, ts, series_id). Gauges (start 0) and counters
    (start = process start) then form runs instead of alternating, so DuckDB can bit-pack
    start_ts and run-length encode ts: 7.3 instead of 17 bytes per point measured on the
    bench's interleaved gauges and counters. A batch spans little time, so time pruning
    by row-group min/max is unaffected."""
    order = np.lexsort((
        table.column("series_id").to_numpy(), table.column("ts").to_numpy(),
        table.column("start_ts").to_numpy(),
    ))
    return table.take(pa.array(order))


def _other_table(cols: _Columns) -> pa.Table | None:
    if not cols.series_id:
        return None
    arrays = cols.common_arrays() | {"data": pa.array(cols.extra["data"], pa.string())}
    return pa.table([arrays[name] for name in OTHER_COLUMNS], names=list(OTHER_COLUMNS))


# ------------------------------------------------------------------ the transaction


def apply_batch(
    con: duckdb.DuckDBPyConnection,
    tenant: str,
    batch_id: str,
    batch: PreparedBatch,
    watermark: int | None,
    now_ns: int,
) -> list[int] | None:
    """Insert the batch in one transaction. Returns None if `batch_id` was applied
    before (nothing written), else the rollup chunks the batch made stale."""
    con.execute("BEGIN TRANSACTION")
    try:
        # recording the batch first doubles as the check: a second time conflicts
        con.execute("INSERT INTO applied_batches VALUES (?, ?, ?)", [tenant, batch_id, now_ns])
    except duckdb.ConstraintException:
        con.execute("ROLLBACK")
        return None
    try:
        _insert_catalog(con, batch.delta)
        _insert(con, "numeric_points", batch.numeric)
        _insert(con, "histogram_points", batch.histogram)
        _insert(con, "other_points", batch.other)
        dirty = stale_chunks(batch.numeric_ts, watermark)
        if dirty:
            con.execute("INSERT OR IGNORE INTO rollup_dirty SELECT unnest(?::BIGINT[])", [dirty])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return dirty


def stale_chunks(ts: np.ndarray, watermark: int | None) -> list[int]:
    """Compacted chunks whose rollups points at `ts` change: their own chunk, and the next
    one, whose first increments may be measured from these points."""
    if watermark is None or ts.size == 0 or int(ts.min()) >= watermark:
        return []
    late = ts[ts < watermark]
    chunks = np.union1d(late // CHUNK_NS, (late + LOOKBACK_NS) // CHUNK_NS) * CHUNK_NS
    return [int(c) for c in chunks if c < watermark]


def _insert(
    con: duckdb.DuckDBPyConnection, table: str, data: pa.Table | None, verb: str = "INSERT"
) -> None:
    if data is None or data.num_rows == 0:
        return
    con.register("_incoming", data)
    try:
        names = ", ".join(data.column_names)
        con.execute(f"{verb} INTO {table} ({names}) SELECT {names} FROM _incoming")
    finally:
        con.unregister("_incoming")


def _insert_catalog(con: duckdb.DuckDBPyConnection, delta: CatalogDelta) -> None:
    if delta.series_rows:
        columns = list(zip(*delta.series_rows))
        _insert(con, "series", pa.table(
            [pa.array(c) for c in columns], names=list(SERIES_COLUMNS)
        ))
    if delta.bounds_ids:
        _insert(con, "hist_bounds", pa.table({
            "bounds_id": pa.array(list(delta.bounds_ids.values()), pa.int32()),
            "bounds": pa.array([list(b) for b in delta.bounds_ids], pa.list_(pa.float64())),
        }))
    if delta.metric_updates:
        rows = [
            (m.metric_id, tenant, name, int(m.info.kind), m.info.unit, m.info.description,
             int(m.info.temporality), m.info.is_monotonic)
            for (tenant, name), m in delta.metric_updates.items()
        ]
        names = ("metric_id", "tenant", "name", "kind", "unit", "description",
                 "temporality", "monotonic")
        metrics = pa.table([pa.array(c) for c in zip(*rows)], names=list(names))
        _insert(con, "metrics", metrics, verb="INSERT OR REPLACE")
