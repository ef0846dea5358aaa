"""End-to-end OTLP/gRPC ingest benchmark for `argus serve`, beside bench/ingest.py (HTTP).

    python bench/ingest_grpc.py --signal all --seconds 10 --clients 8 --argus-cmd .venv/bin/argus

Same pre-built payloads as the HTTP benchmark (fresh ids or timestamps per reuse), sent
as raw protobuf over grpc.aio `Export` calls from one client process; only OK answers
count, minus partial-success rejections. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import ITEM_NAMES, SIGNALS, Payload, _pct, _wait_ready, build_payloads, free_port

_METHODS = {
    "traces": ("/opentelemetry.proto.collector.trace.v1.TraceService/Export",
               trace_service_pb2.ExportTraceServiceResponse, "rejected_spans"),
    "metrics": ("/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
                metrics_service_pb2.ExportMetricsServiceResponse, "rejected_data_points"),
    "logs": ("/opentelemetry.proto.collector.logs.v1.LogsService/Export",
             logs_service_pb2.ExportLogsServiceResponse, "rejected_log_records"),
}


async def run_signal(
    target: str, signal_name: str, payloads: list[Payload], clients: int, warmup: float, seconds: float
) -> tuple[int, int, list[float], dict[str, int]]:
    method, response_type, rejected_field = _METHODS[signal_name]
    accepted = ok = 0
    latencies: list[float] = []
    errors: dict[str, int] = {}
    counter = 0
    start = time.monotonic()
    measure_from, measure_to = start + warmup, start + warmup + seconds
    async with grpc.aio.insecure_channel(target, options=[("grpc.max_send_message_length", 64 << 20)]) as channel:
        export = channel.unary_unary(method, response_deserializer=response_type.FromString)

        async def worker() -> None:
            nonlocal counter, accepted, ok
            while time.monotonic() < measure_to:
                n = counter
                counter += 1
                payload = payloads[n % len(payloads)]
                body = payload.variant(n // len(payloads))
                sent = time.monotonic()
                try:
                    response = await export(body, timeout=30)
                except grpc.aio.AioRpcError as error:
                    errors[error.code().name] = errors.get(error.code().name, 0) + 1
                    await asyncio.sleep(0.1)
                    continue
                done = time.monotonic()
                if measure_from <= done < measure_to:
                    ok += 1
                    accepted += payload.items - getattr(response.partial_success, rejected_field)
                    latencies.append(done - sent)

        await asyncio.gather(*(worker() for _ in range(clients)))
    return accepted, ok, latencies, errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--signal", choices=[*SIGNALS, "all"], default="all")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--pool", type=int, default=50)
    parser.add_argument("--argus-cmd", default="argus")
    args = parser.parse_args(argv)
    signals = list(SIGNALS) if args.signal == "all" else [args.signal]
    data_dir = Path(tempfile.mkdtemp(prefix="argus-bench-grpc-"))
    grpc_port, http_port, api_port = free_port(), free_port(), free_port()
    command = [*shlex.split(args.argus_cmd), "serve", "--data-dir", str(data_dir),
               "--otlp-http", f"127.0.0.1:{http_port}", "--otlp-grpc", f"127.0.0.1:{grpc_port}",
               "--api", f"127.0.0.1:{api_port}"]
    print(f"starting: {shlex.join(command)}", file=sys.stderr)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    rows = []
    try:
        _wait_ready(f"http://127.0.0.1:{api_port}/readyz", process, 60)
        for signal_name in signals:
            payloads = build_payloads(signal_name, args.pool, seed=7)
            print(f"benchmarking {signal_name} over gRPC ...", file=sys.stderr)
            result = asyncio.run(run_signal(f"127.0.0.1:{grpc_port}", signal_name, payloads,
                                            args.clients, args.warmup, args.seconds))
            rows.append((signal_name, payloads[0].items, *result))
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(60)
    print(f"\n### OTLP/gRPC ingest: {os.cpu_count()} cores, {args.clients} concurrent calls, "
          f"{args.seconds:g}s after {args.warmup:g}s warm-up\n")
    print("| signal | items/request | accepted items/s | requests/s | p50 ms | p95 ms | errors |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for signal_name, per_request, accepted, ok, latencies, errors in rows:
        print(f"| {signal_name} | {per_request} {ITEM_NAMES[signal_name]} | "
              f"{accepted / args.seconds:,.0f} {ITEM_NAMES[signal_name]}/s | {ok / args.seconds:,.0f} | "
              f"{_pct(latencies, 0.5) * 1e3:.1f} | {_pct(latencies, 0.95) * 1e3:.1f} | "
              f"{', '.join(f'{k}: {v}' for k, v in errors.items()) or '0'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
