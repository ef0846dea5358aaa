"""End-to-end OTLP/HTTP ingest benchmark for `argus serve`.

    python bench/ingest.py --signal all --seconds 10 --clients 8
    python bench/ingest.py --null-server            # the client alone, against a do-nothing server
    python bench/ingest.py --target http://127.0.0.1:4318   # an already running endpoint

Pre-builds realistic OTLP protobuf payloads with the loadgen generators (~100-span trace requests,
~1,000-point metric requests, ~500-record log requests), starts `argus serve` in a temp data dir
(unless --target / --null-server), then per signal keeps `--clients` connections busy for
`--seconds` after a warm-up and prints a markdown table: accepted items/s (only 200 responses
count, minus partial-success rejections), request latency p50/p95, non-200 answers, server CPU.

Payloads are reused cyclically; each reuse gets fresh trace ids (traces) or timestamps (metrics)
patched into the serialized bytes, so the server never sees the same span or point twice.
The HTTP client is a minimal keep-alive HTTP/1.1 client on asyncio streams: an order of magnitude
cheaper per request than a full client library, so on a small machine it leaves the cores to the
server. `--procs N` spreads the connections over N client processes when one is not enough.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing as mp
import os
import random
import shlex
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argus.loadgen.sender import rejected_items, retry_after_seconds

SIGNALS = ("traces", "metrics", "logs")
ITEM_NAMES = {"traces": "spans", "metrics": "data points", "logs": "log records"}
TARGET_ITEMS = {"traces": 100, "metrics": 1000, "logs": 500}

# --------------------------------------------------------------------------- payloads


@dataclass
class Payload:
    body: bytes
    items: int
    # Byte ranges rewritten on each reuse: (offsets, original big-endian 4-byte value) per trace id,
    # or offsets of 8-byte little-endian timestamps (metrics).
    trace_ids: list[tuple[list[int], int]] = field(default_factory=list)
    time_offsets: list[int] = field(default_factory=list)
    time_value: int = 0

    def variant(self, cycle: int) -> bytes:
        if cycle == 0:
            return self.body
        buf = bytearray(self.body)
        for offsets, prefix in self.trace_ids:
            new = ((prefix + cycle * 0x9E3779B1) & 0xFFFFFFFF).to_bytes(4, "big")
            for off in offsets:
                buf[off : off + 4] = new
        if self.time_offsets:
            t = struct.pack("<Q", self.time_value + cycle * 1_000_000)
            for off in self.time_offsets:
                buf[off : off + 8] = t
        return bytes(buf)


def _find_all(data: bytes, needle: bytes) -> list[int]:
    out, i = [], data.find(needle)
    while i >= 0:
        out.append(i)
        i = data.find(needle, i + 1)
    return out


def build_payloads(signal_name: str, count: int, seed: int) -> list[Payload]:
    from argus.loadgen.metrics import MetricState
    from argus.loadgen.topology import build_topology
    from argus.loadgen.traces import TraceGenerator

    rng = random.Random(seed)
    scale = 12 if signal_name == "metrics" else 1  # more pods -> more series per metric export
    topo = build_topology(rng, replica_scale=scale)
    metrics = MetricState(
        topo.all_instances, time.time_ns() - 60_000_000_000, random.Random(seed + 1)
    )
    gen = TraceGenerator(topo, metrics, seed=seed + 2, error_rate=0.03)
    now = time.time_ns()
    out: list[Payload] = []
    target = TARGET_ITEMS[signal_name]
    if signal_name == "metrics":
        for _ in range(3000):  # populate the series
            gen.add_trace(gen.new_batch(), now)
    for i in range(count):
        if signal_name == "traces":
            b = gen.new_batch()
            while b.spans < target:
                gen.add_trace(b, now - (count - i) * 10_000_000)
            body = b.request.SerializeToString()
            ids = {
                s.trace_id
                for rs in b.request.resource_spans
                for ss in rs.scope_spans
                for s in ss.spans
            }
            groups = [(_find_all(body, tid), int.from_bytes(tid[:4], "big")) for tid in ids]
            out.append(Payload(body, b.spans, trace_ids=groups))
        elif signal_name == "logs":
            b = gen.new_batch()
            while b.logs.records < target:
                gen.add_trace(b, now - (count - i) * 10_000_000)
            out.append(Payload(b.logs.request.SerializeToString(), b.logs.records))
        else:
            for _ in range(20):
                gen.add_trace(gen.new_batch(), now)
            t = now - (count - i) * 1_000_000_000
            req, points = metrics.export(t)
            body = req.SerializeToString()
            # time_unix_nano is field 3 (fixed64, tag 0x19) in number and histogram data points.
            offs = [o + 1 for o in _find_all(body, b"\x19" + struct.pack("<Q", t))]
            out.append(Payload(body, points, time_offsets=offs, time_value=t))
    return out


# ------------------------------------------------------------------ minimal HTTP/1.1 client


class HttpConn:
    def __init__(self, host: str, port: int, token: str = "") -> None:
        self.host, self.port = host, port
        self._auth = f"Authorization: Bearer {token}\r\n" if token else ""
        self._r: asyncio.StreamReader | None = None
        self._w: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if self._w is None:
            self._r, self._w = await asyncio.open_connection(self.host, self.port)
        assert self._r is not None
        self._w.write(
            (
                f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Content-Type: application/x-protobuf\r\nContent-Length: {len(body)}\r\n"
                f"{self._auth}\r\n"
            ).encode()
        )
        self._w.write(body)
        try:
            head = await self._r.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            self.close()
            raise
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await self._r.readuntil(b"\r\n")).split(b";")[0], 16)
                chunks.append(await self._r.readexactly(size + 2))
                if size == 0:
                    break
            data = b"".join(c[:-2] for c in chunks)
        else:
            data = await self._r.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, data

    def close(self) -> None:
        if self._w is not None:
            self._w.close()
        self._r = self._w = None


# --------------------------------------------------------------------------- client processes


@dataclass
class ClientResult:
    accepted: int = 0
    ok_requests: int = 0
    other: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)  # seconds, 200 responses in the window


async def _drive(
    host: str,
    port: int,
    signal_name: str,
    payloads: list[Payload],
    conns: int,
    t_start: float,
    warmup: float,
    seconds: float,
    token: str = "",
) -> ClientResult:
    res = ClientResult()
    path = f"/v1/{signal_name}"
    w0, w1 = t_start + warmup, t_start + warmup + seconds
    counter = 0
    # Wall clock shared with the parent (perf_counter is per process).
    await asyncio.sleep(max(0.0, t_start - time.time()))

    async def worker(i: int) -> None:
        nonlocal counter
        conn = HttpConn(host, port, token)
        while True:
            n = counter
            counter += 1
            p = payloads[n % len(payloads)]
            body = p.variant(n // len(payloads))
            t = time.time()
            if t >= w1:
                break
            try:
                status, headers, data = await conn.post(path, body)
            except (OSError, asyncio.IncompleteReadError) as exc:
                status, headers, data = -1, {}, type(exc).__name__.encode()
                await asyncio.sleep(0.05)
            done = time.time()
            if not (w0 <= done < w1):
                continue
            if status == 200:
                res.ok_requests += 1
                res.accepted += p.items - rejected_items(
                    signal_name, headers.get("content-type", ""), data
                )
                res.latencies.append(done - t)
            else:
                key = str(status) if status > 0 else data.decode()
                res.other[key] = res.other.get(key, 0) + 1
                if status in (429, 503):  # honour the server's back-off instead of hammering it
                    wait = retry_after_seconds(headers.get("retry-after"))
                    await asyncio.sleep(min(1.0, 0.1 if wait is None else wait))
        conn.close()

    await asyncio.gather(*(worker(i) for i in range(conns)))
    return res


def _client_main(
    host: str,
    port: int,
    signal_name: str,
    pool: int,
    seed: int,
    conns: int,
    warmup: float,
    seconds: float,
    ready: Any,
    start: Any,
    results: Any,
    token: str = "",
) -> None:
    payloads = build_payloads(signal_name, pool, seed)
    ready.put(sum(p.items for p in payloads) / len(payloads))
    t_start = start.get()
    coro = _drive(host, port, signal_name, payloads, conns, t_start, warmup, seconds, token)
    try:
        import uvloop  # optional; a faster loop keeps the client's share of the CPU small

        res = uvloop.run(coro)
    except ImportError:
        res = asyncio.run(coro)
    results.put(res)


def run_signal(
    host: str,
    port: int,
    signal_name: str,
    clients: int,
    procs: int,
    seconds: float,
    warmup: float,
    pool: int,
    token: str = "",
) -> tuple[ClientResult, float]:
    ctx = mp.get_context("spawn")
    ready, start, results = ctx.Queue(), ctx.Queue(), ctx.Queue()
    split = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    workers = [
        ctx.Process(
            target=_client_main,
            args=(
                host,
                port,
                signal_name,
                pool,
                1000 * (i + 1),
                n,
                warmup,
                seconds,
                ready,
                start,
                results,
                token,
            ),
            daemon=True,
        )
        for i, n in enumerate(split)
        if n > 0
    ]
    for w in workers:
        w.start()
    items_per_request = [ready.get(timeout=300) for _ in workers]
    t_start = time.time() + 0.3
    for _ in workers:
        start.put(t_start)
    total = ClientResult()
    for _ in workers:
        r: ClientResult = results.get(timeout=warmup + seconds + 120)
        total.accepted += r.accepted
        total.ok_requests += r.ok_requests
        total.latencies += r.latencies
        for k, v in r.other.items():
            total.other[k] = total.other.get(k, 0) + v
    for w in workers:
        w.join(timeout=10)
    return total, statistics.fmean(items_per_request)


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _NullProtocol(asyncio.Protocol):
    """Answers every HTTP/1.1 request with an empty 200: the client's own ceiling."""

    RESPONSE = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n"
    )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport
        self.buf = bytearray()
        self.need = -1  # body bytes still expected; -1 while reading headers

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            if self.need < 0:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(self.buf[:end]).lower()
                i = head.find(b"content-length:")
                self.need = (
                    int(head[i + 15 : head.find(b"\r\n", i) if head.find(b"\r\n", i) > 0 else None])
                    if i >= 0
                    else 0
                )
                del self.buf[: end + 4]
            if len(self.buf) < self.need:
                return
            del self.buf[: self.need]
            self.need = -1
            self.t.write(self.RESPONSE)  # type: ignore[attr-defined]


def serve_null(port: int) -> None:
    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_NullProtocol, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port} after {timeout:.0f}s")


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"argus serve exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout:.0f}s")


def _indexing(status_url: str, sig: str) -> dict[str, int]:
    with urllib.request.urlopen(status_url, timeout=10) as response:
        return json.loads(response.read())["indexing"][sig]  # type: ignore[no-any-return]


def _indexed_items(status_url: str, sig: str) -> int:
    return _indexing(status_url, sig)["indexed_items"]


def _wait_indexed(status_url: str, sig: str, before: int, started: float) -> tuple[int, float]:
    """Wait until the signal's indexer has caught up with everything acknowledged; return
    the items it indexed and the seconds from the signal's start until then."""
    while True:
        state = _indexing(status_url, sig)
        if state["lag_bytes"] == 0:
            return state["indexed_items"] - before, time.monotonic() - started
        time.sleep(0.2)


def _cpu_seconds(pid: int) -> float:
    """user+system CPU of a process and its live descendants (Linux /proc), 0 elsewhere."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    try:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2 :].split()
            parents[int(entry)] = int(fields[1])
            cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    except OSError:
        return 0.0
    tree, frontier = {pid}, [pid]
    while frontier:
        p = frontier.pop()
        for child, parent in parents.items():
            if parent == p and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(cpu.get(p, 0.0) for p in tree)


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# --------------------------------------------------------------------------- main


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--signal", choices=[*SIGNALS, "all"], default="all")
    ap.add_argument(
        "--seconds", type=float, default=10.0, help="measured seconds per signal (default 10)"
    )
    ap.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        help="unmeasured seconds before each signal (default 2)",
    )
    ap.add_argument(
        "--clients", type=int, default=8, help="concurrent connections in total (default 8)"
    )
    ap.add_argument(
        "--procs", type=int, default=1, help="client processes sharing the connections (default 1)"
    )
    ap.add_argument(
        "--pool", type=int, default=50, help="distinct pre-built requests per client process"
    )
    ap.add_argument(
        "--argus-cmd", default="argus", help="command that starts the server (default: argus)"
    )
    ap.add_argument("--ready-timeout", type=float, default=60.0)
    ap.add_argument("--keep-data", action="store_true", help="keep the server's temp data dir")
    where = ap.add_mutually_exclusive_group()
    where.add_argument(
        "--target", metavar="URL", help="bench an already running OTLP/HTTP endpoint instead"
    )
    where.add_argument(
        "--null-server",
        action="store_true",
        help="bench against a built-in do-nothing server: the client's own ceiling",
    )
    ap.add_argument("--serve-null", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve_null:
        serve_null(args.serve_null)
        return 0

    signals = list(SIGNALS) if args.signal == "all" else [args.signal]
    proc: subprocess.Popen[bytes] | None = None
    data_dir: Path | None = None
    log_path: Path | None = None
    label: str
    ok = False
    try:
        if args.target:
            from urllib.parse import urlparse

            u = urlparse(args.target if "://" in args.target else "http://" + args.target)
            host, port = u.hostname or "127.0.0.1", u.port or 4318
            label = f"external target {args.target}"
        elif args.null_server:
            host, port = "127.0.0.1", free_port()
            proc = subprocess.Popen([sys.executable, __file__, "--serve-null", str(port)])
            _wait_port(port, proc, 10)
            label = "built-in null server (client ceiling)"
        else:
            host, port, api = "127.0.0.1", free_port(), free_port()
            data_dir = Path(tempfile.mkdtemp(prefix="argus-bench-"))
            log_path = data_dir.parent / (data_dir.name + ".log")
            cmd = [
                *shlex.split(args.argus_cmd),
                "serve",
                "--data-dir",
                str(data_dir),
                "--otlp-http",
                f"{host}:{port}",
                "--api",
                f"{host}:{api}",
                "--otlp-grpc",
                f"{host}:{free_port()}",
            ]
            print(f"starting: {shlex.join(cmd)}  (log: {log_path})", file=sys.stderr)
            with open(log_path, "wb") as log:
                proc = subprocess.Popen(
                    cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            _wait_ready(f"http://{host}:{api}/readyz", proc, args.ready_timeout)
            label = f"`{shlex.join(cmd[:1])} serve` (fresh data dir)"

        rows = []
        for sig in signals:
            print(
                f"benchmarking {sig}: {args.clients} connections x {args.procs} process(es), "
                f"{args.warmup:g}s warm-up + {args.seconds:g}s ...",
                file=sys.stderr,
            )
            status_url = f"http://{host}:{api}/readyz" if data_dir else None
            indexed0 = _indexed_items(status_url, sig) if status_url else 0
            cpu0 = _cpu_seconds(proc.pid) if proc else 0.0
            disk0 = _dir_bytes(data_dir) if data_dir else 0
            t0 = time.monotonic()
            res, per_req = run_signal(
                host,
                port,
                sig,
                args.clients,
                max(1, args.procs),
                args.seconds,
                args.warmup,
                args.pool,
            )
            wall = time.monotonic() - t0
            cpu = (_cpu_seconds(proc.pid) - cpu0) / wall if proc else float("nan")
            disk = (_dir_bytes(data_dir) - disk0) if data_dir else None
            indexed = (
                _wait_indexed(status_url, sig, indexed0, t0) if status_url else None
            )
            rows.append((sig, per_req, res, cpu, disk, indexed))
        ok = True
    except (RuntimeError, OSError) as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        if log_path and log_path.exists():
            tail = log_path.read_text(errors="replace").splitlines()[-30:]
            print("--- server log (tail) ---\n" + "\n".join(tail), file=sys.stderr)
        return 1
    finally:
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM) if not args.null_server else proc.terminate()
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if data_dir is not None and not args.keep_data:
            shutil.rmtree(data_dir, ignore_errors=True)
            if log_path is not None and ok:
                log_path.unlink(missing_ok=True)  # kept when the run failed, for the post-mortem

    print(f"\n### OTLP/HTTP ingest: {label}\n")
    print(
        f"{os.cpu_count()} cores, {args.clients} connections over {args.procs} client process(es), "
        f"{args.seconds:g}s measured after {args.warmup:g}s warm-up per signal; "
        "server CPU in cores (1.0 = one core busy, client excluded); data dir bytes/item: growth "
        "of the server's data dir during that signal's run, WAL included; indexed items/s: "
        "items stored and queryable divided by the time from the signal's first request until "
        "the indexer had caught up (warm-up included), i.e. the sustained store rate.\n"
    )
    print(
        "| signal | items/request | accepted items/s | requests/s | p50 ms | p95 ms | non-200"
        " | server CPU |"
        " data dir bytes/item | indexed items/s | caught up after s |"
    )
    print("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|")
    for sig, per_req, res, cpu, disk, indexed in rows:
        indexed_rate = f"{indexed[0] / indexed[1]:,.0f}" if indexed else "-"
        caught_up = f"{indexed[1]:.1f}" if indexed else "-"
        other = ", ".join(f"{k}: {v}" for k, v in sorted(res.other.items())) or "0"
        per_item = f"{disk / res.accepted:.0f}" if disk is not None and res.accepted else "-"
        cpu_s = "-" if math.isnan(cpu) else f"{cpu:.2f}"
        print(
            f"| {sig} | {per_req:.0f} {ITEM_NAMES[sig]} "
            f"| {res.accepted / args.seconds:,.0f} {ITEM_NAMES[sig]}/s | "
            f"{res.ok_requests / args.seconds:,.0f} | {_pct(res.latencies, 0.5) * 1e3:.1f} | "
            f"{_pct(res.latencies, 0.95) * 1e3:.1f} | {other} | {cpu_s} | {per_item} "
            f"| {indexed_rate} | {caught_up} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
