"""find_traces for postgres_traces: the same walk, and the same answers, as sqlite_traces.

A trace matches when one of its spans matches every filter; results are the `limit`
traces with the latest trace start (the earliest start of any of its spans). Matching
spans are read newest first through a server-side cursor, in growing chunks. A trace
starts no later than any of its spans, so once `limit` traces started after the span
being looked at, no trace not yet seen can beat them and the walk stops: a search of
the last hour without filters reads a few hundred index entries, not the hour.
Trace starts are looked up per chunk, one statement for all new trace ids.
"""

from __future__ import annotations

import heapq
from typing import Any

from psycopg import AsyncConnection

from ..model import StatusCode
from ..traces import TraceQuery, TraceSummary
from .postgres_common import from_pg_text, to_pg_text

# A FETCH scans until it has the rows asked for: with a selective filter a big first
# chunk reads far more of the window than the walk needs. So chunks start at `limit`
# rows and grow fourfold.
MIN_CHUNK = 8
GROWTH = 4
MAX_CHUNK = 16_384
_ERROR = int(StatusCode.ERROR)  # a constant in the SQL, so the partial index applies


def span_filter(schema: str, query: TraceQuery) -> tuple[str, dict[str, Any]]:
    """WHERE clause matching the spans `s` that satisfy every span-level filter."""
    params: dict[str, Any] = {"tenant": to_pg_text(query.tenant)}
    clauses = ["s.tenant = %(tenant)s"]

    def add(clause: str, name: str, value: Any) -> None:
        params[name] = value
        clauses.append(clause.replace("?", f"%({name})s"))

    if query.start_unix_nano is not None:
        add("s.start_ns >= ?", "start", query.start_unix_nano)
    if query.end_unix_nano is not None:
        add("s.start_ns < ?", "end", query.end_unix_nano)
    if query.service is not None:
        add("s.service = ?", "service", to_pg_text(query.service))
    if query.operation is not None:
        add("s.name = ?", "operation", to_pg_text(query.operation))
    if query.min_duration_nano is not None:
        add("s.duration_ns >= ?", "min_duration", query.min_duration_nano)
    if query.max_duration_nano is not None:
        add("s.duration_ns <= ?", "max_duration", query.max_duration_nano)
    if query.errors_only:
        clauses.append(f"s.status_code = {_ERROR}")
    for n, (key, value) in enumerate(query.attributes.items()):
        params[f"k{n}"], params[f"v{n}"] = to_pg_text(key), to_pg_text(value)
        clauses.append(_attribute_clause(schema, f"%(k{n})s", f"%(v{n})s"))
    return " AND ".join(clauses), params


def _attribute_clause(schema: str, key: str, value: str) -> str:
    """The span's own label for `key` if it has one, else its resource's."""
    # Uncorrelated: PostgreSQL hashes the matching resources once per statement.
    in_resource = (
        f"s.resource_id IN (SELECT r.digest FROM {schema}.resources r"
        f" WHERE r.tenant = %(tenant)s AND r.labels ->> {key} = {value})"
    )
    return f"(CASE WHEN s.labels ? {key} THEN s.labels ->> {key} = {value} ELSE {in_resource} END)"


async def _trace_starts(
    conn: AsyncConnection[Any], schema: str, tenant: str, trace_ids: list[str]
) -> dict[str, int]:
    cursor = await conn.execute(
        f"SELECT trace_id, min(start_ns) FROM {schema}.spans"
        " WHERE tenant = %s AND trace_id = ANY(%s) GROUP BY trace_id",
        (tenant, trace_ids),
    )
    return {trace_id: int(start) for trace_id, start in await cursor.fetchall()}


async def newest_traces(
    conn: AsyncConnection[Any], schema: str, query: TraceQuery
) -> list[tuple[int, str]]:
    """(trace start, trace id) of the `limit` newest matching traces, newest first.

    Must run inside a transaction (the cursor is a server-side one).
    """
    where, params = span_filter(schema, query)
    best: list[tuple[int, str]] = []  # min-heap: best[0] is the oldest trace kept
    starts: dict[str, int] = {}  # trace id -> trace start, for every trace seen
    cursor = conn.cursor(name="argus_trace_walk")
    await cursor.execute(
        f"SELECT s.start_ns, s.trace_id FROM {schema}.spans s WHERE {where}"
        " ORDER BY s.start_ns DESC",
        params,
    )
    size = max(MIN_CHUNK, query.limit)
    while rows := await cursor.fetchmany(size):
        new = list(dict.fromkeys(trace_id for _, trace_id in rows if trace_id not in starts))
        if new:
            starts.update(await _trace_starts(conn, schema, params["tenant"], new))
            if _keep(best, query.limit, rows, new, starts):
                break
        elif len(best) == query.limit and rows[-1][0] < best[0][0]:
            break  # every trace of the chunk was seen already: only the stop test is left
        if len(rows) < size:
            break
        size = min(GROWTH * size, MAX_CHUNK)
    await cursor.close()
    return sorted(best, reverse=True)


def _keep(
    best: list[tuple[int, str]],
    limit: int,
    rows: list[tuple[int, str]],
    new: list[str],
    starts: dict[str, int],
) -> bool:
    """Offer the chunk's new traces to `best` in walk order; True once the walk can stop."""
    fresh = set(new)
    for span_start, trace_id in rows:
        if len(best) == limit and span_start < best[0][0]:
            return True
        if trace_id not in fresh:
            continue
        fresh.discard(trace_id)
        # A trace deleted since the walk began (retention) still has this span's start.
        entry = (starts.setdefault(trace_id, span_start), trace_id)
        if len(best) < limit:
            heapq.heappush(best, entry)
        elif entry > best[0]:
            heapq.heapreplace(best, entry)
    return False


async def summaries(
    conn: AsyncConnection[Any], schema: str, tenant: str, trace_ids: list[str]
) -> list[TraceSummary]:
    """Summaries of the given traces (all their spans), in the order given."""
    # The root: the earliest span without a parent, else the earliest span.
    root_order = "ORDER BY parent_span_id <> '', start_ns, span_id"
    cursor = await conn.execute(
        "SELECT trace_id, min(start_ns), max(end_ns), count(*),"
        f" count(*) FILTER (WHERE status_code = {_ERROR}), array_agg(DISTINCT service),"
        f" (array_agg(service {root_order}))[1], (array_agg(name {root_order}))[1]"
        f" FROM {schema}.spans WHERE tenant = %s AND trace_id = ANY(%s) GROUP BY trace_id",
        (tenant, trace_ids),
    )
    by_id = {row[0]: row for row in await cursor.fetchall()}
    return [_summary(by_id[trace_id]) for trace_id in trace_ids if trace_id in by_id]


def _summary(row: tuple[Any, ...]) -> TraceSummary:
    trace_id, start, end, count, errors, services, root_service, root_name = row
    return TraceSummary(
        trace_id=from_pg_text(trace_id),
        root_service=from_pg_text(root_service),
        root_name=from_pg_text(root_name),
        start_unix_nano=start,
        duration_nano=max(0, end - start),
        span_count=count,
        error_count=errors,
        services=sorted(from_pg_text(service) for service in services),
    )
