"""Reading OTLP/JSON fields with the proto3 JSON mapping's types, as OTLP amends it.

* 64-bit integers as numbers or decimal strings; doubles as numbers or "NaN",
  "Infinity", "-Infinity" (or decimal strings);
* enums as integers or their names; `bytesValue` as base64 (standard or URL-safe);
* trace and span ids as hex strings in either case;
* a missing field or `null` is the field's default; unknown fields are ignored.

A value of the wrong type raises `FieldError`. Each enclosing reader adds its own step to
the error's path on the way out, so the message names the full path, and the hot path
never builds one.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ..storage.model import AnyValue, Attributes, Resource, Scope
from .rules import Tally

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
        return float(value)  # (a no-op that tells mypy the type)
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
        if type(value) is not int or not 0 <= value <= U64_MAX:
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


# ---------------------------------------------------------------------------- AnyValue


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


# ---------------------------------------------------------------------------- resource, scope


def resource(container: JsonObject) -> Resource:
    """The Resource of a ResourceSpans/Metrics/Logs object, with the container's schemaUrl."""
    schema_url = string(container, "schemaUrl")
    obj = optional_object(container, "resource")
    if obj is None:
        return Resource(schema_url=schema_url)
    try:
        # `entityRefs` (development status) has no place in the model yet and is not read.
        return Resource(attributes(obj), uint32(obj, "droppedAttributesCount"), schema_url)
    except FieldError as exc:
        raise exc.at("resource") from None


def scope(container: JsonObject) -> Scope:
    """The InstrumentationScope of a ScopeSpans/Metrics/Logs object, with its schemaUrl."""
    schema_url = string(container, "schemaUrl")
    obj = optional_object(container, "scope")
    if obj is None:
        return Scope(schema_url=schema_url)
    try:
        return Scope(
            string(obj, "name"),
            string(obj, "version"),
            attributes(obj),
            uint32(obj, "droppedAttributesCount"),
            schema_url,
        )
    except FieldError as exc:
        raise exc.at("scope") from None


# ---------------------------------------------------------------------------- the request


T = TypeVar("T")
ItemConverter = Callable[[JsonObject, Resource, Scope, Tally, list[T]], None]


def walk(
    request: JsonObject, keys: tuple[str, str, str], convert: ItemConverter[T], tally: Tally
) -> list[T]:
    """Run `convert` on every innermost object (span, metric, log record) of a request,
    with its shared Resource and Scope; `keys` names the three levels, outermost first."""
    resource_key, scope_key, item_key = keys
    out: list[T] = []
    resource_list = objects(request, resource_key)
    for resource_obj in resource_list:
        try:
            res = resource(resource_obj)
            scope_list = objects(resource_obj, scope_key)
            for scope_obj in scope_list:
                try:
                    scp = scope(scope_obj)
                    items = objects(scope_obj, item_key)
                    for item in items:
                        try:
                            convert(item, res, scp, tally, out)
                        except FieldError as exc:
                            raise exc.at(f"{item_key}[{index_of(items, item)}]") from None
                except FieldError as exc:
                    raise exc.at(f"{scope_key}[{index_of(scope_list, scope_obj)}]") from None
        except FieldError as exc:
            raise exc.at(f"{resource_key}[{index_of(resource_list, resource_obj)}]") from None
    return out
