"""Range queries: pick the series in Python, bucket and aggregate in DuckDB.

Series are few (at most MAX_SERIES per query), so matchers run over the catalog's labels;
the chosen series go to DuckDB as a small Arrow table to join with. Every logical series
gets one value per step, then the series are combined per group in the same statement.
Gauges and sums read the coarsest rollup whose buckets tile the steps exactly (the step a
multiple of the rollup resolution and the start aligned to it) for the compacted past,
and raw points for the rest.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import numpy as np
import pyarrow as pa

from ..errors import QueryError
from ..metrics import MatchOp, ResultSeries, SeriesQuery
from ..model import MetricKind
from .duckdb_metrics_catalog import LogicalSeries
from .duckdb_metrics_rollup import RollupState, increments_sql
from .duckdb_metrics_schema import MAX_SERIES, MAX_STEPS, NS, ROLLUPS

_NUMERIC = (MetricKind.GAUGE, MetricKind.SUM)


def validate(query: SeriesQuery) -> None:
    """Refuse what no data could make valid, before touching any."""
    if query.step_nano <= 0:
        raise QueryError("step must be positive")
    steps = -(-(query.end_unix_nano - query.start_unix_nano) // query.step_nano)
    if steps > MAX_STEPS:
        raise QueryError(
            f"the query asks for {steps} steps, more than {MAX_STEPS}; use a larger step"
        )
    if query.quantile is not None and not 0 <= query.quantile <= 1:
        raise QueryError("quantile must be between 0 and 1")
    for matcher in query.matchers:
        if matcher.op in (MatchOp.RE, MatchOp.NRE):
            matcher.compiled()  # raises QueryError for an invalid regex


def select_series(candidates: list[LogicalSeries], query: SeriesQuery) -> list[LogicalSeries]:
    """The metric's series that match and that the query can use; QueryError when the
    metric exists but the query does not apply to it, or matches too many series."""
    matched = [s for s in candidates if all(m.matches(s.labels) for m in query.matchers)]
    kinds = {s.kind for s in candidates}
    wanted = _wanted_kinds(query, kinds)
    chosen = [s for s in matched if s.kind in wanted]
    if len(chosen) > MAX_SERIES:
        raise QueryError(
            f"{len(chosen)} series of {query.metric} match, more than {MAX_SERIES};"
            " add matchers to narrow the query"
        )
    return chosen


def _wanted_kinds(query: SeriesQuery, kinds: set[MetricKind]) -> tuple[MetricKind, ...]:
    if not kinds:
        return ()
    names = "/".join(sorted(k.name.lower() for k in kinds))
    if query.quantile is not None:
        if MetricKind.HISTOGRAM not in kinds:
            reason = (
                "exponential histograms are not supported yet"
                if MetricKind.EXPONENTIAL_HISTOGRAM in kinds else "it has no buckets"
            )
            raise QueryError(f"cannot take a quantile of {query.metric} ({names}): {reason}")
        return (MetricKind.HISTOGRAM,)
    if query.rate:
        if MetricKind.SUM not in kinds:
            raise QueryError(f"rate needs a counter (sum); {query.metric} is a {names}")
        return (MetricKind.SUM,)
    if not kinds & set(_NUMERIC):
        raise QueryError(f"{query.metric} is a {names}; ask for a quantile")
    return _NUMERIC


def group_series(
    series: list[LogicalSeries], group_by: tuple[str, ...]
) -> tuple[list[dict[str, str]], dict[int, int]]:
    """Result labels per group (sorted) and each lid's group index. A label a series
    lacks groups as "" and is left out of the result labels, as in PromQL."""
    keys = {s.lid: tuple(s.labels.get(label, "") for label in group_by) for s in series}
    ordered = sorted(set(keys.values()))
    index = {key: i for i, key in enumerate(ordered)}
    labels = [{k: v for k, v in zip(group_by, key) if v != ""} for key in ordered]
    return labels, {lid: index[key] for lid, key in keys.items()}


def selection_tables(
    series: list[LogicalSeries], groups: dict[int, int]
) -> tuple[pa.Table, pa.Table]:
    """`sel_series` (one row per physical series) and `sel_lid` (one per logical series)."""
    rows = [(v.series_id, s.lid, s.metric_id, int(s.kind), int(v.temporality), v.monotonic)
            for s in series for v in s.variants]
    names = ["series_id", "lid", "metric_id", "kind", "temporality", "monotonic"]
    types = [pa.int32(), pa.int32(), pa.int32(), pa.int8(), pa.int8(), pa.bool_()]
    by_series = pa.table(
        [pa.array(list(col), t) for col, t in zip(zip(*rows), types)]
        if rows else [pa.array([], t) for t in types],
        names=names,
    )
    by_lid = pa.table({
        "lid": pa.array([s.lid for s in series], pa.int32()),
        "grp": pa.array([groups[s.lid] for s in series], pa.int32()),
    })
    return by_series, by_lid


def numeric_sql(query: SeriesQuery, metric_ids: Iterable[int], rollups: RollupState) -> str:
    """SQL giving (grp, b, v) for gauges and sums; needs `sel_series` and `sel_lid`.
    Each part (rollup rows, raw ranges) yields partial counts and sums, which add up per
    series and step. (Grouping each part first measured slower than one grouping.)"""
    start, end, step = query.start_unix_nano, query.end_unix_nano, query.step_nano
    parts: list[str] = []
    raw_from = start
    for resolution, table in ROLLUPS:
        if step % resolution or start % resolution:
            continue
        rolled_end = min(end // resolution * resolution, rollups.watermark or 0)
        if rolled_end > start:
            stale = rollups.stale_ranges(start, rolled_end)
            parts.append(_rollup_part(query, table, metric_ids, rolled_end, stale))
            parts.extend(_raw_part(query, lo, hi) for lo, hi in stale)
            raw_from = rolled_end
        break
    if raw_from < end:
        parts.append(_raw_part(query, raw_from, end))
    seconds = repr(step / NS)
    if raw_from == start and len(parts) == 1:  # raw only: already one row per series, step
        value = f"inc / {seconds}" if query.rate else "sum / cnt"
        per = f"SELECT lid, b, {value} AS v FROM parts"
    else:
        value = f"sum(inc) / {seconds}" if query.rate else "sum(sum) / sum(cnt)"
        per = f"SELECT lid, b, {value} AS v FROM parts GROUP BY lid, b"
    return f"""
        WITH parts AS ({" UNION ALL ".join(parts)}),
        per AS ({per})
        SELECT g.grp, per.b, {query.aggregation.value}(per.v) AS v
        FROM per JOIN sel_lid g ON per.lid = g.lid
        WHERE per.v IS NOT NULL GROUP BY g.grp, per.b ORDER BY g.grp, per.b"""


def _rollup_part(
    query: SeriesQuery, table: str, metric_ids: Iterable[int], rolled_end: int,
    stale: list[tuple[int, int]],
) -> str:
    start, step = query.start_unix_nano, query.step_nano
    ids = ", ".join(str(int(i)) for i in metric_ids)
    skip = "".join(f" AND NOT (r.bucket >= {lo} AND r.bucket < {hi})" for lo, hi in stale)
    return f"""
        SELECT r.lid, (r.bucket - {start}) // {step} AS b, r.cnt, r.sum, r.inc
        FROM {table} r JOIN sel_lid s ON r.lid = s.lid
        WHERE r.metric_id IN ({ids}) AND r.bucket >= {start} AND r.bucket < {rolled_end}{skip}"""


def _raw_part(query: SeriesQuery, lo: int, end: int) -> str:
    start, step = query.start_unix_nano, query.step_nano
    if query.rate:
        return f"""
            SELECT lid, (ts - {start}) // {step} AS b, count(*) AS cnt, sum(value) AS sum,
                   sum(inc) AS inc
            FROM ({increments_sql("sel_series", lo, end)}) GROUP BY lid, b"""
    return f"""
        SELECT s.lid, (p.ts - {start}) // {step} AS b, count(*) AS cnt, sum(p.value) AS sum,
               NULL::DOUBLE AS inc
        FROM numeric_points p JOIN sel_series s ON p.series_id = s.series_id
        WHERE p.ts >= {lo} AND p.ts < {end} GROUP BY s.lid, b"""


def run_with_tables(
    cur: duckdb.DuckDBPyConnection, sql: str, tables: dict[str, pa.Table]
) -> dict[str, np.ndarray]:
    for name, table in tables.items():
        cur.register(name, table)
    try:
        return cur.execute(sql).fetchnumpy()
    finally:
        for name in tables:
            cur.unregister(name)


def to_result(
    columns: dict[str, np.ndarray], labels: list[dict[str, str]], query: SeriesQuery
) -> list[ResultSeries]:
    """Split (grp, b, v) rows, sorted by grp and b, into one ResultSeries per group."""
    grp = np.asarray(columns["grp"])
    if grp.size == 0:
        return []
    stamps = query.start_unix_nano + np.asarray(columns["b"], dtype=np.int64) * query.step_nano
    values = np.asarray(columns["v"], dtype=np.float64)
    cuts = np.flatnonzero(np.diff(grp)) + 1
    result = []
    for lo, hi in zip([0, *cuts], [*cuts, grp.size]):
        result.append(ResultSeries(
            dict(labels[int(grp[lo])]), stamps[lo:hi].tolist(), values[lo:hi].tolist()
        ))
    return result
