"""REST under /api/v1 answers exactly what GraphQL answers, and its OpenAPI document
describes every endpoint it serves."""

from __future__ import annotations

import time
import uuid

import httpx
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.common.v1 import common_pb2

from tests.e2e.test_http_receiver import PROTOBUF, _trace_request
from tests.harness import ArgusProcess, eventually


def _metrics(service: str, name: str) -> bytes:
    request = metrics_service_pb2.ExportMetricsServiceRequest()
    resource_metrics = request.resource_metrics.add()
    resource_metrics.resource.attributes.add(
        key="service.name", value=common_pb2.AnyValue(string_value=service)
    )
    metric = resource_metrics.scope_metrics.add().metrics.add(name=name, unit="ms")
    now = time.time_ns()
    for index, route in enumerate(("/a", "/b", "/a")):
        point = metric.gauge.data_points.add(time_unix_nano=now - index * 10**9, as_double=index + 1.5)
        point.attributes.add(key="route", value=common_pb2.AnyValue(string_value=route))
    return request.SerializeToString()


def test_rest_answers_equal_graphql(argus: ArgusProcess) -> None:
    service = f"rest-{uuid.uuid4().hex[:6]}"
    metric = f"rest_latency_{uuid.uuid4().hex[:6]}"
    trace_id = uuid.uuid4().bytes
    for path, body in (("traces", _trace_request(service, [trace_id])), ("metrics", _metrics(service, metric))):
        assert httpx.post(f"{argus.otlp_url}/v1/{path}", content=body, headers=PROTOBUF).status_code == 200
    api = f"{argus.api_url}/api/v1"

    def rest(path: str, **params: str | list[str]) -> object:
        response = httpx.get(f"{api}{path}", params=params, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    trace = eventually(lambda: httpx.get(f"{api}/traces/{trace_id.hex()}", timeout=10).json()
                       if httpx.get(f"{api}/traces/{trace_id.hex()}", timeout=10).status_code == 200 else None)
    span_fields = "traceId spanId name service startTimeUnixNano durationNano attributes kind statusCode"
    graphql_trace = argus.graphql(
        f'query($id: String!) {{ trace(traceId: $id) {{ traceId spanCount spans {{ {span_fields} }} }} }}',
        {"id": trace_id.hex()},
    )["trace"]
    assert trace["traceId"] == graphql_trace["traceId"] and trace["spanCount"] == graphql_trace["spanCount"]
    assert [{k: s[k] for k in span_fields.split()} for s in trace["spans"]] == graphql_trace["spans"]

    window = {"start": "1699999999000000000", "end": "1700000001000000000"}  # _trace_request's time
    found = rest("/traces", service=service, **window)
    assert [t["traceId"] for t in found] == [trace_id.hex()]
    assert found == argus.graphql(
        """query($s: String!) { traces(filter: {service: $s, start: "1699999999000000000",
            end: "1700000001000000000"}) {
            traceId rootService rootName startTimeUnixNano durationNano spanCount errorCount services hasError } }""",
        {"s": service},
    )["traces"]

    eventually(lambda: metric in {m["name"] for m in rest("/metrics")})  # type: ignore[union-attr]
    assert rest(f"/metrics/{metric}/labels/route/values") == ["/a", "/b"]
    series = rest(f"/metrics/{metric}/series", start="now-10m", step="1m", aggregation="MAX",
                  groupBy="route", matchers=f'service.name="{service}"')
    expected = argus.graphql(
        f"""query {{ metricSeries(query: {{metric: "{metric}", start: "now-10m", step: "1m",
            aggregation: MAX, groupBy: ["route"],
            matchers: [{{label: "service.name", op: "=", value: "{service}"}}]}}) {{
            labels points {{ timeUnixNano value }} }} }}"""
    )["metricSeries"]
    assert series == expected and len(series) == 2

    # Nested results come whole; only per-item correlation links are left to their endpoints.
    behind = rest(f"/metrics/{metric}/traces", time="now", window="10m")
    assert set(behind) == {"source", "traces", "exemplars"}  # type: ignore[arg-type]
    histogram = rest("/logs/histogram", start="now-10m", step="1m")
    assert {"trace", "error", "total"} <= set(histogram["buckets"][0])  # type: ignore[index]

    assert httpx.get(f"{api}/traces/{'0' * 31}1", timeout=10).status_code == 404
    bad = httpx.get(f"{api}/traces", params={"minDuration": "soon"}, timeout=10)
    assert bad.status_code == 400 and "minDuration" in bad.json()["error"] or "duration" in bad.json()["error"]
    assert httpx.get(f"{api}/traces", params={"nonsense": "1"}, timeout=10).status_code == 400


def test_openapi_describes_every_endpoint(argus: ArgusProcess) -> None:
    document = httpx.get(f"{argus.api_url}/api/v1/openapi.json", timeout=10).json()
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    assert "/api/v1/metrics/{metric}/series" in paths
    series = paths["/api/v1/metrics/{metric}/series"]["get"]
    names = {p["name"]: p for p in series["parameters"]}
    assert names["metric"]["in"] == "path" and names["metric"]["required"]
    assert names["aggregation"]["schema"]["enum"] == ["SUM", "AVG", "MIN", "MAX", "COUNT"]
    for path, item in paths.items():
        concrete = (path.replace("{traceId}", "0" * 31 + "1").replace("{metric}", "m")
                    .replace("{label}", "l").replace("{service}", "s"))
        response = httpx.get(f"{argus.api_url}{concrete}", timeout=10)
        required = [p["name"] for p in item["get"]["parameters"]
                    if p["required"] and p["in"] == "query"]
        if required:  # asked without them: a 400 that names what is missing
            assert response.status_code == 400, (path, response.text)
            assert any(name in response.json()["error"] for name in required), response.text
        else:
            assert response.status_code in (200, 404), (path, response.text)
