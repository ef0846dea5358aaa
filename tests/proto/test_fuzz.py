"""Property: for any bytes, and for valid requests mutated at random, parse_request +
validate + to_model either succeed or raise DecodeError, never anything else; and when
validate accepts, to_model returns exactly the accepted number of items."""

from __future__ import annotations

import os
from typing import Any

import orjson
from argus.proto.otlp import DecodeError, Encoding, Signal, parse_request, to_model, validate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .builders import logs_request, metrics_request, to_otlp_json, traces_request

# 150 examples per test keeps the suite fast; FUZZ_EXAMPLES=5000 for a deeper search.
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

MESSAGES = {
    Signal.TRACES: traces_request(),
    Signal.METRICS: metrics_request(),
    Signal.LOGS: logs_request(),
}
PROTOBUF_BODIES = {signal: message.SerializeToString() for signal, message in MESSAGES.items()}
JSON_DOCUMENTS = {
    signal: [
        orjson.loads(to_otlp_json(message)),
        orjson.loads(to_otlp_json(message, enum_names=True, snake_case=True)),
    ]
    for signal, message in MESSAGES.items()
}


def _run(signal: Signal, encoding: Encoding, body: bytes) -> None:
    try:
        parsed = parse_request(signal, encoding, body)
        result = validate(signal, parsed)
    except DecodeError:
        return
    items = to_model(signal, parsed)  # must not raise: validate accepted the request
    assert len(items) == result.accepted
    assert result.rejected >= 0 and (result.rejected == 0 or result.message)


signals = st.sampled_from(list(Signal))
encodings = st.sampled_from(list(Encoding))


@FUZZ
@given(signal=signals, encoding=encodings, body=st.binary(max_size=512))
def test_arbitrary_bytes(signal: Signal, encoding: Encoding, body: bytes) -> None:
    _run(signal, encoding, body)


@FUZZ
@given(signal=signals, data=st.data())
def test_mutated_protobuf(signal: Signal, data: st.DataObject) -> None:
    body = bytearray(PROTOBUF_BODIES[signal])
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(body)))
        action = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if action == "flip" and at < len(body):
            body[at] = data.draw(st.integers(0, 255))
        elif action == "insert":
            body[at:at] = data.draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del body[at : at + data.draw(st.integers(1, 8))]
        elif action == "truncate":
            del body[at:]
    _run(signal, Encoding.PROTOBUF, bytes(body))


# Values worth trying anywhere in a document: every JSON type, and the strings and numbers
# the OTLP mapping gives meaning to.
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),  # what orjson can write
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [
            "", "NaN", "Infinity", "-Infinity", "1.5", "12", "-1", "18446744073709551616",
            "SPAN_KIND_SERVER", "STATUS_CODE_ERROR", "SEVERITY_NUMBER_INFO",
            "AGGREGATION_TEMPORALITY_DELTA", "5b8efff798038103d269b633813fc60c",
            "eee19b7ec3c1b174", "AP8=", "not hex", "zz",
        ]
    ),
    st.text(max_size=20),
)  # fmt: skip
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(
            st.sampled_from(["stringValue", "intValue", "arrayValue", "values", "key", "x"]),
            children,
            max_size=3,
        ),
    ),
    max_leaves=8,
)


def _mutate(document: Any, data: st.DataObject) -> Any:
    """Replace, delete or add one value somewhere in the document (in place)."""
    parent: Any = None
    node = document
    while isinstance(node, (dict, list)) and node and data.draw(st.integers(0, 4)) > 0:
        key = data.draw(
            st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node)))
        )
        parent, node = node, node[key]
    if parent is None:
        return document
    action = data.draw(st.sampled_from(["replace", "delete", "add"]))
    if action == "replace":
        parent[key] = data.draw(json_values)
    elif action == "delete":
        del parent[key]
    elif isinstance(parent, dict):
        parent[data.draw(st.text(max_size=12))] = data.draw(json_values)
    else:
        parent.append(data.draw(json_values))
    return document


@FUZZ
@given(signal=signals, data=st.data())
def test_mutated_json(signal: Signal, data: st.DataObject) -> None:
    document = orjson.loads(orjson.dumps(data.draw(st.sampled_from(JSON_DOCUMENTS[signal]))))
    for _ in range(data.draw(st.integers(1, 5))):
        document = _mutate(document, data)
    _run(signal, Encoding.JSON, orjson.dumps(document))
