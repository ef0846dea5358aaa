"""OTLP/JSON decoding: what the mapping accepts, and the DecodeError (with the field's
path) for everything of the wrong type; protobuf bytes that cannot be decoded."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
from argus.proto.otlp import (
    DecodeError,
    Encoding,
    JsonRequest,
    Signal,
    parse_request,
    to_model,
    validate,
)
from argus.storage.model import LogRecord, MetricPoint, Span, SpanKind, StatusCode, Temporality

TRACE, SPAN = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
IDS = {"traceId": TRACE, "spanId": SPAN}


def _traces(*spans: dict[str, Any], resource: Any = None, scope: Any = None) -> dict[str, Any]:
    scope_spans: dict[str, Any] = {"spans": list(spans)}
    if scope is not None:
        scope_spans["scope"] = scope
    resource_spans: dict[str, Any] = {"scopeSpans": [scope_spans]}
    if resource is not None:
        resource_spans["resource"] = resource
    return {"resourceSpans": [resource_spans]}


def _metrics(*metrics: dict[str, Any]) -> dict[str, Any]:
    return {"resourceMetrics": [{"scopeMetrics": [{"metrics": list(metrics)}]}]}


def _logs(*records: dict[str, Any]) -> dict[str, Any]:
    return {"resourceLogs": [{"scopeLogs": [{"logRecords": list(records)}]}]}


def _gauge(point: dict[str, Any]) -> dict[str, Any]:
    return {"name": "g", "gauge": {"dataPoints": [point]}}


def _decode_error(signal: Signal, document: Any) -> str:
    parsed = parse_request(signal, Encoding.JSON, orjson.dumps(document))
    with pytest.raises(DecodeError) as caught:
        validate(signal, parsed)
    with pytest.raises(DecodeError) as again:
        to_model(signal, parsed)
    assert str(again.value) == str(caught.value)
    return str(caught.value)


def _convert(signal: Signal, document: Any) -> list[Any]:
    parsed = parse_request(signal, Encoding.JSON, orjson.dumps(document))
    result = validate(signal, parsed)
    items: list[Any] = to_model(signal, parsed)
    assert len(items) == result.accepted
    return items


def _span(**fields: Any) -> Span:
    [span] = _convert(Signal.TRACES, _traces({**IDS, **fields}))
    assert isinstance(span, Span)
    return span


def _point(point: dict[str, Any]) -> MetricPoint:
    [converted] = _convert(Signal.METRICS, _metrics(_gauge(point)))
    assert isinstance(converted, MetricPoint)
    return converted


def _body(value: Any) -> Any:
    [record] = _convert(Signal.LOGS, _logs({"body": value}))
    assert isinstance(record, LogRecord)
    return record.body


# ---------------------------------------------------------------------------- errors

SPAN_PATH = "resourceSpans[0].scopeSpans[0].spans[0]"
POINT_PATH = "resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints[0]"


@pytest.mark.parametrize(
    ("signal", "document", "message"),
    [
        (Signal.TRACES, {"resourceSpans": 5}, "resourceSpans: expected an array"),
        (Signal.TRACES, {"resourceSpans": [5]}, "resourceSpans[0]: expected an object"),
        (Signal.TRACES, {"resourceSpans": [None]}, "resourceSpans[0]: expected an object"),
        (
            Signal.TRACES,
            {"resourceSpans": [{}, {"scopeSpans": {}}]},
            "resourceSpans[1].scopeSpans: expected an array",
        ),
        (
            Signal.TRACES,
            {"resourceSpans": [{"scopeSpans": [{}, {"spans": [IDS, IDS, IDS, "x"]}]}]},
            "resourceSpans[0].scopeSpans[1].spans[3]: expected an object",
        ),
        (
            Signal.TRACES,
            {
                "resourceSpans": [
                    {
                        "scopeSpans": [
                            {},
                            {"spans": [IDS, IDS, IDS, {**IDS, "startTimeUnixNano": "x"}]},
                        ]
                    }
                ]
            },
            "resourceSpans[0].scopeSpans[1].spans[3].startTimeUnixNano: expected an integer",
        ),
        (Signal.TRACES, _traces({**IDS, "name": 5}), f"{SPAN_PATH}.name: expected a string"),
        (Signal.TRACES, _traces({**IDS, "name": ["x"]}), f"{SPAN_PATH}.name: expected a string"),
        (
            Signal.TRACES,
            _traces({**IDS, "traceId": 5}),
            f"{SPAN_PATH}.traceId: expected a hex string",
        ),
        (Signal.TRACES, _traces({**IDS, "kind": True}), f"{SPAN_PATH}.kind: expected an integer"),
        (Signal.TRACES, _traces({**IDS, "kind": 1.5}), f"{SPAN_PATH}.kind: expected an integer"),
        (
            Signal.TRACES,
            _traces({**IDS, "kind": "SPAN_KIND_BOGUS"}),
            f"{SPAN_PATH}.kind: unknown enum value 'SPAN_KIND_BOGUS'",
        ),
        (
            Signal.TRACES,
            _traces({**IDS, "kind": 2**31}),
            f"{SPAN_PATH}.kind: integer out of range [-2147483648, 2147483647]",
        ),
        (
            Signal.TRACES,
            _traces({**IDS, "flags": -1}),
            f"{SPAN_PATH}.flags: integer out of range [0, 4294967295]",
        ),
        (
            Signal.TRACES,
            _traces({**IDS, "endTimeUnixNano": "18446744073709551616"}),
            f"{SPAN_PATH}.endTimeUnixNano: integer out of range [0, 18446744073709551615]",
        ),
        (
            Signal.TRACES,
            _traces({**IDS, "endTimeUnixNano": 1.5}),
            f"{SPAN_PATH}.endTimeUnixNano: expected an integer",
        ),
        (
            Signal.TRACES,
            _traces({**IDS, "endTimeUnixNano": "1e9"}),
            f"{SPAN_PATH}.endTimeUnixNano: expected an integer",
        ),
        (
            Signal.TRACES,
            _traces({**IDS, "endTimeUnixNano": "9" * 5000}),
            f"{SPAN_PATH}.endTimeUnixNano: expected an integer",
        ),
        (
            Signal.TRACES,
            _traces({**IDS, "status": "ok"}),
            f"{SPAN_PATH}.status: expected an object",
        ),
        (
            Signal.TRACES,
            _traces({**IDS, "status": {"code": "STATUS_CODE_MAYBE"}}),
            f"{SPAN_PATH}.status.code: unknown enum value 'STATUS_CODE_MAYBE'",
        ),
        (
            Signal.TRACES,
            _traces({**IDS, "attributes": {}}),
            f"{SPAN_PATH}.attributes: expected an array",
        ),
        (
            Signal.TRACES,
            _traces({**IDS, "attributes": [{"key": "a", "value": {"stringValue": "x"}}, 7]}),
            f"{SPAN_PATH}.attributes[1]: expected an object",
        ),
        (
            Signal.TRACES,
            _traces({**IDS, "attributes": [{"key": 1, "value": {"stringValue": "x"}}]}),
            f"{SPAN_PATH}.attributes[0].key: expected a string",
        ),
        (
            Signal.TRACES,
            _traces({**IDS, "attributes": [{"key": "a", "value": "x"}]}),
            f"{SPAN_PATH}.attributes[0].value: expected an object",
        ),
        (
            Signal.TRACES,
            _traces({**IDS, "attributes": [{"key": "a", "value": {"intValue": "ten"}}]}),
            f"{SPAN_PATH}.attributes[0].value.intValue: expected an integer",
        ),
        (
            Signal.TRACES,
            _traces({**IDS, "attributes": [{"key": "a", "value": {"intValue": 2**63}}]}),
            (
                f"{SPAN_PATH}.attributes[0].value.intValue: integer out of range"
                " [-9223372036854775808, 9223372036854775807]"
            ),
        ),
        (
            Signal.TRACES,
            _traces({**IDS, "attributes": [{"key": "a", "value": {"boolValue": "true"}}]}),
            f"{SPAN_PATH}.attributes[0].value.boolValue: expected true or false",
        ),
        (
            Signal.TRACES,
            _traces({**IDS, "attributes": [{"key": "a", "value": {"doubleValue": "fast"}}]}),
            f"{SPAN_PATH}.attributes[0].value.doubleValue: expected a number",
        ),
        (
            Signal.TRACES,
            _traces({**IDS, "attributes": [{"key": "a", "value": {"bytesValue": "!!"}}]}),
            f"{SPAN_PATH}.attributes[0].value.bytesValue: expected a base64 string",
        ),
        (
            Signal.TRACES,
            _traces(
                {**IDS, "attributes": [{"key": "a", "value": {"stringValue": "x", "intValue": 1}}]}
            ),
            (
                f"{SPAN_PATH}.attributes[0].value.intValue: only one value may be set,"
                " found stringValue too"
            ),
        ),
        (
            Signal.TRACES,
            _traces(
                {
                    **IDS,
                    "attributes": [
                        {
                            "key": "a",
                            "value": {
                                "arrayValue": {
                                    "values": [
                                        {},
                                        {
                                            "kvlistValue": {
                                                "values": [{"key": "k", "value": {"intValue": []}}]
                                            }
                                        },
                                    ]
                                }
                            },
                        }
                    ],
                }
            ),
            (
                f"{SPAN_PATH}.attributes[0].value.arrayValue.values[1].kvlistValue.values[0]"
                ".value.intValue: expected an integer"
            ),
        ),
        (
            Signal.TRACES,
            _traces({**IDS, "attributes": [{"key": "a", "value": {"arrayValue": []}}]}),
            f"{SPAN_PATH}.attributes[0].value.arrayValue: expected an object",
        ),
        (
            Signal.TRACES,
            _traces({**IDS, "attributes": [{"key": "a", "value": {"arrayValue": {"values": 1}}}]}),
            f"{SPAN_PATH}.attributes[0].value.arrayValue.values: expected an array",
        ),
        (
            Signal.TRACES,
            _traces({**IDS, "events": [{}, {"name": 1}]}),
            f"{SPAN_PATH}.events[1].name: expected a string",
        ),
        (
            Signal.TRACES,
            _traces({**IDS, "links": [{**IDS, "flags": "x"}]}),
            f"{SPAN_PATH}.links[0].flags: expected an integer",
        ),
        (
            Signal.TRACES,
            _traces({**IDS, "links": [{"traceId": 1, "spanId": SPAN}]}),
            f"{SPAN_PATH}.links[0].traceId: expected a hex string",
        ),
        (
            Signal.TRACES,
            _traces(IDS, resource=[]),
            "resourceSpans[0].resource: expected an object",
        ),
        (
            Signal.TRACES,
            _traces(IDS, resource={"droppedAttributesCount": "many"}),
            "resourceSpans[0].resource.droppedAttributesCount: expected an integer",
        ),
        (
            Signal.TRACES,
            _traces(IDS, scope={"name": 1}),
            "resourceSpans[0].scopeSpans[0].scope.name: expected a string",
        ),
        (
            Signal.TRACES,
            {"resourceSpans": [{"schemaUrl": 1}]},
            "resourceSpans[0].schemaUrl: expected a string",
        ),
        # metrics
        (
            Signal.METRICS,
            _metrics({"name": "g", "gauge": []}),
            "resourceMetrics[0].scopeMetrics[0].metrics[0].gauge: expected an object",
        ),
        (
            Signal.METRICS,
            _metrics({"name": "g", "gauge": {}, "sum": {}}),
            (
                "resourceMetrics[0].scopeMetrics[0].metrics[0].sum: only one of gauge, sum,"
                " histogram, exponentialHistogram, summary may be set"
            ),
        ),
        (
            Signal.METRICS,
            _metrics({"name": "g", "unit": 1, "gauge": {}}),
            "resourceMetrics[0].scopeMetrics[0].metrics[0].unit: expected a string",
        ),
        (
            Signal.METRICS,
            _metrics({"name": "g", "metadata": [{"key": "k", "value": 1}], "gauge": {}}),
            "resourceMetrics[0].scopeMetrics[0].metrics[0].metadata[0].value: expected an object",
        ),
        (
            Signal.METRICS,
            _metrics({"name": "s", "sum": {"isMonotonic": "true", "dataPoints": []}}),
            (
                "resourceMetrics[0].scopeMetrics[0].metrics[0].sum.isMonotonic:"
                " expected true or false"
            ),
        ),
        (
            Signal.METRICS,
            _metrics({"name": "s", "sum": {"aggregationTemporality": "DELTA"}}),
            (
                "resourceMetrics[0].scopeMetrics[0].metrics[0].sum.aggregationTemporality:"
                " unknown enum value 'DELTA'"
            ),
        ),
        (
            Signal.METRICS,
            _metrics({"name": "g", "gauge": {"dataPoints": {}}}),
            "resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints: expected an array",
        ),
        (
            Signal.METRICS,
            _metrics(_gauge({"asInt": "1.5"})),
            f"{POINT_PATH}.asInt: expected an integer",
        ),
        (
            Signal.METRICS,
            _metrics(_gauge({"asDouble": {}})),
            f"{POINT_PATH}.asDouble: expected a number",
        ),
        (
            Signal.METRICS,
            _metrics(_gauge({"asDouble": 1, "asInt": 1})),
            f"{POINT_PATH}.asDouble: only one of asInt and asDouble may be set",
        ),
        (
            Signal.METRICS,
            _metrics(_gauge({"asInt": 1, "exemplars": [{"traceId": "nothex"}]})),
            f"{POINT_PATH}.exemplars[0].traceId: expected a hex string",
        ),
        (
            Signal.METRICS,
            _metrics(_gauge({"asInt": 1, "exemplars": [{"asDouble": []}]})),
            f"{POINT_PATH}.exemplars[0].asDouble: expected a number",
        ),
        (
            Signal.METRICS,
            _metrics(_gauge({"asInt": 1, "exemplars": [{"filteredAttributes": 1}]})),
            f"{POINT_PATH}.exemplars[0].filteredAttributes: expected an array",
        ),
        (
            Signal.METRICS,
            _metrics({"name": "h", "histogram": {"dataPoints": [{"bucketCounts": ["1", "x"]}]}}),
            (
                "resourceMetrics[0].scopeMetrics[0].metrics[0].histogram.dataPoints[0]"
                ".bucketCounts[1]: expected an integer"
            ),
        ),
        (
            Signal.METRICS,
            _metrics({"name": "h", "histogram": {"dataPoints": [{"explicitBounds": [1, "x"]}]}}),
            (
                "resourceMetrics[0].scopeMetrics[0].metrics[0].histogram.dataPoints[0]"
                ".explicitBounds[1]: expected a number"
            ),
        ),
        (
            Signal.METRICS,
            _metrics({"name": "h", "histogram": {"dataPoints": [{"sum": "lots"}]}}),
            (
                "resourceMetrics[0].scopeMetrics[0].metrics[0].histogram.dataPoints[0]"
                ".sum: expected a number"
            ),
        ),
        (
            Signal.METRICS,
            _metrics({"name": "e", "exponentialHistogram": {"dataPoints": [{"positive": 1}]}}),
            (
                "resourceMetrics[0].scopeMetrics[0].metrics[0].exponentialHistogram.dataPoints[0]"
                ".positive: expected an object"
            ),
        ),
        (
            Signal.METRICS,
            _metrics(
                {
                    "name": "e",
                    "exponentialHistogram": {"dataPoints": [{"negative": {"offset": 2**31}}]},
                }
            ),
            (
                "resourceMetrics[0].scopeMetrics[0].metrics[0].exponentialHistogram.dataPoints[0]"
                ".negative.offset: integer out of range [-2147483648, 2147483647]"
            ),
        ),
        (
            Signal.METRICS,
            _metrics(
                {"name": "q", "summary": {"dataPoints": [{"quantileValues": [{"value": "x"}]}]}}
            ),
            (
                "resourceMetrics[0].scopeMetrics[0].metrics[0].summary.dataPoints[0]"
                ".quantileValues[0].value: expected a number"
            ),
        ),
        # logs
        (
            Signal.LOGS,
            _logs({"body": 5}),
            "resourceLogs[0].scopeLogs[0].logRecords[0].body: expected an object",
        ),
        (
            Signal.LOGS,
            _logs({"body": {"stringValue": 5}}),
            "resourceLogs[0].scopeLogs[0].logRecords[0].body.stringValue: expected a string",
        ),
        (
            Signal.LOGS,
            _logs({"severityNumber": "SEVERITY_NUMBER_LOUD"}),
            (
                "resourceLogs[0].scopeLogs[0].logRecords[0].severityNumber:"
                " unknown enum value 'SEVERITY_NUMBER_LOUD'"
            ),
        ),
        (
            Signal.LOGS,
            _logs({}, {"observedTimeUnixNano": -5}),
            (
                "resourceLogs[0].scopeLogs[0].logRecords[1].observedTimeUnixNano:"
                " integer out of range [0, 18446744073709551615]"
            ),
        ),
        (
            Signal.LOGS,
            _logs({"spanId": ["ab"]}),
            "resourceLogs[0].scopeLogs[0].logRecords[0].spanId: expected a hex string",
        ),
    ],
)
def test_wrong_types_name_the_field(signal: Signal, document: Any, message: str) -> None:
    assert _decode_error(signal, document) == message


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"[]", b"5", b'"x"', b"null", b"\xff\xfe", b'{"a": NaN}', b"[" * 2000],
)
@pytest.mark.parametrize("signal", list(Signal))
def test_undecodable_json(signal: Signal, body: bytes) -> None:
    with pytest.raises(DecodeError):
        parse_request(signal, Encoding.JSON, body)


@pytest.mark.parametrize("body", [b"\xff", b"\x0a\x05abc", b"\x0a\x02\x12\xff", b"\x0b"])
@pytest.mark.parametrize("signal", list(Signal))
def test_undecodable_protobuf(signal: Signal, body: bytes) -> None:
    with pytest.raises(DecodeError, match="invalid protobuf"):
        parse_request(signal, Encoding.PROTOBUF, body)


@pytest.mark.parametrize("kind", ["arrayValue", "kvlistValue"])
def test_anyvalue_nesting_is_bounded(kind: str) -> None:
    def nested(levels: int) -> bytes:
        if kind == "arrayValue":
            opening, closing = b'{"arrayValue":{"values":[', b"]}}"
        else:
            opening, closing = b'{"kvlistValue":{"values":[{"key":"k","value":', b"}]}}"
        value = opening * levels + b'{"stringValue":"leaf"}' + closing * levels
        return b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":' + value + b"}]}]}]}"

    [record] = to_model(Signal.LOGS, parse_request(Signal.LOGS, Encoding.JSON, nested(64)))
    depth, node = 0, record.body
    while isinstance(node, (list, dict)):
        depth, node = depth + 1, node[0] if isinstance(node, list) else node["k"]
    assert (depth, node) == (64, "leaf")
    # Deeper: refused, however deep the caller's stack already is.
    with pytest.raises(DecodeError, match="nested more than 64 levels deep"):
        validate(Signal.LOGS, parse_request(Signal.LOGS, Encoding.JSON, nested(65)))
    with pytest.raises(DecodeError):
        validate(Signal.LOGS, parse_request(Signal.LOGS, Encoding.JSON, nested(330)))


# ---------------------------------------------------------------------------- accepted


def test_integers_as_strings_or_numbers() -> None:
    span = _span(startTimeUnixNano="1544712660000000000", endTimeUnixNano=1544712661000000000)
    assert (span.start_time_unix_nano, span.end_time_unix_nano) == (
        1544712660000000000,
        1544712661000000000,
    )
    assert _span(endTimeUnixNano=1e9).end_time_unix_nano == 1_000_000_000  # integral float
    assert _span(endTimeUnixNano="18446744073709551615").end_time_unix_nano == 2**64 - 1
    assert _point({"asInt": "-9223372036854775808"}).value == -(2**63)


def test_doubles_as_numbers_strings_and_special_values() -> None:
    assert _point({"asDouble": "NaN"}).value != _point({"asDouble": "NaN"}).value
    assert _point({"asDouble": "Infinity"}).value == math.inf
    assert _point({"asDouble": "-Infinity"}).value == -math.inf
    assert _point({"asDouble": "2.5"}).value == 2.5
    assert _point({"asDouble": 3}).value == 3.0
    assert type(_point({"asDouble": 3}).value) is float
    with pytest.raises(DecodeError, match="asDouble: expected a number"):
        _point({"asDouble": "inf"})  # only the mapping's own spellings


def test_enums_as_integers_or_names() -> None:
    span = _span(kind="SPAN_KIND_CLIENT", status={"code": "STATUS_CODE_ERROR"})
    assert (span.kind, span.status_code) == (SpanKind.CLIENT, StatusCode.ERROR)
    assert _span(kind=4).kind == SpanKind.PRODUCER
    [point] = _convert(
        Signal.METRICS,
        _metrics(
            {
                "name": "s",
                "sum": {
                    "aggregationTemporality": "AGGREGATION_TEMPORALITY_CUMULATIVE",
                    "dataPoints": [{"asInt": 1}],
                },
            }
        ),
    )
    assert point.temporality == Temporality.CUMULATIVE
    [record] = _convert(Signal.LOGS, _logs({"severityNumber": "SEVERITY_NUMBER_WARN"}))
    assert record.severity_number == 13


def test_null_and_missing_fields_are_defaults() -> None:
    nulls = {
        key: None
        for key in (
            "parentSpanId", "traceState", "flags", "name", "kind", "startTimeUnixNano",
            "endTimeUnixNano", "attributes", "droppedAttributesCount", "events",
            "droppedEventsCount", "links", "droppedLinksCount", "status",
        )
    }  # fmt: skip
    assert _span(**nulls) == _span()
    assert _span(status={"code": None, "message": None}).status_code == StatusCode.UNSET
    assert _body(None) is None
    assert _body({"stringValue": None}) is None
    assert _body({"stringValue": None, "intValue": 3}) == 3
    [span] = _convert(Signal.TRACES, _traces(IDS, resource=None, scope=None))
    assert span.resource.attributes == {} and span.scope.name == ""
    [pair] = _convert(Signal.TRACES, _traces({**IDS, "attributes": [{"key": None, "value": None}]}))
    assert pair.attributes == {"": None}


def test_unknown_fields_are_ignored() -> None:
    document = _traces({**IDS, "futureField": {"nested": [1, 2]}, "name": "n"})
    document["futureTopLevel"] = 1
    document["resourceSpans"][0]["resource"] = {"entityRefs": [{"type": "service"}]}
    [span] = _convert(Signal.TRACES, document)
    assert span.name == "n"
    assert _body({"stringValue": "x", "futureValue": 1}) == "x"
    # Profiles' string-table references mean nothing here: read as absent, as the proto says.
    assert _body({"stringValueStrindex": 3}) is None


def test_bytes_values_are_base64_in_either_alphabet() -> None:
    assert _body({"bytesValue": "AP8="}) == b"\x00\xff"
    assert _body({"bytesValue": "AP8"}) == b"\x00\xff"  # unpadded
    assert _body({"bytesValue": "_-8="}) == b"\xff\xef"  # URL-safe
    assert _body({"bytesValue": ""}) == b""


def test_snake_case_keys_and_camel_case_wins_when_both_given() -> None:
    body = (
        b'{"resource_spans":[{"scope_spans":[{"spans":[{"trace_id":"' + TRACE.encode()
        + b'","span_id":"' + SPAN.encode() + b'","name":"n","start_time_unix_nano":"5",'
        b'"startTimeUnixNano":"6"}]}]}]}'
    )  # fmt: skip
    [span] = to_model(Signal.TRACES, parse_request(Signal.TRACES, Encoding.JSON, body))
    assert (span.trace_id, span.name, span.start_time_unix_nano) == (TRACE, "n", 6)


def test_a_lone_snake_case_key_is_found_even_before_whitespace() -> None:
    body = (
        b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"' + TRACE.encode()
        + b'","span_id" \t\r\n: "' + SPAN.encode() + b'"}]}]}]}'
    )  # fmt: skip
    [span] = to_model(Signal.TRACES, parse_request(Signal.TRACES, Encoding.JSON, body))
    assert span.span_id == SPAN


def test_keys_written_with_escapes() -> None:
    body = (
        b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"trace\\u005fid":"' + TRACE.encode()
        + b'","span\\u005Fid":"' + SPAN.encode() + b'","n\\u0061me":"n"}]}]}]}'
    )  # fmt: skip
    [span] = to_model(Signal.TRACES, parse_request(Signal.TRACES, Encoding.JSON, body))
    assert (span.trace_id, span.span_id, span.name) == (TRACE, SPAN, "n")


def test_plain_dicts_are_accepted_too() -> None:
    document = {"resource_logs": [{"scope_logs": [{"log_records": [{"severity_text": "x"}]}]}]}
    assert type(document) is not JsonRequest
    [record] = to_model(Signal.LOGS, document)
    assert record.severity_text == "x"


def test_a_request_of_another_signal_is_a_caller_error() -> None:
    parsed = parse_request(Signal.LOGS, Encoding.PROTOBUF, b"")
    with pytest.raises(TypeError):
        validate(Signal.TRACES, parsed)
