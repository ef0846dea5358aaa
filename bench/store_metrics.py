"""Write and query rates of the embedded DuckDB metric store, and SQLite for comparison.

    /work/venv/bin/python bench/store_metrics.py [--series 1000] [--hours 24]
        [--interval 10] [--runs 30] [--dir DIR] [--no-histogram] [--no-sqlite]

1. Ingest: `write_points` of pre-built gauge points (1,000 series, 3 labels, resources
   shared by the points of one "request" as after OTLP decoding) at batch sizes 1k, 10k
   and 100k into a fresh store, timing only the store calls; the Python share (building
   columns, `prepare_batch`) is reported beside the total. Also histogram points at 10k.
2. Engines alone: the same rows (series_id, ts, value) into DuckDB via Arrow and into
   SQLite via executemany with a time-first key, no model objects involved.
3. A day of data: `--series` gauge series and as many cumulative counters, one point per
   `--interval` seconds each (8.64 M points per metric at the defaults), and as many
   cumulative histograms with 11 buckets in a second store; then dashboard queries, each
   run `--runs` times: median and p95. Timestamps end at the current 10-minute boundary, so
   the store rolls up all but the last minutes, as in a live deployment.
4. The same gauge day in SQLite (points keyed by (ts, series_id), WITHOUT ROWID) and the
   same dashboard query over it.

Prints a report; disk use is the database file after close, per point written.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import argus.storage.backends.duckdb_metrics as store_module
import duckdb
import numpy as np
import pyarrow as pa
from argus.storage.backends.duckdb_metrics import DuckDBMetricStore
from argus.storage.metrics import Aggregation, LabelMatcher, MatchOp, SeriesQuery
from argus.storage.model import (
    HistogramValue,
    MetricKind,
    MetricPoint,
    Resource,
    Scope,
    Temporality,
)

TENANT = "bench"
S = 1_000_000_000
SERVICES = 20
DCS = 10
BOUNDS = [5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0]
SCOPE = Scope("io.opentelemetry.runtime", "1.32.0")
rng = np.random.default_rng(7)

# Python time spent in prepare_batch, summed by the wrapper installed in `main`.
prep_seconds = 0.0


def _timed_prepare(original: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any) -> Any:
        global prep_seconds
        began = time.perf_counter()
        try:
            return original(*args)
        finally:
            prep_seconds += time.perf_counter() - began

    return wrapper


# ---------------------------------------------------------------------------- data


def _resources() -> list[Resource]:
    """New objects per batch, eight attributes each, as the OTLP decoder makes them."""
    return [
        Resource({
            "service.name": f"svc-{i}", "service.version": "1.4.2",
            "service.instance.id": f"svc-{i}-0", "host.arch": "amd64",
            "telemetry.sdk.name": "opentelemetry", "telemetry.sdk.language": "python",
            "telemetry.sdk.version": "1.45.0", "deployment.environment": "prod",
        })
        for i in range(SERVICES)
    ]


def _labels(series: int) -> dict[str, Any]:
    return {"host": f"host-{series}", "dc": f"dc-{series % DCS}", "core": series % 4}


def gauge_batches(series: int, steps: int, per_batch: int, begin: int,
                  interval: int) -> Iterator[list[MetricPoint]]:
    """Batches of `per_batch` gauge points, time step by time step over all series."""
    return _batches(per_batch, _gauges(series, steps, begin, interval))


def numeric_batches(series: int, steps: int, per_batch: int, begin: int,
                    interval: int) -> Iterator[list[MetricPoint]]:
    """Gauges and cumulative counters of `series` series each, interleaved per time step
    as live traffic brings them."""
    gauges = _gauges(series, steps, begin, interval)
    counters = _counters(series, steps, begin, interval)
    return _batches(per_batch, (p for pair in zip(gauges, counters) for p in pair))


def _batches(per_batch: int, points: Iterator[MetricPoint]) -> Iterator[list[MetricPoint]]:
    batch: list[MetricPoint] = []
    for point in points:
        batch.append(point)
        if len(batch) == per_batch:
            yield batch
            batch = []
    if batch:
        yield batch


def _gauges(series: int, steps: int, begin: int, interval: int) -> Iterator[MetricPoint]:
    for step in range(steps):
        ts = begin + step * interval * S
        values = rng.random(series).tolist()
        resources = _resources()  # a fresh decode per scrape
        for i in range(series):
            yield MetricPoint("cpu.utilization", MetricKind.GAUGE, ts, resources[i % SERVICES],
                              SCOPE, _labels(i), unit="1", value=values[i])


def _counters(series: int, steps: int, begin: int, interval: int) -> Iterator[MetricPoint]:
    totals = np.zeros(series, dtype=np.int64)
    for step in range(steps):
        ts = begin + step * interval * S
        totals += rng.integers(0, 50, series)
        values = totals.tolist()
        resources = _resources()
        for i in range(series):
            yield MetricPoint(
                "http.server.requests", MetricKind.SUM, ts, resources[i % SERVICES], SCOPE,
                _labels(i), value=values[i], temporality=Temporality.CUMULATIVE,
                is_monotonic=True, start_time_unix_nano=begin,
            )


def histogram_batches(series: int, steps: int, per_batch: int, begin: int,
                      interval: int) -> Iterator[list[MetricPoint]]:
    return _batches(per_batch, _histograms(series, steps, begin, interval))


def _histograms(series: int, steps: int, begin: int, interval: int) -> Iterator[MetricPoint]:
    counts = np.zeros((series, len(BOUNDS) + 1), dtype=np.int64)
    weights = np.array([1, 3, 8, 12, 9, 6, 4, 2, 1, 1, 1], dtype=np.float64)
    for step in range(steps):
        ts = begin + step * interval * S
        counts += rng.poisson(weights, counts.shape)
        rows = counts.tolist()
        resources = _resources()
        for i in range(series):
            total = sum(rows[i])
            yield MetricPoint(
                "http.server.duration", MetricKind.HISTOGRAM, ts, resources[i % SERVICES],
                SCOPE, _labels(i), unit="ms", temporality=Temporality.CUMULATIVE,
                start_time_unix_nano=begin,
                histogram=HistogramValue(total, total * 42.0, rows[i], BOUNDS),
            )


# ---------------------------------------------------------------------------- helpers


async def timed(fn: Callable[[], Awaitable[Any]], runs: int) -> tuple[float, float, Any]:
    """Median and p95 seconds of `runs` calls after two warm-ups."""
    for _ in range(2):
        result = await fn()
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        result = await fn()
        samples.append(time.perf_counter() - began)
    samples.sort()
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.95) - 1)], result


def db_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


async def write_all(
    store: DuckDBMetricStore, batches: Iterator[list[MetricPoint]], prefix: str = "b"
) -> tuple[int, float]:
    """Write every batch; (points, seconds inside write_points)."""
    global prep_seconds
    points, spent, prep_seconds = 0, 0.0, 0.0
    for n, batch in enumerate(batches):
        began = time.perf_counter()
        await store.write_points(TENANT, batch, f"{prefix}-{n}")
        spent += time.perf_counter() - began
        points += len(batch)
    return points, spent


# ---------------------------------------------------------------------------- 1 and 2


async def bench_ingest(workdir: Path) -> None:
    print("\n## write_points (full store path, pre-built points, 1,000 series)")
    begin = (time.time_ns() // S - 7 * 86400) * S
    for per_batch, total in ((1_000, 300_000), (10_000, 1_000_000), (100_000, 2_000_000)):
        batches = list(gauge_batches(1000, total // 1000, per_batch, begin, 10))
        await _ingest_run(workdir / f"ingest-{per_batch}.duckdb", batches, f"gauge, {per_batch:,}")
    batches = list(histogram_batches(1000, 300, 10_000, begin, 10))
    await _ingest_run(workdir / "ingest-hist.duckdb", batches, "histogram, 10,000")


async def _ingest_run(path: Path, batches: list[list[MetricPoint]], label: str) -> None:
    store = await DuckDBMetricStore.open(path)
    points, spent = await write_all(store, iter(batches))
    await store.close()
    print(f"{label:>18} per batch: {points / spent:>10,.0f} points/s"
          f"  (python prepare {prep_seconds / spent:.0%} of the time;"
          f" {db_size(path) / points:.1f} B/point on disk)")


def bench_engines(workdir: Path) -> None:
    print("\n## engines alone: rows (series_id, ts, value)")
    for per_batch in (1_000, 10_000, 100_000):
        total = max(1_000_000, per_batch * 10)
        series = np.tile(np.arange(1000, dtype=np.int32), total // 1000)
        ts = np.repeat(np.arange(total // 1000, dtype=np.int64) * 10 * S, 1000)
        values = rng.random(total)
        duck = _duckdb_rows(workdir / f"engine-{per_batch}.duckdb", series, ts, values, per_batch)
        lite = _sqlite_rows(workdir / f"engine-{per_batch}.sqlite", series, ts, values, per_batch)
        print(f"{per_batch:>8,} per batch: DuckDB Arrow {total / duck:>11,.0f} rows/s"
              f"   SQLite executemany {total / lite:>9,.0f} rows/s")


def _duckdb_rows(path: Path, series: np.ndarray, ts: np.ndarray, values: np.ndarray,
                 per_batch: int) -> float:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE p (series_id INTEGER, ts BIGINT, value DOUBLE)")
    began = time.perf_counter()
    for lo in range(0, len(ts), per_batch):
        part = pa.table({"series_id": series[lo:lo + per_batch], "ts": ts[lo:lo + per_batch],
                         "value": values[lo:lo + per_batch]})
        con.register("part", part)
        con.execute("INSERT INTO p SELECT * FROM part")
        con.unregister("part")
    spent = time.perf_counter() - began
    con.close()
    return spent


def _sqlite_connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("CREATE TABLE IF NOT EXISTS p (series_id INTEGER, ts INTEGER, value REAL,"
                " PRIMARY KEY (ts, series_id)) WITHOUT ROWID")
    return con


def _sqlite_rows(path: Path, series: np.ndarray, ts: np.ndarray, values: np.ndarray,
                 per_batch: int) -> float:
    con = _sqlite_connect(path)
    rows = list(zip(series.tolist(), ts.tolist(), values.tolist()))
    began = time.perf_counter()
    for lo in range(0, len(rows), per_batch):
        with con:
            con.executemany("INSERT INTO p VALUES (?, ?, ?)", rows[lo:lo + per_batch])
    spent = time.perf_counter() - began
    con.close()
    return spent


# ---------------------------------------------------------------------------- 3


async def bench_day(args: argparse.Namespace, workdir: Path) -> None:
    steps = args.hours * 3600 // args.interval
    end = time.time_ns() // (600 * S) * (600 * S)
    begin = end - args.hours * 3600 * S
    print(f"\n## a day: {args.series:,} series x {steps:,} points per metric")
    path = workdir / "day.duckdb"
    store = await DuckDBMetricStore.open(path)
    batches = numeric_batches(args.series, steps, 10_000, begin, args.interval)
    points, spent = await write_all(store, batches, "numeric")
    print(f"loaded gauges and counters: {points:,} points at {points / spent:,.0f} points/s"
          f" in 10k batches (rollups included; Python prepare {prep_seconds / spent:.0%})")
    began = time.perf_counter()
    await store.compact()
    print(f"final compaction: {time.perf_counter() - began:.2f} s")
    await store.close()
    print(f"disk: {db_size(path) / (2 * args.series * steps):.1f} B/point (gauges + counters,"
          " rollups included)")
    store = await DuckDBMetricStore.open(path)
    await _dashboard(store, args, end)
    await store.close()
    if args.histogram:
        await _histogram_day(args, workdir, begin, end, steps)


async def _dashboard(store: DuckDBMetricStore, args: argparse.Namespace, end: int) -> None:
    day, hour = args.hours * 3600 * S, 3600 * S
    by_dc = ("dc",)
    one_dc = (LabelMatcher("dc", MatchOp.EQ, "dc-3"),)
    cases = [
        ("gauge sum by dc, 24 h / 5 min", end - day, 300, {"aggregation": Aggregation.SUM}),
        ("gauge avg by dc, 24 h / 5 min", end - day, 300, {}),
        ("gauge avg by dc, 24 h / 5 min, start 7 s off the minute (raw)", end - day + 7 * S,
         300, {}),
        ("gauge max by dc, 24 h / 1 h", end - day, 3600, {"aggregation": Aggregation.MAX}),
        ("gauge sum by dc, 1 h / 15 s (raw)", end - hour, 15, {"aggregation": Aggregation.SUM}),
        ("gauge avg of dc-3 by host, 24 h / 5 min", end - day, 300,
         {"matchers": one_dc, "group_by": ("host",)}),
        ("counter rate sum by dc, 24 h / 5 min", end - day, 300,
         {"aggregation": Aggregation.SUM, "rate": True, "metric": "http.server.requests"}),
        ("counter rate sum by dc, 1 h / 15 s (raw)", end - hour, 15,
         {"aggregation": Aggregation.SUM, "rate": True, "metric": "http.server.requests"}),
    ]
    print(f"\n{'query':<64} {'median':>9} {'p95':>9}  result")
    for label, start, step, extra in cases:
        extra = dict(extra)
        metric = extra.pop("metric", "cpu.utilization")
        query = SeriesQuery(TENANT, metric, start, end, step * S,
                            group_by=extra.pop("group_by", by_dc), **extra)
        median, p95, result = await timed(partial(store.query_range, query), args.runs)
        points = sum(len(s.values) for s in result)
        print(f"{label:<64} {median * 1e3:>7.1f}ms {p95 * 1e3:>7.1f}ms  "
              f"{len(result)} series, {points} points")


async def _histogram_day(args: argparse.Namespace, workdir: Path, begin: int, end: int,
                         steps: int) -> None:
    path = workdir / "hist.duckdb"
    store = await DuckDBMetricStore.open(path)
    points, spent = await write_all(
        store, histogram_batches(args.series, steps, 10_000, begin, args.interval))
    await store.close()
    print(f"\nloaded histogram: {points:,} points at {points / spent:,.0f} points/s;"
          f" disk {db_size(path) / points:.1f} B/point")
    store = await DuckDBMetricStore.open(path)
    print(f"{'query':<64} {'median':>9} {'p95':>9}  result")
    for label, span, step in (("p95 by dc, 1 h / 1 min", 3600, 60),
                              ("p95 by dc, 24 h / 5 min", args.hours * 3600, 300)):
        query = SeriesQuery(TENANT, "http.server.duration", end - span * S, end, step * S,
                            group_by=("dc",), quantile=0.95, aggregation=Aggregation.MAX)
        median, p95, result = await timed(partial(store.query_range, query),
                                          max(5, args.runs // 3))
        print(f"{'histogram ' + label:<64} {median * 1e3:>7.1f}ms {p95 * 1e3:>7.1f}ms  "
              f"{len(result)} series, {sum(len(s.values) for s in result)} points")
    await store.close()


# ---------------------------------------------------------------------------- 4


def bench_sqlite_day(args: argparse.Namespace, workdir: Path) -> None:
    steps = args.hours * 3600 // args.interval
    end = time.time_ns() // (600 * S) * (600 * S)
    begin = end - args.hours * 3600 * S
    path = workdir / "day.sqlite"
    con = _sqlite_connect(path)
    con.execute("CREATE TABLE sel (series_id INTEGER PRIMARY KEY, grp INTEGER)")
    con.executemany("INSERT INTO sel VALUES (?, ?)", [(i, i % DCS) for i in range(args.series)])
    spent = 0.0
    for lo in range(0, steps, 10):  # 10 steps x series per transaction, like the 10k batches
        n = min(10, steps - lo)
        ts = np.repeat(begin + (np.arange(lo, lo + n) * args.interval * S), args.series)
        rows = list(zip(np.tile(np.arange(args.series), n).tolist(), ts.tolist(),
                        rng.random(n * args.series).tolist()))
        began = time.perf_counter()
        with con:
            con.executemany("INSERT INTO p VALUES (?, ?, ?)", rows)
        spent += time.perf_counter() - began
    con.close()
    total = steps * args.series
    print(f"\n## SQLite, the same gauge day: {total:,} rows at {total / spent:,.0f} rows/s;"
          f" disk {db_size(path) / total:.1f} B/point")
    con = sqlite3.connect(path)
    for label, start, step in (("sum by dc, 24 h / 5 min", begin, 300),
                               ("sum by dc, 1 h / 15 s", end - 3600 * S, 15)):
        sql = """
            SELECT s.grp, per.b, sum(per.v) FROM (
              SELECT series_id, (ts - :start) / :step AS b, avg(value) AS v FROM p
              WHERE ts >= :start AND ts < :end GROUP BY series_id, b) per
            JOIN sel s USING (series_id) GROUP BY s.grp, per.b ORDER BY s.grp, per.b"""
        params = {"start": start, "end": end, "step": step * S}
        samples = []
        for _ in range(max(3, args.runs // 10)):
            began = time.perf_counter()
            con.execute(sql, params).fetchall()
            samples.append(time.perf_counter() - began)
        print(f"SQLite {label:<57} {statistics.median(samples) * 1e3:>7.1f}ms"
              f" (median of {len(samples)})")
    con.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--interval", type=int, default=10, help="seconds between points")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--no-histogram", dest="histogram", action="store_false")
    parser.add_argument("--no-sqlite", dest="sqlite", action="store_false")
    parser.add_argument("--only-day", action="store_true", help="skip sections 1 and 2")
    parser.add_argument("--keep", type=Path, default=None,
                        help="write the databases here and keep them")
    args = parser.parse_args()
    store_module.prepare_batch = _timed_prepare(store_module.prepare_batch)
    random.seed(7)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        if not args.only_day:
            await bench_ingest(workdir)
            bench_engines(workdir)
        await bench_day(args, workdir)
        if args.sqlite:
            bench_sqlite_day(args, workdir)


if __name__ == "__main__":
    asyncio.run(main())
