"""Trace generation: compile the topology into pre-serialized span templates, then stamp copies.

Per span the hot path is: MergeFromString(template bytes) + ids + two timestamps + a few dynamic
attributes. Error variants of a template (status code, error.type, exception event) are built
lazily and cached, so failures cost no more than successes.
"""

from __future__ import annotations

import random
from bisect import bisect
from itertools import accumulate
from math import exp

from google.protobuf.internal.containers import RepeatedCompositeFieldContainer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from argus.loadgen.logs import LogBatch, LogTemplate
from argus.loadgen.metrics import MetricState
from argus.loadgen.otlp import ERROR, INFO, SCHEMA_URL, WARN, AttrValue, key_values
from argus.loadgen.topology import (
    CLIENT,
    CONSUMER,
    SERVER,
    Failure,
    FinishHook,
    Instance,
    Op,
    ScopeInfo,
    Topology,
    TraceType,
    lognormal_params,
)

PRODUCTS = [
    ("OLJCESPC7Z", 101.96),
    ("66VCHSJNUP", 349.95),
    ("1YMWWN1N4O", 109.99),
    ("L9ECAV7KIM", 14.99),
    ("2ZYFJ3GM2N", 209.95),
    ("0PUK6V6EV0", 65.50),
    ("LS4PSXUNUM", 59.99),
    ("9SIQT8TOJO", 3599.00),
    ("6E92ZMYYFZ", 8.99),
    ("HQTGWGPNH4", 21.95),
]
CURRENCIES = ["USD"] * 6 + ["EUR"] * 2 + ["GBP", "JPY", "CAD"]
CARDS = [
    ("visa", "4242"),
    ("visa", "1881"),
    ("mastercard", "4444"),
    ("mastercard", "5100"),
    ("amex", "0005"),
]

_Rec = tuple[
    "_Node", bytes, bytes, int, int, Instance, int, bool
]  # node, span id, parent, start, end, inst, code, slow


class _Node:
    """One Op compiled for a trace type."""

    __slots__ = (
        "_access",
        "_errors",
        "_metric_attrs",
        "children",
        "dyn",
        "flags",
        "gap",
        "idx",
        "is_server",
        "kind",
        "link",
        "logs",
        "mu",
        "ok_tpl",
        "on_finish",
        "op",
        "pre",
        "route",
        "scope_id",
        "sigma",
        "slow",
        "slow_log",
        "svc",
    )

    def __init__(
        self, op: Op, idx: int, scope_id: int, children: list[_Node], is_root: bool
    ) -> None:
        self.op = op
        # Span.flags: sampled | has-is-remote, plus is-remote when the parent came over the wire.
        self.flags = 0x301 if op.kind in (SERVER, CONSUMER) and not is_root else 0x101
        self.idx = idx
        self.svc = op.service
        self.kind = op.kind
        self.scope_id = scope_id
        self.mu, self.sigma = lognormal_params(*op.latency)
        # Share of the op's own time spent before its first call (request parsing, network out).
        self.pre = 0.5 if op.kind == CLIENT else 0.3
        self.gap = 0.4 / len(children) / 4 if children else 0.0  # own time between sequential calls
        self.children = children
        self.dyn = op.dyn
        self.slow = op.slow
        self.slow_log = LogTemplate.from_spec(op.slow_log) if op.slow_log else None
        self.logs = [LogTemplate.from_spec(s) for s in op.logs]
        self.on_finish: FinishHook | None = op.on_finish
        self.link = op.link_to_producer
        self.is_server = op.kind == SERVER
        # Histogram series are keyed by what ends up in their attributes: one route reached from
        # several request types must still be one series.
        self.route = f"{op.attrs.get('http.request.method')} {op.attrs.get('http.route')}"
        self._errors: dict[tuple[int, int, bool], tuple[bytes, str | None]] = {}
        self._metric_attrs: dict[tuple[int, str | None], list[KeyValue]] = {}
        self._access: dict[int, LogTemplate] = {}
        self.ok_tpl = self._template(0, None, False)[0]

    def _template(
        self, code: int, fail: Failure | None, exc_here: bool
    ) -> tuple[bytes, str | None]:
        """Serialized span template for an outcome, and its error.type (None when not an error)."""
        op = self.op
        span = Span(name=op.name, kind=op.kind, flags=self.flags)  # type: ignore[arg-type]
        attrs: dict[str, AttrValue] = dict(op.attrs)
        if op.http_code and code >= 0:
            attrs["http.response.status_code"] = code or op.http_code
        error_type: str | None = None
        exc = fail.exception if fail is not None else None
        # Semconv: a 4xx is not an error on a SERVER span unless the app recorded an exception.
        is_error = code != 0 and not (op.kind == SERVER and 400 <= code < 500 and not exc_here)
        if is_error:
            if exc_here and exc is not None:
                error_type = exc.type
            elif code > 0:
                error_type = str(code)
            else:
                error_type = exc.type if exc is not None else "_OTHER"
            attrs["error.type"] = error_type
            span.status.code = Status.STATUS_CODE_ERROR
            if exc_here and exc is not None:
                span.status.message = f"{exc.type}: {exc.message}"
                ev = span.events.add(name="exception")  # time stamped per span
                ev.attributes.extend(
                    key_values(
                        {
                            "exception.type": exc.type,
                            "exception.message": exc.message,
                            "exception.stacktrace": exc.stacktrace,
                        }
                    )
                )
        span.attributes.extend(key_values(attrs))
        return span.SerializeToString(), error_type

    def error_template(self, fail: Failure, code: int, exc_here: bool) -> tuple[bytes, str | None]:
        key = (id(fail), code, exc_here)
        t = self._errors.get(key)
        if t is None:
            t = self._errors[key] = self._template(code, fail, exc_here)
        return t

    def metric_attrs(self, code: int, error_type: str | None) -> list[KeyValue]:
        key = (code, error_type)
        a = self._metric_attrs.get(key)
        if a is None:
            op = self.op
            attrs: dict[str, AttrValue] = {
                k: op.attrs[k]
                for k in (
                    "http.request.method",
                    "http.route",
                    "url.scheme",
                    "network.protocol.version",
                )
            }
            attrs["http.response.status_code"] = code if code > 0 else op.http_code
            if error_type:
                attrs["error.type"] = error_type
            a = self._metric_attrs[key] = key_values(attrs)
        return a

    def access_template(self, status: int) -> LogTemplate:
        t = self._access.get(status)
        if t is None:
            op = self.op
            path = next(
                (fmt for k, fmt in op.dyn if k == "url.path"), str(op.attrs.get("url.path", ""))
            )
            sev = ERROR if status >= 500 else WARN if status >= 400 else INFO
            method = str(op.attrs["http.request.method"])
            t = self._access[status] = LogTemplate(
                sev,
                f"{method} {path} {status} {{duration_ms}}ms",
                [
                    ("log.logger", "access"),
                    ("http.request.method", method),
                    ("http.route", str(op.attrs["http.route"])),
                    ("http.response.status_code", status),
                ],
                (("url.path", path),) + tuple(d for d in op.dyn if d[0] == "app.user.id"),
            )
        return t


class _CompiledType:
    __slots__ = (
        "checkout",
        "exc_nodes",
        "fail_logs",
        "fail_weights",
        "failures",
        "followup",
        "origins",
        "root",
        "spec",
    )

    def __init__(
        self, spec: TraceType, compile_op: dict[int, _Node], followup: _CompiledType | None
    ) -> None:
        self.spec = spec
        self.root = compile_op[id(spec.root)]
        self.failures = spec.failures
        self.fail_weights = list(accumulate(f.weight for f in spec.failures))
        self.checkout = spec.checkout
        self.followup = followup
        by_key = {n.op.key: n for n in compile_op.values() if n.op.key}
        # Failure -> compiled origin / exception nodes, resolved once.
        self.origins = {id(f): by_key[f.origin] for f in spec.failures}
        self.exc_nodes = {id(f): by_key[f.exc_at or f.origin] for f in spec.failures}
        self.fail_logs = {
            id(f): LogTemplate.from_spec(f.log) for f in spec.failures if f.log is not None
        }


class TraceBatch:
    """One ExportTraceServiceRequest, grouped by instance and scope, plus those traces' logs."""

    def __init__(self, scopes: list[ScopeInfo]) -> None:
        self.request = ExportTraceServiceRequest()
        self.logs = LogBatch()
        self.traces = 0
        self.spans = 0
        self._scopes = scopes
        self._containers: dict[int, RepeatedCompositeFieldContainer[Span]] = {}
        self._resource_spans: dict[int, object] = {}

    def spans_for(self, inst: Instance, scope_id: int) -> RepeatedCompositeFieldContainer[Span]:
        key = inst.index * 256 + scope_id
        c = self._containers.get(key)
        if c is None:
            rs = self._resource_spans.get(inst.index)
            if rs is None:
                rs = self.request.resource_spans.add()
                rs.resource.CopyFrom(inst.resource)
                rs.schema_url = SCHEMA_URL
                self._resource_spans[inst.index] = rs
            ss = rs.scope_spans.add()  # type: ignore[attr-defined]
            info = self._scopes[scope_id]
            ss.scope.name = info.name
            ss.scope.version = info.version
            c = self._containers[key] = ss.spans
        return c


class TraceGenerator:
    def __init__(
        self,
        topology: Topology,
        metrics: MetricState,
        *,
        seed: int | None = None,
        error_rate: float = 0.03,
    ) -> None:
        self.topology = topology
        self.metrics = metrics
        self.error_rate = error_rate
        self._rng = random.Random(seed)
        self._instances = topology.instances
        self._scopes: list[ScopeInfo] = []
        self._scope_ids: dict[ScopeInfo, int] = {}
        self._next_idx = 0
        compiled: dict[int, _CompiledType] = {}
        self._types: list[_CompiledType] = []
        for tt in topology.trace_types:
            self._types.append(self._compile_type(tt, compiled))
        self._weights = list(accumulate(t.spec.weight for t in self._types))
        self._producer: tuple[bytes, int] | None = (
            None  # (span id, end) of the PRODUCER span of the current trace
        )

    # ------------------------------------------------------------------ compile

    def _compile_type(self, tt: TraceType, done: dict[int, _CompiledType]) -> _CompiledType:
        if id(tt) in done:
            return done[id(tt)]
        nodes: dict[int, _Node] = {}

        def walk(op: Op, is_root: bool = False) -> _Node:
            children = [walk(c) for c in op.children]
            info = self.topology.services[op.service].scope_for(op.scope)
            sid = self._scope_ids.get(info)
            if sid is None:
                sid = self._scope_ids[info] = len(self._scopes)
                self._scopes.append(info)
            node = _Node(op, self._next_idx, sid, children, is_root)
            self._next_idx += 1
            nodes[id(op)] = node
            return node

        walk(tt.root, True)
        followup = self._compile_type(tt.followup, done) if tt.followup else None
        ct = done[id(tt)] = _CompiledType(tt, nodes, followup)
        return ct

    # ------------------------------------------------------------------ generation

    def new_batch(self) -> TraceBatch:
        return TraceBatch(self._scopes)

    def add_trace(self, batch: TraceBatch, end_ns: int) -> int:
        """Append one user request ending at `end_ns`, and its async follow-up if any.

        Returns the number of traces added (1 or 2).
        """
        rng = self._rng
        tt = self._types[bisect(self._weights, rng.random() * self._weights[-1])]
        ctx = self._context(tt.checkout)
        fail = self._pick_failure(tt)
        trace_id = rng.getrandbits(128).to_bytes(16, "little")
        self._producer = None
        recs: list[_Rec] = []
        end, code = self._walk(tt.root, 0, b"", None, fail, tt, recs)
        last = end
        follow: tuple[_CompiledType, bytes, list[_Rec], Failure | None] | None = None
        if tt.followup is not None and code == 0 and self._producer is not None:
            # The job consumes the message a little after it was produced: a separate trace, linked.
            ft = tt.followup
            ffail = self._pick_failure(ft)
            frecs: list[_Rec] = []
            queued = self._producer[1] + int(
                exp(rng.gauss(16.1, 0.9))
            )  # median ~10 ms in the queue
            fend, _ = self._walk(ft.root, queued, b"", None, ffail, ft, frecs)
            last = max(last, fend)
            follow = (ft, rng.getrandbits(128).to_bytes(16, "little"), frecs, ffail)
        base = end_ns - last
        link = (trace_id, self._producer[0]) if self._producer else None
        self._emit(batch, tt, trace_id, recs, base, ctx, fail, None)
        if follow is not None:
            self._emit(batch, follow[0], follow[1], follow[2], base, ctx, follow[3], link)
            batch.traces += 2
            return 2
        batch.traces += 1
        return 1

    def _pick_failure(self, tt: _CompiledType) -> Failure | None:
        rng = self._rng
        if not tt.failures or rng.random() >= self.error_rate:
            return None
        return tt.failures[bisect(tt.fail_weights, rng.random() * tt.fail_weights[-1])]

    def _context(self, checkout: bool) -> dict[str, str]:
        rng = self._rng
        r = rng.random
        uid = 1 + int(r() * 49_999)
        product, price = PRODUCTS[int(r() * len(PRODUCTS))]
        qty = 1 + int(r() * 3)
        ctx = {
            "user_id": f"u-{uid:05d}",
            "product_id": product,
            "qty": str(qty),
            "currency": CURRENCIES[int(r() * len(CURRENCIES))],
        }
        if checkout:
            items = 1 + int(r() * 6)
            brand, last4 = CARDS[int(r() * len(CARDS))]
            ctx["order_id"] = (
                f"{rng.getrandbits(32):08x}-{rng.getrandbits(16):04x}-{rng.getrandbits(16):04x}"
            )
            ctx["items"] = str(items)
            ctx["amount"] = f"{price * qty + rng.uniform(5, 80) * (items - 1):.2f}"
            ctx["card_brand"] = brand
            ctx["card_last4"] = last4
            ctx["email"] = f"user{uid}@example.com"
        return ctx

    def _walk(
        self,
        node: _Node,
        start: int,
        parent: bytes,
        inst: Instance | None,
        fail: Failure | None,
        tt: _CompiledType,
        recs: list[_Rec],
    ) -> tuple[int, int]:
        """Lay out `node` and its subtree from `start` (relative ns); returns (end, code).

        code: 0 ok, >0 the HTTP status the span ended with, -1 failed without an HTTP status.
        """
        rng = self._rng
        if node.kind == SERVER or node.kind == CONSUMER or inst is None:
            insts = self._instances[node.svc]
            inst = insts[int(rng.random() * len(insts))] if len(insts) > 1 else insts[0]
        span_id = rng.getrandbits(64).to_bytes(8, "little")
        own = int(exp(rng.gauss(node.mu, node.sigma)))
        slow = False
        if node.slow is not None and rng.random() < node.slow[0]:
            own = int(own * rng.uniform(node.slow[1], node.slow[2]))
            slow = True
        code = 0
        if fail is not None and tt.origins[id(fail)] is node:
            # The failure starts here; calls this op would have made never happen.
            if fail.duration_ms is not None:
                own = int(fail.duration_ms * 1e6 * rng.uniform(1.0, 1.01))
            end = start + own
            code = fail.origin_code or -1
        else:
            t = start + int(own * node.pre)
            used = t - start
            child_code = 0
            gap = int(own * node.gap)
            for child in node.children:
                t, child_code = self._walk(child, t + gap, span_id, inst, fail, tt, recs)
                used += gap
                if child_code:
                    break
            end = t + max(own - used, own // 10)
            if child_code:
                code = (
                    fail.codes.get(node.svc, 500)
                    if node.is_server and fail is not None
                    else child_code
                )
        if node.kind == 4:  # PRODUCER: remembered so the async consumer can link to it
            self._producer = (span_id, end)
        recs.append((node, span_id, parent, start, end, inst, code, slow))
        return end, code

    def _emit(
        self,
        batch: TraceBatch,
        tt: _CompiledType,
        trace_id: bytes,
        recs: list[_Rec],
        base: int,
        ctx: dict[str, str],
        fail: Failure | None,
        link: tuple[bytes, bytes] | None,
    ) -> None:
        metrics = self.metrics
        logs = batch.logs
        exc_node = tt.exc_nodes[id(fail)] if fail is not None else None
        for node, span_id, parent, start, end, inst, code, slow in recs:
            st = base + start
            en = base + end
            exc_here = False
            error_type: str | None = None
            if code == 0:
                tpl = node.ok_tpl
            else:
                assert fail is not None
                exc_here = node is exc_node
                tpl, error_type = node.error_template(fail, code, exc_here)
            span = batch.spans_for(inst, node.scope_id).add()
            span.MergeFromString(tpl)
            span.trace_id = trace_id
            span.span_id = span_id
            if parent:
                span.parent_span_id = parent
            span.start_time_unix_nano = st
            span.end_time_unix_nano = en
            for key, fmt in node.dyn:
                a = span.attributes.add()
                a.key = key
                a.value.string_value = fmt.format_map(ctx)
            if exc_here:
                span.events[0].time_unix_nano = en - 20_000
            if node.link and link is not None:
                ln = span.links.add()
                ln.trace_id, ln.span_id = link
                ln.flags = 0x301  # sampled, parent is remote
            if node.is_server:
                metrics.observe_http_server(
                    (inst.index, node.route, code or node.op.http_code, error_type or ""),
                    inst,
                    node.metric_attrs,
                    code,
                    error_type,
                    st,
                    en,
                    trace_id,
                    span_id,
                )
            if node.on_finish is not None:
                node.on_finish(
                    metrics, inst, ctx, fail.outcome if code and fail is not None else None
                )
            # Logs: business lines on success, the failure's line where the exception was recorded.
            if code == 0:
                for lt in node.logs:
                    logs.add(inst, lt, en - 50_000, ctx, trace_id, span_id)
            elif exc_here and fail is not None and fail.log is not None:
                logs.add(inst, tt.fail_logs[id(fail)], en - 30_000, ctx, trace_id, span_id)
            if slow and node.slow_log is not None:
                ctx["duration_ms"] = str((end - start) // 1_000_000)
                logs.add(inst, node.slow_log, en, ctx, trace_id, span_id)
            if node.op.access_log:
                status = code if code > 0 else 500 if code < 0 else node.op.http_code
                ctx["duration_ms"] = f"{(end - start) / 1e6:.1f}"
                logs.add(inst, node.access_template(status), en + 100_000, ctx, trace_id, span_id)
        batch.spans += len(recs)
