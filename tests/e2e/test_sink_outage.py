"""A sink's server goes down in the middle of ingest and comes back: every acknowledged
point reaches it afterwards, and the other sink never stalled meanwhile.

Metrics go to the embedded store (primary) and to an InfluxDB 1.6.7 of this test's own
(`also_write_to`), which the test kills with SIGKILL and starts again on the same data.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.common.v1 import common_pb2

from argus.storage.backends.influxdb_metrics import InfluxDBConfig, InfluxDBMetricStore
from argus.storage.metrics import PointQuery
from tests.e2e.test_http_receiver import PROTOBUF
from tests.harness import ArgusProcess, eventually, free_port

pytestmark = pytest.mark.skipif(shutil.which("influxd") is None, reason="influxd not installed")

METRIC = "outage_probe"
POINTS_PER_REQUEST = 10


class Influxd:
    """An InfluxDB 1.x server of our own, which we may kill and restart."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.config = directory / "influxdb.conf"
        self.config.write_text(
            f'bind-address = "127.0.0.1:{free_port()}"\nreporting-disabled = true\n'
            f'[meta]\n  dir = "{directory}/meta"\n'
            f'[data]\n  dir = "{directory}/data"\n  wal-dir = "{directory}/wal"\n'
            '  query-log-enabled = false\n'
            f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n  log-enabled = false\n'
            '[monitor]\n  store-enabled = false\n'
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.directory / "influxd.log", "ab") as log:
            self.process = subprocess.Popen(
                ["influxd", "run", "-config", str(self.config)], stdout=log, stderr=log
            )
        eventually(lambda: self._ping(), timeout=30)

    def _ping(self) -> bool:
        try:
            return httpx.get(f"{self.url}/ping", timeout=1).status_code == 204
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


@pytest.fixture
def influxd(tmp_path: Path) -> Iterator[Influxd]:
    server = Influxd(tmp_path)
    server.start()
    yield server
    server.stop()


def _request(first_seq: int) -> bytes:
    request = metrics_service_pb2.ExportMetricsServiceRequest()
    resource_metrics = request.resource_metrics.add()
    resource_metrics.resource.attributes.add(
        key="service.name", value=common_pb2.AnyValue(string_value="outage-test")
    )
    metric = resource_metrics.scope_metrics.add().metrics.add(name=METRIC)
    now = time.time_ns()
    for offset in range(POINTS_PER_REQUEST):
        seq = first_seq + offset
        point = metric.gauge.data_points.add(time_unix_nano=now + offset, as_double=float(seq))
        point.attributes.add(key="seq", value=common_pb2.AnyValue(string_value=str(seq)))
    return request.SerializeToString()


def _sink(server: ArgusProcess, name: str) -> dict:
    status = httpx.get(f"{server.api_url}/readyz", timeout=10).json()
    return status["indexing"]["metrics"]["sinks"][name]  # type: ignore[no-any-return]


def _embedded_count(server: ArgusProcess) -> int:
    query = 'query { metricPoints(metric: "outage_probe", start: "now-1h", limit: 1000) { value } }'
    return len(server.graphql(query)["metricPoints"])


async def _influx_values(url: str) -> set[float]:
    store = await InfluxDBMetricStore.open(InfluxDBConfig(url=url, database="argus"))
    try:
        points = await store.points(PointQuery(
            tenant="default", metric=METRIC, start_unix_nano=time.time_ns() - 3600 * 10**9,
            limit=1000,
        ))
        return {point.value for point in points}  # type: ignore[attr-defined]
    finally:
        await store.close()


def test_influxdb_outage_loses_nothing_and_stalls_nothing(
    fresh_argus: ArgusProcess, influxd: Influxd
) -> None:
    config = fresh_argus.data_dir.parent / "fanout.toml"
    config.write_text(
        f'[storage.metrics]\nalso_write_to = ["influxdb"]\n[influxdb]\nurl = "{influxd.url}"\n'
    )
    fresh_argus.extra_args = ["--config", str(config)]
    server = fresh_argus.start()
    acknowledged: list[int] = []
    seq = 0

    def send(requests: int) -> None:
        nonlocal seq
        with httpx.Client(timeout=30) as client:
            for _ in range(requests):
                response = client.post(
                    f"{server.otlp_url}/v1/metrics", content=_request(seq), headers=PROTOBUF
                )
                assert response.status_code == 200, response.text
                acknowledged.extend(range(seq, seq + POINTS_PER_REQUEST))
                seq += POINTS_PER_REQUEST

    send(20)
    eventually(lambda: _sink(server, "influxdb")["lag_bytes"] == 0 and _sink(server, "influxdb")["indexed_items"] > 0)

    influxd.kill()
    send(40)  # while InfluxDB is down: still acknowledged...
    # ...and the primary keeps indexing: it never waits for the dead sink.
    eventually(lambda: _embedded_count(server) == len(acknowledged), timeout=30)
    def failing() -> dict | None:
        sink = _sink(server, "influxdb")
        return sink if not sink["healthy"] else None

    down = eventually(failing)
    assert down["lag_bytes"] > 0 and down["last_error"]
    sinks = {s["name"]: s for s in server.graphql("{ sinks { signal name primary healthy lagBytes } }")["sinks"] if s["signal"] == "metrics"}
    assert sinks["embedded"]["primary"] and sinks["embedded"]["healthy"]
    assert not sinks["influxdb"]["healthy"] and int(sinks["influxdb"]["lagBytes"]) > 0

    influxd.start()  # same data directory
    send(20)
    eventually(lambda: (s := _sink(server, "influxdb"))["healthy"] and s["lag_bytes"] == 0, timeout=60)
    stored = asyncio.run(_influx_values(influxd.url))
    missing = set(map(float, acknowledged)) - stored
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged points missing in InfluxDB"
    assert _embedded_count(server) == len(acknowledged)
    assert _sink(server, "influxdb")["dropped_bytes"] == 0
