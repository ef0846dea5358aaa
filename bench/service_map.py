"""Service map, RED metrics and trace-by-id latency of the embedded trace store holding a
day of loadgen traffic.

    /work/venv/bin/python bench/service_map.py [--spans 5000000] [--batch-traces 150]
        [--runs 50] [--dir DIR] [--keep] [--no-rollups SPANS] [--reuse]

Fills a fresh SQLite trace store with `--spans` spans from the loadgen generators (the
shop topology: frontend, checkout, cart, payment, currency, email, with postgres, kafka
and external API calls and 3% failing traces), spread evenly over the 24 hours before
now, in time order, in batches of `--batch-traces` traces (~6 spans each) as the
collector writes them. Only the store calls are timed, not generating and decoding.

Then, `--runs` times each with random end times within the day: serviceMap over one
hour, redMetrics (1-minute steps) of one service over one hour, and a trace by id; and
prints median and p95 latencies.

`--no-rollups N` first writes N spans with the write-time rollups switched off, to
measure what keeping them costs on ingest. `--reuse` queries the store a previous run
left in `--dir` instead of filling a new one.
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
from pathlib import Path
from typing import Any

from argus.proto.pb_traces import to_model
from argus.storage.backends import sqlite_traces_analytics as analytics
from argus.storage.backends.sqlite_traces import SqliteTraceStore
from argus.storage.model import Span

from argus.loadgen.metrics import MetricState
from argus.loadgen.topology import build_topology
from argus.loadgen.traces import TraceGenerator

TENANT = "bench"
SECOND = 1_000_000_000
HOUR = 3600 * SECOND
DAY = 24 * HOUR
SPANS_PER_TRACE = 5.9  # a little under the measured average (5.92): at least `--spans`


def batches(spans: int, begin: int, end: int, per_batch: int, seed: int) -> Iterator[list[Span]]:
    """About `spans` loadgen spans with traces ending evenly over [begin, end)."""
    topology = build_topology(random.Random(seed))
    generator = TraceGenerator(
        topology, MetricState(topology.all_instances, begin, random.Random(seed + 1)),
        seed=seed + 2,
    )  # fmt: skip
    traces = int(spans / SPANS_PER_TRACE)
    spacing = (end - begin) / traces
    made = 0
    while made < traces:
        batch = generator.new_batch()
        while batch.traces < per_batch and made < traces:
            made += generator.add_trace(batch, begin + int(made * spacing))
        yield to_model(batch.request)


async def timed(fn: Callable[[], Awaitable[Any]], runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.95) - 1)]


async def fill(store: SqliteTraceStore, args: argparse.Namespace, count: int, begin: int,
               end: int, seed: int) -> tuple[int, float, list[str]]:
    """(spans written, seconds in write_spans, a sample of trace ids)."""
    written, seconds, sample = 0, 0.0, []
    last_report = time.monotonic()
    for n, spans in enumerate(batches(count, begin, end, args.batch_traces, seed)):
        t0 = time.perf_counter()
        await store.write_spans(TENANT, spans, f"b{seed}-{n}")
        seconds += time.perf_counter() - t0
        written += len(spans)
        if n % 50 == 0:
            sample.append(spans[0].trace_id)
        if time.monotonic() - last_report > 30:
            last_report = time.monotonic()
            print(f"  ... {written:,} spans, {written / seconds:,.0f} spans/s in the store",
                  flush=True)
    return written, seconds, sample


async def main(args: argparse.Namespace) -> None:
    directory = Path(args.dir or tempfile.mkdtemp(prefix="argus-bench-"))
    path = directory / "traces.db"
    reuse = args.reuse and path.exists()
    if not reuse:
        for old in directory.glob("traces.db*"):
            old.unlink()
    now = time.time_ns()
    begin = now - DAY
    store = await SqliteTraceStore.open(path)
    try:
        if reuse:
            with sqlite3.connect(path) as db:
                first, last = db.execute(
                    "SELECT min(start_ns), max(start_ns) FROM spans WHERE tenant = ?", (TENANT,)
                ).fetchone()
                sample = [row[0] for row in db.execute(
                    "SELECT trace_id FROM traces WHERE tenant = ? ORDER BY random() LIMIT 1000",
                    (TENANT,),
                )]  # fmt: skip
            begin, now = max(first, last - DAY), last
            print(f"reusing {path}: spans from {(last - first) / HOUR:.1f} h")
        elif args.no_rollups:
            compute, write = analytics.batch_rollup, analytics.RollupWriter.write
            analytics.batch_rollup = lambda *_: None
            analytics.RollupWriter.write = lambda *_: None
            plain, plain_s, _ = await fill(store, args, args.no_rollups, begin - DAY, begin, 99)
            analytics.batch_rollup, analytics.RollupWriter.write = compute, write
            print(f"without rollups: {plain:,} spans in {plain_s:.1f} s ="
                  f" {plain / plain_s:,.0f} spans/s (a day earlier, not queried)")
        if not reuse:
            t0 = time.perf_counter()
            written, seconds, sample = await fill(store, args, args.spans, begin, now, 7)
            wall = time.perf_counter() - t0
            size = sum(p.stat().st_size for p in directory.glob("traces.db*"))
            print(f"with rollups: {written:,} spans over 24 h in {seconds:.1f} s of store"
                  f" calls ({written / seconds:,.0f} spans/s; {wall:.0f} s with generation),"
                  f" {size / 1e9:.2f} GB on disk")

        rng = random.Random(1)

        def hour() -> tuple[int, int]:
            end = rng.randrange(begin + HOUR, now)
            return end - HOUR, end

        async def service_map() -> None:
            start, end = hour()
            await store.service_map(TENANT, start, end)

        async def red() -> None:
            start, end = hour()
            start -= start % (60 * SECOND)
            await store.red_series(TENANT, start, end, 60 * SECOND, "checkout")

        async def trace() -> None:
            spans = await store.get_trace(TENANT, rng.choice(sample))
            assert spans

        one = await store.service_map(TENANT, now - HOUR, now)
        print(f"one hour: {len(one.nodes)} nodes, {len(one.edges)} edges,"
              f" {sum(n.stats.count for n in one.nodes if n.type == 'service'):,} entry spans")
        print(f"\n{'query (' + str(args.runs) + ' runs)':<44} {'median':>10} {'p95':>10}")
        for label, fn in (
            ("serviceMap, one hour", service_map),
            ("redMetrics checkout, one hour, 1-min steps", red),
            ("trace by id", trace),
        ):
            await fn()  # warm
            median, p95 = await timed(fn, args.runs)
            print(f"{label:<44} {median:8.2f} ms {p95:8.2f} ms")
    finally:
        await store.close()
        if not args.keep and not args.dir:
            for old in directory.glob("traces.db*"):
                old.unlink()
            directory.rmdir()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=5_000_000)
    parser.add_argument("--batch-traces", type=int, default=150)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--dir")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--no-rollups", type=int, default=0, metavar="SPANS")
    parser.add_argument("--reuse", action="store_true")
    asyncio.run(main(parser.parse_args()))
