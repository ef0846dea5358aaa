"""JSON encodings of the parts of a metric point that are not plain columns.

Built on the shared attribute codec (`encode_value`), so bytes survive. JSON has no NaN or
infinity, so float fields that may hold them are written as the strings "nan", "inf",
"-inf" (a string in a float field is unambiguous) and turned back on decoding.
"""

from __future__ import annotations

import math
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


def _jf(value: float | None) -> float | int | str | None:
    """A float field for JSON: non-finite floats as their repr."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


def _uf(value: Any) -> Any:
    return float(value) if isinstance(value, str) else value


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
    return encode_value(values) if values else EMPTY_MAP


def decode_map(raw: str) -> dict[str, Any]:
    return decode_attributes(raw)


def encode_exemplars(exemplars: list[Exemplar]) -> str | None:
    if not exemplars:
        return None
    rows = [
        [e.time_unix_nano, _jf(e.value), e.trace_id, e.span_id, e.filtered_attributes]
        for e in exemplars
    ]
    return _encode(rows).decode()


def decode_exemplars(raw: str | None) -> list[Exemplar]:
    if raw is None:
        return []
    return [
        Exemplar(time, _uf(value), trace_id, span_id, attributes)
        for time, value, trace_id, span_id, attributes in decode_value(raw)
    ]


def encode_exponential(value: ExponentialHistogramValue) -> str:
    return _encode([
        value.count, _jf(value.sum), value.scale, value.zero_count,
        value.positive.offset, value.positive.bucket_counts,
        value.negative.offset, value.negative.bucket_counts,
        _jf(value.min), _jf(value.max), _jf(value.zero_threshold),
    ]).decode()


def decode_exponential(raw: str) -> ExponentialHistogramValue:
    (count, total, scale, zero_count, pos_offset, pos_counts, neg_offset, neg_counts,
     low, high, zero_threshold) = decode_value(raw)
    return ExponentialHistogramValue(
        count=count, sum=_uf(total), scale=scale, zero_count=zero_count,
        positive=ExponentialBuckets(pos_offset, pos_counts),
        negative=ExponentialBuckets(neg_offset, neg_counts),
        min=_uf(low), max=_uf(high), zero_threshold=_uf(zero_threshold),
    )


def encode_summary(value: SummaryValue) -> str:
    quantiles = [[_jf(q.quantile), _jf(q.value)] for q in value.quantile_values]
    return _encode([value.count, _jf(value.sum), quantiles]).decode()


def decode_summary(raw: str) -> SummaryValue:
    count, total, quantiles = decode_value(raw)
    return SummaryValue(count, _uf(total), [QuantileValue(_uf(q), _uf(v)) for q, v in quantiles])
