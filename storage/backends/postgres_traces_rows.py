"""Spans to PostgreSQL rows and back, for postgres_traces.

Attribute maps, events and links are stored as `bytea` holding storage/attributes.py's
lossless JSON, which round-trips every AnyValue exactly. jsonb cannot: it rejects NUL in
strings and stores numbers as `numeric`, which turns -0.0 into 0 and 1e308 into a
309-digit integer. What queries need goes into a separate jsonb column, `labels`: the
map of each attribute key to its `value_as_label` string (both through `to_pg_text`), so
attribute filters compare exactly the strings the embedded store compares.

Resources and scopes are stored once per tenant and content digest; spans carry the
digest.

What trace analytics need of a span's attributes and events is computed here too
(span_analytics): the node a CLIENT/PRODUCER/CONSUMER span calls (`peer_type`,
`peer_system`, `peer_name`) and an error span's group (`error_type`, `error_message`), so
SQL never parses attribute JSON for them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..attributes import decode_attributes, decode_value, encode_value, value_as_label
from ..model import (
    AnyValue,
    Attributes,
    Resource,
    Scope,
    Span,
    SpanEvent,
    SpanKind,
    SpanLink,
    StatusCode,
)
from ..span_analytics import error_group, peer_of
from .postgres_common import I64_MAX, from_pg_text, to_pg_text
from .postgres_partitions import day_of

Row = tuple[Any, ...]

# COPY column order and the binary wire type of each. `labels` is a jsonb column, sent as
# bytea: jsonb's binary COPY format is a version byte (1) followed by the JSON text.
SPAN_COLUMNS = (
    "tenant", "trace_id", "span_id", "parent_span_id", "name", "service", "kind",
    "status_code", "start_ns", "end_ns", "duration_ns", "flags", "status_message",
    "trace_state", "attributes", "labels", "dropped_attributes_count", "events",
    "dropped_events_count", "links", "dropped_links_count", "resource_id", "scope_id",
    "peer_type", "peer_system", "peer_name", "error_type", "error_message",
)  # fmt: skip
COPY_TYPES = (
    "text", "text", "text", "text", "text", "text", "int2", "int2", "int8", "int8", "int8",
    "int8", "text", "text", "bytea", "bytea", "int8", "bytea", "int8", "bytea", "int8",
    "bytea", "bytea", "text", "text", "text", "text", "text",
)  # fmt: skip
_NO_ANALYTICS = (None, None, None, None, None)
_JSONB_V1 = b"\x01"

# What get_trace selects, in the order span_from_row reads it (s: spans, r: resources,
# c: scopes).
READ_COLUMNS = (
    "s.span_id, s.parent_span_id, s.name, s.kind, s.start_ns, s.end_ns, s.status_code,"
    " s.status_message, s.trace_state, s.flags, s.attributes, s.dropped_attributes_count,"
    " s.events, s.dropped_events_count, s.links, s.dropped_links_count,"
    " r.attributes, r.dropped_attributes_count, r.schema_url,"
    " c.name, c.version, c.attributes, c.dropped_attributes_count, c.schema_url"
)


# ---------------------------------------------------------------------------- values


def _json(value: AnyValue | Attributes) -> bytes | None:
    return encode_value(value) if value else None


def _labels(attributes: Attributes, encoded: bytes | None) -> bytes | None:
    """The jsonb labels of an attribute map, given its `encode_value` form."""
    if encoded is None:
        return None
    if b"\\" in encoded:  # some key or string may hold a NUL or backslash
        return orjson.dumps(
            {to_pg_text(key): to_pg_text(value_as_label(v)) for key, v in attributes.items()}
        )
    # No escapes in the JSON: keys and strings are their own labels. If every value is a
    # string (and nothing was tagged), the JSON is the labels' JSON too.
    others = [key for key, value in attributes.items() if value.__class__ is not str]
    if not others and b'"$' not in encoded:
        return encoded
    labels = attributes.copy()
    for key in others:
        labels[key] = value_as_label(labels[key])
    return orjson.dumps(labels)


def _events(events: list[SpanEvent]) -> bytes | None:
    value: AnyValue = [
        [e.time_unix_nano, e.name, e.attributes, e.dropped_attributes_count] for e in events
    ]
    return _json(value)


def _links(links: list[SpanLink]) -> bytes | None:
    value: AnyValue = [
        [ln.trace_id, ln.span_id, ln.trace_state, ln.attributes, ln.dropped_attributes_count,
         ln.flags]
        for ln in links
    ]  # fmt: skip
    return _json(value)


def _digest(values: Row) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    for value in values:
        raw = value if isinstance(value, bytes) else b"" if value is None else str(value).encode()
        digest.update(len(raw).to_bytes(8, "little"))  # length prefix: no ambiguous joins
        digest.update(raw)
    return digest.digest()


def resource_row(tenant: str, resource: Resource) -> Row:
    """(tenant, digest, attributes, labels, dropped_attributes_count, schema_url)."""
    attributes = _json(resource.attributes)
    values = (attributes, resource.dropped_attributes_count, to_pg_text(resource.schema_url))
    labels = _labels(resource.attributes, attributes)
    text = None if labels is None else labels.decode()
    return (tenant, _digest(values), attributes, text, *values[1:])


def scope_row(tenant: str, scope: Scope) -> Row:
    """(tenant, digest, name, version, attributes, dropped_attributes_count, schema_url)."""
    values = (
        to_pg_text(scope.name),
        to_pg_text(scope.version),
        _json(scope.attributes),
        scope.dropped_attributes_count,
        to_pg_text(scope.schema_url),
    )
    return (tenant, _digest(values), *values)


# ---------------------------------------------------------------------------- batches


@dataclass(slots=True)
class EncodedBatch:
    """A batch of spans ready to write. `resources`/`scopes` rows are keyed by digest;
    `operations` maps (service, name) to the latest span start."""

    rows: list[Row] = field(default_factory=list)
    resources: dict[bytes, Row] = field(default_factory=dict)
    scopes: dict[bytes, Row] = field(default_factory=dict)
    operations: dict[tuple[str, str], int] = field(default_factory=dict)
    days: set[int] = field(default_factory=set)


class _Refs:
    """Digests of the batch's Resource and Scope objects, each encoded once (by identity:
    the spans keep every object alive for the whole batch), and services' stored names."""

    def __init__(self, tenant: str, batch: EncodedBatch) -> None:
        self._tenant = tenant
        self._batch = batch
        self._by_object: dict[int, tuple[bytes, str]] = {}

    def resource(self, resource: Resource) -> tuple[bytes, str]:
        """(digest, service name as stored)."""
        found = self._by_object.get(id(resource))
        if found is None:
            row = resource_row(self._tenant, resource)
            self._batch.resources[row[1]] = row
            found = self._by_object[id(resource)] = (row[1], to_pg_text(resource.service_name))
        return found

    def scope(self, scope: Scope) -> bytes:
        found = self._by_object.get(id(scope))
        if found is None:
            row = scope_row(self._tenant, scope)
            self._batch.scopes[row[1]] = row
            found = self._by_object[id(scope)] = (row[1], "")
        return found[0]


def _texts(span: Span) -> tuple[str, ...]:
    """trace_id, span_id, parent_span_id, name, status_message, trace_state as stored."""
    texts = (span.trace_id, span.span_id, span.parent_span_id, span.name,
             span.status_message, span.trace_state)  # fmt: skip
    joined = "".join(texts)  # one scan instead of six in the common case
    if "\\" in joined or "\x00" in joined:
        return tuple(map(to_pg_text, texts))
    return texts


def _analytics(span: Span) -> Row:
    """(peer_type, peer_system, peer_name, error_type, error_message) of a span."""
    kind = int(span.kind)
    peer = peer_of(kind, span.attributes) if kind >= SpanKind.CLIENT else None
    group = error_group(span) if span.status_code == StatusCode.ERROR else None
    if peer is None and group is None:
        return _NO_ANALYTICS
    return (
        *((None, None, None) if peer is None else
          (peer.type.value, to_pg_text(peer.system), to_pg_text(peer.name))),
        *((None, None) if group is None else map(to_pg_text, group)),
    )  # fmt: skip


def _span_row(tenant: str, span: Span, texts: tuple[str, ...], refs: _Refs) -> Row:
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    trace_id, span_id, parent, name, message, state = texts
    resource, service = refs.resource(span.resource)
    attributes = _json(span.attributes)
    labels = _labels(span.attributes, attributes)
    return (
        tenant, trace_id, span_id, parent, name, service, int(span.kind),
        int(span.status_code), start, end, min(max(0, end - start), I64_MAX), span.flags,
        message, state, attributes, None if labels is None else _JSONB_V1 + labels,
        span.dropped_attributes_count, _events(span.events), span.dropped_events_count,
        _links(span.links), span.dropped_links_count, resource, refs.scope(span.scope),
        *_analytics(span),
    )  # fmt: skip


def encode_batch(tenant: str, spans: Sequence[Span]) -> EncodedBatch:
    """Everything a write needs, computed off the event loop (see write_spans)."""
    batch = EncodedBatch()
    refs = _Refs(tenant, batch)
    rows, operations, days = batch.rows, batch.operations, batch.days
    for span in spans:
        row = _span_row(tenant, span, _texts(span), refs)
        rows.append(row)
        key = (row[5], row[4])  # (service, name)
        start = span.start_time_unix_nano
        if operations.get(key, start - 1) < start:
            operations[key] = start
        days.add(day_of(start))
    return batch


# ---------------------------------------------------------------------------- reading


def _decode_events(raw: bytes | None) -> list[SpanEvent]:
    if raw is None:
        return []
    return [SpanEvent(t, name, attrs, dropped) for t, name, attrs, dropped in decode_value(raw)]


def _decode_links(raw: bytes | None) -> list[SpanLink]:
    if raw is None:
        return []
    return [SpanLink(*fields) for fields in decode_value(raw)]


def span_from_row(trace_id: str, row: Row) -> Span:
    (span_id, parent, name, kind, start, end, status, message, state, flags,
     attributes, dropped_attributes, events, dropped_events, links, dropped_links,
     r_attributes, r_dropped, r_schema_url,
     c_name, c_version, c_attributes, c_dropped, c_schema_url) = row  # fmt: skip
    return Span(
        trace_id=trace_id, span_id=from_pg_text(span_id), name=from_pg_text(name),
        start_time_unix_nano=start, end_time_unix_nano=end,
        resource=Resource(decode_attributes(r_attributes), r_dropped, from_pg_text(r_schema_url)),
        scope=Scope(from_pg_text(c_name), from_pg_text(c_version),
                    decode_attributes(c_attributes), c_dropped, from_pg_text(c_schema_url)),
        parent_span_id=from_pg_text(parent), trace_state=from_pg_text(state), flags=flags,
        kind=SpanKind(kind), attributes=decode_attributes(attributes),
        dropped_attributes_count=dropped_attributes, events=_decode_events(events),
        dropped_events_count=dropped_events, links=_decode_links(links),
        dropped_links_count=dropped_links, status_code=StatusCode(status),
        status_message=from_pg_text(message),
    )  # fmt: skip
