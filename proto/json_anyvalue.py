"""OTLP/JSON AnyValue and KeyValue lists (attributes) -> model values.

Attributes are the bulk of most requests, so `attributes` reads the usual one-member
scalar values on a fast path that never raises, and leaves anything else, errors
included, to the general reader.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from ..storage.model import AnyValue, Attributes
from .json_fields import (
    I64_MAX,
    I64_MIN,
    FieldError,
    JsonObject,
    double_value,
    index_of,
    integer,
    string,
)

# Arrays and kvlists nest AnyValues; protobuf refuses messages nested past 100 levels
# (about 48 of AnyValue), and JSON gets a bound too, so no stack depth is ever at stake.
MAX_ANY_VALUE_DEPTH = 64


def any_value(value: Any, depth: int = 0) -> AnyValue:
    """An AnyValue object; None when no value is set."""
    if type(value) is not dict:
        raise FieldError("expected an object")
    found: str | None = None
    result: AnyValue = None
    for key, item in value.items():
        if item is None:
            continue
        reader = _SCALAR_READERS.get(key)
        if reader is None and key not in ("arrayValue", "kvlistValue"):
            continue  # an unknown field
        if found is not None:
            raise FieldError(f"only one value may be set, found {found} too", key)
        found = key
        try:
            if reader is not None:
                result = reader(item)
            elif key == "arrayValue":
                result = _array(item, depth + 1)
            else:
                result = _kvlist(item, depth + 1)
        except FieldError as exc:
            raise exc.at(key) from None
    return result


def _string(value: Any) -> str:
    if type(value) is str:
        return value
    raise FieldError("expected a string")


def _bool(value: Any) -> bool:
    if type(value) is bool:
        return value
    raise FieldError("expected true or false")


def _int64(value: Any) -> int:
    return integer(value, I64_MIN, I64_MAX)


def _bytes(value: Any) -> bytes:
    if type(value) is str:
        # The proto3 JSON mapping accepts standard or URL-safe base64, padded or not.
        text = value.replace("-", "+").replace("_", "/")
        try:
            return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            pass
    raise FieldError("expected a base64 string")


def _array(value: Any, depth: int) -> list[AnyValue]:
    if type(value) is not dict:
        raise FieldError("expected an object")
    if depth > MAX_ANY_VALUE_DEPTH:
        raise FieldError(f"values nested more than {MAX_ANY_VALUE_DEPTH} levels deep")
    items = value.get("values")
    if items is None:
        return []
    if type(items) is not list:
        raise FieldError("expected an array", "values")
    out: list[AnyValue] = []
    for item in items:
        try:
            out.append(any_value(item, depth))
        except FieldError as exc:
            raise exc.at(f"values[{index_of(items, item)}]") from None
    return out


def _kvlist(value: Any, depth: int) -> Attributes:
    if type(value) is not dict:
        raise FieldError("expected an object")
    if depth > MAX_ANY_VALUE_DEPTH:
        raise FieldError(f"values nested more than {MAX_ANY_VALUE_DEPTH} levels deep")
    return attributes(value, "values", depth)


_SCALAR_READERS: dict[str, Callable[[Any], AnyValue]] = {
    "stringValue": _string,
    "boolValue": _bool,
    "intValue": _int64,
    "doubleValue": double_value,
    "bytesValue": _bytes,
}


def attributes(obj: JsonObject, key: str = "attributes", depth: int = 0) -> Attributes:
    """A repeated KeyValue field as a dict (later duplicates of a key win); `depth` is how
    deep in AnyValues the field is."""
    pairs = obj.get(key)
    if pairs is None:
        return {}
    if type(pairs) is not list:
        raise FieldError("expected an array", key)
    out: Attributes = {}
    for pair in pairs:
        # Fast path for the usual {"key": "...", "value": {"<kind>Value": <scalar>}}; any
        # other shape, and any error, goes the general way, which words the error.
        if type(pair) is dict:
            name = pair.get("key")
            value = pair.get("value")
            if type(name) is str and type(value) is dict and len(value) == 1:
                text = value.get("stringValue")
                if type(text) is str:
                    out[name] = text
                    continue
                ((kind, item),) = value.items()
                quick = _QUICK_SCALARS.get(kind)
                if quick is not None:
                    result = quick(item)
                    if result is not _NO:
                        out[name] = result
                        continue
        try:
            name, item = _key_value(pair, depth)
        except FieldError as exc:
            raise exc.at(f"{key}[{index_of(pairs, pair)}]") from None
        out[name] = item
    return out


_NO: Any = object()


def _quick_int(value: Any) -> Any:
    if type(value) is str and len(value) < 19 and value.isascii() and value.isdigit():
        return int(value)  # at most 18 digits: always in range
    if type(value) is int and I64_MIN <= value <= I64_MAX:
        return value
    return _NO


# Readers of the common scalar kinds that answer _NO instead of raising.
_QUICK_SCALARS: dict[str, Callable[[Any], Any]] = {
    "intValue": _quick_int,
    "boolValue": lambda value: value if type(value) is bool else _NO,
    "doubleValue": lambda value: value if type(value) is float else _NO,
}


def _key_value(pair: Any, depth: int) -> tuple[str, AnyValue]:
    if type(pair) is not dict:
        raise FieldError("expected an object")
    name = string(pair, "key")
    value = pair.get("value")
    if value is None:
        return name, None
    try:
        return name, any_value(value, depth)
    except FieldError as exc:
        raise exc.at("value") from None
