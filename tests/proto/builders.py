"""Rich OTLP requests built as protobuf messages, and their OTLP/JSON forms.

Each request sets every field the model keeps, at least once, next to items that the
validation rules reject. `FULL_*` items have known contents that the tests spell out.
"""

from __future__ import annotations

import base64
import math
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

TRACE_ID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN_ID = bytes.fromhex("eee19b7ec3c1b174")
PARENT_ID = bytes.fromhex("eee19b7ec3c1b173")
LINK_TRACE_ID = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
LINK_SPAN_ID = bytes.fromhex("b7ad6b7169203331")

# One attribute of every AnyValue kind, nested kinds included, and the model's form.
EVERY_KIND_PB: dict[str, dict[str, Any]] = {
    "str": {"string_value": "text é ✓"},
    "empty_str": {"string_value": ""},
    "bool": {"bool_value": True},
    "false": {"bool_value": False},
    "int": {"int_value": -(2**63)},
    "zero": {"int_value": 0},
    "double": {"double_value": 637.704},
    "inf": {"double_value": math.inf},
    "bytes": {"bytes_value": b"\x00\xffbinary"},
    "array": {
        "array_value": {
            "values": [{"string_value": "a"}, {"int_value": 2}, {}, {"array_value": {}}]
        }
    },
    "kvlist": {
        "kvlist_value": {
            "values": [
                {"key": "inner", "value": {"double_value": 1.5}},
                {"key": "nested", "value": {"kvlist_value": {}}},
                {"key": "none"},
            ]
        }
    },
    "empty": {},
}
EVERY_KIND_MODEL: dict[str, Any] = {
    "str": "text é ✓",
    "empty_str": "",
    "bool": True,
    "false": False,
    "int": -(2**63),
    "zero": 0,
    "double": 637.704,
    "inf": math.inf,
    "bytes": b"\x00\xffbinary",
    "array": ["a", 2, None, []],
    "kvlist": {"inner": 1.5, "nested": {}, "none": None},
    "empty": None,
}


def kvs(values: dict[str, Any]) -> list[KeyValue]:
    """KeyValues from {key: AnyValue-as-dict}, e.g. {"k": {"int_value": 1}}."""
    return [KeyValue(key=key, value=AnyValue(**_any(value))) for key, value in values.items()]


def _any(value: dict[str, Any]) -> dict[str, Any]:
    """AnyValue constructor arguments from the dict form used above."""
    if not value:
        return {}
    ((kind, inner),) = value.items()
    if kind == "array_value":
        return {kind: {"values": [AnyValue(**_any(v)) for v in inner.get("values", [])]}}
    if kind == "kvlist_value":
        pairs = [
            KeyValue(key=p["key"], value=AnyValue(**_any(p["value"])))
            if "value" in p
            else KeyValue(key=p["key"])
            for p in inner.get("values", [])
        ]
        return {kind: {"values": pairs}}
    return dict(value)


def attrs(**values: str | float | bool) -> list[KeyValue]:
    """KeyValues of plain scalars."""
    kinds = {bool: "bool_value", int: "int_value", float: "double_value", str: "string_value"}
    return kvs({key: {kinds[type(value)]: value} for key, value in values.items()})


# ---------------------------------------------------------------------------- traces


def traces_request() -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add(schema_url="https://opentelemetry.io/schemas/1.26.0")
    rs.resource.attributes.extend(kvs({"service.name": {"string_value": "checkout"}}))
    rs.resource.attributes.extend(kvs(EVERY_KIND_PB))
    rs.resource.dropped_attributes_count = 3
    ss = rs.scope_spans.add(schema_url="https://opentelemetry.io/schemas/1.25.0")
    ss.scope.name, ss.scope.version = "my.library", "1.0.0"
    ss.scope.attributes.extend(attrs(**{"scope.attr": "x"}))
    ss.scope.dropped_attributes_count = 2
    full = ss.spans.add(
        trace_id=TRACE_ID,
        span_id=SPAN_ID,
        parent_span_id=PARENT_ID,
        trace_state="rojo=00f067aa0ba902b7",
        flags=0x301,
        name="GET /items",
        kind=2,
        start_time_unix_nano=1544712660000000000,
        end_time_unix_nano=1544712661000000000,
        dropped_attributes_count=4,
        dropped_events_count=5,
        dropped_links_count=6,
    )
    full.attributes.extend(kvs(EVERY_KIND_PB))
    event = full.events.add(time_unix_nano=1544712660500000000, name="exception")
    event.attributes.extend(attrs(**{"exception.type": "ValueError"}))
    event.dropped_attributes_count = 1
    full.events.add()  # an all-default event
    link = full.links.add(
        trace_id=LINK_TRACE_ID, span_id=LINK_SPAN_ID, trace_state="k=v", flags=0x100
    )
    link.attributes.extend(attrs(**{"link.attr": 7}))
    link.dropped_attributes_count = 8
    full.status.code, full.status.message = 2, "boom"
    # Every kind and status code, and the open-enum fallback (kind 9, status 7).
    for kind in range(6):
        ss.spans.add(trace_id=TRACE_ID, span_id=bytes([kind + 1] * 8), kind=kind, name=f"k{kind}")
    odd = ss.spans.add(trace_id=TRACE_ID, span_id=bytes([9] * 8), kind=9)
    odd.status.code = 7
    ss.spans.add(trace_id=TRACE_ID, span_id=bytes([10] * 8)).status.code = 1
    # Rejected: each rule once.
    ss.spans.add(trace_id=bytes(16), span_id=SPAN_ID, name="zero trace id")
    ss.spans.add(trace_id=TRACE_ID[:8], span_id=SPAN_ID, name="short trace id")
    ss.spans.add(trace_id=TRACE_ID, span_id=bytes(8), name="zero span id")
    ss.spans.add(trace_id=TRACE_ID, span_id=SPAN_ID + b"\x01", name="long span id")
    ss.spans.add(trace_id=TRACE_ID, span_id=SPAN_ID, parent_span_id=b"\x01", name="parent")
    ss.spans.add(trace_id=TRACE_ID, span_id=SPAN_ID, name="bad link").links.add(
        trace_id=LINK_TRACE_ID, span_id=bytes(8)
    )
    # A second resource with no Resource message and a scope with no scope message.
    rs2 = request.resource_spans.add()
    ss2 = rs2.scope_spans.add()
    ss2.spans.add(trace_id=LINK_TRACE_ID, span_id=LINK_SPAN_ID, name="bare")
    rs2.scope_spans.add()  # empty envelope
    return request


# ---------------------------------------------------------------------------- metrics


def _exemplars(point: Any) -> None:
    e1 = point.exemplars.add(time_unix_nano=11, as_double=0.25, trace_id=TRACE_ID, span_id=SPAN_ID)
    e1.filtered_attributes.extend(attrs(user="u1"))
    point.exemplars.add(time_unix_nano=12, as_int=-3)
    point.exemplars.add(time_unix_nano=13)  # no value: reads as 0.0


def metrics_request() -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add(schema_url="https://opentelemetry.io/schemas/1.26.0")
    rm.resource.attributes.extend(attrs(**{"service.name": "checkout"}))
    rm.resource.dropped_attributes_count = 1
    sm = rm.scope_metrics.add(schema_url="scope-schema")
    sm.scope.name, sm.scope.version = "meter", "2.0"
    sm.scope.attributes.extend(attrs(a=1))
    sm.scope.dropped_attributes_count = 9

    gauge = sm.metrics.add(name="g", description="a gauge", unit="ms")
    gauge.metadata.extend(kvs({"meta": {"string_value": "m"}, "n": {"int_value": 5}}))
    p = gauge.gauge.data_points.add(
        start_time_unix_nano=1, time_unix_nano=2, as_double=1.5, flags=1
    )
    p.attributes.extend(kvs(EVERY_KIND_PB))
    _exemplars(p)
    gauge.gauge.data_points.add(time_unix_nano=3, as_int=-(2**63))
    gauge.gauge.data_points.add(time_unix_nano=4)  # rejected: no value

    total = sm.metrics.add(name="s", unit="By")
    total.sum.aggregation_temporality, total.sum.is_monotonic = 2, True
    total.sum.data_points.add(start_time_unix_nano=5, time_unix_nano=6, as_int=2**63 - 1)
    odd = sm.metrics.add(name="s.delta.odd")
    odd.sum.aggregation_temporality = 5  # unknown: kept as UNSPECIFIED
    odd.sum.data_points.add(as_double=-0.0)

    hist = sm.metrics.add(name="h", description="a histogram")
    hist.histogram.aggregation_temporality = 1
    hp = hist.histogram.data_points.add(
        start_time_unix_nano=7,
        time_unix_nano=8,
        count=10,
        sum=55.5,
        bucket_counts=[1, 2, 7],
        explicit_bounds=[-math.inf, 10.0],
        min=-1.0,
        max=99.0,
        flags=1,
    )
    hp.attributes.extend(attrs(route="/a"))
    _exemplars(hp)
    hist.histogram.data_points.add(time_unix_nano=9, count=0, sum=0.0)  # sum 0 is present
    hist.histogram.data_points.add(time_unix_nano=10, count=3)  # no sum/min/max, no buckets
    hist.histogram.data_points.add(bucket_counts=[1, 2], explicit_bounds=[1, 2])  # rejected
    hist.histogram.data_points.add(bucket_counts=[1, 2, 3], explicit_bounds=[2, 1])  # rejected
    hist.histogram.data_points.add(explicit_bounds=[1, 1])  # rejected: not strictly increasing
    hist.histogram.data_points.add(explicit_bounds=[math.nan])  # rejected: NaN bound

    exp = sm.metrics.add(name="e", unit="s")
    exp.exponential_histogram.aggregation_temporality = 2
    ep = exp.exponential_histogram.data_points.add(
        start_time_unix_nano=11,
        time_unix_nano=12,
        count=6,
        sum=20.0,
        scale=-3,
        zero_count=1,
        min=0.0,
        max=9.0,
        zero_threshold=1e-9,
        flags=1,
    )
    ep.positive.offset, ep.negative.offset = -2, 3
    ep.positive.bucket_counts.extend([1, 2])
    ep.negative.bucket_counts.extend([2])
    ep.attributes.extend(attrs(x=True))
    _exemplars(ep)
    exp.exponential_histogram.data_points.add(time_unix_nano=13)  # no buckets at all

    summary = sm.metrics.add(name="q", description="a summary", unit="s")
    sp = summary.summary.data_points.add(
        start_time_unix_nano=14, time_unix_nano=15, count=4, sum=10.0, flags=1
    )
    sp.quantile_values.add(quantile=0.0, value=1.0)
    sp.quantile_values.add(quantile=1.0, value=4.0)
    sp.attributes.extend(attrs(q="x"))
    summary.summary.data_points.add()  # all defaults

    sm.metrics.add(name="nodata", description="no data set")
    nameless = sm.metrics.add(name="")
    nameless.gauge.data_points.add(as_int=1)
    nameless.gauge.data_points.add(as_int=2)
    rm2 = request.resource_metrics.add()
    rm2.scope_metrics.add().metrics.add(name="bare").gauge.data_points.add(as_int=1)
    return request


# ---------------------------------------------------------------------------- logs


def logs_request() -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add(schema_url="res-schema")
    rl.resource.attributes.extend(attrs(**{"service.name": "api"}))
    rl.resource.dropped_attributes_count = 2
    sl = rl.scope_logs.add(schema_url="scope-schema")
    sl.scope.name, sl.scope.version = "logger", "0.1"
    sl.scope.attributes.extend(attrs(s="t"))
    sl.scope.dropped_attributes_count = 1
    full = sl.log_records.add(
        time_unix_nano=1544712660300000000,
        observed_time_unix_nano=1544712660300000001,
        severity_number=17,
        severity_text="ERROR",
        dropped_attributes_count=3,
        flags=1,
        trace_id=TRACE_ID,
        span_id=SPAN_ID,
        event_name="app.crash",
    )
    full.body.kvlist_value.values.extend(kvs(EVERY_KIND_PB))
    full.attributes.extend(kvs(EVERY_KIND_PB))
    for name, value in EVERY_KIND_PB.items():
        record = sl.log_records.add(severity_text=name, observed_time_unix_nano=1)
        record.body.CopyFrom(AnyValue(**_any(value)))
        if not value:
            record.body.SetInParent()  # present but empty: still None
    sl.log_records.add(severity_text="no body")
    sl.log_records.add(severity_number=99, trace_id=bytes(16), span_id=bytes(8))  # all-zero ids
    sl.log_records.add(trace_id=TRACE_ID[:15], severity_text="rejected")
    sl.log_records.add(span_id=SPAN_ID[:7], severity_text="rejected")
    return request


# ---------------------------------------------------------------------------- JSON forms

_ID_KEYS = {"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"}


def to_otlp_json(message: Message, *, enum_names: bool = False, snake_case: bool = False) -> bytes:
    """OTLP/JSON for a message: json_format's proto3 mapping (int64 as strings, NaN as
    "NaN", bytes as base64) with trace and span ids in hex, as OTLP requires; with
    `enum_names`/`snake_case`, the mapping's other spellings that receivers accept."""
    document = json_format.MessageToDict(
        message,
        use_integers_for_enums=not enum_names,
        preserving_proto_field_name=snake_case,
    )
    return orjson.dumps(hex_ids(document))


def hex_ids(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: base64.b64decode(value).hex().upper() if key in _ID_KEYS else hex_ids(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [hex_ids(item) for item in node]
    return node


def base64_ids(node: Any) -> Any:
    """The inverse of hex_ids: OTLP/JSON back to what json_format.Parse reads."""
    if isinstance(node, dict):
        return {
            key: base64.b64encode(bytes.fromhex(value)).decode()
            if key in _ID_KEYS
            else base64_ids(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [base64_ids(item) for item in node]
    return node


def from_otlp_json(document: Any, message: Message) -> Message:
    """Build the protobuf form of an OTLP/JSON document (test oracle: json_format)."""
    json_format.ParseDict(base64_ids(document), message)
    return message
