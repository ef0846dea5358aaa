"""Store fixtures parametrised over every backend that serves a signal.

Each contract test is written once and runs against every backend listed here: the
embedded ones always, the external ones when their server is configured (issue 4).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from argus.storage.logs import LogStore
from argus.storage.metrics import MetricStore
from argus.storage.traces import TraceStore

TRACE_BACKENDS = ["embedded", "postgres"]
LOG_BACKENDS = ["embedded"]
METRIC_BACKENDS = ["embedded"]


@pytest.fixture(params=TRACE_BACKENDS)
async def trace_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TraceStore]:
    if request.param == "postgres":
        import os
        import secrets

        from argus.storage.backends.postgres_common import drop_schema
        from argus.storage.backends.postgres_traces import PostgresTraceStore

        dsn = os.environ.get("ARGUS_TEST_POSTGRES_DSN")
        if not dsn:
            pytest.skip("postgres: ARGUS_TEST_POSTGRES_DSN is not set (tests/run.sh sets it)")
        schema = f"argus_test_{secrets.token_hex(6)}"  # a fresh schema per test
        pg_store = await PostgresTraceStore.open(dsn, schema=schema, pool_size=4)
        try:
            yield pg_store
        finally:
            await pg_store.close()
            await drop_schema(dsn, schema)
        return

    from argus.storage.backends.sqlite_traces import SqliteTraceStore

    store = await SqliteTraceStore.open(tmp_path / "traces.db")
    yield store
    await store.close()


@pytest.fixture(params=LOG_BACKENDS)
async def log_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LogStore]:
    from argus.storage.backends.sqlite_logs import SqliteLogStore

    store = await SqliteLogStore.open(tmp_path / "logs.db")
    yield store
    await store.close()


@pytest.fixture(params=METRIC_BACKENDS)
async def metric_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[MetricStore]:
    from argus.storage.backends.duckdb_metrics import DuckDBMetricStore

    store = await DuckDBMetricStore.open(tmp_path / "metrics.duckdb")
    yield store
    await store.close()
