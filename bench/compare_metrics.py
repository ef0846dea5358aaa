"""Side by side on the same data: Argus vs VictoriaMetrics vs InfluxDB 1.6.7 (metrics).

    /work/venv/bin/python bench/compare_metrics.py [--points 10000000] [--series 1000]
        [--clients 8] [--runs 9] [--steps 300,330] [--skip-vm] [--skip-influxdb]
        [--argus-cmd "/work/venv/bin/argus"]

Design
------
* One dataset, generated once in memory (numpy): `--series` gauge series (default 1,000),
  labelled as bench/store_metrics.py labels them (`host`, `dc` (10 values), `core`, and
  the service of its resource, 20 services), one point per `--interval` s (10 s) each,
  ending just before now, `--points` points in total (10 M: 10,000 per series, 27.8 h).
  Values are percentages with two decimals. No point lies on a query step boundary
  (they sit half an interval off the grid), so "(t-step, t]" and "[t, t+step)" buckets
  hold the same points.
* The same samples go to every system through its native ingest, encoded before the
  clock starts:
  - Argus: OTLP/HTTP protobuf ExportMetricsServiceRequest to /v1/metrics, one request
    per scrape (every series at one timestamp: `--series` points per request, grouped
    into one ResourceMetrics per service with bench/store_metrics.py's eight resource
    attributes, point attributes host/dc/core), as an OTel SDK exports them.
  - VictoriaMetrics: Influx line protocol to /write (`cpu,core=..,dc=..,host=..,
    service=.. utilization=V TS`, stored as `cpu_utilization`), `--lines` lines per
    request (10,000).
  - InfluxDB 1.6.7: the very same line-protocol bodies to /write?db=bench (the database
    is created first). Line protocol carries host/dc/core/service as tags, not the seven
    constant resource attributes the OTLP requests carry; the series are the same.
  The same `--clients` keep-alive connections (bench/ingest.py's minimal HTTP client)
  for every system; a non-2xx answer (429/503/500) is retried with the same body.
* Ingest rate = samples / seconds from the first send until all the data is queryable:
  Argus until /readyz shows `indexing.metrics.lag_bytes` 0 (and the indexed-item count
  grew by every sample), VictoriaMetrics until `sum(count_over_time(...))` returns N
  (with a new no-op matcher per poll: it caches which series a selector matches, and a
  selector polled before its series exist stays empty for ~10 s after they do),
  InfluxDB until `SELECT count(...)` returns N. Polls start once every request is
  answered; the moment a poll was *sent* counts, so its own duration is not charged. "Accepted" = samples / seconds until the last
  2xx answer: for Argus a 200 means durable in its fsync'ed write-ahead log, not yet
  queryable; InfluxDB's 204 means in its WAL and queryable; VictoriaMetrics answers
  before its in-memory buffer is flushed (~1 s) and does not fsync per request.
* Then the server's CPU is let settle (below 0.1 core for 3 s, at most `--settle-max`
  s: rollups, merges, compactions finish), and the query runs: the average of `cpu`
  by `dc` over the whole range (all N points), at each step of `--steps` (300 s: ~334
  points per group; 330 s: ~304), warmed once, then `--runs` timed runs; median and p95
  of the HTTP round trip (response read, not parsed):
  - Argus: GraphQL `metricSeries(aggregation: AVG, groupBy: ["dc"], step)`: per series
    the mean in [t, t+step), then the mean of those across the series of each dc.
  - VictoriaMetrics: `avg by (dc) (avg_over_time(cpu_utilization[step]))` at
    /api/v1/query_range with `nocache=1` (its rollup result cache would otherwise answer
    repeats without touching the samples): per series the mean in (t-step, t], then the
    mean across series. Its point at t is compared with Argus's bucket at t-step.
  - InfluxDB: `SELECT mean(utilization) FROM cpu WHERE <range> GROUP BY time(step), dc
    fill(none)`: the mean of all points of the dc in [t, t+step). That equals the mean
    of per-series means only when every series has the same number of points per bucket,
    which holds for this dataset (it would not with gaps).
  Every engine works on raw samples except where Argus's 1-, 5- and 10-minute rollups
  tile the step: at 300 s Argus reads its 5-minute rollups (kept up by the writes
  themselves, a few 10-minute chunks per write; the newest minutes are read raw), at
  330 s it reads the raw points like the others. With few runs "p95" is the slowest. The answers are
  compared (same groups, same buckets, values within 1e-6 relative); a warning is
  printed if they disagree.
* One system at a time, each started fresh in its own temp dir and stopped (and its dir
  removed) before the next, so they never compete for the cores. The client (this
  process) runs on the same machine and is charged nothing; its CPU is printed.
  Every server and temp dir is removed on exit, Ctrl-C and SIGTERM included.

Prints markdown tables: per system ingest (queryable) and accepted samples/s, query
median/p95 per step, and Argus's ratios to VictoriaMetrics (goals: ingest >= 0.5x,
query time <= 1.5x) and to InfluxDB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import shlex
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ingest import HttpConn, _cpu_seconds, _dir_bytes, _pct, free_port
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from store_metrics import SCOPE, SERVICES, _labels, _resources

from argus.loadgen.sender import rejected_items, retry_after_seconds

S = 1_000_000_000
METRIC = "cpu_utilization"  # VictoriaMetrics' name for measurement cpu, field utilization
DB = "bench"

# Groups of one query answer: {dc: {bucket start ns: value}}.
Groups = dict[str, dict[int, float]]

# --------------------------------------------------------------------------- dataset


@dataclass
class Dataset:
    series: int
    steps: int  # points per series
    interval_ns: int
    first_ns: int  # timestamp of the first scrape
    values: np.ndarray  # (steps, series) float64
    labels: list[dict[str, Any]]  # per series: host, dc, core (point attributes)
    services: list[int]  # per series: index into store_metrics._resources()

    @property
    def total(self) -> int:
        return self.steps * self.series

    @property
    def last_ns(self) -> int:
        return self.first_ns + (self.steps - 1) * self.interval_ns

    def ts(self, step: int) -> int:
        return self.first_ns + step * self.interval_ns


def make_dataset(points: int, series: int, interval_s: int, seed: int) -> Dataset:
    steps = max(1, points // series)
    interval = interval_s * S
    # Points sit half an interval off the whole-interval grid (so off every query step
    # boundary, all of which are multiples of the interval), the last one before now.
    end = time.time_ns() // interval * interval
    first = end - steps * interval + interval // 2
    rng = np.random.default_rng(seed)
    base = rng.uniform(10, 70, series)
    noise = rng.normal(0, 2.0, (steps, series))
    level = np.zeros(series)
    values = np.empty((steps, series))
    for step in range(steps):  # a mean-reverting walk around each series' base load
        level = 0.97 * level + noise[step]
        values[step] = level
    values = np.round(np.clip(base + values, 0, 100), 2)
    return Dataset(
        series,
        steps,
        interval,
        first,
        values,
        [_labels(i) for i in range(series)],
        [i % SERVICES for i in range(series)],
    )


def otlp_bodies(ds: Dataset) -> list[bytes]:
    """One ExportMetricsServiceRequest per scrape. A template with sentinel timestamps and
    values is serialized once; each request patches the 8-byte fields in place."""
    ts_mark = 0x0123456789ABCDEF
    req = ExportMetricsServiceRequest()
    resources = _resources()
    order: list[int] = []
    for svc in range(SERVICES):
        members = [i for i in range(ds.series) if ds.services[i] == svc]
        if not members:
            continue
        rm = req.resource_metrics.add()
        for key, value in resources[svc].attributes.items():
            kv = rm.resource.attributes.add()
            kv.key, kv.value.string_value = key, value
        sm = rm.scope_metrics.add()
        sm.scope.name, sm.scope.version = SCOPE.name, SCOPE.version
        metric = sm.metrics.add()
        metric.name, metric.unit = METRIC, "%"
        metric.description = "CPU utilization"
        for i in members:
            dp = metric.gauge.data_points.add()
            dp.time_unix_nano = ts_mark
            dp.as_double = _sentinel(i)
            for key, value in ds.labels[i].items():
                kv = dp.attributes.add()
                kv.key = key
                if isinstance(value, int):
                    kv.value.int_value = value
                else:
                    kv.value.string_value = value
            order.append(i)
    template = req.SerializeToString()
    # time_unix_nano is field 3 (fixed64, tag 0x19), as_double field 4 (double, tag 0x21).
    ts_at = _find_all(template, b"\x19" + struct.pack("<Q", ts_mark))
    val_at = []
    for i in order:
        found = _find_all(template, b"\x21" + struct.pack("<d", _sentinel(i)))
        assert len(found) == 1, "sentinel value not unique in the template"
        val_at.append(found[0] + 1)
    assert len(ts_at) == ds.series, "sentinel timestamp not found once per point"
    ts_idx = (np.array(ts_at) + 1)[:, None] + np.arange(8)
    val_idx = np.array(val_at)[:, None] + np.arange(8)
    buf = np.frombuffer(template, dtype=np.uint8).copy()
    cols = np.array(order)
    out = []
    for step in range(ds.steps):
        buf[ts_idx] = np.frombuffer(struct.pack("<Q", ds.ts(step)), dtype=np.uint8)
        buf[val_idx] = ds.values[step, cols].astype("<f8").view(np.uint8).reshape(-1, 8)
        out.append(buf.tobytes())
    _check_otlp(out[-1], ds)
    return out


def _sentinel(i: int) -> float:
    value: float = struct.unpack("<d", b"\x5a\xa5" + i.to_bytes(4, "little") + b"\x3c\x41")[0]
    return value


def _find_all(data: bytes, needle: bytes) -> list[int]:
    out, i = [], data.find(needle)
    while i >= 0:
        out.append(i)
        i = data.find(needle, i + 1)
    return out


def _check_otlp(body: bytes, ds: Dataset) -> None:
    """Decode the last request back and compare it with the dataset."""
    req = ExportMetricsServiceRequest.FromString(body)
    seen = 0
    for rm in req.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                for dp in m.gauge.data_points:
                    host = next(kv.value.string_value for kv in dp.attributes if kv.key == "host")
                    i = int(host.rsplit("-", 1)[1])
                    assert dp.time_unix_nano == ds.ts(ds.steps - 1)
                    assert dp.as_double == ds.values[ds.steps - 1, i]
                    seen += 1
    assert seen == ds.series


def line_bodies(ds: Dataset, lines_per_request: int) -> list[bytes]:
    """Influx line protocol, `lines_per_request` lines (whole scrapes) per body."""
    prefixes = []
    for i in range(ds.series):
        tags = {**{k: str(v) for k, v in ds.labels[i].items()}, "service": f"svc-{ds.services[i]}"}
        prefixes.append("cpu," + ",".join(f"{k}={tags[k]}" for k in sorted(tags)) + " utilization=")
    per_body = max(1, lines_per_request // ds.series)
    out = []
    for lo in range(0, ds.steps, per_body):
        parts = []
        for step in range(lo, min(ds.steps, lo + per_body)):
            ts = ds.ts(step)
            parts.append(
                "".join(f"{p}{v!r} {ts}\n" for p, v in zip(prefixes, ds.values[step].tolist()))
            )
        out.append("".join(parts).encode())
    return out


# --------------------------------------------------------------------------- servers


def _die_with_parent() -> None:
    """Linux: the server gets SIGTERM if this process dies without cleaning up."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Server:
    name = ""

    def __init__(self, root: Path) -> None:
        self.dir = Path(
            tempfile.mkdtemp(prefix=self.name.lower().replace(" ", "-") + "-", dir=root)
        )
        self.log = self.dir.parent / (self.dir.name + ".log")
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = free_port()

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready_url(self) -> str:
        raise NotImplementedError

    def start(self) -> None:
        cmd = self.command()
        print(f"[{self.name}] starting: {shlex.join(cmd)}", file=sys.stderr)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 (no threads run here then)
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with code {self.proc.returncode}")
            try:
                with urllib.request.urlopen(self.ready_url(), timeout=1) as r:
                    if r.status in (200, 204):
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after 90 s")

    def stop(self) -> None:
        proc = self.proc
        if proc is not None:
            print(f"[{self.name}] stopping", file=sys.stderr)
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    pass
            # Whatever is left of its process group (children included) goes now.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def cpu(self) -> float:
        return _cpu_seconds(self.proc.pid) if self.proc else 0.0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


class ArgusServer(Server):
    name = "Argus"

    def __init__(self, root: Path, cmd: str) -> None:
        super().__init__(root)
        self.cmd, self.api = cmd, free_port()

    def command(self) -> list[str]:
        return [
            *shlex.split(self.cmd),
            "serve",
            "--data-dir",
            str(self.dir),
            "--otlp-http",
            f"127.0.0.1:{self.port}",
            "--api",
            f"127.0.0.1:{self.api}",
            "--otlp-grpc",
            f"127.0.0.1:{free_port()}",
        ]

    def ready_url(self) -> str:
        return f"http://127.0.0.1:{self.api}/readyz"

    def indexing(self) -> dict[str, int]:
        with urllib.request.urlopen(self.ready_url(), timeout=10) as r:
            return json.loads(r.read())["indexing"]["metrics"]  # type: ignore[no-any-return]


class VictoriaMetrics(Server):
    name = "VictoriaMetrics"

    def command(self) -> list[str]:
        return [
            "victoria-metrics",
            "-storageDataPath",
            str(self.dir),
            "-httpListenAddr",
            f"127.0.0.1:{self.port}",
            "-search.latencyOffset=0s",
            "-retentionPeriod=100y",
        ]

    def ready_url(self) -> str:
        return self.url("/health")


class InfluxDB(Server):
    name = "InfluxDB"

    def command(self) -> list[str]:
        conf = self.dir / "influxdb.conf"
        conf.write_text(f"""bind-address = "127.0.0.1:{free_port()}"
reporting-disabled = true
[meta]
  dir = "{self.dir}/meta"
[data]
  dir = "{self.dir}/data"
  wal-dir = "{self.dir}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
[monitor]
  store-enabled = false
""")
        return ["influxd", "run", "-config", str(conf)]

    def ready_url(self) -> str:
        return self.url("/ping")

    def start(self) -> None:
        super().start()
        influxql(self, f"CREATE DATABASE {DB}", post=True)


# --------------------------------------------------------------------------- HTTP helpers


def http(
    url: str, body: bytes | None = None, ctype: str = "application/json", timeout: float = 300
) -> bytes:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": ctype} if body else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.read()  # type: ignore[no-any-return]
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{url}: HTTP {exc.code}: {exc.read()[:500]!r}") from None


def influxql(server: Server, q: str, post: bool = False) -> Any:
    params = urllib.parse.urlencode({"db": DB, "q": q, "epoch": "ns"})
    if post:
        raw = http(server.url("/query"), params.encode(), "application/x-www-form-urlencoded")
    else:
        raw = http(server.url(f"/query?{params}"))
    data = json.loads(raw)
    for result in data.get("results", []):
        if "error" in result:
            raise RuntimeError(f"InfluxQL error: {result['error']}")
    return data


# --------------------------------------------------------------------------- ingest


@dataclass
class SendResult:
    t_first: float = 0.0
    t_last_ok: float = 0.0
    retried: dict[str, int] = field(default_factory=dict)
    rejected: int = 0


async def send_all(
    port: int, path: str, bodies: list[bytes], clients: int, argus_items: list[int] | None = None
) -> SendResult:
    """POST every body once (retrying the same body on non-2xx) over `clients` keep-alive
    connections; monotonic time of the first send and of the last 2xx answer."""
    res = SendResult()
    nxt = 0

    async def worker() -> None:
        nonlocal nxt
        conn = HttpConn("127.0.0.1", port)
        while nxt < len(bodies):
            n = nxt
            nxt += 1
            for attempt in range(200):
                try:
                    status, headers, data = await conn.post(path, bodies[n])
                except (OSError, asyncio.IncompleteReadError) as exc:
                    status, headers, data = -1, {}, type(exc).__name__.encode()
                if 200 <= status < 300:
                    res.t_last_ok = max(res.t_last_ok, time.monotonic())
                    if argus_items is not None:
                        res.rejected += rejected_items(
                            "metrics", headers.get("content-type", ""), data
                        )
                    break
                key = str(status) if status > 0 else data.decode()
                res.retried[key] = res.retried.get(key, 0) + 1
                if status in (400, 401, 403, 404, 413, 415):
                    raise RuntimeError(f"POST {path}: HTTP {status}: {data[:300]!r}")
                wait = retry_after_seconds(headers.get("retry-after"))
                await asyncio.sleep(min(1.0, 0.05 * (attempt + 1) if wait is None else wait))
            else:
                raise RuntimeError(f"POST {path}: gave up after 200 attempts ({key})")
        conn.close()

    res.t_first = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return res


def run_send(
    port: int, path: str, bodies: list[bytes], clients: int, argus_items: list[int] | None = None
) -> SendResult:
    try:
        import uvloop

        return uvloop.run(send_all(port, path, bodies, clients, argus_items))
    except ImportError:
        return asyncio.run(send_all(port, path, bodies, clients, argus_items))


def wait_queryable(check: Callable[[], bool], timeout: float) -> float:
    """Poll `check` until true; the monotonic time the successful poll was sent."""
    deadline = time.monotonic() + timeout
    while True:
        sent = time.monotonic()
        if check():
            return sent
        if sent > deadline:
            raise RuntimeError(f"data not all queryable after {timeout:.0f} s")
        time.sleep(0.25)


def settle(server: Server, limit: float, max_seconds: float) -> float:
    """Wait until the server uses under `limit` cores for 3 s; seconds waited."""
    began = time.monotonic()
    while time.monotonic() - began < max_seconds:
        c0, t0 = server.cpu(), time.monotonic()
        time.sleep(3)
        if (server.cpu() - c0) / (time.monotonic() - t0) < limit:
            break
    return time.monotonic() - began


# --------------------------------------------------------------------------- queries


@dataclass
class QueryCase:
    step_s: int
    start_ns: int
    end_ns: int


def query_cases(ds: Dataset, steps: list[int]) -> list[QueryCase]:
    out = []
    for step_s in steps:
        step = step_s * S
        start = ds.first_ns // step * step
        end = -(-(ds.last_ns + 1) // step) * step
        out.append(QueryCase(step_s, start, end))
    return out


def argus_query(
    server: ArgusServer, case: QueryCase
) -> tuple[Callable[[], bytes], Callable[[bytes], Groups]]:
    gql = (
        "query($q: MetricQuery!) { metricSeries(query: $q) "
        "{ labels points { timeUnixNano value } } }"
    )
    body = json.dumps(
        {
            "query": gql,
            "variables": {
                "q": {
                    "metric": METRIC,
                    "start": str(case.start_ns),
                    "end": str(case.end_ns),
                    "step": f"{case.step_s}s",
                    "aggregation": "AVG",
                    "groupBy": ["dc"],
                }
            },
        }
    ).encode()
    url = f"http://127.0.0.1:{server.api}/graphql"

    def parse(raw: bytes) -> Groups:
        data = json.loads(raw)
        if data.get("errors"):
            raise RuntimeError(f"GraphQL errors: {data['errors']}")
        return {
            s["labels"].get("dc", ""): {
                int(p["timeUnixNano"]): float(p["value"]) for p in s["points"]
            }
            for s in data["data"]["metricSeries"]
        }

    return (lambda: http(url, body)), parse


def vm_query(
    server: Server, case: QueryCase
) -> tuple[Callable[[], bytes], Callable[[bytes], Groups]]:
    step = case.step_s
    params = urllib.parse.urlencode(
        {
            "query": f"avg by (dc) (avg_over_time({METRIC}[{step}s]))",
            "start": case.start_ns // S + step,
            "end": case.end_ns // S,
            "step": f"{step}s",
            "nocache": "1",
        }
    )
    url = server.url(f"/api/v1/query_range?{params}")

    def parse(raw: bytes) -> Groups:
        data = json.loads(raw)
        if data.get("status") != "success":
            raise RuntimeError(f"VictoriaMetrics: {data}")
        # The value at t covers (t-step, t]: file it under the bucket start t-step.
        return {
            r["metric"].get("dc", ""): {
                round(float(t) * 1000) * 1_000_000 - step * S: float(v) for t, v in r["values"]
            }
            for r in data["data"]["result"]
        }

    return (lambda: http(url)), parse


def influx_query(
    server: Server, case: QueryCase
) -> tuple[Callable[[], bytes], Callable[[bytes], Groups]]:
    q = (
        f"SELECT mean(utilization) FROM cpu WHERE time >= {case.start_ns} AND time < "
        f"{case.end_ns} GROUP BY time({case.step_s}s), dc fill(none)"
    )
    url = server.url("/query?" + urllib.parse.urlencode({"db": DB, "q": q, "epoch": "ns"}))

    def parse(raw: bytes) -> Groups:
        data = json.loads(raw)
        result = data["results"][0]
        if "error" in result:
            raise RuntimeError(f"InfluxQL error: {result['error']}")
        return {
            s["tags"]["dc"]: {int(t): float(v) for t, v in s["values"] if v is not None}
            for s in result.get("series", [])
        }

    return (lambda: http(url)), parse


def timed(fn: Callable[[], bytes], runs: int) -> tuple[list[float], bytes]:
    raw = fn()  # warm-up
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        raw = fn()
        samples.append(time.perf_counter() - began)
    return samples, raw


def compare(ref: Groups, other: Groups) -> tuple[bool, str]:
    if set(ref) != set(other):
        return False, f"groups differ: {sorted(ref)} vs {sorted(other)}"
    worst, missing = 0.0, 0
    for key, points in ref.items():
        theirs = other[key]
        if set(points) != set(theirs):
            missing += len(set(points) ^ set(theirs))
        for t in set(points) & set(theirs):
            a, b = points[t], theirs[t]
            worst = max(worst, abs(a - b) / max(abs(a), abs(b), 1e-12))
    shape = f"{len(ref)} groups x {max(len(p) for p in ref.values())} points"
    ok = missing == 0 and worst <= 1e-6
    return ok, f"{shape}, {missing} buckets not in both, max relative difference {worst:.1e}"


# --------------------------------------------------------------------------- one system


@dataclass
class Outcome:
    name: str
    samples: int = 0
    queryable_s: float = 0.0
    accepted_s: float = 0.0
    server_cores: float = 0.0
    client_cores: float = 0.0
    settle_s: float = 0.0
    disk_bytes: int = 0
    retried: dict[str, int] = field(default_factory=dict)
    queries: dict[int, list[float]] = field(default_factory=dict)
    answers: dict[int, Groups] = field(default_factory=dict)
    note: str = ""


def run_system(
    server: Server,
    ds: Dataset,
    bodies: list[bytes],
    args: argparse.Namespace,
    cases: list[QueryCase],
) -> Outcome:
    out = Outcome(server.name, samples=ds.total)
    server.start()
    if isinstance(server, ArgusServer):
        before = server.indexing()["indexed_items"]
        path = "/v1/metrics"

        def done() -> bool:
            state = server.indexing()
            return state["lag_bytes"] == 0 and state["indexed_items"] - before >= ds.total
    elif isinstance(server, VictoriaMetrics):
        path = "/write?precision=ns"
        span = (ds.last_ns - ds.first_ns) // S + 3600
        polls = iter(range(1 << 30))

        def done() -> bool:
            # A new no-op matcher per poll: VictoriaMetrics caches which series a selector
            # matches, so polling one selector before the series exist pins an empty
            # answer for ~10 s after they do (seen here), which is not ingest time.
            selector = f'{METRIC}{{core!="poll-{next(polls)}"}}'
            url = server.url(
                "/api/v1/query?"
                + urllib.parse.urlencode(
                    {
                        "query": f"sum(count_over_time({selector}[{span}s]))",
                        "time": ds.last_ns // S + 1,
                        "nocache": "1",
                    }
                )
            )
            result = json.loads(http(url))["data"]["result"]
            return bool(result) and int(float(result[0]["value"][1])) == ds.total

    else:
        path = f"/write?db={DB}&precision=ns"

        def done() -> bool:
            series = influxql(server, "SELECT count(utilization) FROM cpu")["results"][0]
            got = series.get("series", [{}])[0].get("values", [[0, 0]])[0][1]
            return int(got) == ds.total

    print(
        f"[{server.name}] ingesting {ds.total:,} samples in {len(bodies):,} requests over "
        f"{args.clients} connections ...",
        file=sys.stderr,
    )
    cpu0, client0 = server.cpu(), time.process_time()
    sent = run_send(
        server.port,
        path,
        bodies,
        args.clients,
        [ds.series] * len(bodies) if isinstance(server, ArgusServer) else None,
    )
    client1 = time.process_time()
    print(
        f"[{server.name}] all acknowledged after {sent.t_last_ok - sent.t_first:.1f} s; "
        "waiting until queryable ...",
        file=sys.stderr,
    )
    if sent.rejected:
        print(
            f"WARNING: {server.name} rejected {sent.rejected:,} points (partial success)",
            file=sys.stderr,
        )
    t_query = wait_queryable(done, args.queryable_timeout)
    out.queryable_s = t_query - sent.t_first
    out.accepted_s = sent.t_last_ok - sent.t_first
    out.server_cores = (server.cpu() - cpu0) / (time.monotonic() - sent.t_first)
    out.client_cores = (client1 - client0) / max(1e-9, sent.t_last_ok - sent.t_first)
    out.retried = sent.retried
    print(
        f"[{server.name}] queryable after {out.queryable_s:.1f} s; letting it settle ...",
        file=sys.stderr,
    )
    out.settle_s = settle(server, 0.1, args.settle_max)
    out.disk_bytes = _dir_bytes(server.dir)
    for case in cases:
        if isinstance(server, ArgusServer):
            fn, parse = argus_query(server, case)
        elif isinstance(server, VictoriaMetrics):
            fn, parse = vm_query(server, case)
        else:
            fn, parse = influx_query(server, case)
        samples, raw = timed(fn, args.runs)
        out.queries[case.step_s] = samples
        out.answers[case.step_s] = parse(raw)
        print(
            f"[{server.name}] step {case.step_s}s: median "
            f"{statistics.median(samples) * 1e3:,.1f} ms",
            file=sys.stderr,
        )
    return out


# --------------------------------------------------------------------------- report


def report(
    ds: Dataset,
    args: argparse.Namespace,
    results: list[Outcome],
    cases: list[QueryCase],
    built: dict[str, float],
) -> None:
    hours = (ds.last_ns - ds.first_ns + ds.interval_ns) / 3600 / S
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    print(f"\n### Argus vs VictoriaMetrics vs InfluxDB: {ds.total:,} samples\n")
    print(
        f"{ds.series:,} gauge series x {ds.steps:,} points every "
        f"{ds.interval_ns // S} s ({hours:.1f} h); {os.cpu_count()} cores shared by the "
        f"server and the client (this process), {args.clients} connections; one system "
        f"at a time, each fresh. Load average at the end: {load[0]:.1f}.\n"
    )
    steps = [c.step_s for c in cases]
    head = (
        "| system | ingest, queryable | accepted (all 2xx) | queryable after | "
        "server CPU | " + " | ".join(f"avg by dc, step {s} s, median (p95)" for s in steps) + " |"
    )
    print(head)
    print("|---|---:|---:|---:|---:|" + "---:|" * len(steps))
    for r in results:
        cells = [
            f"{statistics.median(r.queries[s]) * 1e3:,.1f} ms "
            f"({_pct(r.queries[s], 0.95) * 1e3:,.1f})"
            for s in steps
        ]
        print(
            f"| {r.name} | {r.samples / r.queryable_s:,.0f} samples/s | "
            f"{r.samples / r.accepted_s:,.0f} samples/s | {r.queryable_s:,.1f} s | "
            f"{r.server_cores:.2f} cores | " + " | ".join(cells) + " |"
        )
    print(
        "\n| system | client CPU while sending | retried requests | settle before "
        "queries | data dir after | encoding (untimed) |"
    )
    print("|---|---:|---|---:|---:|---:|")
    for r in results:
        retried = ", ".join(f"{k}: {v}" for k, v in sorted(r.retried.items())) or "0"
        print(
            f"| {r.name} | {r.client_cores:.2f} cores | {retried} | {r.settle_s:.0f} s | "
            f"{r.disk_bytes / r.samples:.1f} B/sample | {built.get(r.name, 0):.0f} s |"
        )

    by = {r.name: r for r in results}
    argus = by.get("Argus")
    if argus is None:
        return
    print(
        "\n| Argus / peer | ingest (queryable), higher is better | accepted | "
        + " | ".join(f"query time step {s} s, lower is better" for s in steps)
        + " |"
    )
    print("|---|---:|---:|" + "---:|" * len(steps))
    for peer in ("VictoriaMetrics", "InfluxDB"):
        if peer not in by:
            continue
        p = by[peer]
        ingest = (argus.samples / argus.queryable_s) / (p.samples / p.queryable_s)
        accepted = (argus.samples / argus.accepted_s) / (p.samples / p.accepted_s)
        cells = []
        for s in steps:
            ratio = statistics.median(argus.queries[s]) / statistics.median(p.queries[s])
            goal = (
                " (goal <= 1.5: " + ("met" if ratio <= 1.5 else "missed") + ")"
                if peer == "VictoriaMetrics"
                else ""
            )
            cells.append(f"{ratio:.2f}x{goal}")
        goal = (
            " (goal >= 0.5: " + ("met" if ingest >= 0.5 else "missed") + ")"
            if peer == "VictoriaMetrics"
            else ""
        )
        print(
            f"| Argus / {peer} | {ingest:.2f}x{goal} | {accepted:.2f}x | "
            + " | ".join(cells)
            + " |"
        )

    print()
    for s in steps:
        for peer in ("VictoriaMetrics", "InfluxDB"):
            if peer not in by:
                continue
            ok, text = compare(argus.answers[s], by[peer].answers[s])
            prefix = "answers agree" if ok else "WARNING: answers disagree"
            print(f"- step {s} s, Argus vs {peer}: {prefix}: {text}")


# --------------------------------------------------------------------------- main


def _default_argus() -> str:
    here = Path(sys.executable).with_name("argus")
    return str(here) if here.exists() else "argus"


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--points", type=int, default=10_000_000, help="samples in total")
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--interval", type=int, default=10, help="seconds between points")
    ap.add_argument("--clients", type=int, default=8, help="concurrent connections")
    ap.add_argument("--lines", type=int, default=10_000, help="line-protocol lines per request")
    ap.add_argument("--steps", default="300,330", help="query steps in seconds")
    ap.add_argument("--runs", type=int, default=9, help="timed query runs (at least 5)")
    ap.add_argument("--skip-vm", action="store_true")
    ap.add_argument("--skip-influxdb", action="store_true")
    ap.add_argument("--skip-argus", action="store_true")
    ap.add_argument("--argus-cmd", default=_default_argus())
    ap.add_argument("--queryable-timeout", type=float, default=3600.0)
    ap.add_argument("--settle-max", type=float, default=600.0)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    args.runs = max(5, args.runs)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    steps = [int(s) for s in args.steps.split(",") if s.strip()]
    print(f"generating {args.points:,} samples ...", file=sys.stderr)
    ds = make_dataset(args.points, args.series, args.interval, args.seed)
    cases = query_cases(ds, steps)
    root = Path(tempfile.mkdtemp(prefix="argus-compare-"))
    results: list[Outcome] = []
    built: dict[str, float] = {}
    current: Server | None = None
    lines: list[bytes] | None = None
    try:
        plan: list[str] = (
            ([] if args.skip_argus else ["Argus"])
            + ([] if args.skip_vm else ["VictoriaMetrics"])
            + ([] if args.skip_influxdb else ["InfluxDB"])
        )
        for name in plan:
            began = time.monotonic()
            if name == "Argus":
                bodies = otlp_bodies(ds)
                current = ArgusServer(root, args.argus_cmd)
            else:
                if lines is None:
                    lines = line_bodies(ds, args.lines)
                bodies = lines
                current = VictoriaMetrics(root) if name == "VictoriaMetrics" else InfluxDB(root)
            built[name] = time.monotonic() - began
            print(
                f"[{name}] {len(bodies):,} bodies, {sum(map(len, bodies)) / ds.total:.0f} "
                f"B/sample, encoded in {built[name]:.1f} s",
                file=sys.stderr,
            )
            try:
                results.append(run_system(current, ds, bodies, args, cases))
            except (RuntimeError, OSError) as exc:
                print(
                    f"[{name}] failed: {exc}\n--- log tail ---\n{current.log_tail()}",
                    file=sys.stderr,
                )
                return 1
            finally:
                current.stop()
                current = None
            del bodies
    except KeyboardInterrupt:
        print("interrupted; stopping servers", file=sys.stderr)
        return 130
    finally:
        if current is not None:
            current.stop()
        shutil.rmtree(root, ignore_errors=True)
    report(ds, args, results, cases, built)
    return 0


if __name__ == "__main__":
    sys.exit(main())
