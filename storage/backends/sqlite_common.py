"""Shared plumbing for the embedded SQLite stores.

One `SqliteDatabase` owns one database file: a single writer connection (writes are
serialised, one transaction per call) and a small pool of read-only connections, which WAL
mode lets run alongside the writer. All blocking sqlite3 work runs in worker threads via
`asyncio.to_thread`, never on the event loop.

Durability: `synchronous=NORMAL` in WAL mode means a commit survives a process crash but the
last transactions may be lost on power failure. That is deliberate: a batch is durable
before it reaches a store through the collector's write-ahead log, and the batch-id table
below makes replaying it after a crash harmless.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self, TypeVar

import orjson

from ..attributes import decode_attributes, decode_value, encode_value, value_as_label
from ..errors import PermanentStoreError, RetryableStoreError, StoreError
from ..model import AnyValue, Attributes, Resource, Scope

T = TypeVar("T")

# One migration is a tuple of SQL statements; migration i brings a component to version i+1.
Migration = tuple[str, ...]

READERS = 4
BATCH_IDS_KEPT = 10_000

_COMMON_PRAGMAS = (
    "PRAGMA synchronous = NORMAL",  # see the module docstring
    "PRAGMA busy_timeout = 5000",
    "PRAGMA temp_store = MEMORY",
    "PRAGMA mmap_size = 268435456",
)
_WRITER_PRAGMAS = (
    "PRAGMA cache_size = -65536",  # 64 MiB: keeps the hot index pages resident
    # Checkpoint every ~40 MB of WAL instead of 4 MB: +20% insert rate in measurement.
    "PRAGMA wal_autocheckpoint = 10000",
    "PRAGMA journal_size_limit = 67108864",
)
_READER_PRAGMAS = ("PRAGMA cache_size = -32768", "PRAGMA query_only = ON")

_RETRYABLE_HINTS = ("locked", "busy", "disk i/o", "full", "unable to open", "interrupted")


# ---------------------------------------------------------------------------- errors


def translate_error(exc: BaseException) -> StoreError:
    """Map a sqlite3 or encoding failure onto the store error classes."""
    if isinstance(exc, sqlite3.OperationalError):
        message = str(exc).lower()
        if any(hint in message for hint in _RETRYABLE_HINTS):
            return RetryableStoreError(f"sqlite busy or unavailable: {exc}")
    if isinstance(exc, OverflowError):
        return PermanentStoreError(f"value out of SQLite's 64-bit integer range: {exc}")
    return PermanentStoreError(f"sqlite: {type(exc).__name__}: {exc}")


_TRANSLATED = (sqlite3.Error, OverflowError, orjson.JSONEncodeError)


def _call(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    try:
        return fn(conn)
    except _TRANSLATED as exc:
        raise translate_error(exc) from exc


# ---------------------------------------------------------------------------- connections


def _connect(path: Path, pragmas: Sequence[str]) -> sqlite3.Connection:
    # check_same_thread=False: a connection moves between worker threads, but is only ever
    # used by one at a time (the writer lock, the reader pool). isolation_level=None: we
    # issue BEGIN/COMMIT ourselves.
    conn = sqlite3.connect(
        path, check_same_thread=False, isolation_level=None, cached_statements=256
    )
    for pragma in (*_COMMON_PRAGMAS, *pragmas):
        conn.execute(pragma)
    return conn


def _open_writer(path: Path) -> sqlite3.Connection:
    conn = _connect(path, _WRITER_PRAGMAS)
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        conn.close()
        raise PermanentStoreError(f"{path}: cannot switch to WAL mode (got {mode!r})")
    return conn


def _open_reader(path: Path) -> sqlite3.Connection:
    conn = _connect(path, _READER_PRAGMAS)
    register_functions(conn)
    return conn


def _transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
    except BaseException:
        if conn.in_transaction:  # some errors (SQLITE_FULL, ...) already rolled back
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


# ---------------------------------------------------------------------------- migrations


def _migrate(conn: sqlite3.Connection, component: str, migrations: Sequence[Migration]) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " component TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID"
    )
    row = conn.execute(
        "SELECT version FROM schema_version WHERE component = ?", (component,)
    ).fetchone()
    current = int(row[0]) if row else 0
    if current > len(migrations):
        raise PermanentStoreError(
            f"{component} schema version {current} is newer than this Argus "
            f"understands ({len(migrations)}); upgrade Argus"
        )
    for statements in migrations[current:]:
        for statement in statements:
            conn.execute(statement)
    conn.execute(
        "INSERT INTO schema_version (component, version) VALUES (?, ?) "
        "ON CONFLICT (component) DO UPDATE SET version = excluded.version",
        (component, len(migrations)),
    )


# ---------------------------------------------------------------------------- database


class SqliteDatabase:
    """A database file with one serialised writer and a pool of concurrent readers."""

    def __init__(self, path: Path, writer: sqlite3.Connection, readers: list[sqlite3.Connection]):
        self.path = path
        self._writer = writer
        self._idle = readers
        self._write_lock = asyncio.Lock()
        self._read_slots = asyncio.Semaphore(len(readers))
        self._reader_count = len(readers)
        self._closed = False

    @classmethod
    async def open(
        cls, path: Path, component: str, migrations: Sequence[Migration], readers: int = READERS
    ) -> Self:
        def setup() -> tuple[sqlite3.Connection, list[sqlite3.Connection]]:
            path.parent.mkdir(parents=True, exist_ok=True)
            opened = [_open_writer(path)]
            try:
                _transaction(opened[0], lambda conn: _migrate(conn, component, migrations))
                opened.extend(_open_reader(path) for _ in range(readers))
            except BaseException:
                for conn in opened:
                    conn.close()
                raise
            return opened[0], opened[1:]

        try:
            writer, pool = await asyncio.to_thread(setup)
        except _TRANSLATED as exc:
            raise translate_error(exc) from exc
        return cls(path, writer, pool)

    async def write(
        self, fn: Callable[[sqlite3.Connection], T], on_rollback: Callable[[], None] | None = None
    ) -> T:
        """Run `fn` in one transaction on the writer connection, in a worker thread.

        `on_rollback` runs in that thread if the transaction fails, before the next write.

        If the caller is cancelled the transaction still runs to its end (commit or
        rollback) before the next write starts: the lock is released by the thread's
        completion, not by the caller.
        """
        await self._write_lock.acquire()
        try:
            self._check_open()
            task = asyncio.ensure_future(
                asyncio.to_thread(_call, self._writer, _tx(fn, on_rollback))
            )
        except BaseException:
            self._write_lock.release()
            raise
        task.add_done_callback(lambda done: self._after(done, self._write_lock.release))
        return await asyncio.shield(task)

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` on an idle reader connection in a worker thread.

        A cancelled caller interrupts the running statement; the connection goes back to
        the pool only once its thread has finished with it.
        """
        await self._read_slots.acquire()
        try:
            self._check_open()
            conn = self._idle.pop()
        except BaseException:
            self._read_slots.release()
            raise
        task = asyncio.ensure_future(asyncio.to_thread(_call, conn, fn))
        task.add_done_callback(lambda done: self._after(done, lambda: self._give_back(conn)))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                conn.interrupt()
            raise

    async def close(self) -> None:
        """Wait for running calls, then close every connection. Safe to call twice."""
        async with self._write_lock:
            if self._closed:
                return
            for _ in range(self._reader_count):
                await self._read_slots.acquire()
            self._closed = True
            connections = [self._writer, *self._idle]
            self._idle = []
            await asyncio.to_thread(_close_all, connections)
            for _ in range(self._reader_count):
                self._read_slots.release()  # waiting readers wake up and see the store closed

    def _check_open(self) -> None:
        if self._closed:
            raise PermanentStoreError(f"{self.path}: store is closed")

    def _give_back(self, conn: sqlite3.Connection) -> None:
        self._idle.append(conn)
        self._read_slots.release()

    @staticmethod
    def _after(done: asyncio.Future[Any], release: Callable[[], None]) -> None:
        if not done.cancelled():
            done.exception()  # mark retrieved: a cancelled caller no longer awaits it
        release()


def _close_all(connections: list[sqlite3.Connection]) -> None:
    for conn in connections:
        conn.close()


def _tx(
    fn: Callable[[sqlite3.Connection], T], on_rollback: Callable[[], None] | None
) -> Callable[[sqlite3.Connection], T]:
    def run(conn: sqlite3.Connection) -> T:
        try:
            return _transaction(conn, fn)
        except BaseException:
            if on_rollback is not None:
                on_rollback()
            raise

    return run


# ---------------------------------------------------------------------------- batch ids


def batch_table_sql(table: str) -> str:
    # seq is the rowid, so trimming the oldest ids is a cheap range delete.
    return (
        f"CREATE TABLE IF NOT EXISTS {table} (seq INTEGER PRIMARY KEY,"
        " tenant TEXT NOT NULL, batch_id TEXT NOT NULL, UNIQUE (tenant, batch_id))"
    )


def claim_batch(conn: sqlite3.Connection, table: str, tenant: str, batch_id: str) -> bool:
    """Record `batch_id` in the open transaction; False if it was applied before.

    Batch ids are per tenant. Only the newest BATCH_IDS_KEPT ids are remembered, which
    covers any realistic retry window of the collector's write-ahead log.
    """
    cursor = conn.execute(
        f"INSERT OR IGNORE INTO {table} (tenant, batch_id) VALUES (?, ?)", (tenant, batch_id)
    )
    if cursor.rowcount == 0:
        return False
    seq = int(cursor.lastrowid or 0)
    conn.execute(f"DELETE FROM {table} WHERE seq <= ?", (seq - BATCH_IDS_KEPT,))
    return True


# ---------------------------------------------------------------------------- resources, scopes

RESOURCE_TABLES: Migration = (
    (
        "CREATE TABLE IF NOT EXISTS resources (id INTEGER PRIMARY KEY,"
        " digest BLOB NOT NULL UNIQUE, attributes TEXT, dropped_attributes_count INTEGER NOT NULL,"
        " schema_url TEXT NOT NULL)"
    ),
    (
        "CREATE TABLE IF NOT EXISTS scopes (id INTEGER PRIMARY KEY,"
        " digest BLOB NOT NULL UNIQUE, name TEXT NOT NULL, version TEXT NOT NULL, attributes TEXT,"
        " dropped_attributes_count INTEGER NOT NULL, schema_url TEXT NOT NULL)"
    ),
)
RESOURCE_COLUMNS = "r.attributes, r.dropped_attributes_count, r.schema_url"
SCOPE_COLUMNS = "c.name, c.version, c.attributes, c.dropped_attributes_count, c.schema_url"

Row = tuple[Any, ...]


def encode_attributes(attributes: Attributes) -> str | None:
    """Encoded attribute map, or None (stored as NULL) for an empty one.

    Text, not BLOB: SQLite 3.45+ reads a BLOB given to its JSON functions as JSONB.
    """
    return encode_value(attributes).decode() if attributes else None


def encode_resource(resource: Resource) -> Row:
    return (
        encode_attributes(resource.attributes),
        resource.dropped_attributes_count,
        resource.schema_url,
    )


def encode_scope(scope: Scope) -> Row:
    return (
        scope.name,
        scope.version,
        encode_attributes(scope.attributes),
        scope.dropped_attributes_count,
        scope.schema_url,
    )


def decode_resource(row: Row) -> Resource:
    attributes, dropped, schema_url = row
    return Resource(decode_attributes(attributes), dropped, schema_url)


def decode_scope(row: Row) -> Scope:
    name, version, attributes, dropped, schema_url = row
    return Scope(name, version, decode_attributes(attributes), dropped, schema_url)


def _digest(values: Row) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    for value in values:
        raw = value if isinstance(value, bytes) else b"" if value is None else str(value).encode()
        digest.update(len(raw).to_bytes(8, "little"))  # length prefix: no ambiguous joins
        digest.update(raw)
    return digest.digest()


class Interner:
    """Stores each distinct resource (or scope) once and hands out its row id.

    Spans and log records point at these rows: a resource is typically hundreds of bytes
    repeated on every record of a process. Ids are cached by content digest; `clear()` must
    be called when a transaction rolls back, since the ids it created no longer exist.
    """

    MAX_CACHED = 4096

    def __init__(self, table: str, columns: Sequence[str]) -> None:
        marks = ", ".join("?" for _ in columns)
        self._insert = (
            f"INSERT OR IGNORE INTO {table} (digest, {', '.join(columns)}) VALUES (?, {marks})"
        )
        self._select = f"SELECT id FROM {table} WHERE digest = ?"
        self._ids: dict[bytes, int] = {}

    def ref(self, conn: sqlite3.Connection, values: Row) -> int:
        digest = _digest(values)
        cached = self._ids.get(digest)
        if cached is not None:
            return cached
        conn.execute(self._insert, (digest, *values))
        row_id = int(conn.execute(self._select, (digest,)).fetchone()[0])
        if len(self._ids) >= self.MAX_CACHED:
            self._ids.clear()
        self._ids[digest] = row_id
        return row_id

    def clear(self) -> None:
        self._ids.clear()


class ResourceRefs:
    """Resource and scope ids for the records of one batch.

    Records of one OTLP ResourceSpans/ScopeSpans share their Resource and Scope objects, so
    each distinct object is encoded once per batch (keyed by identity; every object stays
    alive for the whole batch, so identities cannot be reused).
    """

    def __init__(self, resources: Interner, scopes: Interner, conn: sqlite3.Connection):
        self._resources = resources
        self._scopes = scopes
        self._conn = conn
        self._by_object: dict[int, int] = {}

    def resource(self, resource: Resource) -> int:
        key = id(resource)
        ref = self._by_object.get(key)
        if ref is None:
            ref = self._by_object[key] = self._resources.ref(self._conn, encode_resource(resource))
        return ref

    def scope(self, scope: Scope) -> int:
        key = id(scope)
        ref = self._by_object.get(key)
        if ref is None:
            ref = self._by_object[key] = self._scopes.ref(self._conn, encode_scope(scope))
        return ref


def resource_interner() -> Interner:
    return Interner("resources", ("attributes", "dropped_attributes_count", "schema_url"))


def scope_interner() -> Interner:
    return Interner(
        "scopes", ("name", "version", "attributes", "dropped_attributes_count", "schema_url")
    )


# ---------------------------------------------------------------------------- query helpers


def _label_of_json(raw: str | bytes | None) -> str | None:
    """SQL argus_label(json): value_as_label of one encoded AnyValue; NULL for NULL."""
    if raw is None:
        return None
    value: AnyValue = decode_value(raw)
    return value_as_label(value)


def _attribute_label(raw: str | bytes | None, key: str) -> str | None:
    """SQL argus_attr(attributes_json, key): the label of one attribute, NULL if absent."""
    attributes = decode_attributes(raw)
    return value_as_label(attributes[key]) if key in attributes else None


def _icontains(text: str | None, needle: str) -> bool:
    """SQL argus_icontains(text, lowered_needle): Unicode-aware case-insensitive search."""
    return text is not None and needle in text.lower()


def register_functions(conn: sqlite3.Connection) -> None:
    conn.create_function("argus_label", 1, _label_of_json, deterministic=True)
    conn.create_function("argus_attr", 2, _attribute_label, deterministic=True)
    conn.create_function("argus_icontains", 2, _icontains, deterministic=True)


def _sql_path_ok(key: str) -> bool:
    # SQLite 3.40 JSON paths cannot escape '"' and compare keys against their raw JSON
    # text, so keys that JSON must escape go through the Python fallback.
    return bool(key) and not any(ch in key for ch in '"\\') and all(ch >= " " for ch in key)


class Params:
    """Named SQL parameters with generated names, so one value can be used twice."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}

    def add(self, value: object) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f":{name}"


def attribute_label_sql(column: str, key: str, params: Params) -> tuple[str, str]:
    """SQL for (has attribute `key`, its value_as_label) on a JSON attribute column.

    Strings, ints and bools are labelled in SQL (their SQLite text form equals
    value_as_label); floats, bytes, arrays and kvlists go through argus_label.
    """
    if not _sql_path_ok(key):
        label = f"argus_attr({column}, {params.add(key)})"
        return f"{label} IS NOT NULL", label
    path = params.add('$."' + key + '"')
    label = (
        f"CASE json_type({column}, {path}) WHEN 'text' THEN {column} ->> {path}"
        f" WHEN 'integer' THEN CAST({column} ->> {path} AS TEXT)"
        f" WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'null' THEN ''"
        f" ELSE argus_label({column} -> {path}) END"
    )
    return f"json_type({column}, {path}) IS NOT NULL", label


def _appears_verbatim(label: str) -> bool:
    """Whether an attribute labelled `label` always holds `label` as-is in its JSON.

    True for strings, ints, bools, base64 bytes and compact arrays/kvlists that need no JSON
    escaping, and for floats whose repr equals orjson's form (not 1e-05, inf, nan).
    """
    if not _sql_path_ok(label):
        return False
    try:
        number = float(label)
    except ValueError:
        return True
    return label.lstrip("-").isdigit() or orjson.dumps(number).decode() == label


def attribute_filter_sql(
    column: str, resource_ref: str, key: str, value: str, params: Params
) -> str:
    """`key` equals `value` on the record's own attributes, else on its resource's.

    Parsing the JSON costs ~1 µs a row, so cheap text tests come first: compact JSON holds
    `"key":` verbatim wherever the key occurs, and most labels verbatim too (see
    _appears_verbatim). Rows failing them skip the parse.
    """
    wanted = params.add(value)
    _, resource_label = attribute_label_sql("attributes", key, params)
    # Uncorrelated subquery over the small resources table: evaluated once per statement.
    in_resource = f"{resource_ref} IN (SELECT id FROM resources WHERE {resource_label} = {wanted})"
    has_own, own_label = attribute_label_sql(column, key, params)
    branches = []
    if _sql_path_ok(key):
        key_text = params.add(f'"{key}":')
        branches.append(f"WHEN ifnull(instr({column}, {key_text}), 0) = 0 THEN {in_resource}")
        if _appears_verbatim(value):
            branches.append(
                f"WHEN instr({column}, {wanted}) = 0"
                f" THEN CASE WHEN {in_resource} THEN NOT ({has_own}) ELSE 0 END"
            )
    branches.append(f"WHEN {has_own} THEN {own_label} = {wanted}")
    return f"(CASE {' '.join(branches)} ELSE {in_resource} END)"
