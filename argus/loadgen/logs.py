"""Log records: compiled templates, per-request batches, and periodic logs not tied to a trace."""

from __future__ import annotations

import random
from collections.abc import Iterable

from google.protobuf.internal.containers import RepeatedCompositeFieldContainer
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from argus.loadgen.otlp import DEBUG, INFO, SCHEMA_URL, SEVERITY_TEXT, WARN, AttrValue, key_values
from argus.loadgen.topology import Instance, LogSpec


class LogTemplate:
    """A LogRecord pre-serialized with severity and static attributes.

    Body and dynamic attributes are filled per record.
    """

    __slots__ = ("body", "dyn", "severity", "tpl")

    def __init__(
        self,
        severity: int,
        body: str,
        static: Iterable[tuple[str, AttrValue]] = (),
        dyn: tuple[tuple[str, str], ...] = (),
    ) -> None:
        rec = LogRecord(
            severity_number=severity,  # type: ignore[arg-type]
            severity_text=SEVERITY_TEXT[severity],
            attributes=key_values(static),
        )
        self.tpl = rec.SerializeToString()
        self.body = body
        self.dyn = dyn
        self.severity = severity

    @classmethod
    def from_spec(cls, spec: LogSpec, static: Iterable[tuple[str, AttrValue]] = ()) -> LogTemplate:
        return cls(spec.severity, spec.body, static, spec.attrs)


class LogBatch:
    """One ExportLogsServiceRequest being filled, grouped by instance."""

    def __init__(self) -> None:
        self.request = ExportLogsServiceRequest()
        self.records = 0
        self._containers: dict[int, RepeatedCompositeFieldContainer[LogRecord]] = {}

    def _records_for(self, inst: Instance) -> RepeatedCompositeFieldContainer[LogRecord]:
        c = self._containers.get(inst.index)
        if c is None:
            rl = self.request.resource_logs.add()
            rl.resource.CopyFrom(inst.resource)
            rl.schema_url = SCHEMA_URL
            sl = rl.scope_logs.add()
            app = inst.service.scope_for("app")
            sl.scope.name = app.name
            sl.scope.version = app.version
            c = self._containers[inst.index] = sl.log_records
        return c

    def add(
        self,
        inst: Instance,
        tpl: LogTemplate,
        time_ns: int,
        ctx: dict[str, str],
        trace_id: bytes = b"",
        span_id: bytes = b"",
    ) -> None:
        r = self._records_for(inst).add()
        r.MergeFromString(tpl.tpl)
        r.time_unix_nano = time_ns
        r.observed_time_unix_nano = time_ns + 150_000
        r.body.string_value = tpl.body.format_map(ctx)
        for key, fmt in tpl.dyn:
            a = r.attributes.add()
            a.key = key
            a.value.string_value = fmt.format_map(ctx)
        if trace_id:
            r.trace_id = trace_id
            r.span_id = span_id
            r.flags = 1  # sampled
        self.records += 1


class PeriodicLogs:
    """Housekeeping lines services print on a timer: no trace context."""

    def __init__(self, instances: dict[str, list[Instance]], rng: random.Random) -> None:
        self._rng = rng
        self._instances = instances
        self._cache = {
            i.index: [0, 0, 0] for i in instances.get("cart", [])
        }  # hits, misses, evictions
        self._lag = 0
        self._cache_tpl = LogTemplate(
            INFO,
            "cache stats hits={hits} misses={misses} evictions={evictions} hit_ratio={ratio}",
            [("log.logger", "cart.cache")],
        )
        self._pool_tpl = LogTemplate(
            DEBUG,
            "db pool stats: total=20 idle={idle} in_use={in_use} waiting={waiting}",
            [("log.logger", "pgxpool")],
        )
        self._pool_warn_tpl = LogTemplate(
            WARN,
            "db pool saturated: total=20 idle=0 in_use=20 waiting={waiting}",
            [("log.logger", "pgxpool")],
        )
        self._lag_tpl = LogTemplate(
            INFO,
            "consumer lag topic=orders partition=0 lag={lag}",
            [("log.logger", "racecar"), ("messaging.destination.name", "orders")],
        )

    def emit(self, batch: LogBatch, now_ns: int) -> None:
        rng = self._rng
        for inst in self._instances.get("cart", []):
            c = self._cache[inst.index]
            c[0] += rng.randint(200, 900)
            c[1] += rng.randint(5, 60)
            c[2] += rng.randint(0, 8)
            ratio = c[0] / max(1, c[0] + c[1])
            batch.add(
                inst,
                self._cache_tpl,
                now_ns,
                {
                    "hits": str(c[0]),
                    "misses": str(c[1]),
                    "evictions": str(c[2]),
                    "ratio": f"{ratio:.3f}",
                },
            )
        for inst in self._instances.get("checkout", []):
            in_use = min(20, int(rng.expovariate(1 / 3)))
            if in_use >= 20:
                batch.add(inst, self._pool_warn_tpl, now_ns, {"waiting": str(rng.randint(1, 6))})
            else:
                batch.add(
                    inst,
                    self._pool_tpl,
                    now_ns,
                    {"idle": str(20 - in_use), "in_use": str(in_use), "waiting": "0"},
                )
        for inst in self._instances.get("email", []):
            self._lag = max(0, self._lag + rng.randint(-3, 3))
            batch.add(inst, self._lag_tpl, now_ns, {"lag": str(self._lag)})
