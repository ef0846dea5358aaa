"""The embedded key store: API keys in SQLite under the data dir (`meta/keys.db`).

The CLI writes here while `argus serve` runs: both processes of the server poll
`changed_since` and so see a created or revoked key within their poll interval.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Self

from ..keys import ApiKey, KeyNotFound, NewKey, Role, new_key
from .sqlite_common import Migration, SqliteDatabase

_MIGRATIONS: tuple[Migration, ...] = (
    (
        (
            "CREATE TABLE api_keys ("
            " id TEXT PRIMARY KEY, tenant TEXT NOT NULL, role TEXT NOT NULL, name TEXT NOT NULL,"
            " created_unix_nano INTEGER NOT NULL, secret_sha256 BLOB NOT NULL,"
            " revoked_unix_nano INTEGER) WITHOUT ROWID"
        ),
        "CREATE INDEX api_keys_by_tenant ON api_keys (tenant, created_unix_nano)",
        # Bumped in every transaction that changes a key: pollers compare one integer.
        (
            "CREATE TABLE key_set_version (only INTEGER PRIMARY KEY CHECK (only = 1),"
            " version INTEGER NOT NULL)"
        ),
        "INSERT INTO key_set_version VALUES (1, 0)",
    ),
)

_COLUMNS = "id, tenant, role, name, created_unix_nano, secret_sha256, revoked_unix_nano"


def _key(row: tuple[object, ...]) -> ApiKey:
    key_id, tenant, role, name, created, digest, revoked = row
    return ApiKey(
        id=str(key_id),
        tenant=str(tenant),
        role=Role(str(role)),
        name=str(name),
        created_unix_nano=int(created),  # type: ignore[call-overload]
        secret_sha256=bytes(digest),  # type: ignore[call-overload]
        revoked_unix_nano=None if revoked is None else int(revoked),  # type: ignore[call-overload]
    )


def _bump(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE key_set_version SET version = version + 1")


class SqliteKeyStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    @classmethod
    async def open(cls, path: Path) -> Self:
        return cls(await SqliteDatabase.open(path, "api_keys", _MIGRATIONS, readers=1))

    async def create(self, tenant: str, role: Role, name: str) -> NewKey:
        created = new_key(tenant, role, name)
        key = created.key

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                f"INSERT INTO api_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key.id, key.tenant, key.role.value, key.name, key.created_unix_nano,
                 key.secret_sha256, None),
            )
            _bump(conn)

        await self._db.write(insert)
        return created

    async def list(self, tenant: str | None = None) -> list[ApiKey]:
        def select(conn: sqlite3.Connection) -> list[ApiKey]:
            sql = f"SELECT {_COLUMNS} FROM api_keys"
            if tenant is None:
                rows = conn.execute(sql + " ORDER BY created_unix_nano, id").fetchall()
            else:
                rows = conn.execute(
                    sql + " WHERE tenant = ? ORDER BY created_unix_nano, id", (tenant,)
                ).fetchall()
            return [_key(row) for row in rows]

        return await self._db.read(select)

    async def revoke(self, key_id: str, tenant: str | None = None) -> ApiKey:
        def update(conn: sqlite3.Connection) -> ApiKey:
            row = conn.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)).fetchone()
            if row is None or (tenant is not None and row[1] != tenant):
                raise KeyNotFound(f"no API key {key_id!r}")
            key = _key(row)
            if key.revoked:
                return key
            revoked = key.revoked_now()
            conn.execute(
                "UPDATE api_keys SET revoked_unix_nano = ? WHERE id = ?",
                (revoked.revoked_unix_nano, key_id),
            )
            _bump(conn)
            return revoked

        return await self._db.write(update)

    async def changed_since(self, version: int) -> int | None:
        def select(conn: sqlite3.Connection) -> int:
            return int(conn.execute("SELECT version FROM key_set_version").fetchone()[0])

        current = await self._db.read(select)
        return None if current == version else current

    async def close(self) -> None:
        await self._db.close()
