"""Shared plumbing for the PostgreSQL stores: the connection pool, migrations, errors, text.

One `PgDatabase` is a psycopg 3 `AsyncConnectionPool` of autocommit connections bound to
one schema. Every statement carries the schema name (validated, so it can be written
into SQL as is) rather than relying on `search_path`, which poolers such as PgBouncer do
not keep. Every statement has a server-side time limit (`statement_timeout`) and getting
a connection has a client-side one.

Migrations are numbered per component in `<schema>.schema_migrations`; start-up applies
the missing ones in one transaction holding a transaction-level advisory lock on the
schema, so two processes starting at once apply each migration exactly once.

PostgreSQL text cannot hold NUL characters, which OTLP strings may contain: `to_pg_text`
escapes them (and backslashes, to stay reversible) and `from_pg_text` undoes it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Self

import orjson
import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout

from ..errors import PermanentStoreError, RetryableStoreError, StoreError

# One migration is a tuple of SQL statements with `{s}` standing for the schema name;
# migration i brings a component to version i+1.
Migration = tuple[str, ...]

I64_MIN, I64_MAX = -(2**63), 2**63 - 1

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# SQLSTATE classes worth retrying: connection, transaction rollback (deadlock,
# serialization), insufficient resources, operator intervention (includes statement
# timeout 57014), system error; plus lock_not_available (lock_timeout).
_RETRYABLE_CLASSES = ("08", "40", "53", "57", "58")
_RETRYABLE_STATES = ("55P03",)
_UNESCAPE = re.compile(r"\\(.)", re.DOTALL)


# ---------------------------------------------------------------------------- text


def to_pg_text(text: str) -> str:
    """`text` in a form PostgreSQL can store: NUL -> \\0, backslash -> \\\\ (reversible)."""
    if "\\" in text or "\x00" in text:
        return text.replace("\\", "\\\\").replace("\x00", "\\0")
    return text


def _unescape(match: re.Match[str]) -> str:
    char = match.group(1)
    return "\x00" if char == "0" else char


def from_pg_text(text: str) -> str:
    """Inverse of `to_pg_text`."""
    return _UNESCAPE.sub(_unescape, text) if "\\" in text else text


def check_schema_name(schema: str) -> str:
    if not _SCHEMA_NAME.fullmatch(schema):
        raise PermanentStoreError(
            f"schema name {schema!r} must be lowercase letters, digits and '_' (at most 63)"
        )
    return schema


# ---------------------------------------------------------------------------- errors


def translate_error(exc: BaseException) -> StoreError:
    """Map a psycopg, pool or encoding failure onto the store error classes."""
    if isinstance(exc, PoolClosed):
        return PermanentStoreError("postgres: store is closed")
    if isinstance(exc, PoolTimeout):
        return RetryableStoreError(f"postgres: no connection available: {exc}")
    if isinstance(exc, psycopg.Error):
        state = exc.sqlstate or ""
        if (not state and isinstance(exc, psycopg.OperationalError)) or (
            state[:2] in _RETRYABLE_CLASSES or state in _RETRYABLE_STATES
        ):
            return RetryableStoreError(f"postgres unavailable or busy: {exc}")
        return PermanentStoreError(f"postgres: {type(exc).__name__}: {exc}")
    if isinstance(exc, OverflowError):
        return PermanentStoreError(f"value out of PostgreSQL's 64-bit integer range: {exc}")
    return PermanentStoreError(f"postgres: {type(exc).__name__}: {exc}")


_TRANSLATED = (psycopg.Error, OverflowError, orjson.JSONEncodeError)


def _describe(dsn: str) -> str:
    """The DSN's host, port and database, never its password."""
    try:
        info = conninfo_to_dict(dsn)
    except psycopg.Error:
        return "postgres (unparsable DSN)"
    return f"postgres {info.get('host', '')}:{info.get('port', '')}/{info.get('dbname', '')}"


# ---------------------------------------------------------------------------- migrations


async def _migrate(
    conn: AsyncConnection[Any], schema: str, component: str, migrations: Sequence[Migration]
) -> None:
    async with conn.transaction():
        lock_key = f"argus schema {schema}"
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (lock_key,))
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (component text NOT NULL,"
            " version integer NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),"
            " PRIMARY KEY (component, version))"
        )
        cursor = await conn.execute(
            f"SELECT coalesce(max(version), 0) FROM {schema}.schema_migrations"
            " WHERE component = %s",
            (component,),
        )
        row = await cursor.fetchone()
        current = int(row[0]) if row else 0
        if current > len(migrations):
            raise PermanentStoreError(
                f"{schema}.{component} schema version {current} is newer than this Argus "
                f"understands ({len(migrations)}); upgrade Argus"
            )
        for version, statements in enumerate(migrations[current:], start=current + 1):
            for statement in statements:
                await conn.execute(statement.format(s=schema))
            await conn.execute(
                f"INSERT INTO {schema}.schema_migrations (component, version) VALUES (%s, %s)",
                (component, version),
            )


# ---------------------------------------------------------------------------- database


class PgDatabase:
    """A pool of autocommit connections to one schema, migrated at open."""

    def __init__(self, pool: AsyncConnectionPool[Any], schema: str, where: str) -> None:
        self._pool = pool
        self.schema = schema
        self._where = where
        self._closed = False

    @classmethod
    async def open(
        cls,
        dsn: str,
        *,
        schema: str,
        component: str,
        migrations: Sequence[Migration],
        pool_size: int = 8,
        connect_timeout: float = 10.0,
        statement_timeout: float = 60.0,
    ) -> Self:
        check_schema_name(schema)
        timeout_ms = int(statement_timeout * 1000)

        async def configure(conn: AsyncConnection[Any]) -> None:
            await conn.execute(f"SET statement_timeout = {timeout_ms}")

        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            dsn,
            min_size=1,
            max_size=max(1, pool_size),
            open=False,
            timeout=connect_timeout,
            kwargs={"autocommit": True, "connect_timeout": max(1, int(connect_timeout))},
            configure=configure,
            name=f"argus-{component}",
        )
        where = _describe(dsn)
        try:
            await pool.open(wait=True, timeout=connect_timeout)
            async with pool.connection() as conn:
                await _migrate(conn, schema, component, migrations)
        except BaseException as exc:
            await pool.close()
            if isinstance(exc, PoolTimeout):
                raise RetryableStoreError(f"{where}: cannot connect: {exc}") from exc
            if isinstance(exc, _TRANSLATED):
                raise translate_error(exc) from exc
            raise
        return cls(pool, schema, where)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        """A pooled connection; psycopg and encoding errors leave as StoreErrors."""
        self.check_open()
        try:
            async with self._pool.connection() as conn:
                yield conn
        except _TRANSLATED as exc:
            if self._closed:
                raise PermanentStoreError(f"{self._where}: store is closed") from exc
            raise translate_error(exc) from exc

    def check_open(self) -> None:
        if self._closed:
            raise PermanentStoreError(f"{self._where}: store is closed")

    async def close(self) -> None:
        """Refuse new calls and close the pool (connections in use close when returned)."""
        if self._closed:
            return
        self._closed = True
        await self._pool.close()


async def drop_schema(dsn: str, schema: str) -> None:
    """Drop `schema` and everything in it (tests and benchmarks clean up with this)."""
    check_schema_name(schema)
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
