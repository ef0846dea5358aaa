"""Write and query rates of the embedded SQLite trace and log stores.

    /work/venv/bin/python bench/store_sqlite.py [--spans 500000] [--logs 500000]
        [--batch 2000] [--hours 6] [--runs 50] [--dir DIR] [--fts5 200000]

Writes synthetic spans and log records spread evenly over the last `--hours` hours, in
time order and in batches of `--batch`, timing only the store calls (not building the
records). Then, with the stores holding that data, times get_trace, find_traces over the
last hour and log searches over the last hour, and prints median and p95 latencies.

Data is shaped like SDK output: eight services, each with an eight-attribute resource that
is a new object in every batch (as after OTLP decoding); traces of 1-20 spans over 2-4
services with ~8 attributes each, an event on every fourth span, 2% errors; log lines of
~200 bytes with five attributes, a third of them carrying a trace id.

`--fts5 N` also compares raw SQLite insert rates of N log lines into a plain table, the
same plus an FTS5 index (unicode61 tokenizer), and plus an FTS5 trigram index, and the
needle search time of each: the measurement behind not using FTS5 in the log store.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import os
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from argus.storage.backends.sqlite_logs import SqliteLogStore
from argus.storage.backends.sqlite_traces import SqliteTraceStore
from argus.storage.logs import LogQuery
from argus.storage.model import (
    LogRecord,
    Resource,
    Scope,
    Span,
    SpanEvent,
    SpanKind,
    StatusCode,
)
from argus.storage.traces import TraceQuery

TENANT = "bench"
SERVICES = [f"service-{name}" for name in "abcdefgh"]
ROUTES = [f"/api/v1/{word}" for word in ("users", "orders", "cart", "search", "login", "items")]
WORDS = [
    "request",
    "handled",
    "user",
    "order",
    "payment",
    "cache",
    "miss",
    "retry",
    "upstream",
    "latency",
    "ok",
]
NEEDLE = "zebra-needle-7f3a"  # in a handful of log lines only
SECOND = 1_000_000_000
rng = random.Random(7)


# ---------------------------------------------------------------------------- data


def _resources() -> dict[str, Resource]:
    return {
        name: Resource({
            "service.name": name, "service.version": "1.4.2", "service.instance.id": f"{name}-0",
            "host.name": f"node-{i}", "host.arch": "amd64", "telemetry.sdk.name": "opentelemetry",
            "telemetry.sdk.language": "python", "telemetry.sdk.version": "1.45.2",
        })
        for i, name in enumerate(SERVICES)
    }  # fmt: skip


def _hex(bits: int) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def _span_attributes(route: str, status: int) -> dict[str, Any]:
    return {
        "http.request.method": rng.choice(("GET", "POST", "PUT")),
        "http.route": route,
        "http.response.status_code": status,
        "url.path": f"{route}/{rng.randrange(100_000)}",
        "server.address": "api.internal",
        "user.id": f"u-{rng.randrange(50_000)}",
        "thread.id": rng.randrange(64),
        "db.system": "postgresql",
    }


def _trace(start: int, resources: dict[str, Resource], scope: Scope) -> list[Span]:
    """One trace: a root span and children nested in it over 2-4 services."""
    tid, services = _hex(128), rng.sample(SERVICES, rng.randint(2, 4))
    total = rng.randint(5, 500) * 1_000_000
    error = rng.random() < 0.02
    root_id = _hex(64)
    spans = []
    for n in range(rng.randint(1, 20)):
        offset = 0 if n == 0 else rng.randrange(total // 2)
        length = total if n == 0 else rng.randrange(1, total - offset)
        status = 500 if error and n == 0 else 200
        service = services[0] if n == 0 else rng.choice(services)
        begin = start + offset
        spans.append(Span(
            trace_id=tid, span_id=root_id if n == 0 else _hex(64),
            name=f"{rng.choice(('GET', 'POST'))} {rng.choice(ROUTES)}" if n == 0 else f"op-{n % 12}",
            start_time_unix_nano=begin, end_time_unix_nano=begin + length,
            resource=resources[service], scope=scope,
            parent_span_id="" if n == 0 else root_id,
            kind=SpanKind.SERVER if n == 0 else SpanKind.CLIENT,
            attributes=_span_attributes(rng.choice(ROUTES), status),
            events=[SpanEvent(begin + 1000, "log", {"message": "cache miss"})] if n % 4 == 3 else [],
            status_code=StatusCode.ERROR if error and n == 0 else StatusCode.UNSET,
        ))  # fmt: skip
    return spans


def span_batches(count: int, batch: int, begin: int, end: int) -> Iterator[list[Span]]:
    """`count` spans in time order between begin and end, cut into batches."""
    scope = Scope("opentelemetry.instrumentation.asgi", "0.50b0")
    step = (end - begin) * 10 // count  # traces average ~10 spans
    now, pending = begin, list[Span]()
    while count > 0:
        resources = _resources()  # new objects per batch, as OTLP decoding produces
        while len(pending) < batch and count > len(pending):
            pending.extend(_trace(now, resources, scope))
            now += rng.randrange(1, 2 * step)
        out, pending = pending[:batch], pending[batch:]
        count -= len(out)
        yield out


def _log_line(n: int) -> str:
    words = " ".join(rng.choice(WORDS) for _ in range(18))
    needle = f" {NEEDLE}" if n % 100_000 == 99_999 else ""  # the last one is recent
    return f"request_id={_hex(64)} status={rng.choice((200, 200, 200, 404, 500))} {words}{needle}"


def log_batches(count: int, batch: int, begin: int, end: int) -> Iterator[list[LogRecord]]:
    scope = Scope("app.logger")
    step = (end - begin) // count
    for first in range(0, count, batch):
        resources = _resources()
        records = []
        for n in range(first, min(first + batch, count)):
            ts = begin + n * step
            traced = n % 3 == 0
            records.append(LogRecord(
                time_unix_nano=ts, observed_time_unix_nano=ts + 1_000_000,
                resource=resources[SERVICES[n % len(SERVICES)]], scope=scope,
                severity_number=rng.choice((5, 9, 9, 9, 13, 17)), severity_text="INFO",
                body=_log_line(n),
                attributes={"logger": "app.http", "code.lineno": rng.randrange(500),
                            "thread.name": f"worker-{rng.randrange(8)}", "user.id": f"u-{n % 977}",
                            "http.status": 200},
                trace_id=_hex(128) if traced else "", span_id=_hex(64) if traced else "",
            ))  # fmt: skip
        yield records


# ---------------------------------------------------------------------------- timing


async def timed(fn: Callable[[], Awaitable[Any]], runs: int) -> tuple[float, float, Any]:
    """(median ms, p95 ms, last result) of `runs` calls."""
    samples, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = await fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1], result


def report(label: str, median: float, p95: float, note: str = "") -> None:
    print(f"  {label:<62} median {median:7.2f} ms   p95 {p95:7.2f} ms   {note}")


def db_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


# ---------------------------------------------------------------------------- traces


async def bench_traces(args: argparse.Namespace, path: Path, begin: int, end: int) -> None:
    store = await SqliteTraceStore.open(path)
    trace_ids: list[str] = []
    elapsed, written = 0.0, 0
    for number, spans in enumerate(span_batches(args.spans, args.batch, begin, end)):
        if number % 25 == 0:
            trace_ids.append(spans[0].trace_id)
        t0 = time.perf_counter()
        await store.write_spans(TENANT, spans, f"spans-{number}")
        elapsed += time.perf_counter() - t0
        written += len(spans)
    print(f"traces: {written:,} spans in {elapsed:.1f} s = {written / elapsed:,.0f} spans/s")

    ids = itertools.cycle(trace_ids)
    median, p95, spans = await timed(lambda: store.get_trace(TENANT, next(ids)), args.runs)
    report("get_trace (random trace ids)", median, p95, f"{len(spans)} spans in the last one")
    last_hour = TraceQuery(TENANT, start_unix_nano=end - 3600 * SECOND, end_unix_nano=end)
    trace_searches: list[tuple[str, dict[str, Any]]] = [
        ("find_traces last hour, no filter", {}),
        ("find_traces last hour, service", {"service": SERVICES[3]}),
        ("find_traces last hour, service + operation", {"service": SERVICES[3], "operation": "op-5"}),
        ("find_traces last hour, errors only", {"errors_only": True}),
        ("find_traces last hour, min duration 450 ms", {"min_duration_nano": 450_000_000}),
        ("find_traces last hour, attr status=500", {"attributes": {"http.response.status_code": "500"}}),
        ("find_traces last hour, resource attr", {"attributes": {"host.name": "node-2"}}),
        ("find_traces last hour, no match (full scan)", {"operation": "nope"}),
    ]  # fmt: skip
    for label, filters in trace_searches:
        query = dataclasses.replace(last_hour, **filters)
        median, p95, found = await timed(partial(store.find_traces, query), args.runs)
        report(label, median, p95, f"{len(found)} traces")
    median, p95, services = await timed(partial(store.services, TENANT), args.runs)
    report("services()", median, p95, f"{len(services)} services")

    async def ingest() -> int:  # keeps the writer busy while queries run
        count = 0
        for number, more in enumerate(span_batches(args.spans // 5, args.batch, begin, end)):
            await store.write_spans(TENANT, more, f"more-spans-{number}")
            count += len(more)
        return count

    writer = asyncio.create_task(ingest())
    await asyncio.sleep(0.05)
    calls: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        ("  during writes: get_trace", lambda: store.get_trace(TENANT, next(ids))),
        ("  during writes: find_traces last hour", partial(store.find_traces, last_hour)),
    ]
    for label, call in calls:
        median, p95, _ = await timed(call, args.runs)
        report(label, median, p95, "(writer still busy)" if not writer.done() else "")
    written += await writer
    await store.close()
    size = db_size(path)
    print(
        f"  on disk after close: {size / 1e6:.0f} MB for {written:,} spans = {size / written:.0f} B/span"
    )


# ---------------------------------------------------------------------------- logs


async def bench_logs(args: argparse.Namespace, path: Path, begin: int, end: int) -> None:
    store = await SqliteLogStore.open(path)
    elapsed, written, trace_id = 0.0, 0, ""
    for number, records in enumerate(log_batches(args.logs, args.batch, begin, end)):
        trace_id = records[-3].trace_id or records[-1].trace_id or trace_id
        t0 = time.perf_counter()
        await store.write_logs(TENANT, records, f"logs-{number}")
        elapsed += time.perf_counter() - t0
        written += len(records)
    print(f"logs: {written:,} records in {elapsed:.1f} s = {written / elapsed:,.0f} records/s")

    last_hour = LogQuery(TENANT, start_unix_nano=end - 3600 * SECOND, end_unix_nano=end)
    log_searches: list[tuple[str, dict[str, Any]]] = [
        ("search last hour, first page of 100", {}),
        ("search last hour, contains common word", {"contains": "PAYMENT"}),
        ("search last hour, contains needle (scan)", {"contains": NEEDLE}),
        ("search last hour, contains absent (scan)", {"contains": "no-such-text"}),
        ("search last hour, min severity 17", {"min_severity": 17}),
        ("search last hour, service", {"service": SERVICES[2]}),
        ("search last hour, attribute", {"attributes": {"user.id": "u-5"}}),
        ("search by trace id (all time)", {"trace_id": trace_id, "start_unix_nano": None}),
    ]  # fmt: skip
    for label, filters in log_searches:
        query = dataclasses.replace(last_hour, **filters)
        median, p95, page = await timed(partial(store.search, query), args.runs)
        report(label, median, p95, f"{len(page.records)} records")

    async def three_pages() -> int:
        query, seen = dataclasses.replace(last_hour, contains="retry"), 0
        for _ in range(3):
            page = await store.search(query)
            seen += len(page.records)
            query = dataclasses.replace(query, cursor=page.next_cursor)
        return seen

    median, p95, seen = await timed(three_pages, args.runs)
    report("3 pages of 100, contains common word", median, p95, f"{seen} records")

    async def ingest() -> int:  # keeps the writer busy while queries run
        count = 0
        for number, more in enumerate(log_batches(args.logs // 5, args.batch, begin, end)):
            await store.write_logs(TENANT, more, f"more-logs-{number}")
            count += len(more)
        return count

    writer = asyncio.create_task(ingest())
    await asyncio.sleep(0.05)
    for label, filters in log_searches[:3]:
        query = dataclasses.replace(last_hour, **filters)
        median, p95, _ = await timed(partial(store.search, query), args.runs)
        report(f"  during writes: {label}", median, p95, "" if writer.done() else "(writer busy)")
    written += await writer
    await store.close()
    size = db_size(path)
    print(
        f"  on disk after close: {size / 1e6:.0f} MB for {written:,} records = {size / written:.0f} B/record"
    )


# ---------------------------------------------------------------------------- fts5


def bench_fts5(count: int, directory: Path) -> None:
    lines = [_log_line(n) for n in range(count)]
    lines[count // 2] += " " + NEEDLE
    variants = {
        "plain table + (ts) index": None,
        "plus FTS5 unicode61": "fts5(body, content='logs', content_rowid='id')",
        "plus FTS5 trigram": "fts5(body, content='logs', content_rowid='id', tokenize='trigram')",
    }
    print(f"fts5 comparison: {count:,} log lines of ~{len(lines[0])} B, batches of 2,000")
    for label, fts in variants.items():
        path = directory / f"fts-{len(label)}.db"
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("CREATE TABLE logs (id INTEGER PRIMARY KEY, ts INTEGER, body TEXT)")
        conn.execute("CREATE INDEX logs_ts ON logs (ts)")
        if fts:
            conn.execute(f"CREATE VIRTUAL TABLE logs_fts USING {fts}")
        t0 = time.perf_counter()
        for first in range(0, count, 2000):
            chunk = lines[first : first + 2000]
            rows = [(first + i + 1, first + i, line) for i, line in enumerate(chunk)]
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO logs (id, ts, body) VALUES (?, ?, ?)", rows)
            if fts:
                conn.executemany(
                    "INSERT INTO logs_fts (rowid, body) VALUES (?, ?)",
                    [(row_id, body) for row_id, _, body in rows],
                )
            conn.execute("COMMIT")
        rate = count / (time.perf_counter() - t0)
        if fts:
            sql, arg = "SELECT count(*) FROM logs_fts WHERE logs_fts MATCH ?", f'"{NEEDLE}"'
        else:
            sql, arg = "SELECT count(*) FROM logs WHERE body LIKE ?", f"%{NEEDLE}%"
        t0 = time.perf_counter()
        hits = conn.execute(sql, (arg,)).fetchone()[0]
        query_ms = (time.perf_counter() - t0) * 1000
        conn.close()
        size = db_size(path) / count
        print(f"  {label:<28} {rate:>9,.0f} rows/s   needle over all rows {query_ms:7.1f} ms "
              f"({hits} hit)   {size:.0f} B/row")  # fmt: skip


# ---------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=500_000)
    parser.add_argument("--logs", type=int, default=500_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--hours", type=float, default=6.0, help="time the data spreads over")
    parser.add_argument("--runs", type=int, default=50, help="calls per query timed")
    parser.add_argument("--dir", type=Path, default=None, help="default: a temporary dir")
    parser.add_argument("--fts5", type=int, default=0, help="also run the FTS5 comparison")
    return parser.parse_args()


async def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        directory = Path(tmp)
        end = time.time_ns()
        begin = end - int(args.hours * 3600 * SECOND)
        print(f"sqlite {sqlite3.sqlite_version}, {os.cpu_count()} cpus, batch {args.batch}, "
              f"data over {args.hours:g} h, {args.runs} runs per query")  # fmt: skip
        if args.spans:
            await bench_traces(args, directory / "traces.db", begin, end)
        if args.logs:
            await bench_logs(args, directory / "logs.db", begin, end)
        if args.fts5:
            bench_fts5(args.fts5, directory)


if __name__ == "__main__":
    asyncio.run(main())
