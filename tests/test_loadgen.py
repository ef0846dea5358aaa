"""`argus loadgen` against a real local OTLP/HTTP server that decodes what it receives."""

from __future__ import annotations

import argparse
import gzip
import io
import random
import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from argus.loadgen import (
    LoadgenError,
    LoadgenOptions,
    add_arguments,
    options_from_args,
    run_loadgen,
)
from argus.loadgen.metrics import MetricState
from argus.loadgen.otlp import attributes_dict
from argus.loadgen.sender import retry_after_seconds
from argus.loadgen.topology import build_topology
from argus.loadgen.traces import TraceGenerator

_REQUESTS: dict[str, type[Message]] = {
    "/v1/traces": ExportTraceServiceRequest,
    "/v1/metrics": ExportMetricsServiceRequest,
    "/v1/logs": ExportLogsServiceRequest,
}


@dataclass
class Received:
    traces: list[ExportTraceServiceRequest] = field(default_factory=list)
    metrics: list[ExportMetricsServiceRequest] = field(default_factory=list)
    logs: list[ExportLogsServiceRequest] = field(default_factory=list)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    encodings: Counter[str] = field(default_factory=Counter)
    throttle_traces: int = 0  # answer this many (non-empty) trace exports with 429 first
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(rx: Received) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _reply(
            self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            encoding = self.headers.get("Content-Encoding", "")
            if encoding == "gzip":
                body = gzip.decompress(body)
            cls = _REQUESTS.get(self.path)
            if cls is None:
                self._reply(404)
                return
            msg = cls()
            msg.ParseFromString(body)
            with rx.lock:
                rx.encodings[encoding or "identity"] += 1
                if self.path == "/v1/traces" and body and rx.throttle_traces > 0:
                    rx.throttle_traces -= 1
                    rx.statuses[(self.path, 429)] += 1
                    self._reply(429, headers={"Retry-After": "1"})
                    return
                getattr(rx, self.path.rsplit("/", 1)[1]).append(msg)
                rx.statuses[(self.path, 200)] += 1
            self._reply(200, ExportTraceServiceResponse().SerializeToString())

    return Handler


@pytest.fixture
def otlp_server() -> Iterator[tuple[str, Received]]:
    rx = Received()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rx))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", rx
    server.shutdown()
    server.server_close()


def _spans(rx: Received) -> dict[bytes, tuple[str, Span]]:
    """span id -> (service.name, span)"""
    out: dict[bytes, tuple[str, Span]] = {}
    for req in rx.traces:
        for rs in req.resource_spans:
            svc = str(attributes_dict(rs.resource.attributes)["service.name"])
            for ss in rs.scope_spans:
                for s in ss.spans:
                    out[s.span_id] = (svc, s)
    return out


@pytest.mark.timeout(30)
async def test_loadgen_end_to_end(otlp_server: tuple[str, Received]) -> None:
    url, rx = otlp_server
    rx.throttle_traces = 2
    out = io.StringIO()
    error_rate = 0.2
    opts = LoadgenOptions(
        target=url,
        rate=300,
        duration=2.0,
        seed=7,
        gzip=True,
        concurrency=4,
        error_rate=error_rate,
        metric_interval=0.5,
        batch_traces=50,
        headers={"X-Tenant": "test"},
    )
    report = await run_loadgen(opts, out)

    # --- report and transport: the two 429s were retried, nothing lost
    assert rx.statuses[("/v1/traces", 429)] == 2
    assert report.retries >= 2
    assert report.failed_requests == 0 and report.failed_by_status == {} and report.dropped == {}
    assert report.ok
    assert rx.encodings["identity"] <= 1  # only the empty probe is not gzipped
    spans = _spans(rx)
    assert report.spans == len(spans) > 1000
    assert report.log_records == sum(
        len(sl.log_records) for r in rx.logs for rl in r.resource_logs for sl in rl.scope_logs
    )
    assert 400 <= report.traces <= 700  # 300/s for 2 s
    lines = out.getvalue().splitlines()
    assert sum("traces/s" in line for line in lines) >= 1
    assert lines[-1].startswith("loadgen:")

    # --- service graph: every parent exists; CLIENT -> SERVER edges across services
    by_trace: dict[bytes, list[tuple[str, Span]]] = defaultdict(list)
    edges: set[tuple[str, str]] = set()
    for svc, s in spans.values():
        by_trace[s.trace_id].append((svc, s))
        if not s.parent_span_id:
            continue
        psvc, parent = spans[s.parent_span_id]
        assert parent.trace_id == s.trace_id
        assert (
            parent.start_time_unix_nano
            <= s.start_time_unix_nano
            <= s.end_time_unix_nano
            <= parent.end_time_unix_nano
        )
        if s.kind == Span.SPAN_KIND_SERVER:
            assert parent.kind == Span.SPAN_KIND_CLIENT and psvc != svc
            edges.add((psvc, svc))
        else:
            assert psvc == svc
    assert {
        ("frontend", "checkout"),
        ("checkout", "payment"),
        ("checkout", "cart"),
        ("frontend", "cart"),
        ("frontend", "currency"),
    } <= edges
    db = [
        (svc, attributes_dict(s.attributes))
        for svc, s in spans.values()
        if any(a.key == "db.system" for a in s.attributes)
    ]
    assert {svc for svc, _ in db} == {"checkout", "cart"}
    assert all(a["db.system"] == "postgresql" and a["db.statement"] for _, a in db)
    server_attrs = [
        attributes_dict(s.attributes) for _, s in spans.values() if s.kind == Span.SPAN_KIND_SERVER
    ]
    assert all(
        {"http.request.method", "http.route", "http.response.status_code", "url.path"} <= a.keys()
        for a in server_attrs
    )
    now = time.time_ns()
    assert all(now - 30e9 < s.end_time_unix_nano <= now for _, s in spans.values())

    # --- errors: share of traces with an ERROR span, exception events, card declines
    errored = {
        tid
        for tid, ss in by_trace.items()
        if any(s.status.code == Status.STATUS_CODE_ERROR for _, s in ss)
    }
    share = len(errored) / len(by_trace)
    assert abs(share - error_rate) < 0.07, share
    exc_events = [e for _, s in spans.values() for e in s.events if e.name == "exception"]
    assert exc_events and all(
        {"exception.type", "exception.message", "exception.stacktrace"}
        <= attributes_dict(e.attributes).keys()
        for e in exc_events
    )

    # --- links: async email jobs point at a PRODUCER span of another trace
    linked = [s for svc, s in spans.values() if s.links]
    assert linked
    for s in linked:
        target = spans[s.links[0].span_id][1]
        assert target.kind == Span.SPAN_KIND_PRODUCER and target.trace_id != s.trace_id

    # --- logs: trace-bound ones point at sent spans; some are not bound to a trace
    n_bound = n_free = 0
    severities: Counter[str] = Counter()
    for req in rx.logs:
        for rl in req.resource_logs:
            for sl in rl.scope_logs:
                for r in sl.log_records:
                    severities[r.severity_text] += 1
                    if r.trace_id:
                        n_bound += 1
                        assert r.span_id in spans and spans[r.span_id][1].trace_id == r.trace_id
                    else:
                        n_free += 1
                        assert r.body.string_value
    assert n_bound > 0 and n_free > 0
    assert severities["INFO"] and severities["ERROR"] and severities["WARN"]

    # --- metrics: exemplars point at sent SERVER spans; cumulative series never go down
    assert len(rx.metrics) >= 3
    n_exemplars = 0
    series: dict[tuple[object, ...], list[tuple[int, int, float]]] = defaultdict(list)
    names: set[str] = set()
    for req in rx.metrics:
        seen: set[tuple[object, ...]] = set()  # no two points of one export may share a series
        for rm in req.resource_metrics:
            inst = attributes_dict(rm.resource.attributes)["service.instance.id"]
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    names.add(m.name)
                    for dp in (*m.histogram.data_points, *m.sum.data_points, *m.gauge.data_points):
                        key = (inst, m.name, tuple(sorted(attributes_dict(dp.attributes).items())))
                        assert key not in seen, key
                        seen.add(key)
                    if m.HasField("histogram"):
                        assert m.histogram.aggregation_temporality == 2
                        for dp in m.histogram.data_points:
                            assert sum(dp.bucket_counts) == dp.count
                            key = (
                                inst,
                                m.name,
                                tuple(sorted(attributes_dict(dp.attributes).items())),
                            )
                            series[key].append(
                                (dp.start_time_unix_nano, dp.time_unix_nano, dp.count)
                            )
                            for ex in dp.exemplars:
                                n_exemplars += 1
                                svc, span = spans[ex.span_id]
                                assert (
                                    span.trace_id == ex.trace_id
                                    and span.kind == Span.SPAN_KIND_SERVER
                                )
                                assert (
                                    abs(
                                        (span.end_time_unix_nano - span.start_time_unix_nano) / 1e9
                                        - ex.as_double
                                    )
                                    < 1e-6
                                )
                    elif m.HasField("sum") and m.sum.is_monotonic:
                        for dp in m.sum.data_points:
                            key = (
                                inst,
                                m.name,
                                tuple(sorted(attributes_dict(dp.attributes).items())),
                            )
                            series[key].append(
                                (dp.start_time_unix_nano, dp.time_unix_nano, dp.as_int)
                            )
    assert n_exemplars > 0
    assert {
        "http.server.request.duration",
        "http.server.active_requests",
        "process.cpu.utilization",
        "app.orders.placed",
        "app.payment.transactions",
    } <= names
    grew = 0
    for points in series.values():
        points.sort(key=lambda p: p[1])
        assert len({p[0] for p in points}) == 1  # one start time per cumulative series
        values = [p[2] for p in points]
        assert values == sorted(values)
        grew += values[-1] > values[0]
    assert grew > 0


async def test_unreachable_target_fails_fast() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again at the end of the block: nothing listens there
    t = time.monotonic()
    with pytest.raises(LoadgenError, match=f"cannot reach OTLP/HTTP target .*:{port}"):
        await run_loadgen(
            LoadgenOptions(target=f"http://127.0.0.1:{port}", duration=1), io.StringIO()
        )
    assert time.monotonic() - t < 5


async def test_wrong_endpoint_is_reported(otlp_server: tuple[str, Received]) -> None:
    url, _ = otlp_server
    with pytest.raises(LoadgenError, match="404"):
        await run_loadgen(LoadgenOptions(target=url + "/nope", duration=1), io.StringIO())


def test_cli_arguments() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    ns = parser.parse_args(
        [
            "--target",
            "http://h:4318",
            "--rate",
            "20",
            "--duration",
            "0",
            "--seed",
            "3",
            "--gzip",
            "--concurrency",
            "8",
            "--header",
            "Authorization=Bearer a=b",
            "--header",
            "X-Tenant=t1",
        ]
    )
    opts = options_from_args(ns)
    assert opts == LoadgenOptions(
        target="http://h:4318",
        rate=20,
        duration=0,
        seed=3,
        gzip=True,
        concurrency=8,
        headers={"Authorization": "Bearer a=b", "X-Tenant": "t1"},
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["--header", "novalue"])


def test_retry_after_parsing() -> None:
    assert retry_after_seconds("3") == 3
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("garbage") is None
    assert (
        0
        <= (
            retry_after_seconds(
                time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 5))
            )
            or 0
        )
        <= 5
    )


def test_seed_makes_traces_reproducible() -> None:
    def build(seed: int) -> list[tuple[bytes, str]]:
        topo = build_topology(random.Random(seed))
        gen = TraceGenerator(topo, MetricState(topo.all_instances, 0), seed=seed)
        batch = gen.new_batch()
        for _ in range(50):
            gen.add_trace(batch, 10**18)
        return sorted(
            (s.span_id, s.name)
            for rs in batch.request.resource_spans
            for ss in rs.scope_spans
            for s in ss.spans
        )

    assert build(1) == build(1) != build(2)
