"""The embedded metric store on DuckDB (one file, no server).

Threading: every DuckDB call runs in a worker thread (DuckDB releases the GIL while it
executes), so the event loop never blocks on the database. Writes share one connection and
are serialised by a lock; each worker thread reads through its own cursor. The in-memory
catalog is only changed by the writer, after the commit that made the change durable.

Durability: a write has committed when `write_points` returns; the batch id is recorded
in the same transaction, so a batch retried after a crash is applied exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self, TypeVar

import duckdb
import numpy as np
import pyarrow as pa

from ..errors import PermanentStoreError, RetryableStoreError, StoreError
from ..metrics import MatchOp, MetricInfo, PointQuery, ResultSeries, SeriesQuery
from ..model import MetricPoint
from .duckdb_metrics_catalog import Catalog, LogicalSeries
from .duckdb_metrics_points import fetch_points
from .duckdb_metrics_quantile import (
    cumulative_increases,
    cumulative_sql,
    delta_increases,
    delta_sql,
    per_series_quantiles,
)
from .duckdb_metrics_query import (
    group_series,
    numeric_sql,
    run_with_tables,
    select_series,
    selection_tables,
    to_result,
    validate,
)
from .duckdb_metrics_retention import (
    POINT_TABLES,
    delete_window,
    next_window,
    oldest,
    remove_series,
    series_with_points,
    stale_after_delete,
)
from .duckdb_metrics_rollup import RollupState, compact
from .duckdb_metrics_schema import CHUNK_NS, create_schema
from .duckdb_metrics_write import apply_batch, prepare_batch

log = logging.getLogger("argus.storage.duckdb_metrics")
T = TypeVar("T")

# Bounds the extra latency a write can pick up from rolling up chunks behind it.
_CHUNKS_PER_WRITE = 6
_RETRYABLE = (
    duckdb.IOException, duckdb.OutOfMemoryException, duckdb.TransactionException,
    duckdb.InterruptException,
)


class DuckDBMetricStore:
    def __init__(self, con: duckdb.DuckDBPyConnection, catalog: Catalog, rollups: RollupState):
        self._con = con
        self._catalog = catalog
        self._rollups = rollups  # replaced whole, so readers see a consistent state
        self._write_lock = asyncio.Lock()  # keeps waiting writers out of the thread pool
        self._db_write_lock = threading.Lock()  # holds even if a writer's await is cancelled
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._cursors_lock = threading.Lock()
        self._closed = False

    @classmethod
    async def open(cls, path: Path) -> Self:
        return await asyncio.to_thread(cls._open, path)

    @classmethod
    def _open(cls, path: Path) -> Self:
        path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(path))
        try:
            create_schema(con)
            return cls(con, Catalog.load(con), RollupState.load(con))
        except BaseException:
            con.close()
            raise

    # ---------------------------------------------------------------- writes

    async def write_points(
        self, tenant: str, points: Sequence[MetricPoint], batch_id: str
    ) -> None:
        async with self._write_lock:
            await asyncio.to_thread(self._write, tenant, points, batch_id)

    def _write(self, tenant: str, points: Sequence[MetricPoint], batch_id: str) -> None:
        with self._db_write_lock:
            self._check_open()
            batch = prepare_batch(tenant, points, self._catalog)
            try:
                dirty = apply_batch(
                    self._con, tenant, batch_id, batch, self._rollups.watermark, time.time_ns()
                )
            except duckdb.Error as exc:
                raise _classify(exc) from exc
            if dirty is None:
                return  # applied before
            self._catalog.apply(batch.delta)
            ts = batch.numeric_ts
            self._rollups = self._rollups.after_write(int(ts.max()) if ts.size else None, dirty)
            self._compact(_CHUNKS_PER_WRITE)

    async def compact(self, max_chunks: int = 1_000_000) -> None:
        """Bring the rollups up to date now (writes also do it a few chunks at a time)."""
        async with self._write_lock:
            await asyncio.to_thread(self._compact_locked, max_chunks)

    def _compact_locked(self, max_chunks: int) -> None:
        with self._db_write_lock:
            self._check_open()
            self._compact(max_chunks, force=True)

    def _compact(self, max_chunks: int, force: bool = False) -> None:
        try:
            self._rollups = compact(
                self._con, self._rollups, time.time_ns(), max_chunks, force
            )
        except duckdb.Error:  # the write itself is committed; the next write retries this
            log.exception("rolling up metric chunks failed")

    # ---------------------------------------------------------------- reads

    async def metric_names(self, tenant: str) -> list[MetricInfo]:
        self._check_open()
        metas = list(self._catalog.metrics.items())
        return sorted((m.info for (t, _), m in metas if t == tenant), key=lambda i: i.name)

    async def label_names(self, tenant: str, metric: str) -> list[str]:
        self._check_open()
        return sorted({k for s in self._catalog.series_of(tenant, metric) for k in s.labels})

    async def label_values(self, tenant: str, metric: str, label: str) -> list[str]:
        self._check_open()
        series = self._catalog.series_of(tenant, metric)
        return sorted({s.labels[label] for s in series if label in s.labels})

    async def metrics_with_label(self, tenant: str, label: str, value: str) -> list[MetricInfo]:
        self._check_open()
        if not value:
            return []
        found = []
        for (t, name), meta in list(self._catalog.metrics.items()):
            if t == tenant and any(
                s.labels.get(label) == value for s in self._catalog.series_of(tenant, name)
            ):
                found.append(meta.info)
        return sorted(found, key=lambda info: info.name)

    async def query_range(self, query: SeriesQuery) -> list[ResultSeries]:
        self._check_open()
        validate(query)
        if query.end_unix_nano <= query.start_unix_nano:
            return []
        return await asyncio.to_thread(self._query_range, query)

    def _query_range(self, query: SeriesQuery) -> list[ResultSeries]:
        series = select_series(self._catalog.series_of(query.tenant, query.metric), query)
        if not series:
            return []
        labels, groups = group_series(series, query.group_by)
        by_series, by_lid = selection_tables(series, groups)
        cur = self._cursor()
        if query.quantile is None:
            sql = numeric_sql(query, {s.metric_id for s in series}, self._rollups)
            columns = run_with_tables(cur, sql, {"sel_series": by_series, "sel_lid": by_lid})
        else:
            columns = self._quantiles(cur, query, by_series, groups)
        return to_result(columns, labels, query)

    def _quantiles(
        self, cur: duckdb.DuckDBPyConnection, query: SeriesQuery, by_series: pa.Table,
        groups: dict[int, int],
    ) -> dict[str, np.ndarray]:
        assert query.quantile is not None
        cumulative, back = cumulative_sql(query)
        cur.register("sel_series", by_series)
        try:
            parts = [
                cumulative_increases(cur.sql(cumulative).to_arrow_table(), back),
                delta_increases(cur.sql(delta_sql(query)).to_arrow_table()),
            ]
        finally:
            cur.unregister("sel_series")
        lid, b, values = per_series_quantiles(parts, query.quantile, self._catalog.bounds)
        grp = np.array([groups[int(i)] for i in lid], dtype=np.int32)
        table = pa.table({"grp": grp, "b": b.astype(np.int64), "v": values})
        sql = (
            f"SELECT grp, b, {query.aggregation.value}(v) AS v FROM per_series"
            " GROUP BY grp, b ORDER BY grp, b"
        )
        return run_with_tables(cur, sql, {"per_series": table})

    async def points(self, query: PointQuery) -> list[MetricPoint]:
        self._check_open()
        for matcher in query.matchers:
            if matcher.op in (MatchOp.RE, MatchOp.NRE):
                matcher.compiled()  # raises QueryError for an invalid regex
        return await asyncio.to_thread(self._points, query)

    def _points(self, query: PointQuery) -> list[MetricPoint]:
        series = self._catalog.series_of(query.tenant, query.metric)
        chosen: list[LogicalSeries] = [
            s for s in series if all(m.matches(s.labels) for m in query.matchers)
        ]
        ids = [v.series_id for s in chosen for v in s.variants]
        return fetch_points(self._cursor(), self._catalog, ids, query)

    # ---------------------------------------------------------------- retention

    async def tenants(self) -> list[str]:
        self._check_open()
        return self._catalog.tenants()

    async def delete_before(self, tenant: str, cutoff_unix_nano: int) -> int:
        """Delete the tenant's points before the cutoff, their rollups, and the series
        and metrics left without points; returns how many points went. See
        duckdb_metrics_retention for how writes keep going meanwhile."""
        self._check_open()
        deleted = numeric = 0
        touched: set[int] = set()
        for table in POINT_TABLES:
            lo = await asyncio.to_thread(self._on_cursor, oldest, table, tenant, cutoff_unix_nano)
            window = CHUNK_NS
            while lo is not None and lo < cutoff_unix_nano:
                hi = min(cutoff_unix_nano, lo + window)
                async with self._write_lock:
                    count, series = await asyncio.to_thread(
                        self._locked, delete_window, table, tenant, lo, hi
                    )
                deleted += count
                numeric += count if table == "numeric_points" else 0
                touched |= series
                lo, window = hi, next_window(window, count)
        # The search for points left reads whole columns: first without the lock, then
        # under it only for the series that seemed to have none.
        gone = touched - await asyncio.to_thread(self._on_cursor, series_with_points, touched)
        async with self._write_lock:
            await asyncio.to_thread(self._forget_series, gone, cutoff_unix_nano, numeric > 0)
        return deleted

    def _on_cursor(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(self._cursor(), *args)
        except duckdb.Error as exc:
            raise _classify(exc) from exc

    def _locked(self, fn: Callable[..., T], *args: Any) -> T:
        with self._db_write_lock:
            self._check_open()
            try:
                return fn(self._con, *args)
            except duckdb.Error as exc:
                raise _classify(exc) from exc

    def _forget_series(self, candidates: set[int], cutoff: int, numeric: bool) -> None:
        with self._db_write_lock:
            self._check_open()
            try:
                gone = candidates - series_with_points(self._con, candidates)
                stale = stale_after_delete(cutoff, self._rollups.watermark) if numeric else []
                if not gone and not stale:
                    return
                remove_series(self._con, self._catalog, gone, stale)
            except duckdb.Error as exc:
                raise _classify(exc) from exc
            self._catalog.remove(gone)
            self._rollups = self._rollups.after_write(None, stale)

    # ---------------------------------------------------------------- lifecycle

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's read cursor (a connection of its own to the same database)."""
        cur: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cur is None:
            with self._cursors_lock:
                self._check_open()
                cur = self._con.cursor()
                self._cursors.append(cur)
            self._local.cursor = cur
        return cur

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the metric store is closed")

    async def close(self) -> None:
        async with self._write_lock:
            await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._db_write_lock, self._cursors_lock:
            if self._closed:
                return
            self._closed = True
            for cur in self._cursors:
                cur.close()
            self._con.close()


def _classify(exc: duckdb.Error) -> StoreError:
    if isinstance(exc, _RETRYABLE):
        return RetryableStoreError(f"metric store write failed: {exc}")
    return PermanentStoreError(f"metric store rejected the batch: {exc}")
