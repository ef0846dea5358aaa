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
LOG_BACKENDS = ["embedded", "elasticsearch"]
METRIC_BACKENDS = ["embedded", "influxdb", "victoriametrics"]


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
    if request.param == "elasticsearch":
        async for es_store in _elasticsearch_log_store():
            yield es_store
        return

    from argus.storage.backends.sqlite_logs import SqliteLogStore

    store = await SqliteLogStore.open(tmp_path / "logs.db")
    yield store
    await store.close()


@pytest.fixture(params=METRIC_BACKENDS)
async def metric_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[MetricStore]:
    if request.param == "influxdb":
        async for influx_store in _influxdb_metric_store():
            yield influx_store
        return
    if request.param == "victoriametrics":
        async for victoria_store in _victoriametrics_metric_store():
            yield victoria_store
        return

    from argus.storage.backends.duckdb_metrics import DuckDBMetricStore

    store = await DuckDBMetricStore.open(tmp_path / "metrics.duckdb")
    yield store
    await store.close()


async def _elasticsearch_log_store() -> AsyncIterator[LogStore]:
    """A store on fresh data stream, template and ILM policy (a random index prefix) of the
    Elasticsearch 8 or 9 at ARGUS_TEST_ELASTICSEARCH_URL, all deleted afterwards. Writes
    refresh, so records are searchable as soon as write_logs returns."""
    import os
    import secrets

    from argus.storage.backends.elasticsearch_logs import ElasticsearchLogStore, drop

    url = os.environ.get("ARGUS_TEST_ELASTICSEARCH_URL")
    if not url:
        pytest.skip("elasticsearch: ARGUS_TEST_ELASTICSEARCH_URL is not set (see docs/deploy.md)")
    api_key = os.environ.get("ARGUS_TEST_ELASTICSEARCH_API_KEY", "")
    prefix = f"argus_test_{secrets.token_hex(6)}"
    store = await ElasticsearchLogStore.open(
        url, index_prefix=prefix, api_key=api_key, refresh=True, replicas=0)
    try:
        yield store
    finally:
        await store.close()
        await drop(url, index_prefix=prefix, api_key=api_key)


async def _influxdb_metric_store() -> AsyncIterator[MetricStore]:
    """A store on a fresh database of the InfluxDB at ARGUS_TEST_INFLUXDB_URL, dropped
    afterwards."""
    import os
    import secrets

    import httpx
    from argus.storage.backends.influxdb_metrics import InfluxDBConfig, InfluxDBMetricStore

    url = os.environ.get("ARGUS_TEST_INFLUXDB_URL")
    if not url:
        pytest.skip("influxdb: ARGUS_TEST_INFLUXDB_URL is not set (tests/run.sh sets it)")
    database = f"argus_test_{secrets.token_hex(6)}"
    store = await InfluxDBMetricStore.open(
        InfluxDBConfig(url, database=database, create_database=True))
    try:
        yield store
    finally:
        await store.close()
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            await http.post("/query", data={"q": f'DROP DATABASE "{database}"'})


async def _victoriametrics_metric_store() -> AsyncIterator[MetricStore]:
    """A write-only store on the VictoriaMetrics at ARGUS_TEST_VICTORIAMETRICS_URL, which
    holds nothing before and after each test (it has no databases to drop)."""
    import os

    from argus.storage.backends.influxdb_metrics import InfluxDBConfig, InfluxDBMetricStore

    url = os.environ.get("ARGUS_TEST_VICTORIAMETRICS_URL")
    if not url:
        pytest.skip("victoriametrics: ARGUS_TEST_VICTORIAMETRICS_URL is not set"
                    " (tests/run.sh sets it)")
    await VictoriaMetricsReadBack(url).delete_all()
    store = await InfluxDBMetricStore.open(InfluxDBConfig(
        url, write_api="v2", org="argus", bucket="argus", server="victoriametrics"))
    try:
        yield store
    finally:
        await store.close()
        await VictoriaMetricsReadBack(url).delete_all()


class VictoriaMetricsReadBack:
    """What VictoriaMetrics stored, read through its /api/v1/export: the store under test
    only writes there. Samples are named `measurement_field`; times come back in ms."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def series(self, name: str, tenant: str) -> list[tuple[dict[str, str], list[tuple[int, float]]]]:
        """[(labels, [(time ns, value)])] of the samples named `name` of `tenant`."""
        import httpx
        import orjson

        selector = f'{{__name__="{name}",tenant="{tenant}"}}'
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as http:
            (await http.get("/internal/force_flush")).raise_for_status()
            response = await http.post("/api/v1/export", data={"match[]": selector, "start": "0"})
        response.raise_for_status()
        found = []
        for line in response.content.splitlines():
            if line.strip():
                doc = orjson.loads(line)
                samples = [(ms * 1_000_000, float(v))
                           for ms, v in zip(doc["timestamps"], doc["values"])]
                found.append((doc["metric"], sorted(samples)))
        return sorted(found, key=lambda pair: sorted(pair[0].items()))

    async def samples(self, name: str, tenant: str) -> list[tuple[int, float]]:
        """Every sample named `name` of `tenant`, all series together, oldest first."""
        return sorted(s for _, samples in await self.series(name, tenant) for s in samples)

    async def delete_all(self) -> None:
        import httpx

        async with httpx.AsyncClient(base_url=self.url, timeout=30) as http:
            response = await http.post("/api/v1/admin/tsdb/delete_series",
                                       data={"match[]": '{__name__=~".+"}'})
            response.raise_for_status()


@pytest.fixture
def metric_read_back(
    request: pytest.FixtureRequest, metric_store: MetricStore
) -> VictoriaMetricsReadBack | None:
    """For a write-only backend, a way to see what it stored; None for the others."""
    import os

    if request.node.callspec.params.get("metric_store") != "victoriametrics":
        return None
    return VictoriaMetricsReadBack(os.environ["ARGUS_TEST_VICTORIAMETRICS_URL"])
