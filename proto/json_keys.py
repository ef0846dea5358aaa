"""Accept the original proto field names (`trace_id`) beside lowerCamelCase (`traceId`).

The converters read lowerCamelCase keys only. Documents that may hold snake_case keys are
rewritten first; a cheap scan of the raw bytes spares the common all-camelCase request
that walk.
"""

from __future__ import annotations

import re
from typing import Any

from google.protobuf.descriptor import Descriptor
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


def _snake_to_camel(roots: list[Descriptor]) -> dict[str, str]:
    names: dict[str, str] = {}
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        message = stack.pop()
        if message.full_name in seen:
            continue
        seen.add(message.full_name)
        for field in message.fields:
            if field.name != field.json_name:
                names[field.name] = field.json_name
            if field.message_type is not None:
                stack.append(field.message_type)
    return names


SNAKE_TO_CAMEL: dict[str, str] = _snake_to_camel(
    [
        ExportTraceServiceRequest.DESCRIPTOR,
        ExportMetricsServiceRequest.DESCRIPTOR,
        ExportLogsServiceRequest.DESCRIPTOR,
    ]
)

# Every snake_case field name contains "_" and, as a key, is followed by `"` and `:`. In
# OTLP JSON the only other strings followed by `:` are camelCase keys, so a body this does
# not match has no snake_case key, unless the key is spelt with escapes (`trace\u005fid`);
# a body with no backslash at all has none. (Two searches: each is a fast scan for one
# literal first character, where one pattern with both would try every position.)
_SNAKE_KEY = re.compile(rb'_[a-z0-9_]*"\s*:')
_ESCAPED_ASCII = re.compile(rb"\\u00")


def may_have_snake_keys(body: bytes) -> bool:
    if _SNAKE_KEY.search(body) is not None:
        return True
    return b"\\" in body and _ESCAPED_ASCII.search(body) is not None


def camel_case_keys(document: Any) -> None:
    """Rename snake_case field names in place; where both spellings are given, camelCase
    wins. Iterative, because a document may nest deeper than Python's recursion limit."""
    stack = [document]
    while stack:
        node = stack.pop()
        if type(node) is dict:
            for key in [key for key in node if key in SNAKE_TO_CAMEL]:
                node.setdefault(SNAKE_TO_CAMEL[key], node.pop(key))
            stack.extend(value for value in node.values() if type(value) in (dict, list))
        elif type(node) is list:
            stack.extend(value for value in node if type(value) in (dict, list))
