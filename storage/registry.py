"""Which backend serves each signal. Issue 2 has one choice per signal: the embedded
stores under the data dir; external backends register here as they land."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .keys import KeyStore
from .logs import LogStore
from .metrics import MetricStore
from .traces import TraceStore


@dataclass(slots=True)
class Stores:
    traces: TraceStore
    metrics: MetricStore
    logs: LogStore

    async def close(self) -> None:
        for store in (self.traces, self.metrics, self.logs):
            await store.close()


async def open_embedded(data_dir: Path) -> Stores:
    """Open (creating if needed) the embedded stores under `data_dir/store`."""
    from .backends.duckdb_metrics import DuckDBMetricStore
    from .backends.sqlite_logs import SqliteLogStore
    from .backends.sqlite_traces import SqliteTraceStore

    directory = data_dir / "store"
    directory.mkdir(parents=True, exist_ok=True)
    traces = await SqliteTraceStore.open(directory / "traces.db")
    metrics = await DuckDBMetricStore.open(directory / "metrics.duckdb")
    logs = await SqliteLogStore.open(directory / "logs.db")
    return Stores(traces=traces, metrics=metrics, logs=logs)


async def open_key_store(
    data_dir: Path, postgres_dsn: str | None = None, schema: str = "argus"
) -> KeyStore:
    """The API key store: on PostgreSQL (`schema` of the database at `postgres_dsn`) when
    a DSN is given (an empty one counts as none), else embedded, `data_dir/meta/keys.db`."""
    if postgres_dsn:
        from .backends.postgres_keys import PostgresKeyStore

        return await PostgresKeyStore.open(postgres_dsn, schema=schema)

    from .backends.sqlite_keys import SqliteKeyStore

    return await SqliteKeyStore.open(data_dir / "meta" / "keys.db")
