"""The trace store contract: what every trace backend does, and what its answers mean."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .model import Span


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
        """
        ...

    async def close(self) -> None: ...
