"""The trace store contract: what every trace backend does, and what its answers mean."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, Protocol

from .model import Span, SpanKind


@dataclass(frozen=True, slots=True)
class TraceQuery:
    """Filters for trace search; every filter left at its default matches everything.

    A trace matches when at least one of its spans matches every span-level filter
    (service, operation, duration, error, attributes) and that span started in
    [start_unix_nano, end_unix_nano).
    `attributes` compares the string form (`value_as_label`) of a span attribute, or of a
    resource attribute when the span has no attribute of that name.
    """

    tenant: str
    start_unix_nano: int | None = None
    end_unix_nano: int | None = None
    service: str | None = None
    operation: str | None = None
    min_duration_nano: int | None = None
    max_duration_nano: int | None = None
    errors_only: bool = False
    attributes: dict[str, str] = field(default_factory=dict)
    limit: int = 20


@dataclass(slots=True)
class TraceSummary:
    """One found trace. The root is the span without a parent (the earliest span if the
    root has not arrived). Duration spans from the earliest start to the latest end."""

    trace_id: str
    root_service: str
    root_name: str
    start_unix_nano: int
    duration_nano: int
    span_count: int
    error_count: int
    services: list[str]

    @property
    def has_error(self) -> bool:
        return self.error_count > 0


@dataclass(slots=True)
class ServiceOperations:
    service: str
    operations: list[str]


# ---------------------------------------------------------------------------- analytics
#
# Service map, RED metrics and trace analytics are derived from spans by the store, so an
# application gets them without sending metrics. Their common rules:
#
# * Time has minute resolution: `start` is rounded down and `end` up to a whole UTC minute,
#   and a span counts in the minute it started. Rates are per second over the rounded range
#   (the step, for series).
# * Percentiles are nearest-rank ("percentile_disc": the first duration whose rank is at
#   least ceil(q * count)). A store may estimate them from log-linear histogram buckets, 16
#   per power of two: the estimate is then within PERCENTILE_RELATIVE_ERROR of the exact
#   value. They are None where nothing was counted.
# * "Entry spans", the default span selection of RED metrics, histograms and top operations
#   and what a service node counts, are SERVER and CONSUMER spans plus spans without a
#   parent (a service's own requests, however it is called). An explicit `span_kinds`
#   selects spans by kind only.
# * Errors are spans with status ERROR.

MINUTE_NS = 60 * 1_000_000_000
PERCENTILE_RELATIVE_ERROR = 1 / 32  # half a bucket of 1/16 of an octave
ENTRY_KINDS: tuple[SpanKind, ...] = (SpanKind.SERVER, SpanKind.CONSUMER)
MAX_BUCKETS = 200  # latency_histogram bounds


def minute_range(start_unix_nano: int, end_unix_nano: int) -> tuple[int, int]:
    """[start, end) rounded out to whole minutes, as every analytics query counts it."""
    start = start_unix_nano - start_unix_nano % MINUTE_NS
    end = -(-end_unix_nano // MINUTE_NS) * MINUTE_NS
    return start, end


class NodeType(StrEnum):
    """What a service map node stands for.

    SERVICE: a `service.name` that sent spans. The others are inferred from the attributes
    of spans that call out (semantic conventions), since they send no spans themselves:
    DATABASE: CLIENT spans with `db.system.name` or `db.system` (system), named by
    `db.namespace` / `db.name`, else `server.address`, else the system.
    MESSAGING: PRODUCER, CLIENT and CONSUMER spans with `messaging.system` (system), named
    by `messaging.destination.name` / `messaging.destination`, else `server.address`,
    else the system.
    EXTERNAL: CLIENT spans with none of these and no child span in another service, named
    by the first of `peer.service`, `server.address`, `net.peer.name`, the host of
    `url.full` / `http.url`, `rpc.service` (such a span without any adds no edge).
    """

    SERVICE = "service"
    DATABASE = "database"
    MESSAGING = "messaging"
    EXTERNAL = "external"


def node_id(type: NodeType, system: str, name: str) -> str:
    """`service:checkout`, `database:postgresql/shop`, `messaging:kafka/orders`,
    `external:api.stripe.com`."""
    return f"{type.value}:{system}/{name}" if system else f"{type.value}:{name}"


@dataclass(slots=True)
class RequestStats:
    """Requests of a node or edge over a range: counts, per-second rates, duration
    percentiles in nanoseconds (None when count is 0)."""

    count: int
    errors: int
    rate: float
    error_rate: float  # errors / count; 0 when count is 0
    p50: int | None
    p95: int | None
    p99: int | None


@dataclass(slots=True)
class ServiceMapNode:
    type: NodeType
    system: str  # database or messaging system ("postgresql", "kafka"); "" otherwise
    name: str
    stats: RequestStats

    @property
    def id(self) -> str:
        return node_id(self.type, self.system, self.name)


@dataclass(slots=True)
class ServiceMapEdge:
    source: str  # node ids
    target: str
    stats: RequestStats


@dataclass(slots=True)
class ServiceMap:
    """The dependency graph of a tenant over [start, end) (rounded to minutes).

    Edges, one request each:
    * a span and its parent in another service, caller -> callee: the usual CLIENT ->
      SERVER pair, and also any other parent/child pair crossing services. The latency is
      the parent's duration when it is a CLIENT or PRODUCER span (and the pair counts in
      the minute it started), else the child's. It is an error when either span is.
      Pairs through an inferred node are not counted twice: a database or messaging
      CLIENT/PRODUCER parent, or a messaging CONSUMER child, forms no direct edge.
    * service -> DATABASE / MESSAGING node for each CLIENT or PRODUCER span inferred to
      one; MESSAGING node -> service for each CONSUMER span with `messaging.system`
      (so producer -> topic -> consumer, whether the consumer is a child or a linked trace);
    * service -> EXTERNAL node for each CLIENT span with no child in another service.
    Those three take the span's own duration and status.

    Nodes: every service with entry spans in the range or an edge, counting its entry
    spans; every inferred node, counting the requests of the edges into it.
    Nodes are sorted by id, edges by (source, target).
    """

    start_unix_nano: int
    end_unix_nano: int
    nodes: list[ServiceMapNode]
    edges: list[ServiceMapEdge]


@dataclass(slots=True)
class RedPoint:
    """Rate, errors and duration of one step [time, time + step)."""

    time_unix_nano: int
    count: int
    errors: int
    rate: float  # count per second of the step
    error_rate: float
    p50: int | None
    p95: int | None
    p99: int | None


@dataclass(slots=True)
class LatencyBucket:
    """Spans with a duration in [the previous bucket's bound (0 for the first),
    upper_bound_nano); None marks the last bucket of explicit bounds: everything above."""

    upper_bound_nano: int | None
    count: int


@dataclass(slots=True)
class OperationStats:
    service: str
    operation: str
    stats: RequestStats


@dataclass(slots=True)
class ErrorGroup:
    """Error spans with the same exception type and message.

    Type and message come from the span's last `exception` event (`exception.type`,
    `exception.message`); without one, from the `error.type` attribute ("" if absent) and
    the status message. Messages are cut to MAX_ERROR_MESSAGE characters.
    """

    exception_type: str
    message: str
    count: int
    services: list[str]  # sorted
    sample_trace_id: str  # the trace of the latest occurrence
    last_seen_unix_nano: int  # start of the latest occurrence


MAX_ERROR_MESSAGE = 500
TopBy = Literal["p95", "count", "error_rate"]


class TraceStore(Protocol):
    """Stores spans and answers trace queries for one deployment, partitioned by tenant.

    Writes are idempotent per `batch_id`: writing a batch id that was already applied does
    nothing, so a write retried after a crash never duplicates spans. A write that returns
    has committed; durability before that is the collector's write-ahead log's job.
    Returned objects belong to the caller.
    """

    async def write_spans(self, tenant: str, spans: Sequence[Span], batch_id: str) -> None: ...

    async def get_trace(self, tenant: str, trace_id: str) -> list[Span]:
        """Every stored span of the trace ordered by start time; [] for an unknown id."""
        ...

    async def find_traces(self, query: TraceQuery) -> list[TraceSummary]:
        """Matching traces, newest first (by trace start), at most `query.limit`."""
        ...

    async def services(self, tenant: str) -> list[ServiceOperations]:
        """Every service that sent spans, sorted, each with its sorted span names."""
        ...

    async def tenants(self) -> list[str]:
        """The tenants that have spans stored, sorted (retention walks these)."""
        ...

    async def delete_before(self, tenant: str, cutoff_unix_nano: int) -> int:
        """Remove the tenant's spans that started before the cutoff, and what queries
        would otherwise still show of them: traces, services and operations left
        without spans (`services()` stops listing them).

        Returns how many spans were removed, or -1 when the backend cannot count them
        cheaply. Other tenants and newer spans are untouched; calling it again with the
        same cutoff removes nothing. Safe while writes and queries run: the backend
        deletes in chunks (each its own short transaction) where its engine would
        otherwise hold a write lock for the whole deletion. Raises
        `errors.Unsupported` when the store declares `capabilities.RETENTION`
        unsupported.

        Analytics kept beside the spans (pre-aggregates) go with them in whole blocks:
        a block that straddles the cutoff stays until a later cutoff passes its end.
        """
        ...

    # -- analytics (see the rules above RequestStats)

    async def service_map(self, tenant: str, start: int, end: int) -> ServiceMap:
        """The dependency graph derived from the tenant's spans (see ServiceMap)."""
        ...

    async def red_series(
        self,
        tenant: str,
        start: int,
        end: int,
        step: int,
        service: str,
        operation: str | None = None,
        span_kinds: Sequence[SpanKind] | None = None,
    ) -> list[RedPoint]:
        """Rate, errors and duration percentiles of a service's spans (one operation's,
        when given; entry spans unless `span_kinds` is given) per step [t, t + step) for
        t = start, start + step, ... < end; every step is present, empty ones with zero
        counts. `step` must be a positive multiple of a minute (QueryError otherwise)."""
        ...

    async def latency_histogram(
        self,
        tenant: str,
        start: int,
        end: int,
        service: str,
        operation: str | None = None,
        bounds: Sequence[int] | None = None,
        span_kinds: Sequence[SpanKind] | None = None,
    ) -> list[LatencyBucket]:
        """Duration histogram of the spans red_series would count over [start, end).

        Default buckets are log-spaced: powers of two of nanoseconds, from the one holding
        the shortest duration to the one holding the longest ([] when there are no spans).
        Explicit `bounds` (ascending, positive, at most MAX_BUCKETS) give buckets below
        each bound plus a last one above the last bound. A store that keeps log-linear
        buckets may count a duration less than 1/16 above a bound that is not a power of
        two as below it; powers of two are exact.
        """
        ...

    async def top_operations(
        self,
        tenant: str,
        start: int,
        end: int,
        by: TopBy = "p95",
        limit: int = 10,
        span_kinds: Sequence[SpanKind] | None = None,
    ) -> list[OperationStats]:
        """The `limit` (service, span name) pairs with the highest `by` over entry spans
        (or `span_kinds`); ties by count, then service and operation ascending."""
        ...

    async def top_errors(
        self, tenant: str, start: int, end: int, service: str | None = None, limit: int = 10
    ) -> list[ErrorGroup]:
        """The `limit` most frequent error groups (see ErrorGroup) over every span kind,
        of one service when given; ties by type then message."""
        ...

    async def close(self) -> None: ...
