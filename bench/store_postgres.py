"""Write and query rates of the PostgreSQL trace store beside the embedded SQLite one.

    /work/venv/bin/python bench/store_postgres.py [--dsn DSN] [--spans 200000]
        [--batch 2000] [--hours 6] [--runs 30] [--writers 4]

Both stores get the same spans: store_sqlite.py's generator (eight services, traces of
1-20 spans, ~8 attributes each, new resource objects per batch), reseeded before each
run, spread over the last `--hours` hours in time order. Only the write_spans calls are
timed. Then, on that data, get_trace of known ids, find_traces over the last hour with
several filters, and services() are timed (medians and p95 of `--runs` calls). A last
ingest of a fifth more spans runs `--writers` write_spans calls at a time.

PostgreSQL comes from --dsn or ARGUS_TEST_POSTGRES_DSN; the store uses a scratch schema,
dropped at the end. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import os
import secrets
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

from argus.storage.backends.postgres_common import drop_schema
from argus.storage.backends.postgres_traces import PostgresTraceStore
from argus.storage.backends.sqlite_traces import SqliteTraceStore
from argus.storage.traces import TraceQuery, TraceStore

sys.path.insert(0, str(Path(__file__).resolve().parent))
import store_sqlite as data

SEED = 7
Row = tuple[str, str]  # (value, note) per measurement


@dataclasses.dataclass
class Run:
    """Results of one store, by measurement label."""

    cells: dict[str, Row] = dataclasses.field(default_factory=dict)
    numbers: dict[str, float] = dataclasses.field(default_factory=dict)

    def add(self, label: str, number: float, text: str, note: str = "") -> None:
        self.numbers[label] = number
        self.cells[label] = (text, note)


async def ingest(store: TraceStore, args: argparse.Namespace, prefix: str, count: int,
                 writers: int, ids: list[str] | None = None) -> float:  # fmt: skip
    """Spans/s of writing `count` generated spans, `writers` write calls at a time."""
    begin, end = args.begin, args.end
    batches = data.span_batches(count, args.batch, begin, end)
    elapsed, written, pending = 0.0, 0, []
    for number, spans in enumerate(batches):
        if ids is not None and number % 25 == 0:
            ids.append(spans[0].trace_id)
        pending.append((f"{prefix}-{number}", spans))
        if len(pending) == writers:
            elapsed += await _write_all(store, pending)
            written += sum(len(spans) for _, spans in pending)
            pending = []
    if pending:
        elapsed += await _write_all(store, pending)
        written += sum(len(spans) for _, spans in pending)
    return written / elapsed


async def _write_all(store: TraceStore, batches: list[tuple[str, list[Any]]]) -> float:
    t0 = time.perf_counter()
    await asyncio.gather(*(store.write_spans(data.TENANT, s, b) for b, s in batches))
    return time.perf_counter() - t0


def queries(end: int) -> list[tuple[str, TraceQuery]]:
    last_hour = TraceQuery(data.TENANT, start_unix_nano=end - 3600 * data.SECOND,
                           end_unix_nano=end)  # fmt: skip
    filters: list[tuple[str, dict[str, Any]]] = [
        ("find_traces last hour, no filter", {}),
        ("find_traces last hour, service", {"service": data.SERVICES[3]}),
        ("find_traces last hour, service + operation",
         {"service": data.SERVICES[3], "operation": "op-5"}),
        ("find_traces last hour, errors only", {"errors_only": True}),
        ("find_traces last hour, min duration 450 ms", {"min_duration_nano": 450_000_000}),
        ("find_traces last hour, span attr status=500",
         {"attributes": {"http.response.status_code": "500"}}),
        ("find_traces last hour, resource attr", {"attributes": {"host.name": "node-2"}}),
        ("find_traces last hour, no match", {"operation": "nope"}),
    ]  # fmt: skip
    return [(label, dataclasses.replace(last_hour, **f)) for label, f in filters]


async def measure(store: TraceStore, args: argparse.Namespace) -> Run:
    run, ids = Run(), list[str]()
    data.rng.seed(SEED)  # the same spans for every store
    rate = await ingest(store, args, "spans", args.spans, 1, ids)
    run.add("ingest, one writer", rate, f"{rate:,.0f} spans/s", f"batches of {args.batch}")
    cycle = itertools.cycle(ids)
    median, p95, spans = await data.timed(lambda: store.get_trace(data.TENANT, next(cycle)),
                                          args.runs)  # fmt: skip
    run.add("get_trace", median, f"{median:.2f} ms (p95 {p95:.2f})", f"{len(spans)} spans")
    for label, query in queries(args.end):
        median, p95, found = await data.timed(partial(store.find_traces, query), args.runs)
        run.add(label, median, f"{median:.2f} ms (p95 {p95:.2f})", f"{len(found)} traces")
    median, p95, services = await data.timed(partial(store.services, data.TENANT), args.runs)
    run.add("services()", median, f"{median:.2f} ms (p95 {p95:.2f})", f"{len(services)}")
    rate = await ingest(store, args, "more", args.spans // 5, args.writers)
    run.add(f"ingest, {args.writers} concurrent writes", rate, f"{rate:,.0f} spans/s",
            f"+{args.spans // 5:,} spans")  # fmt: skip
    return run


async def postgres_size(dsn: str, schema: str) -> int:
    import psycopg

    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cursor = await conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relkind IN ('r', 'p')",
            (schema,),
        )
        row = await cursor.fetchone()
        return int(row[0]) if row else 0


async def bench_postgres(args: argparse.Namespace) -> Run:
    schema = f"argus_bench_{secrets.token_hex(4)}"
    store = await PostgresTraceStore.open(args.dsn, schema=schema, pool_size=args.writers + 2)
    try:
        run = await measure(store, args)
        size = await postgres_size(args.dsn, schema)
    finally:
        await store.close()
        await drop_schema(args.dsn, schema)
    total = args.spans + args.spans // 5
    run.add("size on disk", size / total, f"{size / total:.0f} B/span", "tables + indexes")
    return run


async def bench_sqlite(args: argparse.Namespace) -> Run:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "traces.db"
        store = await SqliteTraceStore.open(path)
        try:
            run = await measure(store, args)
        finally:
            await store.close()
        size = data.db_size(path)
    total = args.spans + args.spans // 5
    run.add("size on disk", size / total, f"{size / total:.0f} B/span", "file after close")
    return run


def table(pg: Run, lite: Run) -> str:
    lines = [
        "| measurement | PostgreSQL | SQLite (embedded) | PostgreSQL / SQLite |",
        "| --- | --- | --- | --- |",
    ]
    for label, (text, note) in pg.cells.items():
        other, _ = lite.cells[label]
        ratio = pg.numbers[label] / lite.numbers[label] if lite.numbers[label] else float("nan")
        detail = f" ({note})" if note else ""
        lines.append(f"| {label}{detail} | {text} | {other} | {ratio:.2f}× |")
    return "\n".join(lines)


async def server_version(dsn: str) -> str:
    import psycopg

    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cursor = await conn.execute("SHOW server_version")
        row = await cursor.fetchone()
        return str(row[0]) if row else "?"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", default=os.environ.get("ARGUS_TEST_POSTGRES_DSN"))
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--hours", type=float, default=6.0, help="time the data spreads over")
    parser.add_argument("--runs", type=int, default=30, help="calls per query timed")
    parser.add_argument("--writers", type=int, default=4, help="concurrent writes, last ingest")
    args = parser.parse_args()
    if not args.dsn:
        parser.error("give --dsn or set ARGUS_TEST_POSTGRES_DSN")
    args.end = time.time_ns()
    args.begin = args.end - int(args.hours * 3600 * data.SECOND)
    return args


async def main() -> None:
    args = parse_args()
    version = await server_version(args.dsn)
    pg = await bench_postgres(args)
    lite = await bench_sqlite(args)
    print(f"PostgreSQL {version} vs SQLite {data.sqlite3.sqlite_version}, {os.cpu_count()} cpus,"
          f" {args.spans:,} spans over {args.hours:g} h, medians of {args.runs} calls\n")  # fmt: skip
    print(table(pg, lite))


if __name__ == "__main__":
    asyncio.run(main())
