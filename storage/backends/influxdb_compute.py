"""The parts of a range query computed in Python, with the embedded store's semantics.

InfluxDB computes what InfluxQL can express in one scan: per-series step averages
(`mean` with GROUP BY time, *) and per-series step sums of delta histogram buckets. The
rest happens here, over the series that come back:

* combining series per group (sum/avg/min/max/count). InfluxQL could nest this in a
  subquery, but then the number of series a query touches is unknown without a second
  scan (SHOW SERIES is missing from InfluxDB 2.x and 3.x), and the store must refuse
  queries over more than MAX_SERIES series. The series arrive anyway, one row per step.
* counter rates: InfluxQL's non_negative_difference drops the increase across a reset,
  where the embedded store (like Prometheus) counts the value after the reset, and it
  cannot see a reset by start time or a gap longer than the lookback. Raw points of the
  range (plus the lookback before it) come back and the increments are taken here.
* cumulative histogram increases (per step: last point minus a baseline, with resets)
  and the quantile interpolation itself (`bucket_quantile`, shared with the embedded
  store).

Series are merged by the `sid` tag ("logical series": kind and labels), so the temporality
in the kind tag and the histogram bounds tag are not part of a series' identity here, as
in the embedded store. Statements return only the labels the query groups by.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from ..attributes import decode_value
from ..metrics import Aggregation, ResultSeries, SeriesQuery
from ..model import Temporality
from . import influxdb_schema as schema
from .duckdb_metrics_quantile import bucket_quantile
from .duckdb_metrics_schema import LOOKBACK_NS, NS
from .influxdb_results import Series, labels_of

SeriesId = str


@dataclass(slots=True)
class StepValues:
    """One logical series' value per step (`steps` are indexes from the query start)."""

    labels: dict[str, str]
    steps: np.ndarray
    values: np.ndarray


def _floats(rows: list[list[object]], column: int) -> np.ndarray:
    return np.array([row[column] for row in rows], dtype=np.float64)


def _times(rows: list[list[object]]) -> np.ndarray:
    return np.array([row[0] for row in rows], dtype=np.int64)


def from_means(series: Iterable[Series], query: SeriesQuery) -> list[StepValues]:
    """Per-series step averages, as InfluxDB computed them."""
    out = []
    for s in series:
        steps = (_times(s.values) - query.start_unix_nano) // query.step_nano
        values = _floats(s.values, 1)
        keep = ~np.isnan(values)
        out.append(StepValues(labels_of(s.tags), steps[keep], values[keep]))
    return out


def combine(parts: list[StepValues], query: SeriesQuery) -> list[ResultSeries]:
    """Series per distinct value of the `group_by` labels (a missing label groups as ""
    and is left out of the result's labels), combined per step with the aggregation."""
    groups: dict[tuple[str, ...], list[StepValues]] = defaultdict(list)
    for part in parts:
        if part.steps.size:
            groups[tuple(part.labels.get(k, "") for k in query.group_by)].append(part)
    result = []
    for key in sorted(groups):
        steps = np.concatenate([p.steps for p in groups[key]])
        values = np.concatenate([p.values for p in groups[key]])
        order = np.argsort(steps, kind="stable")
        steps, values = steps[order], values[order]
        unique, starts = np.unique(steps, return_index=True)
        combined = _aggregate(query.aggregation, values, starts)
        labels = {k: v for k, v in zip(query.group_by, key) if v != ""}
        stamps = query.start_unix_nano + unique * query.step_nano
        result.append(ResultSeries(labels, stamps.tolist(), combined.tolist()))
    return result


def _aggregate(aggregation: Aggregation, values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    counts = np.diff(np.append(starts, values.size))
    if aggregation is Aggregation.COUNT:
        return counts.astype(np.float64)
    if aggregation is Aggregation.MIN:
        return np.minimum.reduceat(values, starts)
    if aggregation is Aggregation.MAX:
        return np.maximum.reduceat(values, starts)
    sums = np.add.reduceat(values, starts)
    return sums if aggregation is Aggregation.SUM else sums / counts


# ---------------------------------------------------------------------------- rates


def rates(series: Iterable[Series], query: SeriesQuery) -> list[StepValues]:
    """Per-second increase per logical series and step, from raw points of sums that
    reach LOOKBACK_NS before the start (the embedded store's `increments_sql`):
    delta points count whole; a cumulative point counts its difference to the previous
    point of the series if that is at most LOOKBACK_NS older, or its whole value after
    a reset (a changed start time, or a drop of a monotonic sum)."""
    merged: dict[SeriesId, tuple[np.ndarray, ...]] = {}
    labels: dict[SeriesId, dict[str, str]] = {}
    for s in series:
        _, temporality, monotonic = schema.parse_kind_tag(s.tags.get(schema.KIND_TAG, "sum"))
        rows = [row for row in s.values if row[1] is not None]
        if not rows:
            continue
        n = len(rows)
        columns = (
            _times(rows), _floats(rows, 1),
            np.array([row[2] or 0 for row in rows], dtype=np.int64),
            np.full(n, temporality == Temporality.DELTA), np.full(n, monotonic),
        )
        key = s.tags.get(schema.SERIES_TAG, "")
        labels[key] = labels_of(s.tags)
        if key in merged:
            merged[key] = tuple(np.concatenate((a, b)) for a, b in zip(merged[key], columns))
        else:
            merged[key] = columns
    return [_rate(labels[key], columns, query) for key, columns in merged.items()]


def _rate(labels: dict[str, str], columns: tuple[np.ndarray, ...], query: SeriesQuery
          ) -> StepValues:
    ts, value, start, delta, monotonic = columns
    order = np.lexsort((value, ts))
    ts, value, start = ts[order], value[order], start[order]
    delta, monotonic = delta[order], monotonic[order]
    prev_ts, prev_value, prev_start = (np.roll(a, 1) for a in (ts, value, start))
    no_prev = np.ones(ts.size, dtype=bool)
    no_prev[1:] = ts[1:] - prev_ts[1:] > LOOKBACK_NS
    reset = ((start != prev_start) & (start != 0) & (prev_start != 0)) | (
        monotonic & (value < prev_value))
    increase = np.where(reset, value, value - prev_value)
    increase[no_prev] = np.nan
    increase = np.where(delta, value, increase)
    keep = (ts >= query.start_unix_nano) & ~np.isnan(increase)
    steps = (ts[keep] - query.start_unix_nano) // query.step_nano
    unique, starts = np.unique(steps, return_index=True)
    sums = np.add.reduceat(increase[keep], starts) if unique.size else np.empty(0)
    return StepValues(labels, unique, sums / (query.step_nano / NS))


# ---------------------------------------------------------------------------- quantiles


@dataclass(slots=True)
class _Buckets:
    """The bucket counts one logical series contributes to one step."""

    bounds: str  # the bounds tag (JSON)
    counts: list[float]


@dataclass(slots=True)
class Candidates:
    """Per logical series and step, the bucket counts each source offers, and each
    logical series' (group-by) labels."""

    buckets: dict[tuple[SeriesId, int], list[_Buckets]] = field(
        default_factory=lambda: defaultdict(list))
    labels: dict[SeriesId, dict[str, str]] = field(default_factory=dict)

    def series_of(self, s: Series) -> SeriesId:
        key = s.tags.get(schema.SERIES_TAG, "")
        self.labels[key] = labels_of(s.tags)
        return key

    def merge(self, other: Candidates) -> Candidates:
        for key, options in other.buckets.items():
            self.buckets[key].extend(options)
        self.labels.update(other.labels)
        return self


def _counts(row: list[object], columns: list[int]) -> list[float]:
    """Bucket counts of a row; the list ends at the first absent bucket."""
    counts = []
    for i in columns:
        value = row[i]
        if value is None:
            break
        counts.append(float(value))  # type: ignore[arg-type]
    return counts


def _bucket_columns(s: Series, prefix: str) -> list[int]:
    numbered = {}
    for i, name in enumerate(s.columns):
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            numbered[int(name[len(prefix):])] = i
    return [numbered[n] for n in range(len(numbered)) if n in numbered]


def delta_buckets(series: Iterable[Series], query: SeriesQuery) -> Candidates:
    """Per logical series and step, the summed buckets of delta histograms, one entry per
    bounds layout (InfluxDB summed them: the bounds are a tag)."""
    out = Candidates()
    for s in series:
        key = out.series_of(s)
        columns = _bucket_columns(s, "sum_" + schema.BUCKET_PREFIX)
        bounds = s.tags.get(schema.BOUNDS_TAG, "[]")
        for row in s.values:
            step = (int(row[0]) - query.start_unix_nano) // query.step_nano
            out.buckets[(key, step)].append(_Buckets(bounds, _counts(row, columns)))
    return out


@dataclass(slots=True)
class _Point:
    ts: int
    start: int
    buckets: _Buckets


def cumulative_buckets(series: Iterable[Series], query: SeriesQuery, back: int
                       ) -> Candidates:
    """Per logical series and step, the increase of cumulative histograms: the step's
    last point minus a baseline, which is the last point of the previous non-empty step
    if that is at most LOOKBACK_NS before this step's first point, else this step's first
    point; a reset (a bucket lower than the baseline, other bounds, a changed start time)
    makes the last point itself the increase. Raw points start `back` steps early."""
    out = Candidates()
    by_series: dict[SeriesId, list[_Point]] = defaultdict(list)
    for s in series:
        key = out.series_of(s)
        columns = _bucket_columns(s, schema.BUCKET_PREFIX)
        bounds = s.tags.get(schema.BOUNDS_TAG, "[]")
        by_series[key].extend(
            _Point(int(row[0]), int(row[1] or 0), _Buckets(bounds, _counts(row, columns)))
            for row in s.values
        )
    lo = query.start_unix_nano - back * query.step_nano
    for key, points in by_series.items():
        points.sort(key=lambda p: p.ts)
        steps: dict[int, list[_Point]] = defaultdict(list)
        for p in points:
            steps[(p.ts - lo) // query.step_nano].append(p)
        previous: _Point | None = None
        for step in sorted(steps):
            first, last = steps[step][0], steps[step][-1]
            base = first
            if previous is not None and first.ts - previous.ts <= LOOKBACK_NS:
                base = previous
            if step >= back:
                out.buckets[(key, step - back)].append(_increase(base, last))
            previous = last
    return out


def _increase(base: _Point, last: _Point) -> _Buckets:
    width = max(len(base.buckets.counts), len(last.buckets.counts))
    b = np.zeros(width)
    b[:len(base.buckets.counts)] = base.buckets.counts
    a = np.zeros(width)
    a[:len(last.buckets.counts)] = last.buckets.counts
    reset = (
        bool((a < b).any()) or base.buckets.bounds != last.buckets.bounds
        or (base.start != last.start and base.start != 0 and last.start != 0)
    )
    counts = last.buckets.counts if reset else (a - b)[:len(last.buckets.counts)].tolist()
    return _Buckets(last.buckets.bounds, list(counts))


def quantiles(candidates: Candidates, q: float) -> list[StepValues]:
    """The quantile per logical series and step. A step with buckets of several kinds
    or layouts keeps the one with the most observations; a step without observations,
    or whose counts do not fit its bounds, has no value."""
    chosen: dict[str, list[tuple[SeriesId, int, list[float]]]] = defaultdict(list)
    for (key, step), options in candidates.buckets.items():
        best = max(options, key=lambda o: sum(o.counts))
        chosen[best.bounds].append((key, step, best.counts))
    per_series: dict[SeriesId, list[tuple[int, float]]] = defaultdict(list)
    for bounds_text, rows in chosen.items():
        bounds = [float(b) for b in decode_value(bounds_text)]
        k = len(bounds) + 1
        fitting = [r for r in rows if len(r[2]) == k]
        if not fitting:
            continue
        values = bucket_quantile(q, bounds, np.array([r[2] for r in fitting]))
        for (key, step, _), value in zip(fitting, values):
            if not np.isnan(value):
                per_series[key].append((step, float(value)))
    out = []
    for key, pairs in per_series.items():
        pairs.sort()
        out.append(StepValues(candidates.labels[key], np.array([p[0] for p in pairs], dtype=np.int64),
                              np.array([p[1] for p in pairs])))
    return out
