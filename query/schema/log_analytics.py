"""GraphQL log analytics: counts over time by severity (the histogram above a log view),
the top values of a field, and pattern groups (similar bodies clustered into templates).
Each takes the same LogFilter as `logs`."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from ...storage.logs import MAX_PATTERN_SAMPLE, SeverityBucket
from ..context import QueryContext
from .logs import LogFilter, LogRecord, log_query
from .scalars import Duration, Int64

_DEFAULT_RANGE_NS = 3600 * 1_000_000_000
_TARGET_BUCKETS = 60
_SECOND = 1_000_000_000
# Steps a default histogram picks from: the smallest giving at most _TARGET_BUCKETS bars.
_NICE_STEPS = tuple(
    n * _SECOND
    for n in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
              43200, 86400, 7 * 86400)
)  # fmt: skip


@strawberry.type(description="Records of one time bucket by severity (OTLP severity ranges).")
class LogHistogramBucket:
    start: Int64 = strawberry.field(description="The bucket is [start, start + step).")
    total: int
    trace: int
    debug: int
    info: int
    warn: int
    error: int
    fatal: int
    unspecified: int = strawberry.field(description="Severity number 0 or out of range.")

    @classmethod
    def of(cls, bucket: SeverityBucket) -> LogHistogramBucket:
        counts = bucket.counts
        return cls(
            start=Int64(bucket.start_unix_nano),
            total=bucket.total,
            trace=counts.get("TRACE", 0),
            debug=counts.get("DEBUG", 0),
            info=counts.get("INFO", 0),
            warn=counts.get("WARN", 0),
            error=counts.get("ERROR", 0),
            fatal=counts.get("FATAL", 0),
            unspecified=counts.get("UNSPECIFIED", 0),
        )


@strawberry.type
class LogHistogram:
    step: Int64 = strawberry.field(description="Bucket width in nanoseconds.")
    buckets: list[LogHistogramBucket] = strawberry.field(
        description="Every bucket of the range, oldest first, empty ones included; buckets"
        " start on multiples of the step."
    )


@strawberry.type
class LogValueCount:
    value: str
    count: int


@strawberry.type
class LogPattern:
    template: str = strawberry.field(
        description="The shared body: <NUM>, <UUID>, <HEX>, <IP> mask such values; <*>"
        " stands for words that differ between the records."
    )
    count: int
    sample: LogRecord = strawberry.field(description="The newest record of the group.")


@strawberry.type
class LogPatterns:
    patterns: list[LogPattern] = strawberry.field(description="Largest groups first.")
    records: int = strawberry.field(description="How many records were clustered.")
    sampled: bool = strawberry.field(
        description="True when more records matched than were clustered (the newest"
        " `sampleLimit` were): counts describe that sample."
    )


def default_step(start: int, end: int) -> int:
    span = max(1, end - start)
    for step in _NICE_STEPS:
        if -(-span // step) <= _TARGET_BUCKETS:
            return step
    return -(-span // _TARGET_BUCKETS)


async def resolve_log_histogram(
    info: Info[QueryContext, Any],
    filter: LogFilter | None = None,
    step: Annotated[
        Duration | None,
        strawberry.argument(description="Default: a round step giving at most 60 buckets."),
    ] = None,
) -> LogHistogram:
    """Records per time bucket and severity, over the filter's range (default: the last
    hour)."""
    query = log_query(info.context.tenant, filter)
    end = query.end_unix_nano if query.end_unix_nano is not None else time.time_ns()
    start = query.start_unix_nano if query.start_unix_nano is not None else end - _DEFAULT_RANGE_NS
    width = step if step is not None else default_step(start, end)
    query = replace(query, start_unix_nano=start, end_unix_nano=end)
    buckets = await info.context.service.log_histogram(query, width)
    return LogHistogram(step=Int64(width), buckets=[LogHistogramBucket.of(b) for b in buckets])


async def resolve_log_top_values(
    info: Info[QueryContext, Any],
    field: Annotated[
        str,
        strawberry.argument(
            description="service, severity, attributes.<key> (a log attribute) or"
            " resource.<key> (a resource attribute)."
        ),
    ],
    filter: LogFilter | None = None,
    limit: int = 10,
) -> list[LogValueCount]:
    query = log_query(info.context.tenant, filter)
    found = await info.context.service.log_top_values(query, field, limit)
    return [LogValueCount(value=item.value, count=item.count) for item in found]


async def resolve_log_patterns(
    info: Info[QueryContext, Any],
    filter: LogFilter | None = None,
    limit: int = 20,
    sample_limit: Annotated[
        int,
        strawberry.argument(
            description=f"Cluster the newest this many matching records (at most"
            f" {MAX_PATTERN_SAMPLE})."
        ),
    ] = MAX_PATTERN_SAMPLE,
) -> LogPatterns:
    query = log_query(info.context.tenant, filter)
    found = await info.context.service.log_patterns(query, limit, sample_limit)
    return LogPatterns(
        patterns=[
            LogPattern(template=p.template, count=p.count, sample=LogRecord.of(p.sample))
            for p in found.patterns
        ],
        records=found.records,
        sampled=found.sampled,
    )
