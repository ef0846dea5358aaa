"""Query latency over a day of loadgen data in the embedded store (issue 5 target: p95 under
100 ms for dashboard queries, trace by id and the service map over one hour).

    /work/venv/bin/python bench/query_day.py [--spans 5000000] [--logs 5000000]
        [--points 10000000] [--runs 40] [--dir DIR] [--keep] [--skip-fill]

1. Fills a fresh data dir's embedded stores (the files `argus serve` opens: store/traces.db,
   store/logs.db, store/metrics.duckdb; tenant "default") directly through the store APIs,
   not over OTLP, with loadgen data spread over the 24 hours before now, in time order:
   - traces + logs (one child process): `TraceGenerator` traces (shop topology, replicas x
     --replica-scale, 3% failing) ending evenly over the day, ~2,400 spans a batch, and
     the log lines of those traces plus the `PeriodicLogs` housekeeping lines, emitted every
     few seconds of simulated time so that the total reaches --logs;
   - metrics (a second child process, in parallel): the same generator with the same seed
     (so the same traces) feeds a `MetricState`, which is exported every ~15 s of simulated
     time (the interval adapts so that the total reaches --points): one batch per export.
   Then counts what the stores hold.
2. Starts `argus serve --data-dir DIR` on free loopback ports and measures GraphQL queries
   over HTTP (POST /graphql, one keep-alive connection): each warmed once, then --runs runs;
   prints p50/p95 per query as a markdown table against the 100 ms target.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing as mp
import os
import random
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import _wait_ready, free_port

SECOND = 1_000_000_000
HOUR = 3600 * SECOND
DAY = 24 * HOUR
TENANT = "default"
SEED = 42
SPANS_PER_TRACE = 5.95  # measured average of the loadgen shop topology
BATCH_TRACES = 400  # ~2,400 spans a write
LOG_BATCH = 2_000
TARGET_MS = 100.0

# ----------------------------------------------------------------------------- fill


def _generator(scale: int, begin: int) -> tuple[Any, Any, Any]:
    from argus.loadgen.metrics import MetricState
    from argus.loadgen.topology import build_topology
    from argus.loadgen.traces import TraceGenerator

    topo = build_topology(random.Random(SEED), replica_scale=scale)
    metrics = MetricState(topo.all_instances, begin, random.Random(SEED + 1))
    gen = TraceGenerator(topo, metrics, seed=SEED + 2, error_rate=0.03)
    return topo, metrics, gen


def _progress(label: str, done: int, total: int, t0: float) -> None:
    el = time.monotonic() - t0
    print(f"  [{label}] {done:,}/{total:,} in {el:.0f} s ({done / max(el, 1e-9):,.0f}/s)",
          flush=True)


async def _fill_traces_logs(store_dir: Path, spans: int, logs: int, scale: int, begin: int,
                            end: int) -> None:
    from argus.proto.pb_logs import to_model as logs_model
    from argus.proto.pb_traces import to_model as traces_model
    from argus.storage.backends.sqlite_logs import SqliteLogStore
    from argus.storage.backends.sqlite_traces import SqliteTraceStore

    from argus.loadgen.logs import LogBatch, PeriodicLogs

    topo, _, gen = _generator(scale, begin)
    periodic = PeriodicLogs(topo.instances, random.Random(SEED + 3))
    traces = max(1, int(spans / SPANS_PER_TRACE))
    spacing = (end - begin) / traces
    tstore = await SqliteTraceStore.open(store_dir / "traces.db")
    lstore = await SqliteLogStore.open(store_dir / "logs.db")
    t0, last = time.monotonic(), time.monotonic()
    made = n_spans = n_logs = n = 0
    pending_logs: list[Any] = []
    probe = LogBatch()
    periodic.emit(probe, begin)  # lines per emit, for the first spacing (then it adapts)
    from_traces = traces * 1.42  # the shop topology's log lines per trace
    periodic_every = max(SECOND, int(DAY * probe.records / max(1.0, logs - from_traces)))
    next_periodic = begin
    writes: list[asyncio.Task[None]] = []

    async def flush_logs() -> None:
        nonlocal pending_logs, n_logs
        if pending_logs:
            batch, pending_logs = pending_logs, []
            n_logs += len(batch)
            await lstore.write_logs(TENANT, batch, f"logs-{n}-{n_logs}")

    try:
        while made < traces:
            batch = gen.new_batch()
            while batch.traces < BATCH_TRACES and made < traces:
                made += gen.add_trace(batch, begin + int(made * spacing))
            now = begin + int(made * spacing)
            model = traces_model(batch.request)
            pending_logs.extend(logs_model(batch.logs.request))
            if next_periodic <= now:
                lb, emits = LogBatch(), 0
                while next_periodic <= now:
                    periodic.emit(lb, next_periodic)
                    next_periodic += periodic_every
                    emits += 1
                pending_logs.extend(logs_model(lb.request))
                # Space the periodic lines so that the total reaches the --logs target.
                left = logs - n_logs - len(pending_logs)
                left -= (traces - made) * batch.logs.records / max(1, batch.traces)
                per_emit = max(1.0, lb.records / emits)
                periodic_every = max(SECOND // 10, int((end - now) * per_emit / max(1.0, left)))
            for w in writes:  # one write of each store in flight while the next batch is made
                await w
            writes = [asyncio.create_task(tstore.write_spans(TENANT, model, f"spans-{n}"))]
            n_spans += len(model)
            n += 1
            if len(pending_logs) >= LOG_BATCH:
                writes.append(asyncio.create_task(flush_logs()))
            if time.monotonic() - last > 20:
                last = time.monotonic()
                _progress("spans", n_spans, spans, t0)
                _progress("logs", n_logs, logs, t0)
        for w in writes:
            await w
        await flush_logs()
    finally:
        await tstore.close()
        await lstore.close()
    el = time.monotonic() - t0
    print(f"  traces+logs done: {n_spans:,} spans, {n_logs:,} log records in {el:.0f} s"
          f" ({n_spans / el:,.0f} spans/s, {n_logs / el:,.0f} logs/s incl. generation)",
          flush=True)


async def _fill_metrics(store_dir: Path, spans: int, points: int, scale: int, begin: int,
                        end: int) -> None:
    from argus.proto.pb_metrics import to_model as metrics_model
    from argus.storage.backends.duckdb_metrics import DuckDBMetricStore

    _, metrics, gen = _generator(scale, begin)
    traces = max(1, int(spans / SPANS_PER_TRACE))
    spacing = (end - begin) / traces
    store = await DuckDBMetricStore.open(store_dir / "metrics.duckdb")
    t0, last = time.monotonic(), time.monotonic()
    made = n_points = n = 0
    every = 15 * SECOND
    next_export = begin + every
    try:
        while next_export <= end:
            batch = gen.new_batch()  # same seed, same traces as the span store: fills the metrics
            while made < traces and begin + made * spacing < next_export:
                made += gen.add_trace(batch, begin + int(made * spacing))
            req, _ = metrics.export(next_export)
            model = metrics_model(req)
            await store.write_points(TENANT, model, f"metrics-{n}")
            n += 1
            n_points += len(model)
            left = points - n_points
            every = max(SECOND, int((end - next_export) * len(model) / max(1, left)))
            next_export += every
            if time.monotonic() - last > 20:
                last = time.monotonic()
                _progress("points", n_points, points, t0)
        await store.compact()
    finally:
        await store.close()
    el = time.monotonic() - t0
    print(f"  metrics done: {n_points:,} points in {n} exports in {el:.0f} s"
          f" ({n_points / el:,.0f} points/s incl. generation)", flush=True)


def _child(kind: str, store_dir: str, args: dict[str, int], begin: int, end: int) -> None:
    if kind == "traces":
        asyncio.run(_fill_traces_logs(Path(store_dir), args["spans"], args["logs"],
                                      args["scale"], begin, end))
    else:
        asyncio.run(_fill_metrics(Path(store_dir), args["spans"], args["points"],
                                  args["scale"], begin, end))


def fill(data_dir: Path, args: argparse.Namespace) -> None:
    store_dir = data_dir / "store"
    store_dir.mkdir(parents=True, exist_ok=True)
    end = time.time_ns()
    begin = end - DAY
    sizes = {"spans": args.spans, "logs": args.logs, "points": args.points,
             "scale": args.replica_scale}
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_child, args=(k, str(store_dir), sizes, begin, end))
             for k in ("traces", "metrics")]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"fill process exited with {p.exitcode}")
    print(f"fill: {time.monotonic() - t0:.0f} s wall", flush=True)


def count(data_dir: Path) -> dict[str, int]:
    import duckdb

    store = data_dir / "store"
    out = {}
    for name, db, table in (("spans", "traces.db", "spans"), ("logs", "logs.db", "logs")):
        con = sqlite3.connect(f"file:{store / db}?mode=ro", uri=True)
        try:
            out[name] = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        finally:
            con.close()
    con = duckdb.connect(str(store / "metrics.duckdb"), read_only=True)
    try:
        tables = [r[0] for r in con.execute("SHOW TABLES").fetchall()]
        out["points"] = sum(
            con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]  # type: ignore[index]
            for t in tables if t.endswith("_points")
        )
        out["points_tables"] = ",".join(t for t in tables if t.endswith("_points"))  # type: ignore[assignment]
    finally:
        con.close()
    out["bytes"] = sum(p.stat().st_size for p in store.iterdir() if p.is_file())
    return out


# ---------------------------------------------------------------------------- queries


class GraphQL:
    """A new connection per query (loopback connect: well under 1 ms). On a reused
    keep-alive connection, every answer stalled ~40 ms: the response arrives in two
    segments and the client's delayed ACK holds the second back (Nagle)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    def __call__(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        try:
            conn.request("POST", "/graphql", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = json.loads(resp.read())
        finally:
            conn.close()
        if resp.status != 200 or data.get("errors"):
            raise RuntimeError(f"{resp.status}: {json.dumps(data)[:500]}")
        return data["data"]


DURATION = "http.server.request.duration"
SERIES = "query($q: MetricQuery!) { metricSeries(query: $q) { labels points { value } } }"


def _series(metric: str, start: str, step: str, **kw: Any) -> dict[str, Any]:
    return {"q": {"metric": metric, "start": start, "step": step, "groupBy": ["service.name"],
                  **kw}}


QUERIES: list[tuple[str, str, Any]] = [
    ("dashboard: payment transactions rate (counter, sum by service), 1 h, 1 min steps",
     SERIES, _series("app.payment.transactions", "now-1h", "1m", aggregation="SUM", rate=True)),
    ("dashboard: same, 24 h, 5 min steps",
     SERIES, _series("app.payment.transactions", "now-24h", "5m", aggregation="SUM", rate=True)),
    ("dashboard: CPU by service (gauge, avg over all pods), 1 h, 1 min steps",
     SERIES, _series("process.cpu.utilization", "now-1h", "1m", aggregation="AVG")),
    ("dashboard: same, 24 h, 5 min steps",
     SERIES, _series("process.cpu.utilization", "now-24h", "5m", aggregation="AVG")),
    ("dashboard: p95 of http.server.request.duration by service (histogram), 1 h, 1 min",
     SERIES, _series(DURATION, "now-1h", "1m", quantile=0.95)),
    ("trace by id", ("query($id: String!) { trace(traceId: $id) { spanCount spans { spanId name "
     "service durationNano statusCode attributes } } }"), None),
    ("trace search: service, last hour, 20",
     ('query { traces(filter: {service: "checkout", start: "now-1h", limit: 20}) '
     "{ traceId rootName durationNano spanCount hasError } }"), {}),
    ("serviceMap, last hour",
     ('query { serviceMap(start: "now-1h") { nodes { id type stats { count errors p95 } } '
     "edges { source target stats { count errors p95 } } } }"), {}),
    ("redMetrics checkout, last hour, 1 min steps",
     ('query { redMetrics(service: "checkout", start: "now-1h", step: "1m") '
     "{ timeUnixNano count errors p50 p95 p99 } }"), {}),
    ("log search: contains, last hour, 100",
     ('query { logs(filter: {start: "now-1h", contains: "payment"}, first: 100) '
     "{ records { timeUnixNano severityText bodyText service } nextCursor } }"), {}),
    ("logHistogram, last hour, 1 min steps",
     ('query { logHistogram(filter: {start: "now-1h"}, step: "1m") '
     "{ step buckets { start total error } } }"), {}),
]


def measure(gql: GraphQL, runs: int) -> list[tuple[str, float, float, str]]:
    found = gql('query { traces(filter: {start: "now-24h", limit: 200}) { traceId } }')
    ids = [t["traceId"] for t in found["traces"]]
    for service in ("frontend", "checkout", "payment"):
        found = gql('query($s: String) { traces(filter: {service: $s, start: "now-24h", '
                    "limit: 100}) { traceId } }", {"s": service})
        ids += [t["traceId"] for t in found["traces"]]
    if not ids:
        raise RuntimeError("trace search found no traces")
    rng = random.Random(1)
    rows = []
    for label, query, variables in QUERIES:
        def run(query: str = query, variables: Any = variables) -> Any:
            return gql(query, variables if variables is not None else {"id": rng.choice(ids)})

        first = run()  # warm
        samples = []
        for _ in range(runs):
            t0 = time.perf_counter()
            run()
            samples.append((time.perf_counter() - t0) * 1000)
        samples.sort()
        p50 = samples[len(samples) // 2]
        p95 = samples[min(len(samples) - 1, max(0, round(len(samples) * 0.95) - 1))]
        rows.append((label, p50, p95, _shape(first)))
        print(f"  {label}: p50 {p50:.1f} ms, p95 {p95:.1f} ms  ({_shape(first)})", flush=True)
    return rows


def _shape(data: Any) -> str:
    (key, value), = data.items()
    if isinstance(value, list):
        extra = ""
        if value and isinstance(value[0], dict) and "points" in value[0]:
            extra = f", {sum(len(s['points']) for s in value):,} points"
        return f"{len(value)} {key}{extra}"
    if key == "trace":
        return f"{value['spanCount']} spans" if value else "not found"
    if key == "serviceMap":
        return f"{len(value['nodes'])} nodes, {len(value['edges'])} edges"
    if key == "logs":
        return f"{len(value['records'])} records"
    if key == "logHistogram":
        return f"{len(value['buckets'])} buckets, {sum(b['total'] for b in value['buckets']):,} lines"
    return key


# ------------------------------------------------------------------------------ server


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spans", type=int, default=5_000_000)
    ap.add_argument("--logs", type=int, default=5_000_000)
    ap.add_argument("--points", type=int, default=10_000_000)
    ap.add_argument("--replica-scale", type=int, default=16,
                    help="pods per service x this: more series per metric export (default 16)")
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--dir", help="data dir (default: a new temp dir)")
    ap.add_argument("--skip-fill", action="store_true", help="query an already filled --dir")
    ap.add_argument("--keep", action="store_true", help="keep the data dir")
    ap.add_argument("--argus-cmd", default=str(Path(sys.executable).with_name("argus")))
    args = ap.parse_args(argv)

    data_dir = Path(args.dir or tempfile.mkdtemp(prefix="argus-query-day-"))
    proc: subprocess.Popen[bytes] | None = None
    log_path = data_dir.parent / (data_dir.name + ".serve.log")
    try:
        if not args.skip_fill:
            print(f"filling {data_dir}: {args.spans:,} spans, {args.logs:,} logs, "
                  f"{args.points:,} points over the last 24 h", flush=True)
            fill(data_dir, args)
        sizes = count(data_dir)
        print(f"stored: {sizes['spans']:,} spans, {sizes['logs']:,} log records, "
              f"{sizes['points']:,} metric points ({sizes['points_tables']}), "
              f"{sizes['bytes'] / 1e9:.2f} GB", flush=True)

        host, api = "127.0.0.1", free_port()
        cmd = [*shlex.split(args.argus_cmd), "serve", "--data-dir", str(data_dir),
               "--api", f"{host}:{api}", "--otlp-http", f"{host}:{free_port()}",
               "--otlp-grpc", f"{host}:{free_port()}"]
        print(f"starting: {shlex.join(cmd)}  (log: {log_path})", flush=True)
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        _wait_ready(f"http://{host}:{api}/readyz", proc, 300)
        rows = measure(GraphQL(host, api), args.runs)
    except (RuntimeError, OSError) as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        if log_path.exists():
            tail = log_path.read_text(errors="replace").splitlines()[-30:]
            print("--- server log (tail) ---\n" + "\n".join(tail), file=sys.stderr)
        return 1
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if not args.keep and not args.skip_fill:
            shutil.rmtree(data_dir, ignore_errors=True)

    print(f"\n{sizes['spans']:,} spans, {sizes['logs']:,} log records, "
          f"{sizes['points']:,} metric points over 24 h; {args.runs} runs per query "
          "(after one warm-up), GraphQL over HTTP, one client, a connection per query\n")
    print("| query | result | p50 | p95 | target | met? |")
    print("|---|---|---:|---:|---:|---|")
    for label, p50, p95, shape in rows:
        met = "yes" if p95 < TARGET_MS else "**no**"
        print(f"| {label} | {shape} | {p50:.1f} ms | {p95:.1f} ms | < {TARGET_MS:.0f} ms | {met} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
