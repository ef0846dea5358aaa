"""Lossless JSON encoding of attribute maps and AnyValues for stores that keep them as text.

JSON keeps str, bool, int, float, list and dict apart on its own. What it cannot hold is
tagged with a one-key object whose key starts with "$":

* bytes            -> {"$bytes": "<base64>"}
* NaN, +Inf, -Inf  -> {"$float": "NaN" | "Infinity" | "-Infinity"}
* a user map that itself has exactly one key starting with "$" -> {"$map": {...}}

The common case (no such values) is encoded by orjson in one call; only output that could
hold one of them (`null`, which is also how orjson writes NaN, or a `"$` key) takes the
slower tagging walk.
"""

from __future__ import annotations

import base64
import math
from typing import Any

import orjson

from .model import AnyValue, Attributes

_BYTES = "$bytes"
_FLOAT = "$float"
_MAP = "$map"
_SLOW_PATH_MARKERS = (b"null", b'"$')
_FLOAT_NAMES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {_BYTES: base64.b64encode(bytes(value)).decode("ascii")}
    raise TypeError(f"cannot encode {type(value).__name__} as an attribute value")


def _tag(value: Any) -> Any:
    """The value with every kind JSON lacks replaced by its tagged form."""
    if isinstance(value, float) and not math.isfinite(value):
        return {_FLOAT: "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {_BYTES: base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, list):
        return [_tag(item) for item in value]
    if isinstance(value, dict):
        tagged = {key: _tag(item) for key, item in value.items()}
        if len(tagged) == 1 and next(iter(tagged)).startswith("$"):
            return {_MAP: tagged}
        return tagged
    return value


def encode_value(value: AnyValue | Attributes) -> bytes:
    """Encode an AnyValue (or a whole attribute map) as compact JSON bytes."""
    encoded = orjson.dumps(value, default=_default)
    if b"null" in encoded or b'"$' in encoded:  # the _SLOW_PATH_MARKERS, unrolled: hot path
        return orjson.dumps(_tag(value))
    return encoded


def _untag(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            key, item = next(iter(value.items()))
            if key == _BYTES and isinstance(item, str):
                return base64.b64decode(item)
            if key == _FLOAT and item in _FLOAT_NAMES:
                return _FLOAT_NAMES[item]
            if key == _MAP and isinstance(item, dict):
                return {k: _untag(v) for k, v in item.items()}
        return {key: _untag(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_untag(item) for item in value]
    return value


def decode_value(raw: bytes | str | None) -> Any:
    """Inverse of `encode_value`; None and "" decode to None."""
    if raw is None or raw == "" or raw == b"":
        return None
    data = raw.encode() if isinstance(raw, str) else raw
    decoded = orjson.loads(data)
    return _untag(decoded) if b'"$' in data else decoded


def decode_attributes(raw: bytes | str | None) -> Attributes:
    decoded = decode_value(raw)
    return decoded if isinstance(decoded, dict) else {}


def value_as_label(value: AnyValue) -> str:
    """The string form of an attribute used for label matching and equality filters."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if value is None:
        return ""
    return encode_value(value).decode()
