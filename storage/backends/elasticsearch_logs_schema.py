"""What the Elasticsearch log store installs: the data stream's index template (explicit
mappings) and its ILM policy. Field by field, and why, see `MAPPINGS`."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from ..errors import PermanentStoreError

SCHEMA_VERSION = 1
TEMPLATE_PRIORITY = 200  # above the built-in templates (100); ours match only one name
MAX_LIMIT = 10_000  # the largest page; a search asks for one more hit than the page
KEYWORD_CHARS = 8000  # keyword values longer than this are indexed by digest (codec)
FLATTENED_CHARS = 4000  # likewise for attribute keys and values: key\0value < 32766 bytes
BODY_KEYWORD_CHARS = 1024

_KEYWORD = {"type": "keyword", "ignore_above": KEYWORD_CHARS}

MAPPINGS: dict[str, Any] = {
    # Unknown fields stay in _source but are not indexed: a document written by a newer
    # Argus into an index created from an older template is still accepted.
    "dynamic": False,
    # body_search is a lowercased copy of body, needed only as an index.
    "_source": {"excludes": ["body_search"]},
    "_meta": {"managed_by": "argus", "argus_schema": SCHEMA_VERSION},
    "properties": {
        # The data stream's time field; nanosecond precision (clamped to 1970..2262).
        "@timestamp": {"type": "date_nanos"},
        # The same instant as an exact integer: what searches filter, sort and page on.
        "ts": {"type": "long"},
        "tenant": _KEYWORD,
        # The document id (see the codec): the sort tiebreaker, as _id has no doc values.
        "seq": {"type": "keyword"},
        "severity_number": {"type": "integer"},
        "severity_text": _KEYWORD,
        "service": _KEYWORD,
        "trace_id": _KEYWORD,
        "span_id": _KEYWORD,
        "event_name": _KEYWORD,
        # The body's string form: a str body as is, any other AnyValue as lossless JSON.
        "body": {
            "type": "text",
            "fields": {"keyword": {"type": "keyword", "ignore_above": BODY_KEYWORD_CHARS}},
        },
        # `contains`: Unicode-lowercased body (Elasticsearch's case_insensitive folds ASCII
        # only), in a wildcard field: substring search over values of any length.
        "body_search": {"type": "wildcard"},
        # Attribute string forms (value_as_label): one field however many keys there are.
        "attributes": {"type": "flattened", "ignore_above": FLATTENED_CHARS},
        "resource": {"type": "flattened", "ignore_above": FLATTENED_CHARS},
        # Which keys the record's own attributes have: a resource attribute only counts
        # when the record has no attribute of that name.
        "attribute_keys": {"type": "keyword", "doc_values": False},
        # The whole record as lossless JSON (attributes.encode_value), not parsed at all.
        "record": {"type": "object", "enabled": False},
    },
}

_PREFIX = re.compile(r"[a-z0-9][a-z0-9_.-]{0,199}")


@dataclass(frozen=True, slots=True)
class Names:
    """The names of everything one store owns, all derived from its index prefix."""

    prefix: str

    def __post_init__(self) -> None:
        if not _PREFIX.fullmatch(self.prefix) or self.prefix.startswith("."):
            raise PermanentStoreError(
                f"invalid Elasticsearch index prefix {self.prefix!r}: use lowercase letters,"
                " digits, '-', '_' and '.', starting with a letter or digit"
            )

    @property
    def stream(self) -> str:
        """The data stream (also the template's only index pattern)."""
        return f"{self.prefix}-logs"

    @property
    def template(self) -> str:
        return f"{self.prefix}-logs"

    @property
    def policy(self) -> str:
        return f"{self.prefix}-logs"


@dataclass(frozen=True, slots=True)
class Layout:
    """How the data stream is set up (the open() arguments of the same names)."""

    retention: dt.timedelta | None = None
    rollover_max_age: str = "1d"
    rollover_max_primary_shard_size: str = "50gb"
    ilm: bool = True
    shards: int = 1
    replicas: int | None = None

    def __post_init__(self) -> None:
        if self.retention is not None and self.retention.total_seconds() < 1:
            raise PermanentStoreError(f"retention must be at least one second: {self.retention}")


def duration(value: dt.timedelta) -> str:
    """An Elasticsearch time value for `value`, in whole seconds."""
    return f"{int(value.total_seconds())}s"


def ilm_policy(layout: Layout) -> dict[str, Any]:
    """The `policy` of ilm.put_lifecycle: roll over daily (or at the size cap); delete
    backing indices `retention` after their rollover, when a retention is set. A record
    therefore lives between `retention` and `retention + rollover_max_age`."""
    phases: dict[str, Any] = {
        "hot": {
            "min_age": "0ms",
            "actions": {
                "rollover": {
                    "max_age": layout.rollover_max_age,
                    "max_primary_shard_size": layout.rollover_max_primary_shard_size,
                }
            },
        }
    }
    if layout.retention is not None:
        phases["delete"] = {"min_age": duration(layout.retention), "actions": {"delete": {}}}
    return {"_meta": {"managed_by": "argus"}, "phases": phases}


def index_template(names: Names, layout: Layout) -> dict[str, Any]:
    """Keyword arguments of indices.put_index_template for the data stream."""
    settings: dict[str, Any] = {
        "index.number_of_shards": layout.shards,
        # search() asks for limit + 1 hits to learn whether another page follows.
        "index.max_result_window": MAX_LIMIT + 1,
    }
    if layout.replicas is not None:
        settings["index.number_of_replicas"] = layout.replicas
    if layout.ilm:
        settings["index.lifecycle.name"] = names.policy
    return {
        "name": names.template,
        "index_patterns": [names.stream],
        "data_stream": {},
        "priority": TEMPLATE_PRIORITY,
        "template": {"settings": settings, "mappings": MAPPINGS},
        "meta": {"managed_by": "argus", "argus_schema": SCHEMA_VERSION},
    }
