"""A root span's parent id sent as eight zero bytes is stored as no parent."""

from __future__ import annotations

import json

from argus.proto.otlp import Encoding, Signal, parse_request, to_model


def _request(parent: str) -> bytes:
    span = {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
            "parentSpanId": parent, "name": "root"}
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).encode()


def test_zero_parent_is_no_parent() -> None:
    (span,) = to_model(Signal.TRACES, parse_request(Signal.TRACES, Encoding.JSON, _request("0" * 16)))
    assert span.parent_span_id == ""


def test_real_parent_is_kept() -> None:
    (span,) = to_model(
        Signal.TRACES, parse_request(Signal.TRACES, Encoding.JSON, _request("EEE19B7EC3C1B173"))
    )
    assert span.parent_span_id == "eee19b7ec3c1b173"
