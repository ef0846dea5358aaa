"""The log store contract."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .errors import QueryError
from .model import LogRecord

# OTLP SeverityNumber ranges: TRACE 1-4, DEBUG 5-8, INFO 9-12, WARN 13-16, ERROR 17-20,
# FATAL 21-24; anything else (0 included) is UNSPECIFIED.
SEVERITY_BUCKETS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "UNSPECIFIED")
MAX_HISTOGRAM_BUCKETS = 10_000  # time buckets one severity_histogram may return
MAX_TOP_VALUES = 1_000  # values one top_values may return
MAX_PATTERN_SAMPLE = 10_000  # records one patterns() call clusters at most


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


@dataclass(slots=True)
class SeverityBucket:
    """The records of one time bucket [start, start + step), counted per severity bucket
    (only severities with records appear in `counts`)."""

    start_unix_nano: int
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class ValueCount:
    value: str
    count: int


@dataclass(slots=True)
class LogPattern:
    """Records whose bodies share a template: masked parts read `<NUM>`, `<UUID>`, `<HEX>`,
    `<IP>`, parts that vary between records `<*>`. `sample` is the newest such record."""

    template: str
    count: int
    sample: LogRecord


@dataclass(slots=True)
class LogPatterns:
    """Pattern groups, most frequent first. Counts are over the `records` newest matching
    records that were clustered; `sampled` tells that older matching records exist and
    were left out."""

    patterns: list[LogPattern]
    records: int
    sampled: bool


TopField = tuple[str, str]  # ("service" | "severity" | "attribute" | "resource", key)


def top_field(field: str) -> TopField:
    """Parse a top_values field: "service", "severity", "attributes.<key>" (a log
    attribute) or "resource.<key>" (a resource attribute). QueryError for anything else."""
    if field in ("service", "severity"):
        return field, ""
    for prefix, kind in (("attributes.", "attribute"), ("resource.", "resource")):
        if field.startswith(prefix) and len(field) > len(prefix):
            return kind, field[len(prefix):]
    raise QueryError(
        f"cannot count values of {field!r}: use service, severity, attributes.<key>"
        " or resource.<key>"
    )


def check_histogram(query: LogQuery, step_nanos: int) -> None:
    """QueryError for a step that is not positive, or a bounded time range cut into more
    than MAX_HISTOGRAM_BUCKETS buckets."""
    if step_nanos <= 0:
        raise QueryError(f"step must be positive, got {step_nanos}")
    if step_nanos > 2**62:
        raise QueryError("step is too large")
    start, end = query.start_unix_nano, query.end_unix_nano
    if start is not None and end is not None and end > start:
        buckets = (end - 1) // step_nanos - start // step_nanos + 1
        if buckets > MAX_HISTOGRAM_BUCKETS:
            raise QueryError(
                f"the histogram would have {buckets} buckets, more than the limit of"
                f" {MAX_HISTOGRAM_BUCKETS}; use a larger step or a shorter range"
            )


def check_top_values(limit: int) -> None:
    if not 1 <= limit <= MAX_TOP_VALUES:
        raise QueryError(f"limit must be between 1 and {MAX_TOP_VALUES}, got {limit}")


class LogStore(Protocol):
    """Stores log records per tenant. Writes are idempotent per `batch_id` (see TraceStore)."""

    async def write_logs(
        self, tenant: str, records: Sequence[LogRecord], batch_id: str
    ) -> None: ...

    async def search(self, query: LogQuery) -> LogPage: ...

    # Analytics. Each takes the filters of `search` (its `limit` and `cursor` are ignored)
    # and raises QueryError for arguments out of range.

    async def severity_histogram(self, query: LogQuery, step_nanos: int) -> list[SeverityBucket]:
        """Matching records counted per time bucket and severity bucket (SEVERITY_BUCKETS,
        from severity_number). Buckets are [k * step, (k + 1) * step) on the record's
        timestamp, aligned to the Unix epoch, oldest first; buckets without records are
        left out. The step must be positive (backends may ask for more: Elasticsearch
        buckets whole milliseconds), and at most MAX_HISTOGRAM_BUCKETS buckets come back
        (see check_histogram; without a time range, more is a QueryError).
        """
        ...

    async def top_values(self, query: LogQuery, field: str, limit: int) -> list[ValueCount]:
        """The most frequent values of `field` among matching records, most frequent
        first, ties by value; at most `limit` (1..MAX_TOP_VALUES). Fields (see top_field):
        "service"; "severity" (a SEVERITY_BUCKETS name); "attributes.<key>", the string
        form (value_as_label) of the record's own attribute; "resource.<key>", of its
        resource's attribute. Records without the attribute are not counted.
        """
        ...

    async def patterns(self, query: LogQuery, limit: int, sample_limit: int) -> LogPatterns:
        """The newest `sample_limit` (1..MAX_PATTERN_SAMPLE) matching records clustered by
        body into templates (Drain, see log_patterns), the `limit` largest groups first.
        Bodies are taken in their string form (non-strings as JSON, as `contains` sees
        them)."""
        ...

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
