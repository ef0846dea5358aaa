"""Any bytes sent to the receivers get a 4xx (or a 200 if they happen to decode), never a
5xx, a hang or a crash; the server keeps serving afterwards."""

from __future__ import annotations

import gzip
import os

import grpc
import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness import ArgusProcess

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
SIGNALS = ["traces", "metrics", "logs"]
CONTENT_TYPES = ["application/x-protobuf", "application/json"]

# Bytes biased towards what decoders trip on: protobuf tags and lengths, JSON syntax.
_json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(
        st.sampled_from(["resourceSpans", "resourceMetrics", "resourceLogs", "scopeSpans",
                         "spans", "traceId", "spanId", "metrics", "logRecords", "body",
                         "attributes", "key", "value", "stringValue", "intValue", "gauge",
                         "dataPoints", "asInt", "histogram", "bucketCounts"]),
        children, max_size=4,
    ),
    max_leaves=20,
)
_bodies = st.one_of(
    st.binary(max_size=2048),
    _json_like.map(lambda value: __import__("json").dumps(value).encode()),
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=_bodies,
    signal=st.sampled_from(SIGNALS),
    content_type=st.sampled_from(CONTENT_TYPES),
    compress=st.booleans(),
)
def test_http_never_answers_5xx(
    argus: ArgusProcess, body: bytes, signal: str, content_type: str, compress: bool
) -> None:
    headers = {"Content-Type": content_type}
    if compress:
        body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
    response = httpx.post(f"{argus.otlp_url}/v1/{signal}", content=body, headers=headers, timeout=10)
    assert response.status_code in (200, 400, 413, 415), (response.status_code, response.text)


@settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=2048), signal=st.sampled_from(
    ["trace.v1.TraceService", "metrics.v1.MetricsService", "logs.v1.LogsService"]
))
def test_grpc_never_answers_internal(argus: ArgusProcess, body: bytes, signal: str) -> None:
    with grpc.insecure_channel(argus.grpc_target) as channel:
        export = channel.unary_unary(f"/opentelemetry.proto.collector.{signal}/Export")
        try:
            export(body, timeout=10)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error


def test_server_still_serves_after_fuzzing(argus: ArgusProcess) -> None:
    assert httpx.get(f"{argus.api_url}/readyz").status_code == 200
    assert argus.graphql("{ services { name } }") is not None
