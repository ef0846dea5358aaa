"""Reading OTLP/JSON fields with the proto3 JSON mapping's types, as OTLP amends it.

* 64-bit integers as numbers or decimal strings; doubles as numbers or "NaN",
  "Infinity", "-Infinity" (or decimal strings);
* enums as integers or their names; `bytesValue` as base64 (standard or URL-safe);
* trace and span ids as hex strings in either case;
* a missing field or `null` is the field's default; unknown fields are ignored.

A value of the wrong type raises `FieldError`. Each enclosing reader adds its own step to
the error's path on the way out, so the message names the full path, and the hot path
never builds one. AnyValues are read in json_anyvalue.py, the request's envelopes in
json_request.py.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

JsonObject = dict[str, Any]

U64_MAX = 2**64 - 1
I64_MIN, I64_MAX = -(2**63), 2**63 - 1
U32_MAX = 2**32 - 1
I32_MIN, I32_MAX = -(2**31), 2**31 - 1

_SPECIAL_DOUBLES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
# Stand-in for an id that is not valid hex: its length fails every id rule, so the item
# is rejected for its id exactly as a protobuf id of the wrong length would be.
NOT_HEX = b"?"


class FieldError(Exception):
    """A JSON value has the wrong type for its field."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.parts: list[str] = [] if field is None else [field]

    def at(self, step: str) -> FieldError:
        self.parts.append(step)
        return self

    @property
    def path(self) -> str:
        return ".".join(reversed(self.parts))


def index_of(items: list[Any], item: Any) -> int:
    """Position of `item` in `items` by identity; used only to word an error."""
    return next(i for i, candidate in enumerate(items) if candidate is item)


# ---------------------------------------------------------------------------- containers


def objects(obj: JsonObject, key: str) -> list[JsonObject]:
    """A repeated message field: a list of objects (`[]` when missing)."""
    items = obj.get(key)
    if items is None:
        return []
    if type(items) is not list:
        raise FieldError("expected an array", key)
    for item in items:
        if type(item) is not dict:
            raise FieldError("expected an object", f"{key}[{index_of(items, item)}]")
    return items


def optional_object(obj: JsonObject, key: str) -> JsonObject | None:
    value = obj.get(key)
    if value is None or type(value) is dict:
        return value
    raise FieldError("expected an object", key)


# ---------------------------------------------------------------------------- scalars


def string(obj: JsonObject, key: str) -> str:
    value = obj.get(key)
    if type(value) is str:
        return value
    if value is None:
        return ""
    raise FieldError("expected a string", key)


def boolean(obj: JsonObject, key: str) -> bool:
    value = obj.get(key)
    if type(value) is bool:
        return value
    if value is None:
        return False
    raise FieldError("expected true or false", key)


def integer(value: Any, low: int, high: int) -> int:
    """One integer field value in [low, high]; raises FieldError without a field name."""
    kind = type(value)
    if kind is int:
        number: int = value
    elif kind is str and value.isascii() and len(value) <= 21:
        digits = value[1:] if value[:1] == "-" else value
        if not digits.isdigit():
            raise FieldError("expected an integer")
        number = int(value)
    elif kind is float and value.is_integer():
        number = int(value)
    else:
        raise FieldError("expected an integer")
    if low <= number <= high:
        return number
    raise FieldError(f"integer out of range [{low}, {high}]")


def uint64(obj: JsonObject, key: str) -> int:
    value = obj.get(key)
    if value is None:
        return 0
    # Fast paths: the usual decimal string (19 digits are always in range), or a number.
    if type(value) is str and len(value) < 20 and value.isascii() and value.isdigit():
        return int(value)
    if type(value) is int and 0 <= value <= U64_MAX:
        return value
    try:
        return integer(value, 0, U64_MAX)
    except FieldError as exc:
        raise exc.at(key) from None


def int_field(obj: JsonObject, key: str, low: int, high: int) -> int:
    value = obj.get(key)
    if value is None:
        return 0
    try:
        return integer(value, low, high)
    except FieldError as exc:
        raise exc.at(key) from None


def uint32(obj: JsonObject, key: str) -> int:
    value = obj.get(key)
    if value is None:
        return 0
    if type(value) is int and 0 <= value <= U32_MAX:
        return value
    return int_field(obj, key, 0, U32_MAX)


def double_value(value: Any) -> float:
    """One double field value; raises FieldError without a field name."""
    kind = type(value)
    if kind is float:
        return float(value)  # the same object; the call tells mypy its type
    if kind is int:
        # orjson yields int only within 64 bits, which always converts.
        return float(value)
    if kind is str:
        special = _SPECIAL_DOUBLES.get(value)
        if special is not None:
            return special
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            if math.isfinite(number):
                return number
    raise FieldError("expected a number")


def double(obj: JsonObject, key: str) -> float:
    value = obj.get(key)
    if type(value) is float:
        return value
    if value is None:
        return 0.0
    try:
        return double_value(value)
    except FieldError as exc:
        raise exc.at(key) from None


def optional_double(obj: JsonObject, key: str) -> float | None:
    """An `optional double` field: None when missing or null."""
    return None if obj.get(key) is None else double(obj, key)


def enum(obj: JsonObject, key: str, names: Mapping[str, int]) -> int:
    value = obj.get(key)
    if type(value) is int and I32_MIN <= value <= I32_MAX:
        return value
    if value is None:
        return 0
    if type(value) is str:
        number = names.get(value)
        if number is None:
            raise FieldError(f"unknown enum value {value[:64]!r}", key)
        return number
    return int_field(obj, key, I32_MIN, I32_MAX)


def uint64_list(obj: JsonObject, key: str) -> list[int]:
    values = obj.get(key)
    if values is None:
        return []
    if type(values) is not list:
        raise FieldError("expected an array", key)
    out = []
    for value in values:
        if type(value) is str and len(value) < 20 and value.isascii() and value.isdigit():
            value = int(value)  # the usual form: see uint64()
        elif type(value) is not int or not 0 <= value <= U64_MAX:
            try:
                value = integer(value, 0, U64_MAX)
            except FieldError as exc:
                raise exc.at(f"{key}[{index_of(values, value)}]") from None
        out.append(value)
    return out


def double_list(obj: JsonObject, key: str) -> list[float]:
    values = obj.get(key)
    if values is None:
        return []
    if type(values) is not list:
        raise FieldError("expected an array", key)
    out = []
    for value in values:
        if type(value) is not float:
            try:
                value = double_value(value)
            except FieldError as exc:
                raise exc.at(f"{key}[{index_of(values, value)}]") from None
        out.append(value)
    return out


def trace_or_span_id(obj: JsonObject, key: str) -> bytes:
    """An id as bytes, b"" when missing; NOT_HEX when the string is not hex, so the id rules
    reject the item rather than the whole request failing."""
    value = obj.get(key)
    if type(value) is str:
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            return NOT_HEX
        # fromhex skips whitespace; an id may not contain any.
        return raw if len(raw) * 2 == len(value) else NOT_HEX
    if value is None:
        return b""
    raise FieldError("expected a hex string", key)


def exact_id(obj: JsonObject, key: str) -> bytes:
    """An id that no rule checks (exemplars): one that is not hex fails the request."""
    raw = trace_or_span_id(obj, key)
    if raw is NOT_HEX:
        raise FieldError("expected a hex string", key)
    return raw
