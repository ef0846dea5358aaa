"""The PostgreSQL trace store: the TraceStore contract on a shared PostgreSQL 15+ server.

Layout (all in one schema, `argus` by default), and why:

* `spans` is partitioned BY RANGE on the span start, one partition per UTC day, created
  on demand (postgres_partitions): retention drops whole days, and searches over recent
  hours touch one or two partitions. There is no default partition.
* Indexes, inherited by every partition: (tenant, trace_id, start_ns) for get_trace and
  trace starts; (tenant, start_ns), (tenant, service, start_ns) and (tenant, name,
  start_ns) for the newest-first search walk; (tenant, duration_ns); and (tenant,
  start_ns) over error spans only.
* Attributes are lossless JSON in bytea plus a jsonb map of their string labels for
  filters (see postgres_traces_rows); resources and scopes are stored once per digest.
* `operations` (tenant, service, name, last_seen_ns) is upserted on write, so services()
  reads a small table and retention can tell which operations have no spans left.
* `span_batches` (tenant, batch_id) makes writes idempotent: the batch id is claimed
  with INSERT ... ON CONFLICT DO NOTHING RETURNING in the same transaction as the COPY
  of its rows, so a batch is applied entirely and once, or not at all. Ids older than
  BATCH_ID_TTL are forgotten (the embedded store keeps the newest 10,000 instead).

Concurrent writers are safe: rows of shared tables are locked in one global order
(resources, scopes, then operations, each sorted), so two writes cannot deadlock.

Service map, RED metrics and trace analytics are SQL over the spans of their range
(postgres_traces_analytics), helped by five columns filled on write (migration 2).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Self

import orjson
import psycopg
from psycopg import AsyncConnection

from ..errors import QueryError
from ..model import Span, SpanKind
from ..span_analytics import check_bounds, check_step, rank_operations
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
from . import postgres_traces_analytics as analytics
from .postgres_common import (
    Migration,
    PgDatabase,
    from_pg_text,
    to_pg_text,
    translate_error,
)
from .postgres_partitions import DAY_NS, DayPartitions
from .postgres_traces_rows import (
    COPY_TYPES,
    READ_COLUMNS,
    SPAN_COLUMNS,
    EncodedBatch,
    encode_batch,
    span_from_row,
)
from .postgres_traces_search import newest_traces, summaries

MAX_LIMIT = 10_000
DELETE_CHUNK = 50_000  # spans per retention statement
ANALYTICS_WORK_MEM = "64MB"  # hash joins and sorts of an hour of spans stay in memory
BATCH_ID_TTL = dt.timedelta(days=1)
_PRUNE_EVERY = 1000  # writes between two prunings of old batch ids
_KNOWN_CACHED = 100_000  # resource and scope digests known to be stored
_DECODE_INLINE = 200  # spans decoded on the event loop; bigger traces go to a thread

_MIGRATIONS: tuple[Migration, ...] = (
    (
        (
            'CREATE TABLE {s}.resources (tenant text COLLATE "C" NOT NULL, digest bytea NOT NULL,'
            " attributes bytea, labels jsonb, dropped_attributes_count bigint NOT NULL,"
            " schema_url text NOT NULL, PRIMARY KEY (tenant, digest))"
        ),
        (
            'CREATE TABLE {s}.scopes (tenant text COLLATE "C" NOT NULL, digest bytea NOT NULL,'
            " name text NOT NULL, version text NOT NULL, attributes bytea,"
            " dropped_attributes_count bigint NOT NULL, schema_url text NOT NULL,"
            " PRIMARY KEY (tenant, digest))"
        ),
        (
            'CREATE TABLE {s}.spans (tenant text COLLATE "C" NOT NULL,'
            ' trace_id text COLLATE "C" NOT NULL, span_id text COLLATE "C" NOT NULL,'
            ' parent_span_id text COLLATE "C" NOT NULL, name text COLLATE "C" NOT NULL,'
            ' service text COLLATE "C" NOT NULL, kind smallint NOT NULL,'
            " status_code smallint NOT NULL, start_ns bigint NOT NULL, end_ns bigint NOT NULL,"
            " duration_ns bigint NOT NULL, flags bigint NOT NULL, status_message text NOT NULL,"
            " trace_state text NOT NULL, attributes bytea, labels jsonb,"
            " dropped_attributes_count bigint NOT NULL, events bytea,"
            " dropped_events_count bigint NOT NULL, links bytea,"
            " dropped_links_count bigint NOT NULL, resource_id bytea NOT NULL,"
            " scope_id bytea NOT NULL) PARTITION BY RANGE (start_ns)"
        ),
        "CREATE INDEX spans_by_trace ON {s}.spans (tenant, trace_id, start_ns)",
        "CREATE INDEX spans_by_time ON {s}.spans (tenant, start_ns)",
        "CREATE INDEX spans_by_service ON {s}.spans (tenant, service, start_ns)",
        "CREATE INDEX spans_by_name ON {s}.spans (tenant, name, start_ns)",
        "CREATE INDEX spans_by_duration ON {s}.spans (tenant, duration_ns)",
        "CREATE INDEX spans_errors ON {s}.spans (tenant, start_ns) WHERE status_code = 2",
        (
            'CREATE TABLE {s}.operations (tenant text COLLATE "C" NOT NULL,'
            ' service text COLLATE "C" NOT NULL, name text COLLATE "C" NOT NULL,'
            " last_seen_ns bigint NOT NULL, PRIMARY KEY (tenant, service, name))"
        ),
        (
            'CREATE TABLE {s}.span_batches (tenant text COLLATE "C" NOT NULL,'
            ' batch_id text COLLATE "C" NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),'
            " PRIMARY KEY (tenant, batch_id))"
        ),
        "CREATE INDEX span_batches_by_age ON {s}.span_batches (applied_at)",
    ),
    (  # trace analytics: what span_analytics derives from attributes and events
        (
            "ALTER TABLE {s}.spans ADD COLUMN peer_type text, ADD COLUMN peer_system text,"
            " ADD COLUMN peer_name text, ADD COLUMN error_type text,"
            " ADD COLUMN error_message text"
        ),
    ),
)


def _decode_spans(trace_id: str, rows: list[Any]) -> list[Span]:
    return [span_from_row(trace_id, row) for row in rows]


class _PartitionGone(Exception):
    """A cached partition was dropped by another process's retention."""


def _check_limit(limit: int) -> None:
    if limit < 0 or limit > MAX_LIMIT:
        raise QueryError(f"limit must be between 0 and {MAX_LIMIT}, got {limit}")


class PostgresTraceStore:
    """TraceStore on PostgreSQL (see the module docstring for the layout)."""

    def __init__(self, db: PgDatabase) -> None:
        self._db = db
        self._s = db.schema
        self._partitions = DayPartitions(db.schema, "spans")
        self._known: set[tuple[str, str, bytes]] = set()  # (table, tenant, digest) committed
        self._writes = 0
        self._sql = _Statements(db.schema)

    @classmethod
    async def open(
        cls,
        dsn: str,
        *,
        schema: str = "argus",
        pool_size: int = 8,
        connect_timeout: float = 10.0,
        statement_timeout: float = 60.0,
    ) -> Self:
        """Connect, create or migrate the schema, and return the store."""
        db = await PgDatabase.open(
            dsn,
            schema=schema,
            component="traces",
            migrations=_MIGRATIONS,
            pool_size=pool_size,
            connect_timeout=connect_timeout,
            statement_timeout=statement_timeout,
        )
        return cls(db)

    # -- writing

    async def write_spans(self, tenant: str, spans: Sequence[Span], batch_id: str) -> None:
        self._db.check_open()
        if not spans:
            return
        tenant = to_pg_text(tenant)
        try:  # encoding is ~10 µs of Python per span: keep it off the event loop
            batch = await asyncio.to_thread(encode_batch, tenant, spans)
        except (orjson.JSONEncodeError, OverflowError) as exc:
            raise translate_error(exc) from exc
        days = batch.days | {max(batch.days) + 1}  # tomorrow too: no stall at midnight
        for attempt in range(2):
            try:
                async with self._db.connection() as conn:
                    await self._maybe_prune(conn)
                    await self._partitions.ensure(conn, days)
                    await self._write(conn, tenant, batch, to_pg_text(batch_id))
                return
            except _PartitionGone:
                self._partitions.forget()
                if attempt:
                    raise

    async def _write(
        self, conn: AsyncConnection[Any], tenant: str, batch: EncodedBatch, batch_id: str
    ) -> None:
        resources = self._unknown("resources", tenant, batch.resources)
        scopes = self._unknown("scopes", tenant, batch.scopes)
        async with conn.transaction():
            claimed = await conn.execute(self._sql.claim, (tenant, batch_id))
            if await claimed.fetchone() is None:
                return  # applied before
            cursor = conn.cursor()
            if resources:
                await cursor.executemany(self._sql.resource, resources)
            if scopes:
                await cursor.executemany(self._sql.scope, scopes)
            try:
                async with cursor.copy(self._sql.copy) as copy:
                    copy.set_types(COPY_TYPES)
                    for row in batch.rows:
                        await copy.write_row(row)
            except psycopg.errors.CheckViolation as exc:
                raise _PartitionGone() from exc
            ops = sorted(batch.operations.items())
            await conn.execute(
                self._sql.operations,
                (tenant, [k[0] for k, _ in ops], [k[1] for k, _ in ops], [t for _, t in ops]),
            )
        self._remember("resources", tenant, resources)
        self._remember("scopes", tenant, scopes)

    def _unknown(self, table: str, tenant: str, rows: dict[bytes, Any]) -> list[Any]:
        """The rows not known to be stored, sorted by digest (the lock order)."""
        known = self._known
        return [row for key, row in sorted(rows.items()) if (table, tenant, key) not in known]

    def _remember(self, table: str, tenant: str, rows: list[Any]) -> None:
        if len(self._known) + len(rows) > _KNOWN_CACHED:
            self._known.clear()
        self._known.update((table, tenant, row[1]) for row in rows)

    async def _maybe_prune(self, conn: AsyncConnection[Any]) -> None:
        """Forget old batch ids now and then (before a write: its failure stops the write)."""
        self._writes += 1
        if self._writes % _PRUNE_EVERY == 1:
            await conn.execute(self._sql.prune_batches, (BATCH_ID_TTL,))

    # -- reading

    async def get_trace(self, tenant: str, trace_id: str) -> list[Span]:
        async with self._db.connection() as conn:
            cursor = await conn.execute(self._sql.trace, (to_pg_text(tenant), to_pg_text(trace_id)))
            rows = await cursor.fetchall()
        if len(rows) > _DECODE_INLINE:
            return await asyncio.to_thread(_decode_spans, trace_id, rows)
        return _decode_spans(trace_id, rows)

    async def find_traces(self, query: TraceQuery) -> list[TraceSummary]:
        _check_limit(query.limit)
        self._db.check_open()
        if query.limit == 0:
            return []
        async with self._db.connection() as conn, conn.transaction():
            # One snapshot for the walk and the summaries.
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            newest = await newest_traces(conn, self._s, query)
            trace_ids = [trace_id for _, trace_id in newest]
            return await summaries(conn, self._s, to_pg_text(query.tenant), trace_ids)

    async def services(self, tenant: str) -> list[ServiceOperations]:
        async with self._db.connection() as conn:
            cursor = await conn.execute(self._sql.services, (to_pg_text(tenant),))
            rows = await cursor.fetchall()
        by_service: dict[str, list[str]] = {}
        for service, name in rows:
            by_service.setdefault(from_pg_text(service), []).append(from_pg_text(name))
        return [ServiceOperations(s, sorted(ops)) for s, ops in sorted(by_service.items())]

    # -- analytics (see postgres_traces_analytics)

    async def service_map(self, tenant: str, start: int, end: int) -> ServiceMap:
        async with self._snapshot() as conn:
            return await analytics.service_map(conn, self._s, tenant, start, end)

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
        check_step(step)
        async with self._snapshot() as conn:
            return await analytics.red_series(
                conn, self._s, tenant, start, end, step, service, operation, span_kinds
            )

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
        check_bounds(bounds)
        async with self._snapshot() as conn:
            return await analytics.latency_histogram(
                conn, self._s, tenant, start, end, service, operation, bounds, span_kinds
            )

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
        rank_operations([], by, limit)  # refuses an unknown `by` up front
        async with self._snapshot() as conn:
            return await analytics.top_operations(
                conn, self._s, tenant, start, end, by, limit, span_kinds
            )

    async def top_errors(
        self, tenant: str, start: int, end: int, service: str | None = None, limit: int = 10
    ) -> list[ErrorGroup]:
        _check_limit(limit)
        async with self._snapshot() as conn:
            return await analytics.top_errors(conn, self._s, tenant, start, end, service, limit)

    @asynccontextmanager
    async def _snapshot(self) -> AsyncIterator[AsyncConnection[Any]]:
        """A connection in a read-only transaction: one snapshot for every statement."""
        self._db.check_open()
        async with self._db.connection() as conn, conn.transaction():
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            await conn.execute(f"SET LOCAL work_mem = '{ANALYTICS_WORK_MEM}'")
            yield conn

    # -- retention

    async def tenants(self) -> list[str]:
        """Tenants with spans: a skip scan over the (tenant, start) index, one probe per
        tenant rather than a read of every span."""
        async with self._db.connection() as conn:
            cursor = await conn.execute(self._sql.tenants)
            rows = await cursor.fetchall()
        return sorted(from_pg_text(row[0]) for row in rows)

    async def delete_before(self, tenant: str, cutoff_unix_nano: int) -> int:
        """Delete the tenant's spans that started before the cutoff; returns how many.

        Day partition by day, oldest first, DELETE_CHUNK spans per statement (each its
        own transaction): no statement runs into the statement timeout however much
        there is to delete, and vacuum can follow. Operations left without spans go from
        services(). Use drop_partitions_before to expire every tenant at once: it drops
        whole days instead of deleting rows.
        """
        tenant = to_pg_text(tenant)
        deleted = 0
        async with self._db.connection() as conn:
            for name in await self._partitions_before(conn, cutoff_unix_nano):
                delete = self._sql.delete_chunk(name)
                while True:
                    try:
                        cursor = await conn.execute(
                            delete, (tenant, cutoff_unix_nano, DELETE_CHUNK)
                        )
                    except psycopg.errors.UndefinedTable:
                        break  # dropped meanwhile by drop_partitions_before
                    deleted += cursor.rowcount
                    if cursor.rowcount < DELETE_CHUNK:
                        break
            # An operation seen at or after the cutoff still has that span.
            await conn.execute(self._sql.delete_operations, (tenant, cutoff_unix_nano))
        return deleted

    async def _partitions_before(self, conn: AsyncConnection[Any], cutoff: int) -> list[str]:
        """The day partitions that may hold spans before the cutoff, oldest first."""
        cursor = await conn.execute(self._sql.partitions, (f"{self._s}.spans",))
        days = []
        for (name,) in await cursor.fetchall():
            day = self._partitions.day_from_name(name)
            if day is not None and day * DAY_NS < cutoff:
                days.append((day, str(name)))
        return [name for _, name in sorted(days)]

    async def drop_partitions_before(self, cutoff_unix_nano: int) -> list[str]:
        """Drop, for every tenant, each day partition that ends at or before the cutoff.

        Returns the dropped partitions' names. Spans of a day that straddles the cutoff
        stay until the next call after that day ends.
        """
        async with self._db.connection() as conn:
            dropped = await self._partitions.drop_before(conn, cutoff_unix_nano)
            oldest = await self._partitions.oldest_day(conn)
            # Every span left started on or after `oldest`; later operations keep theirs.
            floor = None if oldest is None else oldest * DAY_NS
            await conn.execute(self._sql.delete_all_operations, {"floor": floor})
        return dropped

    async def close(self) -> None:
        await self._db.close()


class _Statements:
    """The store's SQL with the schema name filled in."""

    def __init__(self, s: str) -> None:
        self._schema = s
        self.claim = (
            f"INSERT INTO {s}.span_batches (tenant, batch_id) VALUES (%s, %s)"
            " ON CONFLICT DO NOTHING RETURNING 1"
        )
        self.resource = (
            f"INSERT INTO {s}.resources (tenant, digest, attributes, labels,"
            " dropped_attributes_count, schema_url) VALUES (%s, %s, %s, %s::jsonb, %s, %s)"
            " ON CONFLICT DO NOTHING"
        )
        self.scope = (
            f"INSERT INTO {s}.scopes (tenant, digest, name, version, attributes,"
            " dropped_attributes_count, schema_url) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING"
        )
        self.copy = f"COPY {s}.spans ({', '.join(SPAN_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
        self.operations = (
            f"INSERT INTO {s}.operations AS o (tenant, service, name, last_seen_ns)"
            " SELECT %s, u.service, u.name, u.last_seen"
            " FROM unnest(%s::text[], %s::text[], %s::bigint[]) AS u (service, name, last_seen)"
            ' ORDER BY u.service COLLATE "C", u.name COLLATE "C"'
            " ON CONFLICT (tenant, service, name) DO UPDATE SET last_seen_ns = excluded.last_seen_ns"
            " WHERE o.last_seen_ns < excluded.last_seen_ns"
        )
        self.prune_batches = f"DELETE FROM {s}.span_batches WHERE applied_at < now() - %s"
        self.trace = (
            f"SELECT {READ_COLUMNS} FROM {s}.spans s"
            f" JOIN {s}.resources r ON r.tenant = s.tenant AND r.digest = s.resource_id"
            f" JOIN {s}.scopes c ON c.tenant = s.tenant AND c.digest = s.scope_id"
            " WHERE s.tenant = %s AND s.trace_id = %s ORDER BY s.start_ns, s.span_id"
        )
        self.services = f"SELECT service, name FROM {s}.operations WHERE tenant = %s"
        self.tenants = (
            "WITH RECURSIVE t (tenant) AS ("
            f" (SELECT tenant FROM {s}.spans ORDER BY tenant LIMIT 1) UNION ALL"
            f" SELECT (SELECT s.tenant FROM {s}.spans s WHERE s.tenant > t.tenant"
            " ORDER BY s.tenant LIMIT 1) FROM t WHERE t.tenant IS NOT NULL"
            ") SELECT tenant FROM t WHERE tenant IS NOT NULL"
        )
        self.partitions = (
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = %s::regclass"
        )
        self.delete_operations = (
            f"DELETE FROM {s}.operations WHERE tenant = %s AND last_seen_ns < %s"
        )
        self.delete_all_operations = (
            f"DELETE FROM {s}.operations"
            " WHERE %(floor)s::bigint IS NULL OR last_seen_ns < %(floor)s::bigint"
        )

    def delete_chunk(self, partition: str) -> str:
        """DELETE of at most a chunk of one tenant's spans before a cutoff in one day
        partition (parameters: tenant, cutoff, chunk size); the ctid list makes it a
        TID scan."""
        table = f"{self._schema}.{partition}"
        return (
            f"DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table}"
            " WHERE tenant = %s AND start_ns < %s LIMIT %s))"
        )
