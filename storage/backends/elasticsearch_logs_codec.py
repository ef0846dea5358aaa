"""Log records as Elasticsearch documents, and back; document ids; page cursors.

A document holds the record twice: indexed copies of what searches look at (see
elasticsearch_logs_schema.MAPPINGS), and the record itself as lossless JSON in `record`,
which Elasticsearch does not parse. Reading decodes `record` alone (plus `body`, which is
the body's string form and not repeated there), so records round-trip exactly whatever
the indexed copies had to give up:

* keyword values longer than KEYWORD_CHARS (attribute keys and values: FLATTENED_CHARS)
  are indexed as a digest, which the query builder computes the same way, so equality
  filters still match them exactly;
* attribute keys that are empty, contain NUL (flattened fields refuse it) or are longer
  than FLATTENED_CHARS are not indexed: filters on such keys match nothing;
* `ts` is the timestamp clamped to a signed 64-bit long, `@timestamp` to what date_nanos
  holds (1970 to 2262-04-11), severity_number to a 32-bit integer.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
from typing import Any

from ..attributes import decode_value, encode_value, value_as_label
from ..errors import PermanentStoreError, QueryError
from ..model import AnyValue, Attributes, LogRecord, Resource, Scope
from .elasticsearch_logs_schema import FLATTENED_CHARS, KEYWORD_CHARS

FORMAT = 1
MIN_LONG, MAX_LONG = -(2**63), 2**63 - 1
MIN_INT, MAX_INT = -(2**31), 2**31 - 1
BODY_NONE, BODY_STR, BODY_JSON = 0, 1, 2
_DIGEST_PREFIX = "\x01sha256:"
_SEQ = re.compile(r"[0-9a-f]{40}")


def clamp(value: int, low: int, high: int) -> int:
    return low if value < low else min(value, high)


def indexable(value: str, limit: int = KEYWORD_CHARS) -> str:
    """`value` as indexed: itself, or a digest when longer than `limit` characters (Lucene
    refuses terms over 32766 bytes). Documents and queries both go through this."""
    if len(value) <= limit:
        return value
    return _DIGEST_PREFIX + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def key_indexable(key: str) -> bool:
    """Whether an attribute key goes into the flattened fields (see the module docstring)."""
    return bool(key) and "\0" not in key and len(key) <= FLATTENED_CHARS


def labels(attributes: Attributes) -> dict[str, str]:
    """The flattened-field form of an attribute map: key -> indexable string form."""
    return {
        key: indexable(value_as_label(value), FLATTENED_CHARS)
        for key, value in attributes.items()
        if key_indexable(key)
    }


def document_id(tenant: str, batch_id: str, position: int) -> str:
    """The id of the `position`-th record of a batch: the same on every delivery of the
    batch, so a replay's `create` conflicts instead of duplicating. 32 hex digits of a
    digest of (tenant, batch id), then the position as 8 hex digits, so ids of one batch
    sort in write order."""
    if not 0 <= position <= 0xFFFFFFFF:
        raise PermanentStoreError(f"batch position out of range: {position}")
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{len(tenant)}:{tenant}\0{batch_id}".encode("utf-8", "surrogatepass"))
    return f"{digest.hexdigest()}{position:08x}"


def iso_nanos(ts: int) -> str:
    """A date_nanos value: RFC 3339 UTC with nine fractional digits, clamped to its range."""
    seconds, nanos = divmod(clamp(ts, 0, MAX_LONG), 1_000_000_000)
    moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{nanos:09d}Z"


def body_text(body: AnyValue) -> tuple[int, str | None]:
    """(kind, string form) of a body: what `contains` searches, as the embedded store."""
    if body is None:
        return BODY_NONE, None
    if isinstance(body, str):
        return BODY_STR, body
    return BODY_JSON, encode_value(body).decode()


def _payload(record: LogRecord, body_kind: int) -> str:
    resource, scope = record.resource, record.scope
    value: Attributes = {
        "v": FORMAT,
        "k": body_kind,
        "t": record.time_unix_nano,
        "o": record.observed_time_unix_nano,
        "n": record.severity_number,
        "x": record.severity_text,
        "a": record.attributes,
        "d": record.dropped_attributes_count,
        "f": record.flags,
        "ti": record.trace_id,
        "si": record.span_id,
        "e": record.event_name,
        "r": [resource.attributes, resource.dropped_attributes_count, resource.schema_url],
        "s": [scope.name, scope.version, scope.attributes, scope.dropped_attributes_count,
              scope.schema_url],
    }  # fmt: skip
    return encode_value(value).decode()


def encode_document(
    tenant: str, batch_id: str, position: int, record: LogRecord
) -> tuple[str, dict[str, Any]]:
    """(document id, source) of one record."""
    doc_id = document_id(tenant, batch_id, position)
    kind, text = body_text(record.body)
    ts = clamp(record.timestamp, MIN_LONG, MAX_LONG)
    own = labels(record.attributes)
    source: dict[str, Any] = {
        "@timestamp": iso_nanos(ts),
        "ts": ts,
        "tenant": indexable(tenant),
        "seq": doc_id,
        "severity_number": clamp(record.severity_number, MIN_INT, MAX_INT),
        "severity_text": indexable(record.severity_text),
        "service": indexable(record.service_name),
        "trace_id": indexable(record.trace_id),
        "span_id": indexable(record.span_id),
        "event_name": indexable(record.event_name),
        "attributes": own,
        "attribute_keys": list(own),
        "resource": labels(record.resource.attributes),
        "record": _payload(record, kind),
    }
    if text is not None:
        source["body"] = text
        source["body_search"] = text.lower()
    return doc_id, source


def _attributes(value: Any) -> Attributes:
    return value if isinstance(value, dict) else {}


def decode_document(source: dict[str, Any]) -> LogRecord:
    """The record of a search hit's `_source` (at least `record` and `body`)."""
    try:
        data = decode_value(source["record"])
        if not isinstance(data, dict) or data.get("v") != FORMAT:
            raise ValueError(
                f"unknown record format {data.get('v') if isinstance(data, dict) else data!r}"
            )
        text = source.get("body")
        kind = data["k"]
        body: AnyValue = (
            text if kind == BODY_STR else decode_value(text) if kind == BODY_JSON else None
        )
        res, scope = data["r"], data["s"]
        return LogRecord(
            time_unix_nano=data["t"],
            observed_time_unix_nano=data["o"],
            resource=Resource(_attributes(res[0]), res[1], res[2]),
            scope=Scope(scope[0], scope[1], _attributes(scope[2]), scope[3], scope[4]),
            severity_number=data["n"],
            severity_text=data["x"],
            body=body,
            attributes=_attributes(data["a"]),
            dropped_attributes_count=data["d"],
            flags=data["f"],
            trace_id=data["ti"],
            span_id=data["si"],
            event_name=data["e"],
        )
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise PermanentStoreError(f"unreadable log document: {type(exc).__name__}: {exc}") from exc


# ---------------------------------------------------------------------------- cursor


def encode_cursor(ts: int, seq: str) -> str:
    """The cursor after a hit whose sort values were (ts, seq)."""
    return base64.urlsafe_b64encode(f"1:{ts}:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """The search_after values of a cursor; QueryError when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, ts_text, seq = raw.split(":")
        ts = int(ts_text)
        if version != "1" or not MIN_LONG <= ts <= MAX_LONG or not _SEQ.fullmatch(seq):
            raise ValueError(raw)
        return ts, seq
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise QueryError(f"invalid log cursor {cursor!r}") from exc
