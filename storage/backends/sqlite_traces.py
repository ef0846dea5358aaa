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
from ..traces import ServiceOperations, TraceQuery, TraceSummary
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

    async def delete_before(self, tenant: str, cutoff_unix_nano: int) -> int:
        """Delete the tenant's spans that started before the cutoff; returns how many.

        Traces and operations left without spans go too (services() stops listing them).
        """
        return await self._db.write(
            partial(self._delete_before, tenant, cutoff_unix_nano), self._forget
        )

    async def close(self) -> None:
        await self._db.close()

    # -- writer thread

    def _insert(
        self, tenant: str, spans: Sequence[Span], batch_id: str, conn: sqlite3.Connection
    ) -> None:
        if not claim_batch(conn, _BATCHES, tenant, batch_id):
            return
        trace_refs = self._resolve_traces(conn, tenant, [span.trace_id for span in spans])
        refs = ResourceRefs(self._resources, self._scopes, conn)
        conn.executemany(
            _INSERT_SPAN, [_span_row(tenant, trace_refs[s.trace_id], s, refs) for s in spans]
        )
        conn.executemany(
            "INSERT OR IGNORE INTO operations (tenant, service, name) VALUES (?, ?, ?)",
            {(tenant, span.service_name, span.name) for span in spans},
        )

    def _resolve_traces(
        self, conn: sqlite3.Connection, tenant: str, trace_ids: list[str]
    ) -> dict[str, int]:
        refs: dict[str, int] = {}
        missing: list[str] = []
        for trace_id in dict.fromkeys(trace_ids):
            ref = self._trace_refs.get((tenant, trace_id))
            if ref is None:
                missing.append(trace_id)
            else:
                refs[trace_id] = ref
        if missing:
            refs.update(self._create_traces(conn, tenant, missing))
        return refs

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

    def _delete_before(self, tenant: str, cutoff: int, conn: sqlite3.Connection) -> int:
        doomed, args = "FROM spans WHERE tenant = ? AND start_ns < ?", (tenant, cutoff)
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS doomed_refs (ref INTEGER PRIMARY KEY)")
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS doomed_operations (service TEXT NOT NULL,"
            " name TEXT NOT NULL, PRIMARY KEY (service, name)) WITHOUT ROWID"
        )
        conn.execute(f"INSERT OR IGNORE INTO doomed_refs SELECT trace_ref {doomed}", args)
        conn.execute(f"INSERT OR IGNORE INTO doomed_operations SELECT service, name {doomed}", args)
        deleted = conn.execute(f"DELETE {doomed}", args).rowcount
        conn.execute(
            "DELETE FROM traces WHERE ref IN (SELECT ref FROM doomed_refs)"
            " AND NOT EXISTS (SELECT 1 FROM spans s WHERE s.trace_ref = traces.ref)"
        )
        conn.execute(
            "DELETE FROM operations WHERE tenant = ?"
            " AND (service, name) IN (SELECT service, name FROM doomed_operations)"
            " AND NOT EXISTS (SELECT 1 FROM spans s WHERE s.tenant = operations.tenant"
            " AND s.service = operations.service AND s.name = operations.name)",
            (tenant,),
        )
        conn.execute("DELETE FROM doomed_refs")
        conn.execute("DELETE FROM doomed_operations")
        self._trace_refs.clear()  # some cached refs name deleted traces
        return deleted

    def _forget(self) -> None:
        """After a rollback: cached ids may name rows that no longer exist."""
        self._trace_refs.clear()
        self._resources.clear()
        self._scopes.clear()

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
