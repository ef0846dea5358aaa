"""Protobuf and JSON give the identical model for rich requests that set every field, and
that model is the one expected, field by field."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from argus.proto.otlp import Encoding, Signal, parse_request, to_model, validate
from argus.storage.model import (
    Exemplar,
    ExponentialBuckets,
    ExponentialHistogramValue,
    HistogramValue,
    LogRecord,
    MetricKind,
    MetricPoint,
    QuantileValue,
    Resource,
    Scope,
    Span,
    SpanEvent,
    SpanKind,
    SpanLink,
    StatusCode,
    SummaryValue,
    Temporality,
)
from google.protobuf.message import Message

from .builders import (
    EVERY_KIND_MODEL,
    LINK_SPAN_ID,
    LINK_TRACE_ID,
    PARENT_ID,
    SPAN_ID,
    TRACE_ID,
    logs_request,
    metrics_request,
    to_otlp_json,
    traces_request,
)

BUILDERS: dict[Signal, Callable[[], Message]] = {
    Signal.TRACES: traces_request,
    Signal.METRICS: metrics_request,
    Signal.LOGS: logs_request,
}


def _pretty(body: bytes) -> bytes:
    """The same document indented, so keys are followed by whitespace."""
    return orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2)


JSON_VARIANTS: dict[str, Callable[[Message], bytes]] = {
    "camelCase, integer enums": lambda m: to_otlp_json(m),
    "enum names": lambda m: to_otlp_json(m, enum_names=True),
    "snake_case keys": lambda m: to_otlp_json(m, snake_case=True),
    "snake_case, indented": lambda m: _pretty(to_otlp_json(m, snake_case=True)),
}


def _convert(signal: Signal, encoding: Encoding, body: bytes) -> tuple[Any, list[Any]]:
    parsed = parse_request(signal, encoding, body)
    result = validate(signal, parsed)
    items = to_model(signal, parsed)
    assert len(items) == result.accepted
    return result, items


@pytest.mark.parametrize("variant", JSON_VARIANTS)
@pytest.mark.parametrize("signal", list(Signal))
def test_protobuf_and_json_give_the_same_model(signal: Signal, variant: str) -> None:
    message = BUILDERS[signal]()
    pb_result, pb_items = _convert(signal, Encoding.PROTOBUF, message.SerializeToString())
    json_result, json_items = _convert(signal, Encoding.JSON, JSON_VARIANTS[variant](message))
    assert json_result == pb_result
    assert json_items == pb_items
    assert pb_result.rejected > 0 and pb_result.accepted > 0  # both paths were exercised


# ---------------------------------------------------------------------------- traces

RESOURCE = Resource(
    attributes={"service.name": "checkout", **EVERY_KIND_MODEL},
    dropped_attributes_count=3,
    schema_url="https://opentelemetry.io/schemas/1.26.0",
)
SCOPE = Scope(
    name="my.library",
    version="1.0.0",
    attributes={"scope.attr": "x"},
    dropped_attributes_count=2,
    schema_url="https://opentelemetry.io/schemas/1.25.0",
)
FULL_SPAN = Span(
    trace_id=TRACE_ID.hex(),
    span_id=SPAN_ID.hex(),
    parent_span_id=PARENT_ID.hex(),
    trace_state="rojo=00f067aa0ba902b7",
    flags=0x301,
    name="GET /items",
    kind=SpanKind.SERVER,
    start_time_unix_nano=1544712660000000000,
    end_time_unix_nano=1544712661000000000,
    resource=RESOURCE,
    scope=SCOPE,
    attributes=EVERY_KIND_MODEL,
    dropped_attributes_count=4,
    events=[
        SpanEvent(1544712660500000000, "exception", {"exception.type": "ValueError"}, 1),
        SpanEvent(0, "", {}, 0),
    ],
    dropped_events_count=5,
    links=[SpanLink(LINK_TRACE_ID.hex(), LINK_SPAN_ID.hex(), "k=v", {"link.attr": 7}, 8, 0x100)],
    dropped_links_count=6,
    status_code=StatusCode.ERROR,
    status_message="boom",
)


@pytest.mark.parametrize("encoding", list(Encoding))
def test_every_span_field(encoding: Encoding) -> None:
    message = traces_request()
    body = message.SerializeToString() if encoding == Encoding.PROTOBUF else to_otlp_json(message)
    _, spans = _convert(Signal.TRACES, encoding, body)
    assert spans[0] == FULL_SPAN
    assert [(s.name, s.kind) for s in spans[1:7]] == [(f"k{k}", SpanKind(k)) for k in range(6)]
    # Open enums: values the model has no member for fall back to the default member.
    assert (spans[7].kind, spans[7].status_code) == (SpanKind.UNSPECIFIED, StatusCode.UNSET)
    assert spans[8].status_code == StatusCode.OK
    bare = spans[9]
    assert (bare.name, bare.resource, bare.scope) == ("bare", Resource(), Scope())
    assert bare.parent_span_id == "" and bare.events == [] and bare.links == []
    assert all(s.resource is RESOURCE or s.resource == RESOURCE for s in spans[:9])
    assert len({id(s.scope) for s in spans[:9]}) == 1  # one Scope object per ScopeSpans


# ---------------------------------------------------------------------------- metrics

M_RESOURCE = Resource({"service.name": "checkout"}, 1, "https://opentelemetry.io/schemas/1.26.0")
M_SCOPE = Scope("meter", "2.0", {"a": 1}, 9, "scope-schema")


def _exemplars() -> list[Exemplar]:
    return [
        Exemplar(11, 0.25, TRACE_ID.hex(), SPAN_ID.hex(), {"user": "u1"}),
        Exemplar(12, -3),
        Exemplar(13, 0.0),
    ]


def _point(name: str, kind: MetricKind, **fields: Any) -> MetricPoint:
    fields.setdefault("time_unix_nano", 0)
    return MetricPoint(name=name, kind=kind, resource=M_RESOURCE, scope=M_SCOPE, **fields)


EXPECTED_POINTS = [
    _point(
        "g",
        MetricKind.GAUGE,
        description="a gauge",
        unit="ms",
        metadata={"meta": "m", "n": 5},
        start_time_unix_nano=1,
        time_unix_nano=2,
        value=1.5,
        flags=1,
        attributes=EVERY_KIND_MODEL,
        exemplars=_exemplars(),
    ),
    _point(
        "g",
        MetricKind.GAUGE,
        description="a gauge",
        unit="ms",
        metadata={"meta": "m", "n": 5},
        time_unix_nano=3,
        value=-(2**63),
    ),
    _point(
        "s",
        MetricKind.SUM,
        unit="By",
        temporality=Temporality.CUMULATIVE,
        is_monotonic=True,
        start_time_unix_nano=5,
        time_unix_nano=6,
        value=2**63 - 1,
    ),
    _point("s.delta.odd", MetricKind.SUM, value=-0.0),
    _point(
        "h",
        MetricKind.HISTOGRAM,
        description="a histogram",
        temporality=Temporality.DELTA,
        start_time_unix_nano=7,
        time_unix_nano=8,
        flags=1,
        attributes={"route": "/a"},
        histogram=HistogramValue(10, 55.5, [1, 2, 7], [-math.inf, 10.0], -1.0, 99.0),
        exemplars=_exemplars(),
    ),
    _point(
        "h",
        MetricKind.HISTOGRAM,
        description="a histogram",
        temporality=Temporality.DELTA,
        time_unix_nano=9,
        histogram=HistogramValue(0, 0.0, [], []),
    ),
    _point(
        "h",
        MetricKind.HISTOGRAM,
        description="a histogram",
        temporality=Temporality.DELTA,
        time_unix_nano=10,
        histogram=HistogramValue(3, None, [], []),
    ),
    _point(
        "e",
        MetricKind.EXPONENTIAL_HISTOGRAM,
        unit="s",
        temporality=Temporality.CUMULATIVE,
        start_time_unix_nano=11,
        time_unix_nano=12,
        flags=1,
        attributes={"x": True},
        exponential_histogram=ExponentialHistogramValue(
            count=6,
            sum=20.0,
            scale=-3,
            zero_count=1,
            positive=ExponentialBuckets(-2, [1, 2]),
            negative=ExponentialBuckets(3, [2]),
            min=0.0,
            max=9.0,
            zero_threshold=1e-9,
        ),
        exemplars=_exemplars(),
    ),
    _point(
        "e",
        MetricKind.EXPONENTIAL_HISTOGRAM,
        unit="s",
        temporality=Temporality.CUMULATIVE,
        time_unix_nano=13,
        exponential_histogram=ExponentialHistogramValue(
            0, None, 0, 0, ExponentialBuckets(), ExponentialBuckets()
        ),
    ),
    _point(
        "q",
        MetricKind.SUMMARY,
        description="a summary",
        unit="s",
        start_time_unix_nano=14,
        time_unix_nano=15,
        flags=1,
        attributes={"q": "x"},
        summary=SummaryValue(4, 10.0, [QuantileValue(0.0, 1.0), QuantileValue(1.0, 4.0)]),
    ),
    _point(
        "q",
        MetricKind.SUMMARY,
        description="a summary",
        unit="s",
        summary=SummaryValue(0, 0.0, []),
    ),
]


@pytest.mark.parametrize("encoding", list(Encoding))
def test_every_metric_field(encoding: Encoding) -> None:
    message = metrics_request()
    body = message.SerializeToString() if encoding == Encoding.PROTOBUF else to_otlp_json(message)
    result, points = _convert(Signal.METRICS, encoding, body)
    assert points[: len(EXPECTED_POINTS)] == EXPECTED_POINTS
    bare = points[len(EXPECTED_POINTS)]
    assert (bare.name, bare.value, bare.resource, bare.scope) == ("bare", 1, Resource(), Scope())
    assert len(points) == len(EXPECTED_POINTS) + 1
    assert result.rejected == 7 and "metric 'nodata' has no data" in result.message
    # Value types survive: ints stay int, doubles stay float, -0.0 keeps its sign.
    assert type(points[1].value) is int and type(points[0].value) is float
    negative_zero = points[3].value
    assert isinstance(negative_zero, float) and math.copysign(1.0, negative_zero) == -1.0
    assert points[0].metadata is points[1].metadata  # shared per metric


# ---------------------------------------------------------------------------- logs

L_RESOURCE = Resource({"service.name": "api"}, 2, "res-schema")
L_SCOPE = Scope("logger", "0.1", {"s": "t"}, 1, "scope-schema")


@pytest.mark.parametrize("encoding", list(Encoding))
def test_every_log_field(encoding: Encoding) -> None:
    message = logs_request()
    body = message.SerializeToString() if encoding == Encoding.PROTOBUF else to_otlp_json(message)
    result, records = _convert(Signal.LOGS, encoding, body)
    assert records[0] == LogRecord(
        time_unix_nano=1544712660300000000,
        observed_time_unix_nano=1544712660300000001,
        resource=L_RESOURCE,
        scope=L_SCOPE,
        severity_number=17,
        severity_text="ERROR",
        body=EVERY_KIND_MODEL,
        attributes=EVERY_KIND_MODEL,
        dropped_attributes_count=3,
        flags=1,
        trace_id=TRACE_ID.hex(),
        span_id=SPAN_ID.hex(),
        event_name="app.crash",
    )
    bodies = {r.severity_text: r.body for r in records[1 : 1 + len(EVERY_KIND_MODEL)]}
    assert bodies == EVERY_KIND_MODEL
    no_body, zero_ids = records[1 + len(EVERY_KIND_MODEL) :]
    assert no_body.body is None and no_body.trace_id == "" and no_body.span_id == ""
    assert (zero_ids.trace_id, zero_ids.span_id) == ("0" * 32, "0" * 16)
    assert zero_ids.severity_number == 99
    assert result.rejected == 2


def test_nan_values_survive_both_paths() -> None:
    message = logs_request()
    record = message.resource_logs[0].scope_logs[0].log_records[0]
    record.body.Clear()
    record.body.double_value = math.nan
    for encoding, body in (
        (Encoding.PROTOBUF, message.SerializeToString()),
        (Encoding.JSON, to_otlp_json(message)),
    ):
        _, records = _convert(Signal.LOGS, encoding, body)
        assert isinstance(records[0].body, float) and math.isnan(records[0].body)
