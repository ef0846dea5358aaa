"""Live push latency: OTLP/HTTP ingest -> Socket.IO client, with many clients tailing logs.

    python bench/live_push.py                      # 100 clients, 200 records/s, 20 s
    python bench/live_push.py --clients 100 --rate 1000 --batch 50 --seconds 30
    python bench/live_push.py --filters 10         # clients spread over 10 distinct filters

Starts `argus serve` in a temp data dir with an ingest key and a viewer key, connects
`--clients` Socket.IO clients (websocket transport, in `--client-procs` processes), each
subscribed to a logs tail of the bench's service, then sends log records over OTLP/HTTP at
a steady `--rate` in requests of `--batch` records. Every record's body carries its send
time (time.time_ns() just before the request), so each client measures ingest -> client
latency for every record it receives: the WAL fsync, indexing into the store, the hub, the
Socket.IO push and the client's own decoding included. After a warm-up, prints a markdown
table: records sent, pushes received (should be clients x sent), missing or duplicated
deliveries, latency p50/p95/p99/max over all (client, record) pairs.

All processes share one machine's clock, and its cores: the clients' JSON decoding
competes with the server, as a worst case for the server.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.common.v1 import common_pb2

SERVICE = "live-bench"
PREFIX = "live-bench sent="


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli(data_dir: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "argus.cli", *args, "--data-dir", str(data_dir)],
        capture_output=True, text=True, check=True,
    )
    return done.stdout.strip()


# --------------------------------------------------------------------------- clients


def _client_process(
    api_url: str, token: str, filters: list[dict[str, Any]], ready: Any, stop: Any, results: Any
) -> None:
    asyncio.run(_clients(api_url, token, filters, ready, stop, results))


async def _clients(
    api_url: str, token: str, filters: list[dict[str, Any]], ready: Any, stop: Any, results: Any
) -> None:
    import socketio

    latencies: list[tuple[int, int]] = []  # (send ns, latency ns)
    received: list[dict[int, int]] = [{} for _ in filters]  # per client: send ns -> count
    dropped = 0

    def handler(index: int) -> Any:
        async def on_logs(data: dict[str, Any]) -> None:
            now = time.time_ns()
            for record in data["records"]:
                sent = int(record["bodyText"].removeprefix(PREFIX).split()[0])
                latencies.append((sent, now - sent))
                counts = received[index]
                counts[sent] = counts.get(sent, 0) + 1

        return on_logs

    def on_error(data: Any) -> None:
        nonlocal dropped
        dropped += 1

    clients = []
    for index, filter_ in enumerate(filters):
        client = socketio.AsyncClient(reconnection=False)
        client.on("logs", handler(index))
        client.on("error", on_error)
        await client.connect(api_url, auth={"token": token}, transports=["websocket"],
                             wait_timeout=30)
        ack = await client.call("subscribe", {"kind": "logs", "filter": filter_}, timeout=30)
        if "error" in ack:
            raise RuntimeError(ack["error"])
        clients.append(client)
    ready.set()
    while not stop.is_set():
        await asyncio.sleep(0.1)
    await asyncio.sleep(2.0)  # stragglers
    for client in clients:
        await client.disconnect()
    results.put((latencies, received, dropped))


# --------------------------------------------------------------------------- sender


def _request(batch: int, index: int) -> tuple[bytes, list[str]]:
    request = logs_service_pb2.ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.add(
        key="service.name", value=common_pb2.AnyValue(string_value=SERVICE)
    )
    scope_logs = resource_logs.scope_logs.add()
    now = time.time_ns()
    bodies = []
    for n in range(batch):
        # Unique per record (the n), so duplicates are told apart from equal send times.
        body = f"{PREFIX}{now + n} request={index} n={n}"
        record = scope_logs.log_records.add(time_unix_nano=now, severity_number=9)
        record.body.string_value = body
        bodies.append(body)
    return request.SerializeToString(), bodies


async def _send(otlp_url: str, token: str, rate: float, batch: int, seconds: float) -> int:
    interval = batch / rate
    sent = 0
    headers = {"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=10) as client:
        start = time.monotonic()
        index = 0
        while time.monotonic() - start < seconds:
            body, _ = _request(batch, index)
            response = await client.post(f"{otlp_url}/v1/logs", content=body, headers=headers)
            if response.status_code == 200:
                sent += batch
            index += 1
            next_at = start + index * interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    return sent


# --------------------------------------------------------------------------- main


def _percentile(values: list[int], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100)
    # One process decoding 100 clients x 200 records/s saturates a core and its backlog
    # shows up as latency (p95 ~0.9 s measured); two keep up.
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--filters", type=int, default=1,
                        help="distinct (all matching) filters the clients spread over")
    parser.add_argument("--rate", type=float, default=200.0, help="log records per second")
    parser.add_argument("--batch", type=int, default=10, help="records per OTLP request")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="argus-live-bench-")) / "data"
    ingest = _cli(data_dir, "keys", "create", "--tenant", "bench", "--role", "ingest")
    viewer = _cli(data_dir, "keys", "create", "--tenant", "bench", "--role", "viewer")
    otlp, api, grpc = _free_port(), _free_port(), _free_port()
    log_path = data_dir.parent / "server.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "argus.cli", "serve", "--data-dir", str(data_dir),
             "--otlp-http", f"127.0.0.1:{otlp}", "--api", f"127.0.0.1:{api}",
             "--otlp-grpc", f"127.0.0.1:{grpc}"],
            stdout=log, stderr=subprocess.STDOUT,
        )
    api_url, otlp_url = f"http://127.0.0.1:{api}", f"http://127.0.0.1:{otlp}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{api_url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(f"argus serve did not start:\n{log_path.read_text()}")
            time.sleep(0.1)

        t0 = time.time_ns() - 3600 * 10**9
        filters = [{"service": SERVICE, "start": str(t0 - (i % args.filters))}
                   for i in range(args.clients)]
        context = mp.get_context("spawn")
        stop, results = context.Event(), context.Queue()
        procs, events = [], []
        for p in range(args.client_procs):
            share = filters[p::args.client_procs]
            ready = context.Event()
            proc = context.Process(target=_client_process,
                                   args=(api_url, viewer, share, ready, stop, results))
            proc.start()
            procs.append(proc)
            events.append(ready)
        for ready in events:
            if not ready.wait(120):
                raise SystemExit("clients did not connect")

        cpu_before = _cpu_seconds(server.pid)
        asyncio.run(_send(otlp_url, ingest, args.rate, args.batch, args.warmup))
        warm_end = time.time_ns()
        wall = time.monotonic()
        sent = asyncio.run(_send(otlp_url, ingest, args.rate, args.batch, args.seconds))
        wall = time.monotonic() - wall
        cpu = _cpu_seconds(server.pid) - cpu_before
        stop.set()
        collected = [results.get(timeout=120) for _ in procs]
        for proc in procs:
            proc.join(30)
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(data_dir.parent, ignore_errors=True)

    latencies: list[int] = []
    deliveries = missing = duplicates = dropped = 0
    for part_latencies, per_client, part_dropped in collected:
        dropped += part_dropped
        for counts in per_client:
            measured = {sent_ns: n for sent_ns, n in counts.items() if sent_ns >= warm_end}
            deliveries += sum(measured.values())
            duplicates += sum(n - 1 for n in measured.values() if n > 1)
            missing += sent - len(measured)
        latencies += [value for sent_ns, value in part_latencies if sent_ns >= warm_end]
    measured_latencies = latencies
    print(f"\nargus live push: {args.clients} Socket.IO clients ({args.filters} distinct"
          f" filter(s), {args.client_procs} client process(es)), {args.rate:g} records/s in"
          f" requests of {args.batch}, {args.seconds:g} s after {args.warmup:g} s warm-up;"
          f" {os.cpu_count()} cores shared by server and clients\n")
    print("| records sent | pushes received | missing | duplicates | dropped clients"
          " | p50 ms | p95 ms | p99 ms | max ms | mean ms | server CPU |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(f"| {sent} | {deliveries} | {missing} | {duplicates} | {dropped}"
          f" | {_percentile(measured_latencies, 0.50):.0f}"
          f" | {_percentile(measured_latencies, 0.95):.0f}"
          f" | {_percentile(measured_latencies, 0.99):.0f}"
          f" | {max(measured_latencies) / 1e6 if measured_latencies else float('nan'):.0f}"
          f" | {statistics.fmean(measured_latencies) / 1e6 if measured_latencies else float('nan'):.0f}"
          f" | {cpu / wall * 100:.0f}% |")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of the server's main process and its children (the receiver)."""
    total = 0.0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(child) for child in children]
    except OSError:
        pass
    ticks = os.sysconf("SC_CLK_TCK")
    for each in pids:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


if __name__ == "__main__":
    main()
