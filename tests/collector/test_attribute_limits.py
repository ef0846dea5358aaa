"""Attribute limits: counts dropped, values truncated, dropped counts kept true."""

from __future__ import annotations

from argus.collector.attribute_limits import AttributeLimits
from argus.storage.model import (
    LogRecord,
    MetricKind,
    MetricPoint,
    Resource,
    Scope,
    Span,
    SpanEvent,
    SpanLink,
)


def _span(attributes: dict[str, object]) -> Span:
    return Span(
        trace_id="a" * 32, span_id="b" * 16, name="op", start_time_unix_nano=1,
        end_time_unix_nano=2, resource=Resource({"service.name": "s", "long": "x" * 50}),
        scope=Scope(), attributes=dict(attributes), dropped_attributes_count=1,
        events=[SpanEvent(1, "e", {f"e{i}": i for i in range(4)})],
        links=[SpanLink("c" * 32, "d" * 16, attributes={"l": "y" * 20})],
    )


def test_extra_attributes_are_dropped_and_counted_in_order() -> None:
    span = _span({f"k{i}": i for i in range(5)})
    counts = AttributeLimits(max_count=3).apply([span])
    assert span.attributes == {"k0": 0, "k1": 1, "k2": 2}
    assert span.dropped_attributes_count == 1 + 2  # what the SDK already dropped, plus ours
    assert span.events[0].attributes == {"e0": 0, "e1": 1, "e2": 2}
    assert span.events[0].dropped_attributes_count == 1
    assert counts.dropped == 3 and counts.truncated == 0


def test_long_values_are_truncated_inside_arrays_too() -> None:
    span = _span({"s": "x" * 10, "b": b"\x00" * 10, "a": ["y" * 10, "ok", 7], "n": 12345678901, "short": "abc"})
    log = LogRecord(1, 1, Resource(), Scope(), body="z" * 100, attributes={"msg": "m" * 9})
    point = MetricPoint("m", MetricKind.GAUGE, 1, Resource(), Scope(), attributes={"route": "r" * 8}, value=1.0)
    counts = AttributeLimits(max_count=0, max_value_length=4).apply([span, log, point])
    assert span.attributes == {"s": "xxxx", "b": b"\x00" * 4, "a": ["yyyy", "ok", 7], "n": 12345678901, "short": "abc"}
    assert span.links[0].attributes == {"l": "yyyy"}
    assert span.resource.attributes["long"] == "x" * 50  # resources are not limited
    assert log.attributes == {"msg": "mmmm"} and log.body == "z" * 100  # bodies are not attributes
    assert point.attributes == {"route": "rrrr"}
    assert counts.truncated == 6 and counts.dropped == 0


def test_items_within_the_limits_are_untouched() -> None:
    span = _span({"k": "v"})
    before = dict(span.attributes)
    counts = AttributeLimits(max_count=128, max_value_length=100).apply([span])
    assert span.attributes == before and span.dropped_attributes_count == 1
    assert (counts.dropped, counts.truncated) == (0, 0)
