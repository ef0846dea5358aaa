"""Configured attribute limits apply to what is stored, and are counted in /metrics."""

from __future__ import annotations


import httpx
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tests.harness import ArgusProcess, eventually


def test_limits_truncate_and_drop_what_the_sdk_sent(fresh_argus: ArgusProcess) -> None:
    config = fresh_argus.data_dir.parent / "attr-limits.toml"
    config.write_text("[limits]\nmax_attributes_per_item = 3\nmax_attribute_value_length = 5\n")
    fresh_argus.extra_args = ["--config", str(config)]
    server = fresh_argus.start()
    provider = TracerProvider(resource=Resource.create({"service.name": "limited"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{server.otlp_url}/v1/traces")))
    with provider.get_tracer("t").start_as_current_span("op") as span:
        span.set_attributes({"a": "abcdefgh", "b": 1, "c": True, "d": "dropped", "e": "dropped"})
        trace_id = format(span.get_span_context().trace_id, "032x")
    provider.shutdown()

    query = "query($t: String!) { trace(traceId: $t) { spans { attributes droppedAttributesCount } } }"
    trace = eventually(lambda: server.graphql(query, {"t": trace_id})["trace"])
    assert trace["spans"] == [{"attributes": {"a": "abcde", "b": 1, "c": True}, "droppedAttributesCount": 2}]
    metrics = httpx.get(f"{server.api_url}/metrics").text
    assert 'argus_limited_attributes_total{action="dropped",signal="traces"} 2.0' in metrics
    assert 'argus_limited_attributes_total{action="truncated",signal="traces"} 1.0' in metrics
