"""Quantiles from explicit-bucket histograms, per logical series and step.

The bucket counts a step contributes:

* delta histograms: the element-wise sum of the points in the step;
* cumulative histograms: the last point of the step minus a baseline, which is the last
  point of the series' previous non-empty step if that is within LOOKBACK_NS of this
  step's first point, else this step's first point. A reset (any bucket lower than the
  baseline, a changed start time or changed bounds) makes the step's last point itself
  the increase. Resets between two points of the same step are not seen; a series' very
  first point contributes nothing (no baseline), as in Prometheus.

Buckets are then interpolated like Prometheus' histogram_quantile; a step whose buckets
hold no observations has no value and is left out.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..metrics import SeriesQuery
from .duckdb_metrics_schema import LOOKBACK_NS

_CUMULATIVE_SQL = """
    SELECT s.lid, (p.ts - {lo}) // {step} AS b, min(p.ts) AS first_ts, max(p.ts) AS last_ts,
           arg_min(p.counts, p.ts) AS first_counts, arg_max(p.counts, p.ts) AS last_counts,
           arg_min(p.bounds_id, p.ts) AS first_bid, arg_max(p.bounds_id, p.ts) AS last_bid,
           arg_min(p.start_ts, p.ts) AS first_start, arg_max(p.start_ts, p.ts) AS last_start
    FROM histogram_points p JOIN sel_series s ON p.series_id = s.series_id
    WHERE s.temporality <> 1 AND p.ts >= {lo} AND p.ts < {end}
    GROUP BY s.lid, b ORDER BY s.lid, b"""

_DELTA_SQL = """
    SELECT lid, b, bid, list(c ORDER BY i) AS counts FROM (
      SELECT lid, b, bid, i, sum(c) AS c FROM (
        SELECT s.lid, (p.ts - {start}) // {step} AS b, p.bounds_id AS bid,
               unnest(p.counts) AS c, generate_subscripts(p.counts, 1) AS i
        FROM histogram_points p JOIN sel_series s ON p.series_id = s.series_id
        WHERE s.temporality = 1 AND p.ts >= {start} AND p.ts < {end})
      GROUP BY lid, b, bid, i)
    GROUP BY lid, b, bid"""


def cumulative_sql(query: SeriesQuery) -> tuple[str, int]:
    """SQL for per-step first/last points, reaching back far enough for baselines, and
    how many steps before `start` it reaches."""
    step = query.step_nano
    back = max(1, -(-LOOKBACK_NS // step))
    lo = query.start_unix_nano - back * step
    return _CUMULATIVE_SQL.format(lo=lo, step=step, end=query.end_unix_nano), back


def delta_sql(query: SeriesQuery) -> str:
    return _DELTA_SQL.format(
        start=query.start_unix_nano, step=query.step_nano, end=query.end_unix_nano
    )


def _matrix(column: pa.ChunkedArray | pa.Array | np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A list column as a zero-padded (rows, width) float matrix, and each row's length."""
    lists = pa.array(column) if not isinstance(column, (pa.Array, pa.ChunkedArray)) else column
    if isinstance(lists, pa.ChunkedArray):
        lists = lists.combine_chunks()
    offsets = lists.offsets.to_numpy()
    lengths = np.diff(offsets)
    flat = lists.flatten().to_numpy(zero_copy_only=False).astype(np.float64)
    out = np.zeros((len(lengths), max(width, 1)), dtype=np.float64)
    rows = np.repeat(np.arange(len(lengths)), lengths)
    cols = np.arange(flat.size) - np.repeat(offsets[:-1] - offsets[0], lengths)
    keep = cols < width
    out[rows[keep], cols[keep]] = flat[keep]
    return out, lengths


def cumulative_increases(
    table: pa.Table, back: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(lid, b, bounds_id, counts matrix, lengths) of the increases per step."""
    lid = table.column("lid").to_numpy()
    b = table.column("b").to_numpy()
    width = _max_len(table.column("last_counts"), table.column("first_counts"))
    last, lengths = _matrix(table.column("last_counts"), width)
    first, _ = _matrix(table.column("first_counts"), width)
    last_bid = table.column("last_bid").to_numpy()
    first_bid = table.column("first_bid").to_numpy()
    last_start = table.column("last_start").to_numpy()
    first_ts = table.column("first_ts").to_numpy()
    last_ts = table.column("last_ts").to_numpy()

    has_prev = np.zeros(lid.size, dtype=bool)
    has_prev[1:] = (lid[1:] == lid[:-1]) & (first_ts[1:] - last_ts[:-1] <= LOOKBACK_NS)
    base = first.copy()
    base[1:][has_prev[1:]] = last[:-1][has_prev[1:]]
    base_bid = first_bid.copy()
    base_bid[1:][has_prev[1:]] = last_bid[:-1][has_prev[1:]]
    base_start = table.column("first_start").to_numpy().copy()
    base_start[1:][has_prev[1:]] = last_start[:-1][has_prev[1:]]

    reset = (
        (last < base).any(axis=1)
        | (base_bid != last_bid)
        | ((base_start != last_start) & (base_start != 0) & (last_start != 0))
    )
    increase = np.where(reset[:, None], last, last - base)
    keep = b >= back  # the steps before `start` only served as baselines
    return lid[keep], b[keep] - back, last_bid[keep], increase[keep], lengths[keep]


def delta_increases(
    table: pa.Table,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    width = _max_len(table.column("counts"))
    counts, lengths = _matrix(table.column("counts"), width)
    return (table.column("lid").to_numpy(), table.column("b").to_numpy(),
            table.column("bid").to_numpy(), counts, lengths)


def _max_len(*columns: pa.ChunkedArray) -> int:
    widths = [0]
    for column in columns:
        for chunk in column.chunks:
            if len(chunk):
                widths.append(int(np.diff(chunk.offsets.to_numpy()).max()))
    return max(widths)


def bucket_quantile(q: float, bounds: list[float], counts: np.ndarray) -> np.ndarray:
    """Prometheus' bucketQuantile for rows of per-bucket (not cumulative) counts whose
    upper bounds are `bounds` and then +Inf. NaN where a row has no observations."""
    rows, k = counts.shape
    if k < 2:
        return np.full(rows, np.nan)
    upper = np.array([*bounds, np.inf])
    cum = np.cumsum(counts, axis=1)
    total = cum[:, -1]
    rank = q * total
    # the first bucket, among all but +Inf, whose cumulative count reaches the rank
    found = cum[:, :-1] >= rank[:, None]
    idx = np.where(found.any(axis=1), found.argmax(axis=1), k - 1)
    below = np.where(idx > 0, cum[np.arange(rows), np.maximum(idx - 1, 0)], 0.0)
    lower = np.where(idx > 0, upper[np.maximum(idx - 1, 0)], 0.0)
    in_bucket = cum[np.arange(rows), idx] - below
    with np.errstate(invalid="ignore", divide="ignore"):
        value = lower + (upper[idx] - lower) * (rank - below) / in_bucket
    value = np.where(idx == k - 1, upper[k - 2], value)
    value = np.where((idx == 0) & (upper[0] <= 0), upper[0], value)
    return np.where(total > 0, value, np.nan)


Increases = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def per_series_quantiles(
    parts: list[Increases], q: float, bounds_of: dict[int, list[float]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lid, b, value) for every step of every series that has observations."""
    parts = [p for p in parts if p[0].size]
    if not parts:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0)
    width = max(p[3].shape[1] for p in parts)
    lid, b, bid, lengths = (np.concatenate([p[i] for p in parts]) for i in (0, 1, 2, 4))
    counts = np.concatenate([np.pad(p[3], ((0, 0), (0, width - p[3].shape[1]))) for p in parts])
    # a step with points of two bounds layouts keeps the one with the most observations
    order = np.lexsort((-counts.sum(axis=1), b, lid))
    lid, b, bid, lengths, counts = lid[order], b[order], bid[order], lengths[order], counts[order]
    first = np.ones(lid.size, dtype=bool)
    first[1:] = (lid[1:] != lid[:-1]) | (b[1:] != b[:-1])
    lid, b, bid, lengths, counts = lid[first], b[first], bid[first], lengths[first], counts[first]
    values = np.full(lid.size, np.nan)
    for layout in np.unique(bid):
        bounds = bounds_of[int(layout)]
        k = len(bounds) + 1
        rows = (bid == layout) & (lengths == k)  # a malformed point has no quantile
        if rows.any() and k <= width:
            values[rows] = bucket_quantile(q, bounds, counts[rows][:, :k])
    keep = ~np.isnan(values)
    return lid[keep], b[keep], values[keep]
