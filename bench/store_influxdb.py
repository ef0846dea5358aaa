"""Metric ingest and range queries: the InfluxDB store beside the embedded DuckDB store.

    /work/venv/bin/python bench/store_influxdb.py [--influxdb-url URL] [--series 1000]
        [--points 200000] [--hours 1] [--runs 15]

The points come from bench/store_metrics.py's generators (1,000 series, 3 labels, eight
resource attributes shared per scrape, as after OTLP decoding), built before timing.

1. Ingest: `write_points` of gauges and cumulative counters, interleaved as live traffic
   brings them, in batches of 1k and 10k points, then 10-bucket histograms in 10k batches,
   into a fresh InfluxDB database and a fresh DuckDB file. Only the store calls are timed;
   for InfluxDB the Python share (line-protocol encoding) is given beside the total.
2. Queries: `--hours` of gauges and counters of `--series` series every 10 s in both
   stores, then query_range medians (and p95) of `--runs` runs after two warm-ups: gauge
   sum by dc (10 groups over all series) and counter rate sum by dc.

The InfluxDB URL comes from --influxdb-url or ARGUS_TEST_INFLUXDB_URL (tests/run.sh
starts one). The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from argus.storage.backends import influxdb_metrics
from argus.storage.backends.duckdb_metrics import DuckDBMetricStore
from argus.storage.backends.influxdb_metrics import InfluxDBConfig, InfluxDBMetricStore
from argus.storage.metrics import Aggregation, MetricStore, SeriesQuery
from argus.storage.model import MetricPoint
from store_metrics import TENANT, S, histogram_batches, numeric_batches, timed

# Seconds spent in encode_batch (the InfluxDB store's Python work), summed by a wrapper.
encode_seconds = 0.0


def _timed_encode(original: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any) -> Any:
        global encode_seconds
        began = time.perf_counter()
        try:
            return original(*args)
        finally:
            encode_seconds += time.perf_counter() - began

    return wrapper


async def write_all(store: MetricStore, batches: list[list[MetricPoint]], prefix: str
                    ) -> tuple[int, float]:
    """(points, seconds inside write_points)."""
    points, spent = 0, 0.0
    for n, batch in enumerate(batches):
        began = time.perf_counter()
        await store.write_points(TENANT, batch, f"{prefix}-{n}")
        spent += time.perf_counter() - began
        points += len(batch)
    return points, spent


class Stores:
    """A fresh InfluxDB database and DuckDB file per section, both closed (and the
    database dropped) by `close`."""

    def __init__(self, url: str, workdir: Path) -> None:
        self.url, self.workdir = url, workdir
        self.databases: list[str] = []

    async def influxdb(self) -> InfluxDBMetricStore:
        database = f"argus_bench_{secrets.token_hex(4)}"
        self.databases.append(database)
        return await InfluxDBMetricStore.open(
            InfluxDBConfig(self.url, database=database, create_database=True))

    async def duckdb(self, name: str) -> DuckDBMetricStore:
        return await DuckDBMetricStore.open(self.workdir / f"{name}.duckdb")

    async def drop(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=60) as http:
            for database in self.databases:
                await http.post("/query", data={"q": f'DROP DATABASE "{database}"'})


# ---------------------------------------------------------------------------- 1


async def bench_ingest(stores: Stores, args: argparse.Namespace) -> None:
    global encode_seconds
    begin = (time.time_ns() // S - 3 * 86400) * S
    steps = args.points // (2 * args.series)
    cases: list[tuple[str, Iterator[list[MetricPoint]]]] = [
        ("gauge+counter, 1k", numeric_batches(args.series, steps // 4, 1_000, begin, 10)),
        ("gauge+counter, 10k", numeric_batches(args.series, steps, 10_000, begin, 10)),
        ("histogram, 10k", histogram_batches(args.series, steps, 10_000, begin, 10)),
    ]
    print("\n## write_points, points/s (pre-built points; 1,000 series)\n")
    print("| points, per batch | InfluxDB 1.6.7 | (Python encoding) | embedded DuckDB |")
    print("| --- | ---: | ---: | ---: |")
    for n, (label, generated) in enumerate(cases):
        batches = list(generated)
        influx = await stores.influxdb()
        encode_seconds = 0.0
        points, influx_s = await write_all(influx, batches, "i")
        await influx.close()
        encoded = encode_seconds
        duck = await stores.duckdb(f"ingest-{n}")
        _, duck_s = await write_all(duck, batches, "d")
        await duck.close()
        print(f"| {label} ({points:,}) | {points / influx_s:,.0f} | {encoded / influx_s:.0%}"
              f" of the time | {points / duck_s:,.0f} |")


# ---------------------------------------------------------------------------- 2


async def bench_queries(stores: Stores, args: argparse.Namespace) -> None:
    steps = args.hours * 3600 // 10
    end = time.time_ns() // (600 * S) * (600 * S)
    begin = end - args.hours * 3600 * S
    batches = list(numeric_batches(args.series, steps, 10_000, begin, 10))
    points = sum(len(b) for b in batches)
    influx, duck = await stores.influxdb(), await stores.duckdb("query")
    await write_all(influx, batches, "q")
    await write_all(duck, batches, "q")
    await duck.compact()
    span = f"{args.hours} h"
    cases = [
        (f"gauge sum by dc, {span} / 1 min", "cpu.utilization", 60, {}),
        (f"gauge sum by dc, {span} / 15 s", "cpu.utilization", 15, {}),
        (f"counter rate sum by dc, {span} / 1 min", "http.server.requests", 60,
         {"rate": True}),
    ]
    print(f"\n## query_range over {args.series:,} series x {steps:,} points per metric"
          f" ({points:,} points), median (p95) of {args.runs} runs\n")
    print("| query | InfluxDB 1.6.7 | embedded DuckDB | result |")
    print("| --- | ---: | ---: | --- |")
    for label, metric, step, extra in cases:
        query = SeriesQuery(TENANT, metric, begin, end, step * S, group_by=("dc",),
                            aggregation=Aggregation.SUM, **extra)
        i_med, i_p95, i_result = await timed(partial(influx.query_range, query), args.runs)
        d_med, d_p95, d_result = await timed(partial(duck.query_range, query), args.runs)
        assert _rounded(i_result) == _rounded(d_result), f"{label}: the stores disagree"
        shape = f"{len(i_result)} series, {sum(len(s.values) for s in i_result)} points"
        print(f"| {label} | {i_med * 1e3:,.0f} ms ({i_p95 * 1e3:,.0f}) |"
              f" {d_med * 1e3:,.1f} ms ({d_p95 * 1e3:,.1f}) | {shape} |")
    await influx.close()
    await duck.close()


def _rounded(result: list[Any]) -> list[Any]:
    return [(s.labels, s.timestamps, [round(v, 6) for v in s.values]) for s in result]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--influxdb-url", default=os.environ.get("ARGUS_TEST_INFLUXDB_URL"))
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--points", type=int, default=200_000,
                        help="points per 10k-batch ingest case")
    parser.add_argument("--hours", type=int, default=1)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    if not args.influxdb_url:
        parser.error("give --influxdb-url or set ARGUS_TEST_INFLUXDB_URL")
    influxdb_metrics.encode_batch = _timed_encode(influxdb_metrics.encode_batch)
    with tempfile.TemporaryDirectory() as tmp:
        stores = Stores(args.influxdb_url, Path(tmp))
        try:
            await bench_ingest(stores, args)
            await bench_queries(stores, args)
        finally:
            await stores.drop()


if __name__ == "__main__":
    asyncio.run(main())
