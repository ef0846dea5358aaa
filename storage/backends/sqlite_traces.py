"""The embedded trace store: spans in one SQLite file.

Layout, and why:

* `spans` is a rowid table filled in arrival order, indexed by (tenant, start) and
  (tenant, service, start): time-first keys stay append-mostly, which SQLite inserts fast.
* Trace ids are random, and a random-key index on every span costs more than the span
  insert itself. So each trace gets a small sequential number (`traces.ref`) once, and
  spans are indexed by (trace_ref, start): new refs only grow, so that index is appended
  to as well, and the random (tenant, trace_id) index is touched once per trace, not per
  span. It also gives get_trace its ordering and the trace start for free.
* Resources and scopes are stored once per distinct value (see sqlite_common.Interner).
* `operations` keeps (tenant, service, span name) so services() reads a tiny table.
* Service map, RED and trace analytics read per-minute/10-minute/hour rollups maintained
  by every write (see sqlite_traces_analytics).
"""

from __future__ import annotations

import heapq
import sqlite3
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Self

from ..attributes import decode_attributes, decode_value, encode_value
from ..errors import QueryError
from ..model import AnyValue, Span, SpanEvent, SpanKind, SpanLink, StatusCode
from ..traces import (
    ErrorGroup,
    LatencyBucket,
    OperationStats,
    RedPoint,
    ServiceMap,
    ServiceOperations,
    TopBy,
    TraceQuery,
    TraceSummary,
)
from . import sqlite_traces_analytics as analytics
from .sqlite_common import (
    RESOURCE_COLUMNS,
    RESOURCE_TABLES,
    SCOPE_COLUMNS,
    Migration,
    Params,
    ResourceRefs,
    Row,
    SqliteDatabase,
    attribute_filter_sql,
    batch_table_sql,
    claim_batch,
    decode_resource,
    decode_scope,
    encode_attributes,
    resource_interner,
    scope_interner,
)

MAX_LIMIT = 10_000
DELETE_CHUNK = 50_000  # spans per retention transaction
_IN_CHUNK = 500  # ids per `IN (...)` list
_BATCHES = "span_batches"

_MIGRATIONS: tuple[Migration, ...] = (
    RESOURCE_TABLES
    + (
        (
            "CREATE TABLE traces (ref INTEGER PRIMARY KEY, tenant TEXT NOT NULL,"
            " trace_id TEXT NOT NULL, UNIQUE (tenant, trace_id))"
        ),
        (
            "CREATE TABLE spans (id INTEGER PRIMARY KEY, tenant TEXT NOT NULL,"
            " trace_ref INTEGER NOT NULL, span_id TEXT NOT NULL, parent_span_id TEXT NOT NULL,"
            " name TEXT NOT NULL, kind INTEGER NOT NULL, start_ns INTEGER NOT NULL,"
            " end_ns INTEGER NOT NULL, service TEXT NOT NULL, status_code INTEGER NOT NULL,"
            " status_message TEXT NOT NULL, trace_state TEXT NOT NULL, flags INTEGER NOT NULL,"
            " attributes TEXT, dropped_attributes_count INTEGER NOT NULL, events BLOB,"
            " dropped_events_count INTEGER NOT NULL, links BLOB,"
            " dropped_links_count INTEGER NOT NULL, resource_id INTEGER NOT NULL,"
            " scope_id INTEGER NOT NULL)"
        ),
        "CREATE INDEX spans_by_time ON spans (tenant, start_ns)",
        "CREATE INDEX spans_by_service ON spans (tenant, service, start_ns)",
        "CREATE INDEX spans_by_trace ON spans (trace_ref, start_ns)",
        (
            "CREATE TABLE operations (tenant TEXT NOT NULL, service TEXT NOT NULL,"
            " name TEXT NOT NULL, PRIMARY KEY (tenant, service, name)) WITHOUT ROWID"
        ),
        batch_table_sql(_BATCHES),
    ),
    analytics.MIGRATION,
)

_INSERT_SPAN = (
    "INSERT INTO spans (tenant, trace_ref, span_id, parent_span_id, name, kind, start_ns,"
    " end_ns, service, status_code, status_message, trace_state, flags, attributes,"
    " dropped_attributes_count, events, dropped_events_count, links, dropped_links_count,"
    " resource_id, scope_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SPAN_COLUMNS = (
    "s.span_id, s.parent_span_id, s.name, s.kind, s.start_ns, s.end_ns, s.status_code,"
    " s.status_message, s.trace_state, s.flags, s.attributes, s.dropped_attributes_count,"
    " s.events, s.dropped_events_count, s.links, s.dropped_links_count"
)
_SELECT_TRACE = (
    f"SELECT {_SPAN_COLUMNS}, {RESOURCE_COLUMNS}, {SCOPE_COLUMNS} FROM traces t"
    " JOIN spans s ON s.trace_ref = t.ref JOIN resources r ON r.id = s.resource_id"
    " JOIN scopes c ON c.id = s.scope_id WHERE t.tenant = ? AND t.trace_id = ?"
    " ORDER BY s.start_ns, s.id"
)
_TRACE_START = "SELECT min(start_ns) FROM spans WHERE trace_ref = ?"


def _chunks(items: Sequence[Any], size: int = _IN_CHUNK) -> Iterable[Sequence[Any]]:
    return (items[i : i + size] for i in range(0, len(items), size))


def _marks(count: int) -> str:
    return ", ".join("?" * count)


# ---------------------------------------------------------------------------- encoding


def _encode_events(events: list[SpanEvent]) -> bytes | None:
    if not events:
        return None
    value: AnyValue = [
        [e.time_unix_nano, e.name, e.attributes, e.dropped_attributes_count] for e in events
    ]
    return encode_value(value)


def _encode_links(links: list[SpanLink]) -> bytes | None:
    if not links:
        return None
    value: AnyValue = [
        [
            ln.trace_id,
            ln.span_id,
            ln.trace_state,
            ln.attributes,
            ln.dropped_attributes_count,
            ln.flags,
        ]
        for ln in links
    ]
    return encode_value(value)


def _decode_events(raw: bytes | None) -> list[SpanEvent]:
    if raw is None:
        return []
    return [SpanEvent(t, name, attrs, dropped) for t, name, attrs, dropped in decode_value(raw)]


def _decode_links(raw: bytes | None) -> list[SpanLink]:
    if raw is None:
        return []
    return [SpanLink(*fields) for fields in decode_value(raw)]


def _span_row(tenant: str, trace_ref: int, span: Span, refs: ResourceRefs) -> Row:
    return (
        tenant, trace_ref, span.span_id, span.parent_span_id, span.name, int(span.kind),
        span.start_time_unix_nano, span.end_time_unix_nano, span.service_name,
        int(span.status_code), span.status_message, span.trace_state, span.flags,
        encode_attributes(span.attributes), span.dropped_attributes_count,
        _encode_events(span.events), span.dropped_events_count,
        _encode_links(span.links), span.dropped_links_count,
        refs.resource(span.resource), refs.scope(span.scope),
    )  # fmt: skip


def _span_from_row(trace_id: str, row: Row) -> Span:
    (span_id, parent, name, kind, start, end, status, message, state, flags,
     attributes, dropped_attributes, events, dropped_events, links, dropped_links) = row[:16]  # fmt: skip
    return Span(
        trace_id=trace_id, span_id=span_id, name=name, start_time_unix_nano=start,
        end_time_unix_nano=end, resource=decode_resource(row[16:19]),
        scope=decode_scope(row[19:24]), parent_span_id=parent, trace_state=state,
        flags=flags, kind=SpanKind(kind), attributes=decode_attributes(attributes),
        dropped_attributes_count=dropped_attributes, events=_decode_events(events),
        dropped_events_count=dropped_events, links=_decode_links(links),
        dropped_links_count=dropped_links, status_code=StatusCode(status),
        status_message=message,
    )  # fmt: skip


# ---------------------------------------------------------------------------- search


def _span_filter(query: TraceQuery) -> tuple[str, dict[str, object]]:
    """WHERE clause matching the spans that satisfy every span-level filter."""
    params = Params()
    clauses = [f"s.tenant = {params.add(query.tenant)}"]
    if query.start_unix_nano is not None:
        clauses.append(f"s.start_ns >= {params.add(query.start_unix_nano)}")
    if query.end_unix_nano is not None:
        clauses.append(f"s.start_ns < {params.add(query.end_unix_nano)}")
    if query.service is not None:
        clauses.append(f"s.service = {params.add(query.service)}")
    if query.operation is not None:
        clauses.append(f"s.name = {params.add(query.operation)}")
    if query.min_duration_nano is not None:
        clauses.append(f"max(0, s.end_ns - s.start_ns) >= {params.add(query.min_duration_nano)}")
    if query.max_duration_nano is not None:
        clauses.append(f"max(0, s.end_ns - s.start_ns) <= {params.add(query.max_duration_nano)}")
    if query.errors_only:
        clauses.append(f"s.status_code = {int(StatusCode.ERROR)}")
    for key, value in query.attributes.items():
        clauses.append(attribute_filter_sql("s.attributes", "s.resource_id", key, value, params))
    return " AND ".join(clauses), params.values


def _newest_traces(
    conn: sqlite3.Connection, where: str, params: dict[str, object], limit: int
) -> list[tuple[int, int]]:
    """(trace start, trace ref) of the `limit` newest traces with a matching span.

    Walks matching spans newest first. A trace starts no later than any of its spans, so
    once `limit` traces started after the span being looked at, no trace not yet seen can
    beat them and the walk stops: the common "last hour, no filter" search reads a few
    hundred index entries, not the whole hour.
    """
    best: list[tuple[int, int]] = []  # min-heap: best[0] is the oldest trace kept
    seen: set[int] = set()
    cursor = conn.execute(
        f"SELECT s.start_ns, s.trace_ref FROM spans s WHERE {where} ORDER BY s.start_ns DESC",
        params,
    )
    for span_start, ref in cursor:
        if len(best) == limit and span_start < best[0][0]:
            break
        if ref in seen:
            continue
        seen.add(ref)
        entry = (int(conn.execute(_TRACE_START, (ref,)).fetchone()[0]), ref)
        if len(best) < limit:
            heapq.heappush(best, entry)
        elif entry > best[0]:
            heapq.heapreplace(best, entry)
    return sorted(best, reverse=True)


def _summarize(trace_id: str, spans: list[Row]) -> TraceSummary:
    """Summary from (parent_span_id, service, name, start, end, status) rows of one trace."""
    root = min(spans, key=lambda s: (s[0] != "", s[3]))
    start = min(s[3] for s in spans)
    end = max(s[4] for s in spans)
    return TraceSummary(
        trace_id=trace_id,
        root_service=root[1],
        root_name=root[2],
        start_unix_nano=start,
        duration_nano=max(0, end - start),
        span_count=len(spans),
        error_count=sum(1 for s in spans if s[5] == StatusCode.ERROR),
        services=sorted({s[1] for s in spans}),
    )


def _summaries(conn: sqlite3.Connection, refs: list[int]) -> list[TraceSummary]:
    trace_ids: dict[int, str] = {}
    spans: dict[int, list[Row]] = {ref: [] for ref in refs}
    for chunk in _chunks(refs):
        marks = _marks(len(chunk))
        trace_ids.update(
            conn.execute(f"SELECT ref, trace_id FROM traces WHERE ref IN ({marks})", chunk)
        )
        rows = conn.execute(
            "SELECT trace_ref, parent_span_id, service, name, start_ns, end_ns, status_code"
            f" FROM spans WHERE trace_ref IN ({marks})",
            chunk,
        )
        for row in rows:
            spans[row[0]].append(row[1:])
    return [_summarize(trace_ids[ref], spans[ref]) for ref in refs]


def _find(conn: sqlite3.Connection, query: TraceQuery) -> list[TraceSummary]:
    where, params = _span_filter(query)
    newest = _newest_traces(conn, where, params, query.limit)
    return _summaries(conn, [ref for _, ref in newest])


def _check_limit(limit: int) -> None:
    if limit < 0 or limit > MAX_LIMIT:
        raise QueryError(f"limit must be between 0 and {MAX_LIMIT}, got {limit}")


# ---------------------------------------------------------------------------- retention


def _tenants(conn: sqlite3.Connection) -> list[str]:
    """Distinct tenants by skipping through the (tenant, start) index: one seek each."""
    found: list[str] = []
    row = conn.execute("SELECT tenant FROM spans ORDER BY tenant LIMIT 1").fetchone()
    while row is not None:
        found.append(row[0])
        row = conn.execute(
            "SELECT tenant FROM spans WHERE tenant > ? ORDER BY tenant LIMIT 1", (row[0],)
        ).fetchone()
    return found


def _operations_without_spans(
    tenant: str, candidates: list[tuple[str, str]], conn: sqlite3.Connection
) -> tuple[int, list[tuple[str, str]]]:
    """(the highest span id now, the candidates without a span of the tenant)."""
    mark = int(conn.execute("SELECT ifnull(max(id), 0) FROM spans").fetchone()[0])
    gone = [
        (service, name)
        for service, name in candidates
        if conn.execute(
            "SELECT 1 FROM spans WHERE tenant = ? AND service = ? AND name = ? LIMIT 1",
            (tenant, service, name),
        ).fetchone() is None
    ]
    return mark, gone


def _delete_operations(
    tenant: str, gone: list[tuple[str, str]], mark: int, conn: sqlite3.Connection
) -> None:
    conn.executemany(
        "DELETE FROM operations WHERE tenant = ?1 AND service = ?2 AND name = ?3"
        " AND NOT EXISTS (SELECT 1 FROM spans WHERE id > ?4 AND tenant = ?1"
        " AND service = ?2 AND name = ?3)",
        [(tenant, service, name, mark) for service, name in gone],
    )


# ---------------------------------------------------------------------------- store


class SqliteTraceStore:
    """TraceStore on an SQLite file (see the module docstring for the layout)."""

    TRACE_REFS_CACHED = 100_000

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db
        self._resources = resource_interner()
        self._scopes = scope_interner()
        # (tenant, trace id) -> traces.ref; only touched by the writer thread.
        self._trace_refs: dict[tuple[str, str], int] = {}
        # tenant -> (service, name) of deleted spans, until checked for remaining spans
        self._doomed_operations: dict[str, set[tuple[str, str]]] = {}
        self._rollups = analytics.RollupWriter()

    @classmethod
    async def open(cls, path: Path) -> Self:
        return cls(await SqliteDatabase.open(path, "traces", _MIGRATIONS))

    async def write_spans(self, tenant: str, spans: Sequence[Span], batch_id: str) -> None:
        if spans:
            await self._db.write(partial(self._insert, tenant, spans, batch_id), self._forget)

    async def get_trace(self, tenant: str, trace_id: str) -> list[Span]:
        return await self._db.read(partial(self._get_trace, tenant, trace_id))

    async def find_traces(self, query: TraceQuery) -> list[TraceSummary]:
        _check_limit(query.limit)
        if query.limit == 0:
            return []
        return await self._db.read(partial(_find, query=query))

    async def services(self, tenant: str) -> list[ServiceOperations]:
        return await self._db.read(partial(self._services, tenant))

    async def tenants(self) -> list[str]:
        return await self._db.read(_tenants)

    async def delete_before(self, tenant: str, cutoff_unix_nano: int) -> int:
        """Delete the tenant's spans that started before the cutoff; returns how many.

        Spans go DELETE_CHUNK at a time, each chunk its own write transaction, so writes
        wait at most one chunk. Traces left without spans go with their last chunk;
        operations left without spans go at the end (services() stops listing them).
        """
        doomed = self._doomed_operations.setdefault(tenant, set())
        deleted = 0
        while True:
            count = await self._db.write(
                partial(self._delete_chunk, tenant, cutoff_unix_nano, doomed), self._forget
            )
            deleted += count
            if count < DELETE_CHUNK:
                break
        if doomed:
            await self._drop_operations(tenant, doomed)
        while await self._db.write(partial(analytics.delete_slice, tenant, cutoff_unix_nano)):
            pass
        return deleted

    async def _drop_operations(self, tenant: str, candidates: set[tuple[str, str]]) -> None:
        """Delete the tenant's operations among `candidates` that have no span left.

        The search for a remaining span may read many spans, so it runs on a reader;
        the write transaction then only rechecks the spans written since (ids above
        `mark`), which a rowid range finds at once.
        """
        checked = sorted(candidates)  # the set may grow while a reader thread works
        mark, gone = await self._db.read(partial(_operations_without_spans, tenant, checked))
        if gone:
            await self._db.write(partial(_delete_operations, tenant, gone, mark))
        candidates.difference_update(checked)

    # -- analytics (rollups: see sqlite_traces_analytics)

    async def service_map(self, tenant: str, start: int, end: int) -> ServiceMap:
        return await self._db.read(partial(analytics.service_map, tenant, start, end))

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
        analytics.check_step(step)
        return await self._db.read(partial(
            analytics.red_series, tenant, start, end, step, service, operation, span_kinds
        ))  # fmt: skip

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
        analytics.check_bounds(bounds)
        return await self._db.read(partial(
            analytics.latency_histogram, tenant, start, end, service, operation, bounds,
            span_kinds,
        ))  # fmt: skip

    async def top_operations(
        self,
        tenant: str,
        start: int,
        end: int,
        by: TopBy = "p95",
        limit: int = 10,
        span_kinds: Sequence[SpanKind] | None = None,
    ) -> list[OperationStats]:
        _check_limit(limit)
        analytics.rank_operations([], by, limit)  # refuses an unknown `by` up front
        return await self._db.read(partial(
            analytics.top_operations, tenant, start, end, by, limit, span_kinds
        ))  # fmt: skip

    async def top_errors(
        self, tenant: str, start: int, end: int, service: str | None = None, limit: int = 10
    ) -> list[ErrorGroup]:
        _check_limit(limit)
        return await self._db.read(
            partial(analytics.top_errors, tenant, start, end, service, limit)
        )

    async def close(self) -> None:
        await self._db.close()

    # -- writer thread

    def _insert(
        self, tenant: str, spans: Sequence[Span], batch_id: str, conn: sqlite3.Connection
    ) -> None:
        if not claim_batch(conn, _BATCHES, tenant, batch_id):
            return
        trace_refs, new_refs = self._resolve_traces(
            conn, tenant, [span.trace_id for span in spans]
        )
        rollup = analytics.batch_rollup(conn, spans, trace_refs, new_refs)  # before the insert
        refs = ResourceRefs(self._resources, self._scopes, conn)
        conn.executemany(
            _INSERT_SPAN, [_span_row(tenant, trace_refs[s.trace_id], s, refs) for s in spans]
        )
        conn.executemany(
            "INSERT OR IGNORE INTO operations (tenant, service, name) VALUES (?, ?, ?)",
            {(tenant, span.service_name, span.name) for span in spans},
        )
        self._rollups.write(conn, tenant, rollup)

    def _resolve_traces(
        self, conn: sqlite3.Connection, tenant: str, trace_ids: list[str]
    ) -> tuple[dict[str, int], set[int]]:
        """(trace id -> ref, the refs created now: traces without stored spans)."""
        refs: dict[str, int] = {}
        missing: list[str] = []
        for trace_id in dict.fromkeys(trace_ids):
            ref = self._trace_refs.get((tenant, trace_id))
            if ref is None:
                missing.append(trace_id)
            else:
                refs[trace_id] = ref
        created: set[int] = set()
        if missing:
            newest = int(conn.execute("SELECT ifnull(max(ref), 0) FROM traces").fetchone()[0])
            found = self._create_traces(conn, tenant, missing)
            refs.update(found)
            created.update(ref for ref in found.values() if ref > newest)
        return refs, created

    def _create_traces(
        self, conn: sqlite3.Connection, tenant: str, trace_ids: list[str]
    ) -> dict[str, int]:
        conn.executemany(
            "INSERT OR IGNORE INTO traces (tenant, trace_id) VALUES (?, ?)",
            [(tenant, trace_id) for trace_id in trace_ids],
        )
        found: dict[str, int] = {}
        for chunk in _chunks(trace_ids):
            found.update(conn.execute(
                f"SELECT trace_id, ref FROM traces WHERE tenant = ? AND trace_id IN ({_marks(len(chunk))})",
                (tenant, *chunk),
            ))  # fmt: skip
        if len(self._trace_refs) + len(found) > self.TRACE_REFS_CACHED:
            self._trace_refs.clear()
        self._trace_refs.update(((tenant, trace_id), ref) for trace_id, ref in found.items())
        return found

    def _delete_chunk(
        self, tenant: str, cutoff: int, doomed: set[tuple[str, str]], conn: sqlite3.Connection
    ) -> int:
        """Delete up to DELETE_CHUNK of the tenant's spans that started before the cutoff,
        and the traces left without spans; note their operations in `doomed`."""
        rows = conn.execute(
            "SELECT id, trace_ref, service, name FROM spans"
            " WHERE tenant = ? AND start_ns < ? LIMIT ?",
            (tenant, cutoff, DELETE_CHUNK),
        ).fetchall()
        if not rows:
            return 0
        conn.executemany("DELETE FROM spans WHERE id = ?", [(row[0],) for row in rows])
        conn.executemany(
            "DELETE FROM traces WHERE ref = ?1"
            " AND NOT EXISTS (SELECT 1 FROM spans WHERE trace_ref = ?1)",
            [(ref,) for ref in {row[1] for row in rows}],
        )
        doomed.update((row[2], row[3]) for row in rows)
        self._trace_refs.clear()  # some cached refs name deleted traces
        return len(rows)

    def _forget(self) -> None:
        """After a rollback: cached ids may name rows that no longer exist."""
        self._trace_refs.clear()
        self._resources.clear()
        self._scopes.clear()
        self._rollups.forget()

    # -- reader threads

    @staticmethod
    def _get_trace(tenant: str, trace_id: str, conn: sqlite3.Connection) -> list[Span]:
        rows = conn.execute(_SELECT_TRACE, (tenant, trace_id))
        return [_span_from_row(trace_id, row) for row in rows]

    @staticmethod
    def _services(tenant: str, conn: sqlite3.Connection) -> list[ServiceOperations]:
        rows = conn.execute(
            "SELECT service, name FROM operations WHERE tenant = ? ORDER BY service, name",
            (tenant,),
        )
        result: list[ServiceOperations] = []
        for service, name in rows:
            if not result or result[-1].service != service:
                result.append(ServiceOperations(service, []))
            result[-1].operations.append(name)
        return result
