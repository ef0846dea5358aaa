"""Tiny helpers for building OTLP protobuf messages with the `opentelemetry.proto` classes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeAlias

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

AttrValue: TypeAlias = str | bool | int | float

# OTLP SeverityNumber values (logs data model).
DEBUG, INFO, WARN, ERROR = 5, 9, 13, 17
SEVERITY_TEXT = {DEBUG: "DEBUG", INFO: "INFO", WARN: "WARN", ERROR: "ERROR"}

SCHEMA_URL = "https://opentelemetry.io/schemas/1.26.0"


def any_value(value: AttrValue) -> AnyValue:
    # bool before int: bool is a subclass of int.
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=value)


def kv(key: str, value: AttrValue) -> KeyValue:
    return KeyValue(key=key, value=any_value(value))


def key_values(attrs: Mapping[str, AttrValue] | Iterable[tuple[str, AttrValue]]) -> list[KeyValue]:
    items = attrs.items() if isinstance(attrs, Mapping) else attrs
    return [kv(k, v) for k, v in items]


def resource(attrs: Mapping[str, AttrValue]) -> Resource:
    return Resource(attributes=key_values(attrs))


def scope(name: str, version: str) -> InstrumentationScope:
    return InstrumentationScope(name=name, version=version)


def attributes_dict(kvs: Iterable[KeyValue]) -> dict[str, AttrValue]:
    """Decode a KeyValue list back into a dict (scalars only); used by tests and the bench."""
    out: dict[str, AttrValue] = {}
    for item in kvs:
        which = item.value.WhichOneof("value")
        if which is not None and which in (
            "string_value",
            "bool_value",
            "int_value",
            "double_value",
        ):
            out[item.key] = getattr(item.value, which)
    return out
