"""`argus serve` with external primaries: traces and API keys in PostgreSQL, metrics in
InfluxDB, each reached from OTLP in to GraphQL out. Runs when tests/run.sh has started
the servers (ARGUS_TEST_POSTGRES_DSN, ARGUS_TEST_INFLUXDB_URL)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.common.v1 import common_pb2

from tests.e2e.test_http_receiver import PROTOBUF, _trace_request
from tests.harness import ArgusProcess, _argus_env, eventually

POSTGRES = os.environ.get("ARGUS_TEST_POSTGRES_DSN")
INFLUXDB = os.environ.get("ARGUS_TEST_INFLUXDB_URL")
pytestmark = pytest.mark.skipif(
    not (POSTGRES and INFLUXDB),
    reason="needs ARGUS_TEST_POSTGRES_DSN and ARGUS_TEST_INFLUXDB_URL (tests/run.sh sets them)",
)


@pytest.fixture
def external(tmp_path: Path) -> Iterator[tuple[ArgusProcess, Path]]:
    suffix = uuid.uuid4().hex[:8]
    config = tmp_path / "external.toml"
    config.write_text(
        '[storage]\nmeta = "postgres"\n'
        '[storage.traces]\nbackend = "postgres"\n'
        '[storage.metrics]\nbackend = "influxdb"\nalso_write_to = ["embedded"]\n'
        f'[postgres]\ndsn = "{POSTGRES}"\nschema = "e2e_{suffix}"\n'
        f'[influxdb]\nurl = "{INFLUXDB}"\ndatabase = "e2e_{suffix}"\n'
    )
    server = ArgusProcess(tmp_path / "data", ["--config", str(config)])
    yield server, config
    server.stop()
    import psycopg

    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS e2e_{suffix} CASCADE")
    httpx.post(f"{INFLUXDB}/query", params={"q": f'DROP DATABASE "e2e_{suffix}"'}, timeout=10)


def _metrics_request(service: str) -> bytes:
    request = metrics_service_pb2.ExportMetricsServiceRequest()
    resource_metrics = request.resource_metrics.add()
    resource_metrics.resource.attributes.add(
        key="service.name", value=common_pb2.AnyValue(string_value=service)
    )
    metric = resource_metrics.scope_metrics.add().metrics.add(name="e2e_requests")
    metric.sum.aggregation_temporality = 2
    metric.sum.is_monotonic = True
    now = time.time_ns()
    for index, value in enumerate((10, 20, 35)):
        point = metric.sum.data_points.add(
            start_time_unix_nano=now - 120 * 10**9, time_unix_nano=now - (60 - 20 * index) * 10**9
        )
        point.as_int = value
        point.attributes.add(key="route", value=common_pb2.AnyValue(string_value="/pay"))
    return request.SerializeToString()


def test_postgres_traces_influxdb_metrics_postgres_keys(
    external: tuple[ArgusProcess, Path],
) -> None:
    server, config = external
    token = subprocess.run(
        [sys.executable, "-m", "argus.cli", "keys", "create", "--config", str(config),
         "--data-dir", str(server.data_dir), "--tenant", "ext", "--role", "admin"],
        capture_output=True, text=True, check=True, env=_argus_env(),
    ).stdout.strip()
    assert not (server.data_dir / "meta" / "keys.db").exists()  # the key went to PostgreSQL
    server.start()
    bearer = {**PROTOBUF, "Authorization": f"Bearer {token}"}
    service = f"ext-{uuid.uuid4().hex[:6]}"
    trace_id = uuid.uuid4().bytes
    response = httpx.post(f"{server.otlp_url}/v1/traces",
                          content=_trace_request(service, [trace_id]), headers=bearer)
    assert response.status_code == 200
    response = httpx.post(f"{server.otlp_url}/v1/metrics",
                          content=_metrics_request(service), headers=bearer)
    assert response.status_code == 200
    assert httpx.post(f"{server.otlp_url}/v1/traces", content=b"",
                      headers=PROTOBUF).status_code == 401

    query = "query($id: String!) { trace(traceId: $id) { spans { service name } } }"
    trace = eventually(lambda: server.graphql(query, {"id": trace_id.hex()}, token)["trace"])
    assert trace["spans"][0]["service"] == service

    series = """query { metricSeries(query: {metric: "e2e_requests", start: "now-10m",
        step: "1m", aggregation: SUM, rate: true}) { labels points { value } } }"""
    found = eventually(lambda: server.graphql(series, None, token)["metricSeries"])
    assert any(p["value"] for s in found for p in s["points"])
    sinks = server.graphql("{ sinks { signal name primary healthy } }", None, token)["sinks"]
    by_name = {(s["signal"], s["name"]): s for s in sinks}
    assert by_name[("traces", "postgres")]["primary"]
    assert by_name[("metrics", "influxdb")]["primary"]
    assert not by_name[("metrics", "embedded")]["primary"]
    assert all(s["healthy"] for s in sinks)
