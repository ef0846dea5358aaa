"""Per-minute, 5-minute and 10-minute rollups of gauges and sums, computed per 10-minute chunk.

A chunk is compacted once it is GRACE_NS older than the newest point (and the wall
clock), so rollups never race live data. `watermark` is the end of the compacted prefix
of time: every chunk before it has its rollups, except the `dirty` ones, which late points
(or retention deleting points, see duckdb_metrics_retention) made stale and which are
recomputed first (at most once a minute). Only retention deletes raw points, and it
deletes their rollups with them, so a reader may use any state it has seen: what the
rollups do not cover, it reads raw.

A rollup row per logical series and bucket holds count, sum, min, max, last and `inc`,
the counter increase attributed to the bucket (see `increments_sql`), so averages and
rates over a step that is a multiple of the bucket are sums of rollup rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import duckdb

from .duckdb_metrics_schema import CHUNK_NS, GRACE_NS, LOOKBACK_NS, ROLLUPS

STALE_DELAY_S = 60.0

_DELTA, _SUM_KIND = 1, 2  # Temporality.DELTA, MetricKind.SUM


def increments_sql(series: str, lo: int, hi: int) -> str:
    """Numeric points in [lo, hi) joined with `series` (series_id, lid, metric_id, kind,
    temporality, monotonic), each with `inc`: the counter increase since the series'
    previous point. Delta sums: the value. Cumulative sums: the difference to the previous
    point of the logical series if that is within LOOKBACK_NS, or the whole value after a
    reset (a changed start time, or a drop of a monotonic sum). NULL for gauges and for a
    point with no recent predecessor."""
    lo, hi = int(lo), int(hi)
    return f"""
    SELECT lid, metric_id, ts, value,
      CASE WHEN kind <> {_SUM_KIND} THEN NULL
           WHEN temporality = {_DELTA} THEN value
           WHEN prev_ts IS NULL OR ts - prev_ts > {LOOKBACK_NS} THEN NULL
           WHEN (start_ts <> prev_start AND start_ts <> 0 AND prev_start <> 0)
                OR (monotonic AND value < prev_value) THEN value
           ELSE value - prev_value END AS inc
    FROM (
      SELECT s.lid, s.metric_id, s.kind, s.temporality, s.monotonic,
             p.ts, p.start_ts, p.value,
             lag(p.ts) OVER w AS prev_ts, lag(p.value) OVER w AS prev_value,
             lag(p.start_ts) OVER w AS prev_start
      FROM numeric_points p JOIN {series} s ON p.series_id = s.series_id
      WHERE p.ts >= {lo - LOOKBACK_NS} AND p.ts < {hi}
      WINDOW w AS (PARTITION BY s.lid ORDER BY p.ts, p.series_id, p.value)
    ) WHERE ts >= {lo}"""


@dataclass(frozen=True, slots=True)
class RollupState:
    watermark: int | None = None
    dirty: frozenset[int] = frozenset()
    newest: int | None = None  # the newest numeric point's time
    stale_pass_at: float = 0.0  # time.monotonic() of the last recomputation of stale chunks

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection) -> RollupState:
        # fetchall, not fetchone: DuckDB 2 refuses some calls on a connection that still
        # holds an unfinished result
        rows = con.execute("SELECT value FROM rollup_state WHERE name = 'watermark'").fetchall()
        dirty = frozenset(c for (c,) in con.execute("SELECT chunk FROM rollup_dirty").fetchall())
        ((newest,),) = con.execute("SELECT max(ts) FROM numeric_points").fetchall()
        return cls(rows[0][0] if rows else None, dirty, newest)

    def after_write(self, newest: int | None, dirty: list[int]) -> RollupState:
        if newest is not None and (self.newest is None or newest > self.newest):
            return replace(self, newest=newest, dirty=self.dirty.union(dirty))
        return replace(self, dirty=self.dirty.union(dirty)) if dirty else self

    def stale_ranges(self, start: int, end: int) -> list[tuple[int, int]]:
        """The parts of [start, end) whose rollups are stale, merged and clipped."""
        ranges: list[tuple[int, int]] = []
        for chunk in sorted(c for c in self.dirty if c + CHUNK_NS > start and c < end):
            lo, hi = max(chunk, start), min(chunk + CHUNK_NS, end)
            if ranges and ranges[-1][1] == lo:
                ranges[-1] = (ranges[-1][0], hi)
            else:
                ranges.append((lo, hi))
        return ranges

    def horizon(self, now_ns: int) -> int | None:
        """Chunks starting before this are due for compaction."""
        if self.newest is None:
            return None
        return (min(self.newest, now_ns) - GRACE_NS) // CHUNK_NS * CHUNK_NS


def compact(
    con: duckdb.DuckDBPyConnection, state: RollupState, now_ns: int, max_chunks: int,
    force: bool = False,
) -> RollupState:
    """Compact up to `max_chunks` due chunks, stale ones first; returns the new state.

    Stale chunks are recomputed at most every STALE_DELAY_S unless forced: a backfill
    would otherwise recompute the same chunk for every batch. Readers meanwhile read
    stale chunks raw."""
    monotonic = time.monotonic()
    if state.dirty and (force or monotonic - state.stale_pass_at >= STALE_DELAY_S):
        state = replace(state, stale_pass_at=monotonic)
        for chunk in sorted(state.dirty)[:max_chunks]:
            _compact_chunk(con, chunk, True, state.watermark)
            state = replace(state, dirty=state.dirty - {chunk})
            max_chunks -= 1
    for _ in range(max_chunks):
        horizon = state.horizon(now_ns)
        if horizon is None or (state.watermark is not None and state.watermark >= horizon):
            break
        due = _next_chunk(con, state.watermark, horizon)
        if due is None:  # nothing to roll up before the horizon
            _save_watermark(con, horizon)
            return replace(state, watermark=horizon)
        _compact_chunk(con, due, False, due + CHUNK_NS)
        state = replace(state, watermark=due + CHUNK_NS)
    return state


def _next_chunk(con: duckdb.DuckDBPyConnection, watermark: int | None, horizon: int) -> int | None:
    ((first,),) = con.execute(
        "SELECT min(ts) FROM numeric_points WHERE ts >= ?", [watermark or 0]
    ).fetchall()
    if first is None or first >= horizon:
        return None
    return int(first) // CHUNK_NS * CHUNK_NS


def _compact_chunk(
    con: duckdb.DuckDBPyConnection, chunk: int, stale: bool, watermark: int | None
) -> None:
    end = chunk + CHUNK_NS
    fine_ns, fine = ROLLUPS[-1]
    con.execute("BEGIN TRANSACTION")
    try:
        if stale:
            for _, table in ROLLUPS:
                con.execute(f"DELETE FROM {table} WHERE bucket >= {chunk} AND bucket < {end}")
            con.execute("DELETE FROM rollup_dirty WHERE chunk = ?", [chunk])
        con.execute(f"""
            INSERT INTO {fine}
            SELECT metric_id, lid, {chunk} + (ts - {chunk}) // {fine_ns} * {fine_ns} AS bucket,
                   count(*), sum(value), min(value), max(value), arg_max(value, ts), sum(inc)
            FROM ({increments_sql("series", chunk, end)})
            GROUP BY ALL ORDER BY metric_id, lid, bucket""")
        for coarse_ns, coarse in ROLLUPS[:-1]:
            con.execute(f"""
                INSERT INTO {coarse}
                SELECT metric_id, lid,
                       {chunk} + (bucket - {chunk}) // {coarse_ns} * {coarse_ns} AS b,
                       sum(cnt), sum(sum), min(min), max(max), arg_max(last, bucket), sum(inc)
                FROM {fine} WHERE bucket >= {chunk} AND bucket < {end}
                GROUP BY ALL ORDER BY metric_id, lid, b""")
        if watermark is not None:
            _save_watermark(con, watermark)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _save_watermark(con: duckdb.DuckDBPyConnection, watermark: int) -> None:
    con.execute("INSERT OR REPLACE INTO rollup_state VALUES ('watermark', ?)", [watermark])
