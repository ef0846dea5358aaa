"""Lossless JSON encoding of attribute maps and AnyValues for stores that keep them as text.

JSON keeps str, bool, int, float, list and dict apart on its own; bytes are the one OTLP
kind it lacks, so they are written as {"$bytes": "<base64>"}.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from .model import AnyValue, Attributes

_BYTES_KEY = "$bytes"
_BYTES_MARKER = b'"$bytes"'


def _default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {_BYTES_KEY: base64.b64encode(bytes(value)).decode("ascii")}
    raise TypeError(f"cannot encode {type(value).__name__} as an attribute value")


def encode_value(value: AnyValue | Attributes) -> bytes:
    """Encode an AnyValue (or a whole attribute map) as compact JSON bytes."""
    return orjson.dumps(value, default=_default)


def _restore_bytes(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and _BYTES_KEY in value:
            return base64.b64decode(value[_BYTES_KEY])
        return {key: _restore_bytes(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_restore_bytes(item) for item in value]
    return value


def decode_value(raw: bytes | str | None) -> Any:
    """Inverse of `encode_value`; None and "" decode to None."""
    if raw is None or raw == "" or raw == b"":
        return None
    data = raw.encode() if isinstance(raw, str) else raw
    decoded = orjson.loads(data)
    return _restore_bytes(decoded) if _BYTES_MARKER in data else decoded


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
