"""OTLP/gRPC: the OTel SDK's gRPC exporters, and the receiver's status codes."""

from __future__ import annotations

import uuid

import grpc
import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.exporter import Compression
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tests.e2e.test_http_receiver import _trace_request
from tests.harness import ArgusProcess, eventually


def test_sdk_grpc_exporters_round_trip(argus: ArgusProcess) -> None:
    service = f"grpc-{uuid.uuid4().hex[:8]}"
    resource = Resource.create({"service.name": service})
    endpoint = f"http://{argus.grpc_target}"

    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True, compression=Compression.Gzip))
    )
    with tracer_provider.get_tracer("grpc.tests").start_as_current_span("grpc-op") as span:
        span.set_attribute("transport", "grpc")
        trace_id = format(span.get_span_context().trace_id, "032x")
        logger_provider = LoggerProvider(resource=resource)
        logger_provider.add_log_record_processor(
            SimpleLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True))
        )
        logger_provider.get_logger("grpc.tests").emit(
            body="over grpc", severity_number=SeverityNumber.INFO
        )
    tracer_provider.shutdown()
    logger_provider.shutdown()
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=endpoint, insecure=True), export_interval_millis=3_600_000
    )
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter_provider.get_meter("grpc.tests").create_counter("grpc.calls").add(5)
    meter_provider.shutdown()

    trace = eventually(
        lambda: argus.graphql(
            "query($t: String!) { trace(traceId: $t) { spans { name service attributes } } }",
            {"t": trace_id},
        )["trace"]
    )
    assert trace["spans"] == [{"name": "grpc-op", "service": service, "attributes": {"transport": "grpc"}}]
    logs = eventually(
        lambda: argus.graphql(
            "query($t: String!) { logs(filter: {traceId: $t}) { records { bodyText } } }", {"t": trace_id}
        )["logs"]["records"]
    )
    assert logs == [{"bodyText": "over grpc"}]
    points = eventually(
        lambda: argus.graphql(
            'query($s: String!) { metricPoints(metric: "grpc.calls", matchers: [{label: "service.name", value: $s}]) { intValue } }',
            {"s": service},
        )["metricPoints"]
    )
    assert points == [{"intValue": "5"}]


def _stub(argus: ArgusProcess) -> trace_service_pb2_grpc.TraceServiceStub:
    return trace_service_pb2_grpc.TraceServiceStub(grpc.insecure_channel(argus.grpc_target))


def test_partial_success_over_grpc(argus: ArgusProcess) -> None:
    request = trace_service_pb2.ExportTraceServiceRequest()
    request.ParseFromString(_trace_request("grpc-partial", [uuid.uuid4().bytes, b"short"]))
    response = _stub(argus).Export(request, timeout=10)
    assert response.partial_success.rejected_spans == 1
    assert "trace id" in response.partial_success.error_message


def test_full_success_leaves_partial_success_unset(argus: ArgusProcess) -> None:
    request = trace_service_pb2.ExportTraceServiceRequest()
    request.ParseFromString(_trace_request("grpc-ok", [uuid.uuid4().bytes]))
    assert not _stub(argus).Export(request, timeout=10).HasField("partial_success")


def test_undecodable_message_is_invalid_argument(argus: ArgusProcess) -> None:
    channel = grpc.insecure_channel(argus.grpc_target)
    export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
    with pytest.raises(grpc.RpcError) as error:
        export(b"\xff\xff\xff", timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_oversized_message_is_resource_exhausted(fresh_argus: ArgusProcess) -> None:
    config = fresh_argus.data_dir.parent / "small.toml"
    config.write_text("[ingest]\nmax_decompressed_bytes = 10000\n")
    fresh_argus.extra_args = ["--config", str(config)]
    server = fresh_argus.start()
    request = trace_service_pb2.ExportTraceServiceRequest()
    request.ParseFromString(_trace_request("grpc-big", [uuid.uuid4().bytes for _ in range(300)]))
    with pytest.raises(grpc.RpcError) as error:
        _stub(server).Export(request, timeout=10)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
