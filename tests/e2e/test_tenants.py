"""Tenants and API keys, end to end: OTel SDK exporters over HTTP and gRPC with keys, 401 /
UNAUTHENTICATED for wrong keys, and no way for one tenant to read or write another's data."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult

from tests.e2e.test_http_receiver import _trace_request
from tests.harness import ArgusProcess, eventually

PROTOBUF = {"Content-Type": "application/x-protobuf"}


class Tenant:
    def __init__(self, server: ArgusProcess, name: str) -> None:
        self.name = name
        self.ingest = server.create_key(name, "ingest")
        self.viewer = server.create_key(name, "viewer")
        self.admin = server.create_key(name, "admin")


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ArgusProcess, Tenant, Tenant]]:
    server = ArgusProcess(tmp_path_factory.mktemp("tenants") / "data")
    acme, umbrella = Tenant(server, "acme"), Tenant(server, "umbrella")
    server.start()
    yield server, acme, umbrella
    assert server.stop() == 0, server.log()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _send_trace(server: ArgusProcess, token: str | None, service: str) -> tuple[httpx.Response, str]:
    trace_id = uuid.uuid4().bytes
    headers = {**PROTOBUF, **(_bearer(token) if token else {})}
    response = httpx.post(
        f"{server.otlp_url}/v1/traces", content=_trace_request(service, [trace_id]),
        headers=headers, timeout=10,
    )
    return response, trace_id.hex()


def _trace_of(server: ArgusProcess, token: str, trace_id: str) -> dict | None:
    query = "query($id: String!) { trace(traceId: $id) { spans { service } } }"
    return server.graphql(query, {"id": trace_id}, token)["trace"]


def test_http_ingest_needs_a_valid_ingest_key(keyed: tuple[ArgusProcess, Tenant, Tenant]) -> None:
    server, acme, _ = keyed
    for token in (None, "argus_000000000000_" + "x" * 43, "not-a-key", acme.ingest[:-1] + "A"):
        response, _ = _send_trace(server, token, "nobody")
        assert response.status_code == 401, (token, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")
    response, _ = _send_trace(server, acme.viewer, "viewer-cannot-write")
    assert response.status_code == 403
    assert "may not send telemetry" in response.text
    response, _ = _send_trace(server, acme.ingest, "acme-http")
    assert response.status_code == 200


def test_grpc_ingest_wrong_key_is_unauthenticated(keyed: tuple[ArgusProcess, Tenant, Tenant]) -> None:
    server, acme, _ = keyed
    request = trace_service_pb2.ExportTraceServiceRequest.FromString(
        _trace_request("grpc-keys", [uuid.uuid4().bytes])
    )
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        for metadata in ((), (("authorization", "Bearer argus_nope"),)):
            with pytest.raises(grpc.RpcError) as caught:
                stub.Export(request, metadata=metadata, timeout=10)
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as caught:
            stub.Export(request, metadata=(("authorization", f"Bearer {acme.viewer}"),), timeout=10)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        stub.Export(request, metadata=(("authorization", f"Bearer {acme.ingest}"),), timeout=10)


def test_sdk_exporters_with_keys_store_per_tenant(keyed: tuple[ArgusProcess, Tenant, Tenant]) -> None:
    server, acme, umbrella = keyed
    service = f"sdk-keys-{uuid.uuid4().hex[:8]}"
    resource = Resource.create({"service.name": service})

    # acme over HTTP, umbrella over gRPC, the same service name in both tenants.
    http_provider = TracerProvider(resource=resource)
    http_provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(
        endpoint=f"{server.otlp_url}/v1/traces", headers=_bearer(acme.ingest),
    )))
    with http_provider.get_tracer("keys").start_as_current_span("acme-op") as span:
        acme_trace = format(span.get_span_context().trace_id, "032x")
    http_provider.shutdown()

    grpc_provider = TracerProvider(resource=resource)
    grpc_provider.add_span_processor(SimpleSpanProcessor(GrpcSpanExporter(
        endpoint=f"http://{server.grpc_target}", insecure=True,
        headers={"authorization": f"Bearer {umbrella.ingest}"},
    )))
    with grpc_provider.get_tracer("keys").start_as_current_span("umbrella-op") as span:
        umbrella_trace = format(span.get_span_context().trace_id, "032x")
    grpc_provider.shutdown()

    assert eventually(lambda: _trace_of(server, acme.viewer, acme_trace))
    assert eventually(lambda: _trace_of(server, umbrella.viewer, umbrella_trace))
    # Neither tenant sees the other's trace, by id, by search or in the service list.
    assert _trace_of(server, acme.viewer, umbrella_trace) is None
    assert _trace_of(server, umbrella.viewer, acme_trace) is None
    search = "query($s: String!) { traces(filter: {service: $s}) { traceId rootName } }"
    acme_found = server.graphql(search, {"s": service}, acme.viewer)["traces"]
    umbrella_found = server.graphql(search, {"s": service}, umbrella.viewer)["traces"]
    assert [t["traceId"] for t in acme_found] == [acme_trace]
    assert [t["traceId"] for t in umbrella_found] == [umbrella_trace]
    services = "{ services { name operations } }"
    acme_ops = {s["name"]: s["operations"] for s in server.graphql(services, None, acme.viewer)["services"]}
    assert acme_ops[service] == ["acme-op"]


def test_sdk_exporter_with_a_wrong_key_fails(keyed: tuple[ArgusProcess, Tenant, Tenant]) -> None:
    server, _, _ = keyed
    exporter = OTLPSpanExporter(
        endpoint=f"{server.otlp_url}/v1/traces", headers=_bearer("argus_0123456789ab_" + "y" * 43)
    )
    provider = TracerProvider()
    with provider.get_tracer("keys").start_as_current_span("refused") as span:
        pass
    assert exporter.export([span]) == SpanExportResult.FAILURE  # type: ignore[list-item]


def test_logs_and_metrics_stay_in_their_tenant(keyed: tuple[ArgusProcess, Tenant, Tenant]) -> None:
    server, acme, umbrella = keyed
    marker = uuid.uuid4().hex[:12]
    resource = Resource.create({"service.name": f"tenant-logs-{marker}"})
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(
        endpoint=f"{server.otlp_url}/v1/logs", headers=_bearer(umbrella.ingest),
    )))
    logger_provider.get_logger("keys").emit(
        body=f"secret of umbrella {marker}", severity_number=SeverityNumber.WARN
    )
    logger_provider.shutdown()
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{server.otlp_url}/v1/metrics", headers=_bearer(umbrella.ingest)),
        export_interval_millis=3_600_000,
    )
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter_provider.get_meter("keys").create_counter(f"umbrella_only_{marker}").add(5)
    meter_provider.shutdown()

    logs = "query($q: String!) { logs(filter: {contains: $q}) { records { body } } }"
    assert eventually(
        lambda: server.graphql(logs, {"q": marker}, umbrella.viewer)["logs"]["records"]
    )
    assert server.graphql(logs, {"q": marker}, acme.viewer)["logs"]["records"] == []
    names = "{ metricNames { name } }"
    assert eventually(lambda: f"umbrella_only_{marker}" in {
        m["name"] for m in server.graphql(names, None, umbrella.viewer)["metricNames"]
    })
    assert f"umbrella_only_{marker}" not in {
        m["name"] for m in server.graphql(names, None, acme.viewer)["metricNames"]
    }


def test_queries_need_a_key_that_may_read(keyed: tuple[ArgusProcess, Tenant, Tenant]) -> None:
    server, acme, _ = keyed
    for headers in ({}, _bearer("argus_nope")):
        response = httpx.post(f"{server.api_url}/graphql", json={"query": "{ services { name } }"},
                              headers=headers, timeout=10)
        assert response.status_code == 401
        assert response.json()["errors"][0]["message"]
    response = httpx.post(f"{server.api_url}/graphql", json={"query": "{ services { name } }"},
                          headers=_bearer(acme.ingest), timeout=10)
    assert response.status_code == 403
    # The GraphiQL page itself carries no data and opens without a key.
    page = httpx.get(f"{server.api_url}/graphql", headers={"Accept": "text/html"}, timeout=10)
    assert page.status_code == 200
    # Probes stay open.
    assert httpx.get(f"{server.api_url}/readyz", timeout=10).status_code == 200


def test_admins_manage_their_own_tenants_keys(keyed: tuple[ArgusProcess, Tenant, Tenant]) -> None:
    server, acme, umbrella = keyed
    create = """mutation($role: Role!, $name: String!) {
        createApiKey(role: $role, name: $name) { token key { id tenant role name revoked } } }"""
    created = server.graphql(create, {"role": "INGEST", "name": "ci"}, acme.admin)["createApiKey"]
    assert created["key"]["tenant"] == "acme" and created["key"]["role"] == "INGEST"
    token, key_id = created["token"], created["key"]["id"]

    # The new key works once the server has picked it up (within a second).
    eventually(lambda: _send_trace(server, token, "api-made-key")[0].status_code == 200)

    listed = server.graphql("{ apiKeys { id tenant } }", None, acme.admin)["apiKeys"]
    assert key_id in {k["id"] for k in listed}
    assert {k["tenant"] for k in listed} == {"acme"}

    # Viewers may not manage keys; umbrella's admin cannot see or revoke acme's key.
    refused = server.graphql_raw("{ apiKeys { id } }", None, acme.viewer)
    assert "may not manage API keys" in refused["errors"][0]["message"]
    revoke = "mutation($id: String!) { revokeApiKey(id: $id) { id revoked } }"
    other = server.graphql_raw(revoke, {"id": key_id}, umbrella.admin)
    assert "no API key" in other["errors"][0]["message"]
    assert _send_trace(server, token, "still-valid")[0].status_code == 200

    assert server.graphql(revoke, {"id": key_id}, acme.admin)["revokeApiKey"]["revoked"]
    eventually(lambda: _send_trace(server, token, "revoked")[0].status_code == 401)


def test_keys_are_stored_hashed(keyed: tuple[ArgusProcess, Tenant, Tenant]) -> None:
    server, acme, _ = keyed
    database = (server.data_dir / "meta" / "keys.db").read_bytes()
    secret = acme.admin.split("_", 2)[2]  # argus_<id>_<secret>; the secret may hold "_"
    assert len(secret) == 43
    assert secret.encode() not in database


def test_no_keys_refuses_non_loopback_unless_insecure(tmp_path: Path) -> None:
    exposed = ArgusProcess(tmp_path / "exposed", ["--otlp-http", "0.0.0.0:0"])
    with pytest.raises(RuntimeError, match="refusing to listen on 0.0.0.0:0 .--otlp-http. without API keys"):
        exposed.start()
    insecure = ArgusProcess(tmp_path / "insecure")
    insecure.extra_args = ["--otlp-http", f"0.0.0.0:{insecure.otlp_port}", "--insecure"]
    insecure.start()
    try:
        response, _ = _send_trace(insecure, None, "open-on-purpose")
        assert response.status_code == 200
    finally:
        assert insecure.stop() == 0
    keyed = ArgusProcess(tmp_path / "keyed")
    keyed.extra_args = ["--otlp-http", f"0.0.0.0:{keyed.otlp_port}"]
    token = keyed.create_key("solo", "admin")
    keyed.start()
    try:
        assert _send_trace(keyed, None, "no-key")[0].status_code == 401
        assert _send_trace(keyed, token, "with-key")[0].status_code == 200
    finally:
        assert keyed.stop() == 0


def test_rest_needs_a_key_and_keeps_tenants_apart(keyed: tuple[ArgusProcess, Tenant, Tenant]) -> None:
    server, acme, umbrella = keyed
    response, trace_id = _send_trace(server, acme.ingest, "rest-tenants")
    assert response.status_code == 200
    api = f"{server.api_url}/api/v1"
    assert httpx.get(f"{api}/services", timeout=10).status_code == 401
    assert httpx.get(f"{api}/services", headers=_bearer(acme.ingest), timeout=10).status_code == 403
    eventually(lambda: httpx.get(f"{api}/traces/{trace_id}", headers=_bearer(acme.viewer),
                                 timeout=10).status_code == 200)
    assert httpx.get(f"{api}/traces/{trace_id}", headers=_bearer(umbrella.viewer),
                     timeout=10).status_code == 404
    assert httpx.get(f"{api}/openapi.json", timeout=10).status_code == 200  # no data in it
