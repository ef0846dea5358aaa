"""GraphQL scalars for values GraphQL's own types cannot carry."""

from __future__ import annotations

from typing import Any, NewType

import orjson
import strawberry
from strawberry.scalars import JSON
from strawberry.types.scalar import ScalarDefinition

from ...storage.attributes import encode_value
from ..timeparse import TimeFormatError, parse_duration, parse_time


def _parse_int64(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        # strawberry reports ValueError from parse_value as a GraphQL input error
        raise ValueError("expected a 64-bit integer as a number or a decimal string")  # noqa: TRY004
    return int(value)


# 64-bit integers (nanosecond timestamps, counts) are sent as decimal strings, as OTLP/JSON
# does, because GraphQL's Int is 32 bits and JSON numbers lose precision above 2^53.
Int64 = NewType("Int64", int)
Time = NewType("Time", int)
Duration = NewType("Duration", int)

_INT64 = strawberry.scalar(
    name="Int64",
    serialize=str,
    parse_value=_parse_int64,
    description="A 64-bit integer, serialized as a decimal string.",
)


def _parse_time(value: Any) -> int:
    try:
        return parse_time(value)
    except TimeFormatError as exc:
        raise ValueError(str(exc)) from None


def _parse_duration(value: Any) -> int:
    try:
        return parse_duration(value)
    except TimeFormatError as exc:
        raise ValueError(str(exc)) from None


_TIME = strawberry.scalar(
    name="Time",
    serialize=str,
    parse_value=_parse_time,
    description="A point in time: RFC 3339, Unix nanoseconds, or relative (now, now-1h, -15m)."
    " Serialized as Unix nanoseconds in a decimal string.",
)

_DURATION = strawberry.scalar(
    name="Duration",
    serialize=str,
    parse_value=_parse_duration,
    description="A duration: 250ms, 1.5s, 1h30m, or nanoseconds."
    " Serialized as nanoseconds in a decimal string.",
)


# Give to the schema's StrawberryConfig: maps the NewTypes above to their GraphQL scalars.
SCALAR_MAP: dict[object, ScalarDefinition] = {Int64: _INT64, Time: _TIME, Duration: _DURATION}


def to_json(value: Any) -> JSON:
    """An attribute map or AnyValue as plain JSON; bytes become {"$bytes": base64}."""
    return orjson.loads(encode_value(value))  # type: ignore[no-any-return]


__all__ = ["JSON", "Duration", "Int64", "Time", "to_json"]
