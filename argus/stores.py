"""Opens the stores the settings name: per signal a primary store (written and queried)
and any extra sinks (written only), embedded or on external servers.

External stores are opened lazily and reopened after a failure: a database that is down
when Argus starts, or goes down later, makes its writes fail with a retryable error (the
indexer keeps the data in the write-ahead log and retries) and its queries fail with a
clear message, while everything else keeps working.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from .config import Settings
from .proto.otlp import Signal
from .storage.errors import RetryableStoreError, StoreError
from .storage.logs import LogStore
from .storage.metrics import MetricStore
from .storage.registry import Stores
from .storage.traces import TraceStore

log = logging.getLogger("argus.stores")

Write = Callable[[str, Sequence[Any], str], Awaitable[None]]
_WRITE_METHODS = {Signal.TRACES: "write_spans", Signal.METRICS: "write_points", Signal.LOGS: "write_logs"}
_REOPEN_BACKOFF_SECONDS = 2.0


class LazyStore:
    """A store opened on first use, and opened again on the next use after opening
    failed. Calls while it cannot be opened raise RetryableStoreError."""

    def __init__(self, name: str, opener: Callable[[], Awaitable[Any]]) -> None:
        self.name = name
        self._opener = opener
        self._store: Any = None
        self._lock = asyncio.Lock()
        self._failed_at = 0.0
        self._last_error = ""

    async def _get(self) -> Any:
        if self._store is not None:
            return self._store
        async with self._lock:
            if self._store is None:
                if time.monotonic() - self._failed_at < _REOPEN_BACKOFF_SECONDS:
                    raise RetryableStoreError(f"{self.name} unavailable: {self._last_error}")
                try:
                    self._store = await self._opener()
                except StoreError as exc:
                    self._failed_at = time.monotonic()
                    self._last_error = str(exc)
                    log.warning("cannot open %s: %s", self.name, exc)
                    raise RetryableStoreError(f"{self.name} unavailable: {exc}") from exc
                except OSError as exc:
                    self._failed_at = time.monotonic()
                    self._last_error = str(exc)
                    raise RetryableStoreError(f"{self.name} unavailable: {exc}") from exc
        return self._store

    def __getattr__(self, method: str) -> Callable[..., Awaitable[Any]]:
        if method.startswith("_"):
            raise AttributeError(method)

        async def call(*args: Any, **kwargs: Any) -> Any:
            store = await self._get()
            return await getattr(store, method)(*args, **kwargs)

        return call

    @property
    def unsupported(self) -> Any:
        return getattr(self._store, "unsupported", {}) if self._store is not None else {}

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()
            self._store = None


class LazyPartitionedStore(LazyStore):
    """A LazyStore whose store drops whole partitions (PostgreSQL): retention looks for
    this method on the class, so it is forwarded explicitly."""

    async def drop_partitions_before(self, cutoff_unix_nano: int) -> list[str]:
        store = await self._get()
        return cast(list[str], await store.drop_partitions_before(cutoff_unix_nano))


@dataclass(slots=True)
class Sink:
    """Where one signal's items go: a named store and its write method."""

    signal: Signal
    name: str
    primary: bool
    store: Any
    write: Write


@dataclass(slots=True)
class OpenedStores:
    primary: Stores
    sinks: dict[Signal, list[Sink]]
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def close(self) -> None:
        for close in reversed(self._closers):
            try:
                await close()
            except StoreError as exc:
                log.warning("closing a store: %s", exc)


async def open_stores(settings: Settings) -> OpenedStores:
    """Every store the settings route any signal to, each opened once."""
    opened: dict[tuple[Signal, str], Any] = {}
    closers: list[Callable[[], Awaitable[None]]] = []
    try:
        for signal in Signal:
            routing = getattr(settings.storage, signal.value)
            for name in (routing.backend, *routing.also_write_to):
                store = await _open(signal, name, settings)
                opened[(signal, name)] = store
                closers.append(store.close)
    except BaseException:
        for close in reversed(closers):
            await close()
        raise
    primary = Stores(
        traces=cast(TraceStore, opened[(Signal.TRACES, settings.storage.traces.backend)]),
        metrics=cast(MetricStore, opened[(Signal.METRICS, settings.storage.metrics.backend)]),
        logs=cast(LogStore, opened[(Signal.LOGS, settings.storage.logs.backend)]),
    )
    sinks: dict[Signal, list[Sink]] = {}
    for signal in Signal:
        routing = getattr(settings.storage, signal.value)
        sinks[signal] = [
            Sink(signal, name, name == routing.backend, opened[(signal, name)],
                 getattr(opened[(signal, name)], _WRITE_METHODS[signal]))
            for name in (routing.backend, *routing.also_write_to)
        ]
    return OpenedStores(primary, sinks, closers)


async def _open(signal: Signal, backend: str, settings: Settings) -> Any:
    if backend == "embedded":
        return await _open_embedded(signal, settings.data_dir)
    if backend == "postgres":
        from .storage.backends.postgres_traces import PostgresTraceStore

        pg = settings.postgres
        return LazyPartitionedStore("PostgreSQL trace store", lambda: PostgresTraceStore.open(
            pg.dsn, schema=pg.schema, pool_size=pg.pool_size
        ))
    if backend == "influxdb":
        from .storage.backends.influxdb_metrics import InfluxDBConfig, InfluxDBMetricStore

        influx = settings.influxdb
        config = InfluxDBConfig(
            url=influx.url, database=influx.database, write_api=influx.write_api,  # type: ignore[arg-type]
            org=influx.org, bucket=influx.bucket, token=influx.token,
            username=influx.username, password=influx.password,
            create_database=influx.create_database and influx.write_api == "v1",
        )
        return LazyStore("InfluxDB metric store", lambda: InfluxDBMetricStore.open(config))
    if backend == "elasticsearch":
        from .storage.backends.elasticsearch_logs import ElasticsearchLogStore

        es = settings.elasticsearch
        # ILM deletes whole indices, shared by all tenants: only past the longest retention
        # any tenant has; per-tenant retention below that is delete_before's job.
        days = [settings.retention.logs_days] + [
            t.logs_days for t in settings.retention.tenants.values() if t.logs_days is not None
        ]
        retention = dt.timedelta(days=max(days)) if min(days) > 0 else None
        return LazyStore("Elasticsearch log store", lambda: ElasticsearchLogStore.open(
            es.url, index_prefix=es.index_prefix, api_key=es.api_key, retention=retention
        ))
    raise ValueError(f"no {backend} backend for {signal.value}")  # config.py refuses it first


async def _open_embedded(signal: Signal, data_dir: Path) -> Any:
    directory = data_dir / "store"
    directory.mkdir(parents=True, exist_ok=True)
    if signal is Signal.TRACES:
        from .storage.backends.sqlite_traces import SqliteTraceStore

        return await SqliteTraceStore.open(directory / "traces.db")
    if signal is Signal.METRICS:
        from .storage.backends.duckdb_metrics import DuckDBMetricStore

        return await DuckDBMetricStore.open(directory / "metrics.duckdb")
    from .storage.backends.sqlite_logs import SqliteLogStore

    return await SqliteLogStore.open(directory / "logs.db")
