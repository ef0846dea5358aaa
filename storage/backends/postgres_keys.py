"""The PostgreSQL key store: API keys in the shared PostgreSQL schema (`argus` by default).

It mirrors the embedded store (sqlite_keys) table for table: `api_keys` holds every key
but its secret (only the secret's SHA-256), and the one-row `key_set_version` is bumped
in the same transaction as every change, so every process of a deployment polls one
integer (`changed_since`) to learn that a key was created or revoked.

Concurrent writers are safe: a revoke locks its key's row (SELECT ... FOR UPDATE), so
revoking twice at once still keeps the first time, and each change's UPDATE of the
version row serialises the bumps. Names are stored through `to_pg_text` (PostgreSQL text
cannot hold NUL); tenants and ids are checked or generated and never need escaping, and
a tenant or id given to `list`/`revoke` is escaped the same way, so one that could not
have been stored finds nothing rather than failing.
"""

from __future__ import annotations

from typing import Any, Self

from psycopg import AsyncConnection

from ..keys import ApiKey, KeyNotFound, NewKey, Role, new_key
from .postgres_common import Migration, PgDatabase, from_pg_text, to_pg_text

_MIGRATIONS: tuple[Migration, ...] = (
    (
        (
            'CREATE TABLE {s}.api_keys (id text COLLATE "C" PRIMARY KEY,'
            ' tenant text COLLATE "C" NOT NULL, role text NOT NULL, name text NOT NULL,'
            " created_unix_nano bigint NOT NULL, secret_sha256 bytea NOT NULL,"
            " revoked_unix_nano bigint)"
        ),
        "CREATE INDEX api_keys_by_tenant ON {s}.api_keys (tenant, created_unix_nano)",
        # Bumped in every transaction that changes a key: pollers compare one integer.
        (
            "CREATE TABLE {s}.key_set_version (only_row integer PRIMARY KEY"
            " CHECK (only_row = 1), version bigint NOT NULL)"
        ),
        "INSERT INTO {s}.key_set_version VALUES (1, 0)",
    ),
)

_COLUMNS = "id, tenant, role, name, created_unix_nano, secret_sha256, revoked_unix_nano"


def _key(row: tuple[Any, ...]) -> ApiKey:
    key_id, tenant, role, name, created, digest, revoked = row
    return ApiKey(
        id=str(key_id),
        tenant=str(tenant),
        role=Role(str(role)),
        name=from_pg_text(str(name)),
        created_unix_nano=int(created),
        secret_sha256=bytes(digest),
        revoked_unix_nano=None if revoked is None else int(revoked),
    )


class PostgresKeyStore:
    """KeyStore on PostgreSQL (see the module docstring)."""

    def __init__(self, db: PgDatabase) -> None:
        self._db = db
        s = db.schema
        self._insert = f"INSERT INTO {s}.api_keys ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        self._select = f"SELECT {_COLUMNS} FROM {s}.api_keys"
        self._bump = f"UPDATE {s}.key_set_version SET version = version + 1"
        self._version = f"SELECT version FROM {s}.key_set_version"
        self._revoke = f"UPDATE {s}.api_keys SET revoked_unix_nano = %s WHERE id = %s"

    @classmethod
    async def open(
        cls,
        dsn: str,
        *,
        schema: str = "argus",
        pool_size: int = 2,
        connect_timeout: float = 10.0,
        statement_timeout: float = 60.0,
    ) -> Self:
        """Connect, create or migrate the `api_keys` component of `schema`, return the store."""
        db = await PgDatabase.open(
            dsn,
            schema=schema,
            component="api_keys",
            migrations=_MIGRATIONS,
            pool_size=pool_size,
            connect_timeout=connect_timeout,
            statement_timeout=statement_timeout,
        )
        return cls(db)

    async def create(self, tenant: str, role: Role, name: str) -> NewKey:
        created = new_key(tenant, role, name)
        key = created.key
        async with self._db.connection() as conn, conn.transaction():
            await conn.execute(
                self._insert,
                (key.id, key.tenant, key.role.value, to_pg_text(key.name),
                 key.created_unix_nano, key.secret_sha256, None),
            )
            await conn.execute(self._bump)
        return created

    async def list(self, tenant: str | None = None) -> list[ApiKey]:
        async with self._db.connection() as conn:
            if tenant is None:
                cursor = await conn.execute(self._select + " ORDER BY created_unix_nano, id")
            else:
                cursor = await conn.execute(
                    self._select + " WHERE tenant = %s ORDER BY created_unix_nano, id",
                    (to_pg_text(tenant),),
                )
            rows = await cursor.fetchall()
        return [_key(row) for row in rows]

    async def revoke(self, key_id: str, tenant: str | None = None) -> ApiKey:
        async with self._db.connection() as conn, conn.transaction():
            return await self._revoke_in(conn, key_id, tenant)

    async def _revoke_in(
        self, conn: AsyncConnection[Any], key_id: str, tenant: str | None
    ) -> ApiKey:
        cursor = await conn.execute(
            self._select + " WHERE id = %s FOR UPDATE", (to_pg_text(key_id),)
        )
        row = await cursor.fetchone()
        if row is None or (tenant is not None and row[1] != tenant):
            raise KeyNotFound(f"no API key {key_id!r}")
        key = _key(row)
        if key.revoked:
            return key
        revoked = key.revoked_now()
        await conn.execute(self._revoke, (revoked.revoked_unix_nano, key.id))
        await conn.execute(self._bump)
        return revoked

    async def changed_since(self, version: int) -> int | None:
        async with self._db.connection() as conn:
            cursor = await conn.execute(self._version)
            row = await cursor.fetchone()
        current = int(row[0]) if row else 0
        return None if current == version else current

    async def close(self) -> None:
        await self._db.close()
