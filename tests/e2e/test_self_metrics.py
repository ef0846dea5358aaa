"""`/metrics` shows what both processes did, in Prometheus text format."""

from __future__ import annotations

import uuid

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.test_http_receiver import PROTOBUF, _trace_request
from tests.harness import ArgusProcess, eventually


def _samples(server: ArgusProcess) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = httpx.get(f"{server.api_url}/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_metrics_count_accepted_rejected_refused_and_indexed(fresh_argus: ArgusProcess) -> None:
    server = fresh_argus.start()
    good = _trace_request("selfmon", [uuid.uuid4().bytes for _ in range(3)] + [b"bad"])
    assert httpx.post(f"{server.otlp_url}/v1/traces", content=good, headers=PROTOBUF).status_code == 200
    assert httpx.post(f"{server.otlp_url}/v1/logs", content=b"\xff", headers=PROTOBUF).status_code == 400

    def indexed() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
        samples = _samples(server)
        return samples if samples.get(("argus_indexed_items_total", frozenset({("signal", "traces"), ("sink", "embedded")}))) == 3 else None

    samples = eventually(indexed)
    tenant = {("signal", "traces"), ("tenant", "default")}
    assert samples[("argus_ingest_items_total", frozenset(tenant | {("outcome", "accepted")}))] == 3
    assert samples[("argus_ingest_items_total", frozenset(tenant | {("outcome", "rejected")}))] == 1
    refused = frozenset({("transport", "http"), ("signal", "logs"), ("reason", "invalid")})
    assert samples[("argus_ingest_refused_requests_total", refused)] == 1
    assert samples[("argus_unindexed_bytes", frozenset({("signal", "traces"), ("sink", "embedded")}))] == 0
    ok = frozenset({("transport", "http"), ("signal", "traces"), ("status", "200")})
    assert samples[("argus_ingest_request_duration_seconds_count", ok)] == 1
    assert samples[("argus_wal_append_duration_seconds_count", frozenset({("signal", "traces")}))] == 1
    assert samples[("argus_store_write_duration_seconds_count", frozenset({("signal", "traces"), ("sink", "embedded")}))] >= 1
