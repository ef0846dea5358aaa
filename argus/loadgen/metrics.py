"""Per-series metric state fed by the generated spans, exported as cumulative OTLP metrics.

Spans update the state as they are generated (RED metrics: one histogram observation per
SERVER span, with the span as exemplar); `export()` snapshots it. Cumulative series keep one
start time for the whole run, so every export's values only grow.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, Metric, ScopeMetrics

from argus.loadgen.otlp import SCHEMA_URL, key_values, kv, scope
from argus.loadgen.topology import Instance, ScopeInfo

CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE

# Semconv advice for http.server.request.duration.
HTTP_DURATION_BOUNDS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)

# name -> (unit, description); all monotonic cumulative integer sums.
COUNTERS: dict[str, tuple[str, str]] = {
    "app.orders.placed": ("{order}", "Orders successfully placed"),
    "app.payment.transactions": ("{transaction}", "Card charge attempts by outcome"),
    "app.emails.sent": ("{email}", "Transactional emails processed by outcome"),
    "app.cart.items_added": ("{item}", "Items added to carts"),
}

Exemplar = tuple[int, float, bytes, bytes]  # time, value, trace id, span id


@dataclass(slots=True)
class _Histogram:
    inst: Instance
    attrs: list[KeyValue]
    counts: list[int] = field(default_factory=lambda: [0] * (len(HTTP_DURATION_BOUNDS) + 1))
    count: int = 0
    total: float = 0.0
    min: float = float("inf")
    max: float = 0.0
    # Latest exemplar per bucket since the previous export (the SDK's aligned-bucket reservoir).
    exemplars: dict[int, Exemplar] = field(default_factory=dict)


@dataclass(slots=True)
class _InstanceState:
    requests: int = 0  # since the previous export
    busy_ns: int = 0  # summed SERVER span durations since the previous export
    memory: float = 0.0  # bytes
    host_memory: float = 0.5  # system.memory.utilization


class MetricState:
    def __init__(
        self, instances: list[Instance], start_ns: int, rng: random.Random | None = None
    ) -> None:
        self.start_ns = start_ns
        self._rng = rng or random.Random()
        self._instances = instances
        self._hist: dict[tuple[int, str, int, str], _Histogram] = {}
        self._counters: dict[tuple[str, int, tuple[tuple[str, str], ...]], int] = {}
        self._inst = {
            i.index: _InstanceState(
                memory=i.service.memory_mb * 2**20, host_memory=self._rng.uniform(0.35, 0.6)
            )
            for i in instances
        }
        self._last_export_ns = start_ns

    # ------------------------------------------------------------------ recording (hot path)

    def observe_http_server(
        self,
        key: tuple[int, str, int, str],
        inst: Instance,
        attrs: Callable[[int, str | None], list[KeyValue]],
        code: int,
        error_type: str | None,
        start_ns: int,
        end_ns: int,
        trace_id: bytes,
        span_id: bytes,
    ) -> None:
        h = self._hist.get(key)
        if h is None:
            h = self._hist[key] = _Histogram(inst, attrs(code, error_type))  # built once per series
        dur_ns = end_ns - start_ns
        seconds = dur_ns / 1e9
        i = bisect_left(HTTP_DURATION_BOUNDS, seconds)  # buckets are (lower, upper]
        h.counts[i] += 1
        h.count += 1
        h.total += seconds
        h.min = min(h.min, seconds)
        h.max = max(h.max, seconds)
        h.exemplars[i] = (end_ns, seconds, trace_id, span_id)
        st = self._inst[inst.index]
        st.requests += 1
        st.busy_ns += dur_ns

    def add_counter(
        self, name: str, inst: Instance, attrs: tuple[tuple[str, str], ...], value: int = 1
    ) -> None:
        key = (name, inst.index, attrs)
        self._counters[key] = self._counters.get(key, 0) + value

    # ------------------------------------------------------------------ export

    def export(self, now_ns: int) -> tuple[ExportMetricsServiceRequest, int]:
        """Snapshot every series into one request; returns it and its number of data points."""
        interval_s = max((now_ns - self._last_export_ns) / 1e9, 1e-3)
        self._last_export_ns = now_ns
        rng = self._rng
        req = ExportMetricsServiceRequest()
        points = 0
        hists_by_inst: dict[int, list[_Histogram]] = {}
        for h in self._hist.values():
            hists_by_inst.setdefault(h.inst.index, []).append(h)
        counters_by_inst: dict[int, list[tuple[str, tuple[tuple[str, str], ...], int]]] = {}
        for (name, idx, attrs), value in self._counters.items():
            counters_by_inst.setdefault(idx, []).append((name, attrs, value))

        for inst in self._instances:
            svc = inst.service
            st = self._inst[inst.index]
            rm = req.resource_metrics.add()
            rm.resource.CopyFrom(inst.resource)
            rm.schema_url = SCHEMA_URL

            hists = hists_by_inst.get(inst.index)
            if hists:
                sm = self._scope(rm.scope_metrics.add(), svc.scope_for("http.server"))
                points += self._histograms(sm.metrics.add(), hists, now_ns)
                # Little's law: mean concurrency = busy time / wall time.
                active = max(0, round(st.busy_ns / 1e9 / interval_s + rng.gauss(0, 0.5)))
                m = sm.metrics.add(
                    name="http.server.active_requests",
                    unit="{request}",
                    description="Number of active HTTP server requests.",
                )
                m.sum.aggregation_temporality = CUMULATIVE
                m.sum.is_monotonic = False
                dp = m.sum.data_points.add(
                    start_time_unix_nano=self.start_ns, time_unix_nano=now_ns, as_int=active
                )
                dp.attributes.extend(
                    [
                        kv("url.scheme", "http"),
                        kv("server.address", svc.name),
                        kv("server.port", svc.port),
                    ]
                )
                points += 1

            counters = counters_by_inst.get(inst.index)
            if counters:
                sm = self._scope(rm.scope_metrics.add(), svc.scope_for("app"))
                by_name: dict[str, Metric] = {}
                for name, attrs, value in sorted(counters):
                    m = by_name.get(name)
                    if m is None:
                        unit, desc = COUNTERS[name]
                        m = by_name[name] = sm.metrics.add(name=name, unit=unit, description=desc)
                        m.sum.aggregation_temporality = CUMULATIVE
                        m.sum.is_monotonic = True
                    dp = m.sum.data_points.add(
                        start_time_unix_nano=self.start_ns, time_unix_nano=now_ns, as_int=value
                    )
                    dp.attributes.extend(key_values(attrs))
                    points += 1

            points += self._process(rm.scope_metrics.add(), inst, st, interval_s, now_ns)
            st.requests = 0
            st.busy_ns = 0
        return req, points

    @staticmethod
    def _scope(sm: ScopeMetrics, info: ScopeInfo) -> ScopeMetrics:
        sm.scope.CopyFrom(scope(info.name, info.version))
        return sm

    def _histograms(self, m: Metric, hists: list[_Histogram], now_ns: int) -> int:
        m.name = "http.server.request.duration"
        m.unit = "s"
        m.description = "Duration of HTTP server requests."
        m.histogram.aggregation_temporality = CUMULATIVE
        for h in hists:
            dp = m.histogram.data_points.add(
                start_time_unix_nano=self.start_ns,
                time_unix_nano=now_ns,
                count=h.count,
                sum=h.total,
                min=h.min,
                max=h.max,
            )
            dp.attributes.extend(h.attrs)
            dp.bucket_counts.extend(h.counts)
            dp.explicit_bounds.extend(HTTP_DURATION_BOUNDS)
            for i in sorted(h.exemplars):
                t, v, trace_id, span_id = h.exemplars[i]
                dp.exemplars.add(time_unix_nano=t, as_double=v, trace_id=trace_id, span_id=span_id)
            h.exemplars.clear()
        return len(hists)

    def _process(
        self, sm: ScopeMetrics, inst: Instance, st: _InstanceState, interval_s: float, now_ns: int
    ) -> int:
        rng = self._rng
        svc = inst.service
        sm.scope.name = "io.opentelemetry.runtime-metrics" if svc.language == "java" else "process"
        rps = st.requests / interval_s
        cpu = min(1.0, max(0.0, 0.015 + rps * svc.cpu_ms_per_request / 1000 + rng.gauss(0, 0.004)))
        m = sm.metrics.add(
            name="process.cpu.utilization",
            unit="1",
            description="Difference in process.cpu.time since the last measurement, divided by "
            "the elapsed time and number of CPUs available to the process.",
        )
        m.gauge.data_points.add(time_unix_nano=now_ns, as_double=round(cpu, 4))

        # Heap grows with traffic and drops back on a collection: a sawtooth.
        base = svc.memory_mb * 2**20
        st.memory += st.requests * 24_000 + rng.uniform(0, 2**20)
        if st.memory > base * 1.35:
            st.memory = base * rng.uniform(1.0, 1.08)
        m = sm.metrics.add(
            name="process.memory.usage",
            unit="By",
            description="The amount of physical memory in use.",
        )
        m.sum.aggregation_temporality = CUMULATIVE
        m.sum.is_monotonic = False
        m.sum.data_points.add(
            start_time_unix_nano=self.start_ns, time_unix_nano=now_ns, as_int=int(st.memory)
        )

        st.host_memory = min(0.95, max(0.2, st.host_memory + rng.gauss(0, 0.01)))
        m = sm.metrics.add(
            name="system.memory.utilization",
            unit="1",
            description="Memory utilization of the host.",
        )
        dp = m.gauge.data_points.add(time_unix_nano=now_ns, as_double=round(st.host_memory, 4))
        dp.attributes.append(kv("system.memory.state", "used"))
        return 3
