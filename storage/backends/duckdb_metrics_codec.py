"""JSON encodings of the parts of a metric point that are not plain columns.

Built on the shared attribute codec (`encode_value`), so bytes, NaN and infinities survive.
"""

from __future__ import annotations

from typing import Any

from ..attributes import decode_attributes, decode_value, encode_value
from ..model import (
    Exemplar,
    ExponentialBuckets,
    ExponentialHistogramValue,
    QuantileValue,
    Resource,
    Scope,
    SummaryValue,
)

EMPTY_MAP = b"{}"


def _encode(value: Any) -> bytes:
    """`encode_value` for the nested lists built here (typed loosely: lists are invariant)."""
    return encode_value(value)


def encode_resource(resource: Resource) -> bytes:
    return encode_value(
        [resource.attributes, resource.dropped_attributes_count, resource.schema_url]
    )


def decode_resource(raw: str) -> Resource:
    attributes, dropped, schema_url = decode_value(raw)
    return Resource(attributes, dropped, schema_url)


def encode_scope(scope: Scope) -> bytes:
    return encode_value(
        [scope.name, scope.version, scope.attributes, scope.dropped_attributes_count,
         scope.schema_url]
    )


def decode_scope(raw: str) -> Scope:
    name, version, attributes, dropped, schema_url = decode_value(raw)
    return Scope(name, version, attributes, dropped, schema_url)


def encode_map(values: dict[str, Any]) -> bytes:
    """`encode_value(values)`, with the empty map (most points' metadata) shared."""
    return encode_value(values) if values else EMPTY_MAP


def decode_map(raw: str) -> dict[str, Any]:
    return decode_attributes(raw)


def encode_exemplars(exemplars: list[Exemplar]) -> str | None:
    if not exemplars:
        return None
    rows = [
        [e.time_unix_nano, e.value, e.trace_id, e.span_id, e.filtered_attributes]
        for e in exemplars
    ]
    return _encode(rows).decode()


def decode_exemplars(raw: str | None) -> list[Exemplar]:
    if raw is None:
        return []
    return [
        Exemplar(time, value, trace_id, span_id, attributes)
        for time, value, trace_id, span_id, attributes in decode_value(raw)
    ]


def encode_exponential(value: ExponentialHistogramValue) -> str:
    return _encode([
        value.count, value.sum, value.scale, value.zero_count,
        value.positive.offset, value.positive.bucket_counts,
        value.negative.offset, value.negative.bucket_counts,
        value.min, value.max, value.zero_threshold,
    ]).decode()


def decode_exponential(raw: str) -> ExponentialHistogramValue:
    (count, total, scale, zero_count, pos_offset, pos_counts, neg_offset, neg_counts,
     low, high, zero_threshold) = decode_value(raw)
    return ExponentialHistogramValue(
        count=count, sum=total, scale=scale, zero_count=zero_count,
        positive=ExponentialBuckets(pos_offset, pos_counts),
        negative=ExponentialBuckets(neg_offset, neg_counts),
        min=low, max=high, zero_threshold=zero_threshold,
    )


def encode_summary(value: SummaryValue) -> str:
    quantiles = [[q.quantile, q.value] for q in value.quantile_values]
    return _encode([value.count, value.sum, quantiles]).decode()


def decode_summary(raw: str) -> SummaryValue:
    count, total, quantiles = decode_value(raw)
    return SummaryValue(count, total, [QuantileValue(q, v) for q, v in quantiles])
