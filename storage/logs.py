"""The log store contract."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .model import LogRecord


@dataclass(frozen=True, slots=True)
class LogQuery:
    """Filters for log search; every filter left at its default matches everything.

    * time range on `LogRecord.timestamp`, [start, end);
    * `contains`: case-insensitive substring of the body's string form;
    * `min_severity`: severity_number at least this;
    * `attributes`: string-form equality on a log attribute, else a resource attribute;
    * `cursor`: the `next_cursor` of the previous page (opaque to callers).
    """

    tenant: str
    start_unix_nano: int | None = None
    end_unix_nano: int | None = None
    contains: str | None = None
    min_severity: int | None = None
    service: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    limit: int = 100
    cursor: str | None = None


@dataclass(slots=True)
class LogPage:
    """Records newest first; `next_cursor` is None when there is nothing older to fetch."""

    records: list[LogRecord]
    next_cursor: str | None


class LogStore(Protocol):
    """Stores log records per tenant. Writes are idempotent per `batch_id` (see TraceStore)."""

    async def write_logs(
        self, tenant: str, records: Sequence[LogRecord], batch_id: str
    ) -> None: ...

    async def search(self, query: LogQuery) -> LogPage: ...

    async def tenants(self) -> list[str]:
        """The tenants that have log records stored, sorted (retention walks these)."""
        ...

    async def delete_before(self, tenant: str, cutoff_unix_nano: int) -> int:
        """Remove the tenant's records whose `timestamp` (the event time, else the
        observed time) is before the cutoff.

        Returns how many records were removed, or -1 when the backend cannot count them
        cheaply. Other tenants and newer records are untouched; calling it again with the
        same cutoff removes nothing. Safe while writes and queries run: the backend
        deletes in chunks (each its own short transaction) where its engine would
        otherwise hold a write lock for the whole deletion. Raises
        `errors.Unsupported` when the store declares `capabilities.RETENTION`
        unsupported.
        """
        ...

    async def close(self) -> None: ...
