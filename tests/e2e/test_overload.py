"""Above capacity: many clients send large requests faster than Argus can index them.

Every refusal is a retryable 429/503 with Retry-After, the processes' memory stays under
a ceiling derived from the configured limits, and every acknowledged span is stored.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import httpx
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from tests.e2e.test_http_receiver import PROTOBUF
from tests.harness import ArgusProcess, eventually

MiB = 1024 * 1024
INFLIGHT_LIMIT = 16 * MiB
CLIENTS = 24
SPANS_PER_REQUEST = 100
LOAD_SECONDS = 5.0
# Allowed RSS growth over the idle process. Receiver: the in-flight bytes plus the
# decoded form of what they hold (protobuf objects, ~3x the wire size) and the write-ahead
# log's group-commit buffer. Main process: one index batch as model objects plus the
# stores' page caches (64 MiB of SQLite cache per database, DuckDB's buffer).
RECEIVER_CEILING = 5 * INFLIGHT_LIMIT + 48 * MiB
MAIN_CEILING = 512 * MiB


def _request(service: str, trace_id: bytes) -> bytes:
    """~420 KB: one trace of 100 spans, each with a 4 KiB attribute."""
    request = trace_service_pb2.ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.add(
        key="service.name", value=common_pb2.AnyValue(string_value=service)
    )
    spans = resource_spans.scope_spans.add().spans
    padding = common_pb2.AnyValue(string_value=uuid.uuid4().hex * 128)
    now = time.time_ns()
    for index in range(SPANS_PER_REQUEST):
        span = trace_pb2.Span(
            trace_id=trace_id,
            span_id=(index + 1).to_bytes(8, "big"),
            name=f"op-{index % 7}",
            start_time_unix_nano=now,
            end_time_unix_nano=now + 1_000_000,
        )
        span.attributes.add(key="payload", value=padding)
        spans.append(span)
    return request.SerializeToString()


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _receiver_pid(main_pid: int) -> int:
    children = Path(f"/proc/{main_pid}/task/{main_pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def test_overload_refuses_retryably_bounds_memory_and_keeps_every_ack(
    fresh_argus: ArgusProcess,
) -> None:
    config = fresh_argus.data_dir.parent / "overload.toml"
    config.write_text(
        f"[ingest]\nmax_inflight_bytes = {INFLIGHT_LIMIT}\nmax_unindexed_bytes = {8 * MiB}\n"
        "[limits]\nitems_per_second = 20000\nburst_seconds = 1\n"
    )
    fresh_argus.extra_args = ["--config", str(config)]
    server = fresh_argus.start()
    assert server.process is not None
    main_pid = server.process.pid
    receiver_pid = _receiver_pid(main_pid)
    time.sleep(1.0)
    baseline = {"main": _rss_bytes(main_pid), "receiver": _rss_bytes(receiver_pid)}
    peak = dict(baseline)

    service = f"overload-{uuid.uuid4().hex[:6]}"
    acknowledged: list[str] = []
    statuses: dict[int, int] = {}
    bad_refusals: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + LOAD_SECONDS

    def client() -> None:
        with httpx.Client(timeout=30) as http:
            while time.monotonic() < deadline:
                trace_id = uuid.uuid4().bytes
                response = http.post(
                    f"{server.otlp_url}/v1/traces", content=_request(service, trace_id),
                    headers=PROTOBUF,
                )
                with lock:
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    if response.status_code == 200:
                        acknowledged.append(trace_id.hex())
                    elif response.status_code not in (429, 503) or not response.headers.get(
                        "retry-after", ""
                    ).isdigit():
                        bad_refusals.append(f"{response.status_code} {response.headers}")

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        peak["main"] = max(peak["main"], _rss_bytes(main_pid))
        peak["receiver"] = max(peak["receiver"], _rss_bytes(receiver_pid))
        time.sleep(0.05)

    assert not bad_refusals, bad_refusals[:3]
    assert statuses.get(200, 0) > 0, statuses
    assert statuses.get(429, 0) + statuses.get(503, 0) > 0, f"never above capacity: {statuses}"
    growth = {name: peak[name] - baseline[name] for name in peak}
    print(f"statuses {statuses}; RSS baseline {baseline}, growth {growth}")
    assert growth["receiver"] < RECEIVER_CEILING, growth
    assert growth["main"] < MAIN_CEILING, growth

    # Every acknowledged trace is stored whole.
    query = "query($id: String!) { trace(traceId: $id) { spans { spanId } } }"

    def stored(trace_id: str) -> bool:
        trace = server.graphql(query, {"id": trace_id})["trace"]
        return trace is not None and len(trace["spans"]) == SPANS_PER_REQUEST

    eventually(lambda: stored(acknowledged[-1]), timeout=120)
    missing = [trace_id for trace_id in acknowledged if not stored(trace_id)]
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged traces missing"
