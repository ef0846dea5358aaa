"""Retention for the DuckDB metric store: one tenant's points before a cutoff go, and with
them their rollups and the catalog entries (series, metrics) left without points.

Points are deleted one time window at a time, each window its own statement under the
store's write lock, so writes wait for at most one window. Windows adapt to the data:
they grow while they hold few points and shrink when one held many, aiming at
TARGET_ROWS points per statement. (A `rowid IN (... LIMIT n)` chunk would scan the whole
table per chunk; a time window is pruned by DuckDB's per-row-group min/max of `ts`.)

Rollups: rows of the tenant's series in chunks wholly before the cutoff's chunk are
deleted with the points of the same window; the chunks whose rollups mix deleted and kept points (the cutoff's chunk, and
the next ones whose first counter increases were measured from deleted points) are
marked stale, so readers read them raw until they are recomputed.
"""

from __future__ import annotations

import duckdb
import numpy as np

from .duckdb_metrics_catalog import Catalog
from .duckdb_metrics_schema import CHUNK_NS, LOOKBACK_NS, ROLLUPS

POINT_TABLES = ("numeric_points", "histogram_points", "other_points")
TARGET_ROWS = 200_000
_MIN_WINDOW = 60 * 1_000_000_000
_MAX_WINDOW = 2**62
_TENANT_SERIES = "series_id IN (SELECT series_id FROM series WHERE tenant = ?)"
_TENANT_LIDS = "lid IN (SELECT lid FROM series WHERE tenant = ?)"


def oldest(con: duckdb.DuckDBPyConnection, table: str, tenant: str, cutoff: int) -> int | None:
    """The time of the tenant's oldest point in `table` before the cutoff."""
    ((first,),) = con.execute(
        f"SELECT min(ts) FROM {table} WHERE ts < ? AND {_TENANT_SERIES}", [cutoff, tenant]
    ).fetchall()
    return None if first is None else int(first)


def delete_window(
    con: duckdb.DuckDBPyConnection, table: str, tenant: str, lo: int, hi: int
) -> tuple[int, set[int]]:
    """Delete the tenant's points of `table` in [lo, hi), and for gauges and sums the
    rollup rows of the chunks wholly before `hi` from `lo`'s chunk on, in one
    transaction: (how many points, of which series)."""
    con.execute("BEGIN TRANSACTION")
    try:
        deleted = con.execute(
            f"DELETE FROM {table} WHERE ts >= ? AND ts < ? AND {_TENANT_SERIES}"
            " RETURNING series_id",
            [lo, hi, tenant],
        ).fetchnumpy()["series_id"]
        first, end = lo // CHUNK_NS * CHUNK_NS, hi // CHUNK_NS * CHUNK_NS
        if table == "numeric_points" and first < end:
            for _, rollup in ROLLUPS:
                con.execute(
                    f"DELETE FROM {rollup} WHERE bucket >= ? AND bucket < ? AND {_TENANT_LIDS}",
                    [first, end, tenant],
                )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return int(deleted.size), {int(i) for i in np.unique(deleted)}


def next_window(window: int, deleted: int) -> int:
    """The next window's length after one of `window` ns held `deleted` points."""
    if deleted > TARGET_ROWS:
        return max(_MIN_WINDOW, window * TARGET_ROWS // deleted)
    if deleted < TARGET_ROWS // 4:
        return min(_MAX_WINDOW, window * 2)
    return window


def stale_after_delete(cutoff: int, watermark: int | None) -> list[int]:
    """Rolled-up chunks whose rollups deleting points before `cutoff` changes: the chunk
    holding the cutoff, and those whose points may have measured increases from deleted
    points (up to LOOKBACK_NS after the cutoff)."""
    if watermark is None:
        return []
    first = cutoff // CHUNK_NS * CHUNK_NS
    return list(range(first, min(cutoff + LOOKBACK_NS, watermark), CHUNK_NS))


def series_with_points(cur: duckdb.DuckDBPyConnection, candidates: set[int]) -> set[int]:
    """Those of `candidates` that still have a point in any table."""
    if not candidates:
        return set()
    ids = sorted(candidates)
    found: set[int] = set()
    for table in POINT_TABLES:
        rows = cur.execute(
            f"SELECT DISTINCT series_id FROM {table}"
            " WHERE series_id IN (SELECT unnest(?::INTEGER[]))",
            [ids],
        ).fetchall()
        found.update(int(row[0]) for row in rows)
    return found


def remove_series(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, series_ids: set[int], stale: list[int]
) -> None:
    """In one transaction: delete `series_ids` (series without points), the metrics they
    leave without series, every rollup row of the logical series they leave without
    series (whose ids may be handed out again after a restart), and mark `stale` chunks
    for recomputation."""
    lids, metric_ids = catalog.removal(series_ids)
    con.execute("BEGIN TRANSACTION")
    try:
        for _, rollup in ROLLUPS if lids else ():
            con.execute(f"DELETE FROM {rollup} WHERE lid IN (SELECT unnest(?::INTEGER[]))", [lids])
        if stale:
            con.execute("INSERT OR IGNORE INTO rollup_dirty SELECT unnest(?::BIGINT[])", [stale])
        if series_ids:
            con.execute(
                "DELETE FROM series WHERE series_id IN (SELECT unnest(?::INTEGER[]))",
                [sorted(series_ids)],
            )
        if metric_ids:
            con.execute(
                "DELETE FROM metrics WHERE metric_id IN (SELECT unnest(?::INTEGER[]))",
                [metric_ids],
            )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
