"""Day partitions of a table partitioned BY RANGE on a nanosecond timestamp column.

Each UTC day is one partition named `<table>_pYYYYMMDD`, created when the first row for it
is written. Creation goes CREATE TABLE + ATTACH PARTITION rather than CREATE TABLE ...
PARTITION OF: ATTACH takes SHARE UPDATE EXCLUSIVE on the parent, which lets reads and
writes of the other days go on, where PARTITION OF takes ACCESS EXCLUSIVE. It runs in its
own short transaction (never inside a write) under an advisory lock, so processes racing
for the same new day create it once. Which partitions exist is cached per process.

Retention drops whole days with DETACH PARTITION ... CONCURRENTLY then DROP TABLE, so
queries of the other days never wait on it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from psycopg import AsyncConnection

from .postgres_common import I64_MAX, I64_MIN

DAY_NS = 86_400 * 1_000_000_000
_EPOCH = dt.date(1970, 1, 1)
_LOCK_TIMEOUT = "10s"  # creating a partition waits at most this long for the parent's lock


def day_of(unix_nano: int) -> int:
    """Days since the epoch (UTC) of a timestamp."""
    return unix_nano // DAY_NS


def _bound(value: int, outside: str) -> str:
    return str(value) if I64_MIN <= value <= I64_MAX else outside


class DayPartitions:
    """Creates, lists and drops the day partitions of `schema.table`."""

    def __init__(self, schema: str, table: str) -> None:
        self._schema = schema
        self._table = table
        self._parent = f"{schema}.{table}"
        self._known: set[str] = set()

    def name(self, day: int) -> str:
        return f"{self._table}_p{_EPOCH + dt.timedelta(days=day):%Y%m%d}"

    def day_from_name(self, name: str) -> int | None:
        prefix = f"{self._table}_p"
        if not name.startswith(prefix):
            return None
        try:
            date = dt.datetime.strptime(name[len(prefix) :], "%Y%m%d").date()
        except ValueError:
            return None
        return (date - _EPOCH).days

    def forget(self) -> None:
        """Drop the cache (after another process may have dropped partitions)."""
        self._known.clear()

    async def ensure(self, conn: AsyncConnection[Any], days: Iterable[int]) -> None:
        """Make sure a partition exists for each day; a no-op when all are cached."""
        names = {day: self.name(day) for day in days}
        missing = {day: name for day, name in names.items() if name not in self._known}
        if not missing:
            return
        async with conn.transaction():
            await conn.execute(f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT}'")
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                (f"argus partitions {self._parent}",),
            )
            existing = set(await self._attached(conn))
            for day, name in sorted(missing.items()):
                if name not in existing:
                    await self._create(conn, day, name)
        self._known.update(existing, missing.values())

    async def _create(self, conn: AsyncConnection[Any], day: int, name: str) -> None:
        low = _bound(day * DAY_NS, "MINVALUE")
        high = _bound((day + 1) * DAY_NS, "MAXVALUE")
        table = f"{self._schema}.{name}"
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {table}"
            f" (LIKE {self._parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)"
        )
        await conn.execute(
            f"ALTER TABLE {self._parent} ATTACH PARTITION {table}"
            f" FOR VALUES FROM ({low}) TO ({high})"
        )

    async def _attached(self, conn: AsyncConnection[Any]) -> list[str]:
        cursor = await conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = %s::regclass",
            (self._parent,),
        )
        return [str(row[0]) for row in await cursor.fetchall()]

    async def drop_before(self, conn: AsyncConnection[Any], cutoff_unix_nano: int) -> list[str]:
        """Drop every partition whose whole day ends at or before the cutoff.

        `conn` must be in autocommit mode (DETACH ... CONCURRENTLY cannot run in a
        transaction block). Returns the dropped partitions' names, oldest first.
        """
        cursor = await conn.execute(
            "SELECT c.relname, i.inhdetachpending FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
            (self._parent,),
        )
        doomed: list[tuple[int, str, bool]] = []
        for name, pending in await cursor.fetchall():
            day = self.day_from_name(name)
            if day is not None and (day + 1) * DAY_NS <= cutoff_unix_nano:
                doomed.append((day, name, bool(pending)))
        for _, name, pending in sorted(doomed):
            self._known.discard(name)
            table = f"{self._schema}.{name}"
            # A detach interrupted earlier is left pending; FINALIZE completes it.
            how = "FINALIZE" if pending else "CONCURRENTLY"
            await conn.execute(f"ALTER TABLE {self._parent} DETACH PARTITION {table} {how}")
            await conn.execute(f"DROP TABLE {table}")
        return [name for _, name, _ in sorted(doomed)]

    async def oldest_day(self, conn: AsyncConnection[Any]) -> int | None:
        """The first day that still has a partition, None when there is none."""
        days = [self.day_from_name(name) for name in await self._attached(conn)]
        known = [day for day in days if day is not None]
        return min(known) if known else None
