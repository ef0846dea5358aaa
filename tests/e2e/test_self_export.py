"""Argus sends its own metrics to itself over OTLP when telemetry.self_export is on."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_http_receiver import PROTOBUF, _trace_request
from tests.harness import ArgusProcess, eventually


def test_own_metrics_arrive_as_otlp_metrics(fresh_argus: ArgusProcess) -> None:
    config = fresh_argus.data_dir.parent / "self.toml"
    config.write_text("[telemetry]\nself_export = true\nself_export_interval_seconds = 0.5\n")
    fresh_argus.extra_args = ["--config", str(config)]
    server = fresh_argus.start()
    body = _trace_request("self-export-app", [uuid.uuid4().bytes])
    assert httpx.post(f"{server.otlp_url}/v1/traces", content=body, headers=PROTOBUF).status_code == 200

    query = "{ metricNames { name kind temporality isMonotonic } }"

    def exported() -> dict[str, dict] | None:
        names = {m["name"]: m for m in server.graphql(query)["metricNames"]}
        return names if "argus_ingest_request_duration_seconds" in names else None

    names = eventually(exported, timeout=20)
    assert names["argus_ingest_items"]["kind"] == "SUM"
    assert names["argus_ingest_items"]["isMonotonic"]
    assert names["argus_ingest_items"]["temporality"] == "CUMULATIVE"
    assert names["argus_ingest_request_duration_seconds"]["kind"] == "HISTOGRAM"
    assert names["argus_unindexed_bytes"]["kind"] == "GAUGE"
    series = """query { metricSeries(query: {metric: "argus_ingest_items", start: "now-5m",
        step: "15s", matchers: [{label: "signal", op: "=", value: "traces"},
                                {label: "outcome", op: "=", value: "accepted"}]}) {
        labels points { value } } }"""
    found = eventually(lambda: server.graphql(series)["metricSeries"], timeout=20)
    assert max(p["value"] for s in found for p in s["points"] if p["value"] is not None) >= 1


def test_self_export_with_keys_needs_a_key(tmp_path: Path) -> None:
    server = ArgusProcess(tmp_path / "data")
    server.create_key("ops", "admin")
    config = tmp_path / "self.toml"
    config.write_text("[telemetry]\nself_export = true\n")
    server.extra_args = ["--config", str(config)]
    with pytest.raises(RuntimeError, match="telemetry.self_export_key"):
        server.start()
