"""Live data end to end: Socket.IO and graphql-transport-ws clients against a real
`argus serve`, logs and metrics sent over OTLP/HTTP. Plus the hub's own rules in process
(the log predicate agrees with the store's search; slow subscribers are dropped; a resume
past the buffer replays from the store)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio
import websockets
from argus.query.live import (
    Cursor,
    LiveHub,
    SubscriberDropped,
    body_search_text,
    log_partition,
    log_predicate,
    resume_logs,
)
from argus.storage.backends.sqlite_logs import SqliteLogStore
from argus.storage.keys import parse_token
from argus.storage.logs import LogPage, LogQuery
from argus.storage.model import LogRecord, Resource, Scope
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.common.v1 import common_pb2

from tests.harness import ArgusProcess, eventually

PROTOBUF = {"Content-Type": "application/x-protobuf"}
SUBPROTOCOL = websockets.Subprotocol("graphql-transport-ws")
PUSH_SECONDS = 1.0  # the issue: pushes arrive within a second of ingest


class Keys:
    def __init__(self, server: ArgusProcess, tenant: str) -> None:
        self.ingest = server.create_key(tenant, "ingest")
        self.viewer = server.create_key(tenant, "viewer")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ArgusProcess, Keys, Keys]]:
    server = ArgusProcess(tmp_path_factory.mktemp("live") / "data")
    acme, umbrella = Keys(server, "acme"), Keys(server, "umbrella")
    server.start()
    yield server, acme, umbrella
    assert server.stop() == 0, server.log()


def _value(value: Any) -> common_pb2.AnyValue:
    return common_pb2.AnyValue(string_value=str(value))


def send_logs(
    server: ArgusProcess, token: str, service: str, bodies: list[str], severity: int = 9
) -> None:
    request = logs_service_pb2.ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.add(key="service.name", value=_value(service))
    scope_logs = resource_logs.scope_logs.add()
    now = time.time_ns()
    for body in bodies:
        record = scope_logs.log_records.add(time_unix_nano=now, severity_number=severity)
        record.body.string_value = body
    response = httpx.post(
        f"{server.otlp_url}/v1/logs", content=request.SerializeToString(),
        headers={**PROTOBUF, "Authorization": f"Bearer {token}"}, timeout=10,
    )
    assert response.status_code == 200, response.text


def send_gauge(server: ArgusProcess, token: str, service: str, name: str, value: float) -> None:
    request = metrics_service_pb2.ExportMetricsServiceRequest()
    resource_metrics = request.resource_metrics.add()
    resource_metrics.resource.attributes.add(key="service.name", value=_value(service))
    metric = resource_metrics.scope_metrics.add().metrics.add(name=name)
    metric.gauge.data_points.add(time_unix_nano=time.time_ns(), as_double=value)
    response = httpx.post(
        f"{server.otlp_url}/v1/metrics", content=request.SerializeToString(),
        headers={**PROTOBUF, "Authorization": f"Bearer {token}"}, timeout=10,
    )
    assert response.status_code == 200, response.text


async def wait_indexed(server: ArgusProcess, token: str, service: str, count: int) -> None:
    """Until the store holds `count` records of the service (so the hub has seen them)."""
    query = "query($s: String) { logs(filter: {service: $s}, first: 1000) { records { bodyText } } }"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        found = await asyncio.to_thread(server.graphql, query, {"s": service}, token)
        if len(found["logs"]["records"]) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{count} records of {service} not indexed")


# ---------------------------------------------------------------------------- Socket.IO


class Tail:
    """A Socket.IO client with every `logs` push it received."""

    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.pushes: list[dict[str, Any]] = []
        self.arrived: list[tuple[float, str]] = []  # (monotonic time, body)
        self.series: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.client.on("logs", self._logs)
        self.client.on("series", self.series.append)
        self.client.on("error", self.errors.append)

    async def _logs(self, data: dict[str, Any]) -> None:
        self.pushes.append(data)
        now = time.monotonic()
        self.arrived.extend((now, record["bodyText"]) for record in data["records"])

    async def connect(self, server: ArgusProcess, token: str) -> Tail:
        await self.client.connect(server.api_url, auth={"token": token},
                                  transports=["websocket"], wait_timeout=10)
        return self

    async def subscribe(self, request: dict[str, Any]) -> dict[str, Any]:
        ack = await self.client.call("subscribe", request, timeout=10)
        assert "error" not in ack, ack
        return ack  # type: ignore[no-any-return]

    @property
    def bodies(self) -> list[str]:
        return [body for _, body in self.arrived]

    @property
    def cursor(self) -> str:
        return str(self.pushes[-1]["cursor"])

    async def wait_for(self, count: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while len(self.arrived) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"got {len(self.arrived)} records, expected {count}")
            await asyncio.sleep(0.01)


@pytest.fixture
async def tails() -> AsyncIterator[list[Tail]]:
    made: list[Tail] = []
    yield made
    for tail in made:
        await tail.client.disconnect()


async def test_socketio_tail_pushes_within_a_second_and_resumes_without_gaps(
    live: tuple[ArgusProcess, Keys, Keys], tails: list[Tail]
) -> None:
    server, acme, _ = live
    service = f"tail-{uuid.uuid4().hex[:8]}"
    tail = await Tail().connect(server, acme.viewer)
    tails.append(tail)
    ack = await tail.subscribe({"kind": "logs", "filter": {"service": service}})
    assert set(ack) == {"id", "cursor"}

    latencies = []
    for n in range(5):
        sent = time.monotonic()
        await asyncio.to_thread(send_logs, server, acme.ingest, service, [f"live {n}"])
        await tail.wait_for(n + 1)
        latencies.append(tail.arrived[-1][0] - sent)
    assert tail.bodies == [f"live {n}" for n in range(5)]
    assert max(latencies) < PUSH_SECONDS, latencies
    # Another service's records, and a filter's non-matches, are not pushed.
    await asyncio.to_thread(send_logs, server, acme.ingest, f"{service}-other", ["not mine"])

    # Disconnect, miss some, come back with the last cursor.
    await asyncio.sleep(0.3)
    assert len(tail.bodies) == 5
    cursor = tail.cursor
    await tail.client.disconnect()
    await asyncio.to_thread(send_logs, server, acme.ingest, service, [f"missed {n}" for n in range(7)])
    await wait_indexed(server, acme.viewer, service, 12)

    again = await Tail().connect(server, acme.viewer)
    tails.append(again)
    await again.subscribe({"kind": "logs", "filter": {"service": service}, "after": cursor})
    await again.wait_for(7)
    assert again.pushes[0]["replay"] is True and again.pushes[0]["gap"] is False
    await asyncio.to_thread(send_logs, server, acme.ingest, service, ["after 0", "after 1"])
    await again.wait_for(9)
    await asyncio.sleep(0.3)  # nothing more may come
    assert again.bodies == [f"missed {n}" for n in range(7)] + ["after 0", "after 1"]


async def test_socketio_filters_severity_and_text_like_the_store(
    live: tuple[ArgusProcess, Keys, Keys], tails: list[Tail]
) -> None:
    server, acme, _ = live
    service = f"filter-{uuid.uuid4().hex[:8]}"
    tail = await Tail().connect(server, acme.viewer)
    tails.append(tail)
    await tail.subscribe({"kind": "logs", "filter": {
        "service": service, "contains": "PAYMENT", "minSeverity": "WARN",
    }})
    await asyncio.to_thread(send_logs, server, acme.ingest, service, ["payment ok"], 9)
    await asyncio.to_thread(send_logs, server, acme.ingest, service, ["Payment failed", "disk"], 17)
    await tail.wait_for(1)
    await asyncio.sleep(0.5)
    assert tail.bodies == ["Payment failed"]


async def test_socketio_refuses_wrong_keys(live: tuple[ArgusProcess, Keys, Keys]) -> None:
    server, acme, _ = live
    for auth in ({"token": "argus_000000000000_" + "x" * 43}, {"token": acme.ingest}, None):
        client = socketio.AsyncClient(reconnection=False)
        reasons: list[Any] = []
        client.on("connect_error", reasons.append)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(server.api_url, auth=auth, transports=["websocket"], wait_timeout=5)
        assert len(reasons) == 1, reasons
        assert "API key" in reasons[0]["message"], reasons
    # The Authorization header works as well as the auth dict.
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(server.api_url, headers={"Authorization": f"Bearer {acme.viewer}"},
                         transports=["websocket"], wait_timeout=5)
    await client.disconnect()


async def test_socketio_tenants_never_see_each_other(
    live: tuple[ArgusProcess, Keys, Keys], tails: list[Tail]
) -> None:
    server, acme, umbrella = live
    service = f"shared-{uuid.uuid4().hex[:8]}"  # the same service name in both tenants
    acme_tail = await Tail().connect(server, acme.viewer)
    umbrella_tail = await Tail().connect(server, umbrella.viewer)
    tails.extend([acme_tail, umbrella_tail])
    first = await acme_tail.subscribe({"kind": "logs", "filter": {"service": service}})
    second = await umbrella_tail.subscribe({"kind": "logs", "filter": {"service": service}})
    assert first["id"] != second["id"]  # separate rooms
    await asyncio.to_thread(send_logs, server, acme.ingest, service, ["acme secret"])
    await asyncio.to_thread(send_logs, server, umbrella.ingest, service, ["umbrella own"])
    await acme_tail.wait_for(1)
    await umbrella_tail.wait_for(1)
    await asyncio.sleep(0.5)
    assert acme_tail.bodies == ["acme secret"]
    assert umbrella_tail.bodies == ["umbrella own"]
    # A cursor of one tenant does not open the other's replay.
    third = await Tail().connect(server, umbrella.viewer)
    tails.append(third)
    ack = await third.client.call(
        "subscribe", {"kind": "logs", "filter": {}, "after": acme_tail.cursor}, timeout=10
    )
    await asyncio.sleep(0.5)
    assert "acme secret" not in third.bodies, ack


async def test_socketio_metric_series_pushes_new_points(
    live: tuple[ArgusProcess, Keys, Keys], tails: list[Tail]
) -> None:
    server, acme, _ = live
    name = f"live_gauge_{uuid.uuid4().hex[:8]}"
    tail = await Tail().connect(server, acme.viewer)
    tails.append(tail)
    await tail.subscribe({"kind": "metricSeries", "query": {
        "metric": name, "start": "now-5m", "step": "1s", "aggregation": "max",
    }})
    deadline = time.monotonic() + 5
    while not tail.series and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert tail.series and tail.series[0]["series"] == []  # evaluated at once: no data yet
    sent = time.monotonic()
    await asyncio.to_thread(send_gauge, server, acme.ingest, "svc", name, 42.5)
    while len(tail.series) < 2 and time.monotonic() < sent + 5:
        await asyncio.sleep(0.01)
    assert time.monotonic() - sent < PUSH_SECONDS + 0.5  # the 500 ms debounce included
    points = tail.series[-1]["series"][0]["points"]
    assert [point["value"] for point in points] == [42.5]


# ---------------------------------------------------------------------------- GraphQL


LOGS_TAIL = """subscription($filter: LogFilter, $after: String) {
  logsTail(filter: $filter, after: $after) { records { bodyText service } cursor replay gap }
}"""
METRIC_SERIES = """subscription($query: MetricQuery!) {
  metricSeries(query: $query) { labels points { value } }
}"""


class GraphQLWs:
    """A minimal graphql-transport-ws client."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    @classmethod
    async def open(
        cls, server: ArgusProcess, payload: dict[str, Any] | None, headers: dict[str, str] | None = None
    ) -> GraphQLWs:
        url = server.api_url.replace("http://", "ws://") + "/graphql"
        connection = await websockets.connect(
            url, subprotocols=[SUBPROTOCOL], additional_headers=headers or {}
        )
        client = cls(connection)
        await client.send({"type": "connection_init", "payload": payload or {}})
        return client

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(message))

    async def receive(self, timeout: float = 10) -> dict[str, Any]:
        while True:
            message = json.loads(await asyncio.wait_for(self.connection.recv(), timeout))
            if message["type"] == "ping":
                await self.send({"type": "pong"})
                continue
            return message  # type: ignore[no-any-return]

    async def subscribe(self, id: str, query: str, variables: dict[str, Any]) -> None:
        await self.send({"id": id, "type": "subscribe",
                         "payload": {"query": query, "variables": variables}})

    async def next_data(self, id: str, timeout: float = 10) -> dict[str, Any]:
        message = await self.receive(timeout)
        assert message["type"] == "next" and message["id"] == id, message
        assert not message["payload"].get("errors"), message
        return message["payload"]["data"]  # type: ignore[no-any-return]

    async def close(self) -> None:
        await self.connection.close()


async def _tail_records(client: GraphQLWs, id: str, count: int) -> tuple[list[str], str]:
    bodies: list[str] = []
    cursor = ""
    while len(bodies) < count:
        batch = (await client.next_data(id))["logsTail"]
        bodies += [record["bodyText"] for record in batch["records"]]
        cursor = batch["cursor"]
    return bodies, cursor


async def test_graphql_logs_tail_with_key_in_connection_init_and_resume(
    live: tuple[ArgusProcess, Keys, Keys],
) -> None:
    server, acme, _ = live
    service = f"gql-{uuid.uuid4().hex[:8]}"
    client = await GraphQLWs.open(server, {"Authorization": f"Bearer {acme.viewer}"})
    assert (await client.receive())["type"] == "connection_ack"
    await client.subscribe("1", LOGS_TAIL, {"filter": {"service": service}})
    first = (await client.next_data("1"))["logsTail"]
    assert first["replay"] is True and first["records"] == []
    sent = time.monotonic()
    await asyncio.to_thread(send_logs, server, acme.ingest, service, ["g0", "g1"])
    bodies, cursor = await _tail_records(client, "1", 2)
    assert time.monotonic() - sent < PUSH_SECONDS
    assert bodies == ["g0", "g1"]
    await client.close()

    await asyncio.to_thread(send_logs, server, acme.ingest, service, ["g2", "g3", "g4"])
    await wait_indexed(server, acme.viewer, service, 5)
    # Reconnect, this time with the key in the upgrade request's header.
    again = await GraphQLWs.open(server, None, {"Authorization": f"Bearer {acme.viewer}"})
    assert (await again.receive())["type"] == "connection_ack"
    await again.subscribe("2", LOGS_TAIL, {"filter": {"service": service}, "after": cursor})
    replay = (await again.next_data("2"))["logsTail"]
    assert replay["replay"] is True and replay["gap"] is False
    assert [record["bodyText"] for record in replay["records"]] == ["g2", "g3", "g4"]
    await asyncio.to_thread(send_logs, server, acme.ingest, service, ["g5"])
    bodies, _ = await _tail_records(again, "2", 1)
    assert bodies == ["g5"]
    await again.send({"id": "2", "type": "complete"})
    await again.close()


async def test_graphql_metric_series_updates_and_after_reconnect(
    live: tuple[ArgusProcess, Keys, Keys],
) -> None:
    server, acme, _ = live
    name = f"gql_gauge_{uuid.uuid4().hex[:8]}"
    query = {"metric": name, "start": "now-10m", "step": "1s", "aggregation": "MAX"}
    client = await GraphQLWs.open(server, {"Authorization": f"Bearer {acme.viewer}"})
    assert (await client.receive())["type"] == "connection_ack"
    await client.subscribe("m", METRIC_SERIES, {"query": query})
    assert (await client.next_data("m"))["metricSeries"] == []
    await asyncio.to_thread(send_gauge, server, acme.ingest, "svc", name, 7.0)
    series = (await client.next_data("m"))["metricSeries"]
    assert [point["value"] for point in series[0]["points"]] == [7.0]
    await client.close()

    again = await GraphQLWs.open(server, {"Authorization": f"Bearer {acme.viewer}"})
    assert (await again.receive())["type"] == "connection_ack"
    await again.subscribe("m", METRIC_SERIES, {"query": query})
    series = (await again.next_data("m"))["metricSeries"]
    assert [point["value"] for point in series[0]["points"]] == [7.0]
    await asyncio.sleep(1.1)  # the next point lands in another 1 s step
    await asyncio.to_thread(send_gauge, server, acme.ingest, "svc", name, 9.0)
    series = (await again.next_data("m"))["metricSeries"]
    assert [point["value"] for point in series[0]["points"]] == [7.0, 9.0]
    await again.close()


@pytest.mark.parametrize("payload", [
    {},
    {"Authorization": "Bearer argus_000000000000_" + "x" * 43},
    {"Authorization": "Bearer not-a-key"},
    {"Authorization": 42},
])
async def test_graphql_ws_refuses_missing_or_wrong_keys(
    live: tuple[ArgusProcess, Keys, Keys], payload: dict[str, Any]
) -> None:
    server, _, _ = live
    client = await GraphQLWs.open(server, payload)
    with pytest.raises(websockets.ConnectionClosed) as caught:
        await client.receive()
    assert caught.value.rcvd is not None and caught.value.rcvd.code == 4403


async def test_graphql_ws_refuses_an_ingest_key_and_a_bad_header(
    live: tuple[ArgusProcess, Keys, Keys],
) -> None:
    server, acme, _ = live
    client = await GraphQLWs.open(server, {"Authorization": f"Bearer {acme.ingest}"})
    with pytest.raises(websockets.ConnectionClosed) as caught:
        await client.receive()
    assert caught.value.rcvd is not None and caught.value.rcvd.code == 4403
    # A wrong key in the upgrade request's header is refused before the handshake.
    with pytest.raises(websockets.InvalidStatus) as refused:
        await GraphQLWs.open(server, {}, {"Authorization": "Bearer argus_nope"})
    assert refused.value.response.status_code == 403


async def test_graphql_ws_subscribe_before_ack_is_unauthorized(
    live: tuple[ArgusProcess, Keys, Keys],
) -> None:
    server, _, _ = live
    url = server.api_url.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(url, subprotocols=[SUBPROTOCOL]) as connection:
        await connection.send(json.dumps({"id": "1", "type": "subscribe",
                                          "payload": {"query": LOGS_TAIL}}))
        with pytest.raises(websockets.ConnectionClosed) as caught:
            await asyncio.wait_for(connection.recv(), 10)
    assert caught.value.rcvd is not None and caught.value.rcvd.code == 4401


async def test_a_revoked_key_ends_its_live_connections(
    live: tuple[ArgusProcess, Keys, Keys],
) -> None:
    server, _, _ = live
    token = await asyncio.to_thread(server.create_key, "acme", "viewer")
    await asyncio.to_thread(
        eventually, lambda: not server.graphql_raw("{ services { name } }", token=token).get("errors")
    )  # the server learns of new keys within a second
    tail = await Tail().connect(server, token)
    await tail.subscribe({"kind": "logs", "filter": {}})
    graphql = await GraphQLWs.open(server, {"Authorization": f"Bearer {token}"})
    assert (await graphql.receive())["type"] == "connection_ack"
    await graphql.subscribe("1", LOGS_TAIL, {})
    assert (await graphql.next_data("1"))["logsTail"]["replay"] is True

    key_id = parse_token(token)
    assert key_id is not None
    await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "argus.cli", "keys", "revoke", "--data-dir", str(server.data_dir),
         key_id[0]],
        check=True, capture_output=True,
    )
    deadline = time.monotonic() + 10
    while tail.client.connected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not tail.client.connected
    assert any("revoked" in error["message"] for error in tail.errors), tail.errors
    while True:  # progress batches until the recheck notices
        message = await graphql.receive()
        if message["type"] != "next" or message["payload"].get("errors"):
            break
    assert "revoked" in json.dumps(message), message
    await graphql.close()


# ---------------------------------------------------------------------------- in process


def _record(
    body: Any, severity: int = 9, service: str = "api", attributes: dict[str, Any] | None = None,
    resource: dict[str, Any] | None = None, trace_id: str = "", span_id: str = "", ts: int = 1000,
) -> LogRecord:
    return LogRecord(
        time_unix_nano=ts, observed_time_unix_nano=ts,
        resource=Resource({"service.name": service, **(resource or {})}), scope=Scope(),
        severity_number=severity, body=body, attributes=attributes or {},
        trace_id=trace_id, span_id=span_id,
    )


RECORDS = [
    _record("User ALICE logged in", 9),
    _record("Ошибка: ДИСК полон", 17, "db"),
    _record({"event": "Login", "user": "Alice"}, 13, attributes={"http.status": 500}),
    _record(None, 5, attributes={"flag": True}),
    _record("disk 100% full", 21, trace_id="ab" * 16, span_id="cd" * 8),
    _record("a_b", 1, resource={"region": "eu"}),
    _record("\u212a kelvin", 9, attributes={"region": "us"}, resource={"region": "eu"}),
    _record(424242, 9, ts=5000),
    _record(["Alpha", "beta"], 0, ts=9000, attributes={"ratio": 0.5}),
]
QUERIES = [
    LogQuery("t"),
    LogQuery("t", contains="alice"),
    LogQuery("t", contains="LOGGED"),
    LogQuery("t", contains="диск"),
    LogQuery("t", contains="k"),
    LogQuery("t", contains="0%"),
    LogQuery("t", contains="a_b"),
    LogQuery("t", contains="ALPHA"),
    LogQuery("t", contains="2424"),
    LogQuery("t", contains=""),
    LogQuery("t", min_severity=13),
    LogQuery("t", service="db"),
    LogQuery("t", trace_id="ab" * 16),
    LogQuery("t", trace_id=""),
    LogQuery("t", span_id="cd" * 8),
    LogQuery("t", attributes={"http.status": "500"}),
    LogQuery("t", attributes={"flag": "true"}),
    LogQuery("t", attributes={"region": "eu"}),
    LogQuery("t", attributes={"region": "us"}),
    LogQuery("t", attributes={"ratio": "0.5"}),
    LogQuery("t", start_unix_nano=5000, end_unix_nano=9000),
    LogQuery("t", contains="in", min_severity=9, service="api"),
]


async def test_log_predicate_agrees_with_the_embedded_store(tmp_path: Path) -> None:
    store = await SqliteLogStore.open(tmp_path / "logs.db")
    try:
        await store.write_logs("t", RECORDS, "batch")
        for query in QUERIES:
            page = await store.search(LogQuery(**{**_fields(query), "limit": 100}))
            stored = sorted(repr(body_search_text(r.body)) for r in page.records)
            predicate = log_predicate(query)
            live = sorted(repr(body_search_text(r.body)) for r in RECORDS if predicate(r))
            assert live == stored, query
    finally:
        await store.close()


def _fields(query: LogQuery) -> dict[str, Any]:
    return {name: getattr(query, name) for name in LogQuery.__dataclass_fields__}


async def test_a_slow_subscriber_is_dropped_not_buffered() -> None:
    hub = LiveHub(max_pending_items=10)
    subscription = hub.subscribe("t", "logs")
    hub.published("logs", "t", [_record("x")] * 6)
    hub.published("logs", "t", [_record("y")] * 6)  # 12 waiting > 10
    with pytest.raises(SubscriberDropped, match="fell more than 10 items behind"):
        await subscription.next()
    assert hub.subscriber_count() == 0
    hub.published("logs", "t", [_record("z")])  # the indexer's call still works


async def test_a_partitioned_subscription_sees_its_service_with_the_right_numbers() -> None:
    hub = LiveHub()
    query = LogQuery("t", service="db", min_severity=13)
    subscription = hub.subscribe("t", "logs", log_predicate(query), partition=log_partition(query))
    everything = hub.subscribe("t", "logs")
    records = [_record("a", 17, "api"), _record("b", 17, "db"), _record("c", 9, "db"),
               _record("d", 21, "db")]
    hub.published("logs", "t", records)
    hub.published("logs", "other", [_record("e", 21, "db")])
    batch = await subscription.next()
    assert [r.body for r in batch.items] == ["b", "d"] and batch.seqs == [2, 4]
    assert batch.end_seq == 4
    assert len((await everything.next()).items) == 4


async def test_resume_replays_exactly_from_the_buffer_and_from_the_store_past_it() -> None:
    hub = LiveHub(replay_items=5)
    query = LogQuery("t", contains="keep")
    hub.published("logs", "t", [_record("keep 0"), _record("drop")])
    cursor = hub.position("t", "logs").encode()
    hub.published("logs", "t", [_record("keep 1"), _record("drop"), _record("keep 2")])

    async def no_search(query: LogQuery) -> LogPage:
        raise AssertionError("the buffer covers it")

    exact = await resume_logs(hub, query, cursor, no_search)
    assert [r.body for r in exact.items] == ["keep 1", "keep 2"] and not exact.gap
    assert exact.end_seq == 5

    hub.published("logs", "t", [_record(f"keep {n}") for n in range(3, 9)])  # evicts up to 6
    stored = [_record(f"keep {n}", ts=n) for n in range(8, 0, -1)]  # newest first

    async def search(query: LogQuery) -> LogPage:
        return LogPage(stored if query.cursor is None else [], None)

    resumed = await resume_logs(hub, query, cursor, search)
    assert resumed.gap and resumed.end_seq == 11
    assert [r.body for r in resumed.items] == [f"keep {n}" for n in range(1, 9)]
    # Another epoch (a restarted server) also goes to the store.
    other = Cursor("other", 1, 0).encode()
    assert (await resume_logs(hub, query, other, search)).gap
