"""Protobuf AnyValue, attributes, resource and scope -> the internal model.

These run once per attribute, so they read fields directly and branch on `WhichOneof`
rather than going through descriptors or `json_format`.
"""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry.proto.common.v1.common_pb2 import AnyValue as PbAnyValue
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as PbResource

from ..storage.model import AnyValue, Attributes, Resource, Scope

# Oneof members whose Python value is already the model's value.
_SCALARS = frozenset({"string_value", "bool_value", "int_value", "double_value", "bytes_value"})


def any_value(value: PbAnyValue) -> AnyValue:
    text = value.string_value  # see attributes()
    if text:
        return text
    which = value.WhichOneof("value")
    if which in _SCALARS:
        scalar: AnyValue = getattr(value, which)
        return scalar
    if which == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return attributes(value.kvlist_value.values)
    # Unset, or `string_value_strindex`: that one refers to the profiles signal's string
    # table, and the proto tells other signals to process it as if it were absent.
    return None


def attributes(pairs: Iterable[KeyValue]) -> Attributes:
    out: Attributes = {}
    for pair in pairs:
        value = pair.value
        # Strings are by far the most common kind, and a non-empty string_value can only
        # mean the oneof holds it: one read instead of WhichOneof plus a read.
        text = value.string_value
        if text:
            out[pair.key] = text
            continue
        which = value.WhichOneof("value")
        out[pair.key] = getattr(value, which) if which in _SCALARS else any_value(value)
    return out


def resource(message: PbResource, schema_url: str) -> Resource:
    # `entity_refs` (development status) has no place in the model yet and is not kept.
    return Resource(attributes(message.attributes), message.dropped_attributes_count, schema_url)


def scope(message: InstrumentationScope, schema_url: str) -> Scope:
    return Scope(
        message.name,
        message.version,
        attributes(message.attributes),
        message.dropped_attributes_count,
        schema_url,
    )
