"""The embedded log store: log records in one SQLite file.

Records go into a rowid table in arrival order, indexed by (tenant, ts) — time-first, so
inserts append — and by `trace_key` for records that carry a trace id. Trace ids are
random, so that index takes random inserts; keying it by a 64-bit integer taken from the
id (rechecked against trace_id on read) made it ~3x cheaper than the 32-character text,
and making it partial spares records without a trace id.

The body is kept once, as text: a str body as is (body_kind 1), any other AnyValue as its
lossless JSON (body_kind 2), None as NULL (body_kind 0). That text is also what `contains`
searches, with a linear scan over the time range. FTS5 was measured and not adopted: see
bench/store_sqlite.py --fts5.

The analytics (severity_histogram, top_values) are GROUP BY queries over the same filters
as search, so they scan the matching records of the time range; patterns clusters the
newest page of search (log_patterns).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Self

from ..attributes import decode_attributes, decode_value, encode_value
from ..errors import QueryError
from ..log_patterns import patterns_by_search
from ..logs import (
    MAX_HISTOGRAM_BUCKETS,
    SEVERITY_BUCKETS,
    LogPage,
    LogPatterns,
    LogQuery,
    SeverityBucket,
    ValueCount,
    check_histogram,
    check_top_values,
    top_field,
)
from ..model import AnyValue, LogRecord
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
    attribute_label_sql,
    batch_table_sql,
    claim_batch,
    decode_resource,
    decode_scope,
    encode_attributes,
    resource_interner,
    scope_interner,
)

MAX_LIMIT = 10_000
DELETE_CHUNK = 50_000  # records per retention transaction
_BATCHES = "log_batches"
_BODY_NONE, _BODY_STR, _BODY_JSON = 0, 1, 2

_MIGRATIONS: tuple[Migration, ...] = (
    RESOURCE_TABLES
    + (
        (
            "CREATE TABLE logs (id INTEGER PRIMARY KEY, tenant TEXT NOT NULL, ts INTEGER NOT NULL,"
            " time_unix_nano INTEGER NOT NULL, observed_time_unix_nano INTEGER NOT NULL,"
            " severity_number INTEGER NOT NULL, severity_text TEXT NOT NULL,"
            " body_kind INTEGER NOT NULL, body_text TEXT, attributes TEXT,"
            " dropped_attributes_count INTEGER NOT NULL, flags INTEGER NOT NULL, trace_id TEXT,"
            " trace_key INTEGER, span_id TEXT, event_name TEXT NOT NULL,"
            " service TEXT NOT NULL, resource_id INTEGER NOT NULL, scope_id INTEGER NOT NULL)"
        ),
        "CREATE INDEX logs_by_time ON logs (tenant, ts)",
        "CREATE INDEX logs_by_trace ON logs (trace_key) WHERE trace_key IS NOT NULL",
        batch_table_sql(_BATCHES),
    ),
    # Severity in the time index: the log histogram (counts per step and severity) reads
    # the index alone instead of a table row per record, 7x faster over an hour.
    (
        "DROP INDEX logs_by_time",
        "CREATE INDEX logs_by_time ON logs (tenant, ts, severity_number)",
    ),
)

_INSERT = (
    "INSERT INTO logs (tenant, ts, time_unix_nano, observed_time_unix_nano, severity_number,"
    " severity_text, body_kind, body_text, attributes, dropped_attributes_count, flags,"
    " trace_id, trace_key, span_id, event_name, service, resource_id, scope_id)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_COLUMNS = (
    "l.id, l.ts, l.time_unix_nano, l.observed_time_unix_nano, l.severity_number,"
    " l.severity_text, l.body_kind, l.body_text, l.attributes, l.dropped_attributes_count,"
    f" l.flags, l.trace_id, l.span_id, l.event_name, {RESOURCE_COLUMNS}, {SCOPE_COLUMNS}"
)


# ---------------------------------------------------------------------------- encoding


def _encode_body(body: AnyValue) -> tuple[int, str | None]:
    if body is None:
        return _BODY_NONE, None
    if isinstance(body, str):
        return _BODY_STR, body
    return _BODY_JSON, encode_value(body).decode()


def _decode_body(kind: int, text: str | None) -> AnyValue:
    if kind == _BODY_STR:
        return text
    if kind == _BODY_JSON:
        value: AnyValue = decode_value(text)
        return value
    return None


def trace_key(trace_id: str) -> int:
    """The signed 64-bit key of the trace index: the id's first 16 hex digits, or a hash of
    an id that is not hex. A collision only costs a recheck of trace_id."""
    try:
        value = int(trace_id[:16], 16)
    except ValueError:
        value = -1
    if 0 <= value < 1 << 64:
        return value - (1 << 63)
    digest = hashlib.blake2b(trace_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _log_row(tenant: str, record: LogRecord, refs: ResourceRefs) -> Row:
    body_kind, body_text = _encode_body(record.body)
    trace_id = record.trace_id or None  # absent ids are NULL: the partial index skips them
    return (
        tenant, record.timestamp, record.time_unix_nano, record.observed_time_unix_nano,
        record.severity_number, record.severity_text, body_kind, body_text,
        encode_attributes(record.attributes), record.dropped_attributes_count, record.flags,
        trace_id, trace_key(trace_id) if trace_id else None, record.span_id or None,
        record.event_name, record.service_name, refs.resource(record.resource),
        refs.scope(record.scope),
    )  # fmt: skip


def _record_from_row(row: Row) -> LogRecord:
    (_, _, time, observed, severity, severity_text, body_kind, body_text, attributes,
     dropped, flags, trace_id, span_id, event_name) = row[:14]  # fmt: skip
    return LogRecord(
        time_unix_nano=time, observed_time_unix_nano=observed,
        resource=decode_resource(row[14:17]), scope=decode_scope(row[17:22]),
        severity_number=severity, severity_text=severity_text,
        body=_decode_body(body_kind, body_text), attributes=decode_attributes(attributes),
        dropped_attributes_count=dropped, flags=flags, trace_id=trace_id or "",
        span_id=span_id or "", event_name=event_name,
    )  # fmt: skip


# ---------------------------------------------------------------------------- cursor


def encode_cursor(ts: int, row_id: int) -> str:
    return base64.urlsafe_b64encode(f"1:{ts}:{row_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, ts, row_id = raw.split(":")
        if version != "1":
            raise ValueError(version)
        return int(ts), int(row_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise QueryError(f"invalid log cursor {cursor!r}") from exc


# ---------------------------------------------------------------------------- search


def _contains_sql(text: str, params: Params) -> str:
    if text.isascii():
        # LIKE folds ASCII case only, which is all an ASCII needle can match; it measured
        # 4x faster than instr(lower(...)).
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return f"l.body_text LIKE {params.add(f'%{escaped}%')} ESCAPE '\\'"
    return f"argus_icontains(l.body_text, {params.add(text.lower())})"


def _trace_clause(trace_id: str, params: Params) -> str:
    if trace_id == "":
        return "l.trace_id IS NULL"  # absent ids are stored as NULL
    key = params.add(trace_key(trace_id))
    return f"l.trace_key = {key} AND l.trace_id = {params.add(trace_id)}"


def _span_clause(span_id: str, params: Params) -> str:
    return "l.span_id IS NULL" if span_id == "" else f"l.span_id = {params.add(span_id)}"


def _filter(query: LogQuery) -> tuple[str, Params]:
    params = Params()
    clauses = [f"l.tenant = {params.add(query.tenant)}"]
    if query.start_unix_nano is not None:
        clauses.append(f"l.ts >= {params.add(query.start_unix_nano)}")
    if query.end_unix_nano is not None:
        clauses.append(f"l.ts < {params.add(query.end_unix_nano)}")
    if query.cursor is not None:
        ts, row_id = decode_cursor(query.cursor)
        clauses.append(f"(l.ts, l.id) < ({params.add(ts)}, {params.add(row_id)})")
    if query.contains:
        clauses.append(_contains_sql(query.contains, params))
    if query.min_severity is not None:
        clauses.append(f"l.severity_number >= {params.add(query.min_severity)}")
    if query.service is not None:
        clauses.append(f"l.service = {params.add(query.service)}")
    if query.trace_id is not None:
        clauses.append(_trace_clause(query.trace_id, params))
    if query.span_id is not None:
        clauses.append(_span_clause(query.span_id, params))
    for key, value in query.attributes.items():
        clauses.append(attribute_filter_sql("l.attributes", "l.resource_id", key, value, params))
    return " AND ".join(clauses), params


def _search(query: LogQuery, conn: sqlite3.Connection) -> LogPage:
    where, params = _filter(query)
    limit = params.add(query.limit + 1)  # one more than asked tells whether a page follows
    # Without statistics SQLite prefers the time index (it avoids a sort) even for one trace.
    index = "INDEXED BY logs_by_trace" if query.trace_id else ""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM logs l {index} JOIN resources r ON r.id = l.resource_id"
        f" JOIN scopes c ON c.id = l.scope_id WHERE {where}"
        f" ORDER BY l.ts DESC, l.id DESC LIMIT {limit}",
        params.values,
    ).fetchall()
    page = rows[: query.limit]
    next_cursor = None
    if len(rows) > query.limit:  # limit >= 1 here, so page is not empty
        next_cursor = encode_cursor(page[-1][1], page[-1][0])
    return LogPage([_record_from_row(row) for row in page], next_cursor)


# ---------------------------------------------------------------------------- analytics

# The index of a record's SEVERITY_BUCKETS name.
_SEVERITY_INDEX = (
    "(CASE WHEN l.severity_number BETWEEN 1 AND 24 THEN (l.severity_number - 1) / 4 ELSE 6 END)"
)


def _aggregate_source(query: LogQuery) -> tuple[str, str, Params]:
    """(FROM, WHERE, params) of an aggregation over the records `query` matches."""
    where, params = _filter(replace(query, cursor=None))
    index = "INDEXED BY logs_by_trace" if query.trace_id else ""
    return f"logs l {index}", where, params


def _histogram(query: LogQuery, step: int, conn: sqlite3.Connection) -> list[SeverityBucket]:
    source, where, params = _aggregate_source(query)
    size = params.add(step)
    # Floor division for negative timestamps too (SQLite's % truncates toward zero).
    bucket = (
        f"(CASE WHEN l.ts >= 0 THEN l.ts - l.ts % {size}"
        f" ELSE l.ts - ((l.ts % {size}) + {size}) % {size} END)"
    )
    cap = params.add(MAX_HISTOGRAM_BUCKETS * len(SEVERITY_BUCKETS) + 1)
    rows = conn.execute(
        f"SELECT {bucket} AS b, {_SEVERITY_INDEX} AS s, COUNT(*) FROM {source} WHERE {where}"
        f" GROUP BY b, s ORDER BY b, s LIMIT {cap}",
        params.values,
    ).fetchall()
    buckets: list[SeverityBucket] = []
    for start, severity, count in rows:
        if not buckets or buckets[-1].start_unix_nano != start:
            buckets.append(SeverityBucket(start, {}))
        buckets[-1].counts[SEVERITY_BUCKETS[severity]] = count
    if len(buckets) > MAX_HISTOGRAM_BUCKETS:
        raise QueryError(
            f"the histogram has more than {MAX_HISTOGRAM_BUCKETS} buckets; use a larger step"
            " or a time range"
        )
    return buckets


def _top_values(
    query: LogQuery, field: str, limit: int, conn: sqlite3.Connection
) -> list[ValueCount]:
    kind, key = top_field(field)
    source, where, params = _aggregate_source(query)
    if kind == "severity":
        rows = conn.execute(
            f"SELECT {_SEVERITY_INDEX} AS s, COUNT(*) FROM {source} WHERE {where} GROUP BY s",
            params.values,
        ).fetchall()
        found = [ValueCount(SEVERITY_BUCKETS[s], n) for s, n in rows]
        return sorted(found, key=lambda v: (-v.count, v.value))[:limit]
    if kind == "service":
        sql = f"SELECT l.service AS v, COUNT(*) AS n FROM {source} WHERE {where} GROUP BY v"
    elif kind == "attribute":
        has, label = attribute_label_sql("l.attributes", key, params)
        sql = f"SELECT {label} AS v, COUNT(*) AS n FROM {source} WHERE {where} AND {has} GROUP BY v"
    else:  # resource: count per resource row first, then label the few resources
        has, label = attribute_label_sql("r.attributes", key, params)
        sql = (
            f"SELECT {label} AS v, SUM(g.n) AS n FROM (SELECT l.resource_id AS rid, COUNT(*) AS n"
            f" FROM {source} WHERE {where} GROUP BY rid) g JOIN resources r ON r.id = g.rid"
            f" WHERE {has} GROUP BY v"
        )
    rows = conn.execute(
        f"SELECT v, n FROM ({sql}) ORDER BY n DESC, v LIMIT {params.add(limit)}", params.values
    ).fetchall()
    return [ValueCount(str(value), count) for value, count in rows]


# ---------------------------------------------------------------------------- retention


def _tenants(conn: sqlite3.Connection) -> list[str]:
    """Distinct tenants by skipping through the (tenant, ts) index: one seek each."""
    found: list[str] = []
    row = conn.execute("SELECT tenant FROM logs ORDER BY tenant LIMIT 1").fetchone()
    while row is not None:
        found.append(row[0])
        row = conn.execute(
            "SELECT tenant FROM logs WHERE tenant > ? ORDER BY tenant LIMIT 1", (row[0],)
        ).fetchone()
    return found


def _delete_chunk(tenant: str, cutoff: int, conn: sqlite3.Connection) -> int:
    # `ts` is LogRecord.timestamp: the event time, else the observed time.
    return conn.execute(
        "DELETE FROM logs WHERE id IN (SELECT id FROM logs WHERE tenant = ? AND ts < ? LIMIT ?)",
        (tenant, cutoff, DELETE_CHUNK),
    ).rowcount


# ---------------------------------------------------------------------------- store


class SqliteLogStore:
    """LogStore on an SQLite file (see the module docstring for the layout)."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db
        self._resources = resource_interner()
        self._scopes = scope_interner()

    @classmethod
    async def open(cls, path: Path) -> Self:
        return cls(await SqliteDatabase.open(path, "logs", _MIGRATIONS))

    async def write_logs(self, tenant: str, records: Sequence[LogRecord], batch_id: str) -> None:
        if records:
            await self._db.write(partial(self._insert, tenant, records, batch_id), self._forget)

    async def search(self, query: LogQuery) -> LogPage:
        if query.limit < 0 or query.limit > MAX_LIMIT:
            raise QueryError(f"limit must be between 0 and {MAX_LIMIT}, got {query.limit}")
        if query.cursor is not None:
            decode_cursor(query.cursor)  # fail fast, on the caller's side
        if query.limit == 0:
            return LogPage([], None)
        return await self._db.read(partial(_search, query))

    async def severity_histogram(self, query: LogQuery, step_nanos: int) -> list[SeverityBucket]:
        check_histogram(query, step_nanos)
        return await self._db.read(partial(_histogram, query, step_nanos))

    async def top_values(self, query: LogQuery, field: str, limit: int) -> list[ValueCount]:
        top_field(field)
        check_top_values(limit)
        return await self._db.read(partial(_top_values, query, field, limit))

    async def patterns(self, query: LogQuery, limit: int, sample_limit: int) -> LogPatterns:
        return await patterns_by_search(self, query, limit, sample_limit)

    async def tenants(self) -> list[str]:
        return await self._db.read(_tenants)

    async def delete_before(self, tenant: str, cutoff_unix_nano: int) -> int:
        """Delete the tenant's records whose timestamp is before the cutoff; returns how
        many. Records go DELETE_CHUNK at a time, each chunk its own write transaction,
        so writes wait at most one chunk."""
        deleted = 0
        while True:
            count = await self._db.write(partial(_delete_chunk, tenant, cutoff_unix_nano))
            deleted += count
            if count < DELETE_CHUNK:
                return deleted

    async def close(self) -> None:
        await self._db.close()

    def _insert(
        self, tenant: str, records: Sequence[LogRecord], batch_id: str, conn: sqlite3.Connection
    ) -> None:
        if not claim_batch(conn, _BATCHES, tenant, batch_id):
            return
        refs = ResourceRefs(self._resources, self._scopes, conn)
        conn.executemany(_INSERT, [_log_row(tenant, record, refs) for record in records])

    def _forget(self) -> None:
        """After a rollback: cached ids may name rows that no longer exist."""
        self._resources.clear()
        self._scopes.clear()
