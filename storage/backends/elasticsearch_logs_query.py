"""LogQuery as an Elasticsearch search request, with the embedded store's semantics.

Every query is a `bool` of filters (no scoring) that starts with the tenant term: no
request this store sends can see another tenant's documents. Values are looked up the
way the codec indexed them (`indexable`, `labels`).
"""

from __future__ import annotations

from typing import Any

from ..errors import QueryError
from ..logs import SEVERITY_BUCKETS, LogQuery, top_field
from .elasticsearch_logs_codec import (
    MAX_INT,
    MAX_LONG,
    MIN_INT,
    MIN_LONG,
    clamp,
    indexable,
    key_indexable,
)
from .elasticsearch_logs_schema import FLATTENED_CHARS

# Newest first; documents with equal timestamps in reverse write order within a batch.
SORT: list[dict[str, Any]] = [
    {"ts": {"order": "desc", "unmapped_type": "long"}},
    {"seq": {"order": "desc", "unmapped_type": "keyword"}},
]
SOURCE = {"includes": ["record", "body"]}
MATCH_NONE: dict[str, Any] = {"match_none": {}}


def escape_wildcard(text: str) -> str:
    """`text` as a literal in a wildcard pattern, where `*`, `?` and `\\` are special."""
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")


def tenant_filter(tenant: str) -> dict[str, Any]:
    return {"term": {"tenant": indexable(tenant)}}


def time_range(start: int | None, end: int | None) -> dict[str, Any] | None:
    """[start, end) on `ts`, within what a long holds (`ts` is clamped the same way)."""
    bounds: dict[str, int] = {}
    if start is not None:
        bounds["gte"] = clamp(start, MIN_LONG, MAX_LONG)
    if end is not None and end <= MAX_LONG:  # a larger end excludes nothing
        bounds["lt"] = max(end, MIN_LONG)
    return {"range": {"ts": bounds}} if bounds else None


def contains_filter(text: str) -> dict[str, Any]:
    """Case-insensitive substring of the body's string form: the pattern is lowercased as
    `body_search` was (str.lower, full Unicode), its wildcard characters escaped. A needle
    of thousands of characters may exceed Elasticsearch's automaton limit (a QueryError)."""
    return {"wildcard": {"body_search": {"value": f"*{escape_wildcard(text.lower())}*"}}}


def attribute_filter(key: str, value: str) -> dict[str, Any]:
    """`key` has string form `value` on the record's attributes, or, when the record has
    no attribute `key`, on its resource's."""
    if not key_indexable(key):
        return MATCH_NONE
    label = indexable(value, FLATTENED_CHARS)
    return {
        "bool": {
            "should": [
                {"term": {f"attributes.{key}": label}},
                {
                    "bool": {
                        "filter": [{"term": {f"resource.{key}": label}}],
                        "must_not": [{"term": {"attribute_keys": key}}],
                    }
                },
            ],
            "minimum_should_match": 1,
        }
    }


def filters(query: LogQuery) -> list[dict[str, Any]]:
    """The filter clauses of `query` (the cursor is not one: see search_request)."""
    clauses = [tenant_filter(query.tenant)]
    time_clause = time_range(query.start_unix_nano, query.end_unix_nano)
    if time_clause is not None:
        clauses.append(time_clause)
    if query.contains:
        clauses.append(contains_filter(query.contains))
    if query.min_severity is not None:
        minimum = clamp(query.min_severity, MIN_INT, MAX_INT)
        clauses.append({"range": {"severity_number": {"gte": minimum}}})
    if query.service is not None:
        clauses.append({"term": {"service": indexable(query.service)}})
    if query.trace_id is not None:  # "" selects records without a trace id, stored as ""
        clauses.append({"term": {"trace_id": indexable(query.trace_id)}})
    if query.span_id is not None:
        clauses.append({"term": {"span_id": indexable(query.span_id)}})
    for key, value in query.attributes.items():
        clauses.append(attribute_filter(key, value))
    return clauses


def search_request(query: LogQuery, after: tuple[int, str] | None) -> dict[str, Any]:
    """Keyword arguments of AsyncElasticsearch.search for one page of `query` (its limit
    is at least 1): one hit more than the page, to tell whether another page follows."""
    request: dict[str, Any] = {
        "query": {"bool": {"filter": filters(query)}},
        "sort": SORT,
        "size": query.limit + 1,
        "source": SOURCE,
        "track_total_hits": False,
    }
    if after is not None:
        request["search_after"] = list(after)
    return request


# ---------------------------------------------------------------------------- analytics

NANOS_PER_MILLI = 1_000_000
# range aggregation buckets of SEVERITY_BUCKETS from severity_number ("to" is exclusive);
# UNSPECIFIED is what they leave of the total.
SEVERITY_RANGES: list[dict[str, Any]] = [
    {"key": name, "from": 1 + 4 * index, "to": 5 + 4 * index}
    for index, name in enumerate(SEVERITY_BUCKETS[:-1])
]


def _severity_ranges() -> dict[str, Any]:
    return {"range": {"field": "severity_number", "ranges": SEVERITY_RANGES}}


def severity_counts(aggregation: dict[str, Any], total: int) -> dict[str, int]:
    """SEVERITY_BUCKETS name -> count from a `_severity_ranges` answer and the total doc
    count it was taken over; names without records left out."""
    counts = {
        str(bucket["key"]): int(bucket["doc_count"])
        for bucket in aggregation.get("buckets", [])
        if int(bucket.get("doc_count", 0)) > 0
    }
    unspecified = total - sum(counts.values())
    if unspecified > 0:
        counts["UNSPECIFIED"] = unspecified
    return counts


def _aggregation_request(query: LogQuery, aggs: dict[str, Any], total: bool = False
                         ) -> dict[str, Any]:
    return {
        "query": {"bool": {"filter": filters(query)}},
        "size": 0,
        "aggs": aggs,
        "track_total_hits": total,
    }


def histogram_request(query: LogQuery, step_nanos: int) -> dict[str, Any]:
    """Keyword arguments of AsyncElasticsearch.search for severity_histogram.

    date_histogram on `@timestamp` (date_nanos): Elasticsearch aggregates date_nanos at
    millisecond resolution, so the step must be a whole number of milliseconds; then
    truncating to the millisecond never moves a record across a bucket boundary, and
    fixed intervals start at the epoch like the embedded store's buckets. Empty buckets
    are left out (min_doc_count 1). `@timestamp` is clamped to 1970..2262 (the codec).
    """
    if step_nanos % NANOS_PER_MILLI:
        raise QueryError(
            "Elasticsearch buckets time by whole milliseconds: use a step that is a multiple"
            " of 1ms"
        )
    histogram = {
        "date_histogram": {
            "field": "@timestamp",
            "fixed_interval": f"{step_nanos // NANOS_PER_MILLI}ms",
            "min_doc_count": 1,
        },
        "aggs": {"severity": _severity_ranges()},
    }
    return _aggregation_request(query, {"buckets": histogram})


def top_values_request(query: LogQuery, field: str, limit: int) -> dict[str, Any] | None:
    """Keyword arguments of AsyncElasticsearch.search for top_values. Severity is a range
    aggregation (UNSPECIFIED from the total hits); the others a terms aggregation on the
    keyword (`service`) or flattened field (`attributes.<key>`, `resource.<key>`),
    counting most frequent first, ties by value. With more than one shard, terms counts
    may be approximate (Elasticsearch's shard_size trade-off); the default is one shard.
    Values longer than FLATTENED_CHARS are indexed as digests and counted as such. None
    for an attribute key the codec does not index (no record has a value for it)."""
    kind, key = top_field(field)
    if kind == "severity":
        return _aggregation_request(query, {"severity": _severity_ranges()}, total=True)
    if kind == "service":
        path = "service"
    elif not key_indexable(key):
        return None
    else:
        path = f"{'attributes' if kind == 'attribute' else 'resource'}.{key}"
    terms = {
        "field": path,
        "size": limit,
        "order": [{"_count": "desc"}, {"_key": "asc"}],
    }
    return _aggregation_request(query, {"values": {"terms": terms}})


def delete_query(tenant: str, cutoff_unix_nano: int) -> dict[str, Any] | None:
    """The query of delete_before: the tenant's records older than the cutoff; None when
    no record can be (the cutoff is below any long)."""
    if cutoff_unix_nano <= MIN_LONG:
        return None
    clauses = [tenant_filter(tenant)]
    time_clause = time_range(None, cutoff_unix_nano)
    if time_clause is not None:
        clauses.append(time_clause)
    return {"bool": {"filter": clauses}}


def tenants_request(after: dict[str, Any] | None, size: int = 1000) -> dict[str, Any]:
    """Keyword arguments of AsyncElasticsearch.search for one page of tenant names."""
    composite: dict[str, Any] = {
        "size": size,
        "sources": [{"tenant": {"terms": {"field": "tenant"}}}],
    }
    if after is not None:
        composite["after"] = after
    return {"size": 0, "aggs": {"tenants": {"composite": composite}}, "track_total_hits": False}
