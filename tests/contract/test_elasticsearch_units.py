"""The Elasticsearch log store's parts that need no server: its document codec, query
builder, error mapping and API-compatibility headers, and that an unreachable server is a
retryable error. The LogStore contract suite itself runs against a real Elasticsearch 8/9
as the `elasticsearch` parameter of conftest.py when ARGUS_TEST_ELASTICSEARCH_URL is set
(docs/deploy.md); no imitation of Elasticsearch stands in for it.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import socket
from typing import Any

import pytest
import test_log_store as contract  # the contract suite's module (tests/contract is on sys.path)
from argus.storage.backends.elasticsearch_common import ApiCompat, translate_error
from argus.storage.backends.elasticsearch_logs import (
    ElasticsearchLogStore,
    bulk_failure_error,
)
from argus.storage.backends.elasticsearch_logs_codec import (
    MAX_LONG,
    decode_cursor,
    decode_document,
    document_id,
    encode_cursor,
    encode_document,
    indexable,
    iso_nanos,
    labels,
)
from argus.storage.backends.elasticsearch_logs_query import (
    SORT,
    attribute_filter,
    contains_filter,
    delete_query,
    escape_wildcard,
    filters,
    search_request,
    time_range,
)
from argus.storage.backends.elasticsearch_logs_schema import (
    FLATTENED_CHARS,
    KEYWORD_CHARS,
    MAPPINGS,
    MAX_LIMIT,
    Layout,
    Names,
    ilm_policy,
    index_template,
)
from argus.storage.errors import (
    PermanentStoreError,
    QueryError,
    RetryableStoreError,
)
from argus.storage.logs import LogQuery
from argus.storage.model import LogRecord, Resource, Scope
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
from elasticsearch import ApiError, ConnectionError

aiohttp_web = pytest.importorskip("aiohttp.web")

T0 = contract.T0


def wire(value: Any) -> Any:
    """`value` after a trip through JSON, as the client sends and receives it."""
    return json.loads(json.dumps(value, ensure_ascii=False))


def stored_source(source: dict[str, Any]) -> dict[str, Any]:
    """What a search hit's _source holds of a document: the fields the store asks for."""
    sent = wire(source)
    return {key: sent[key] for key in ("record", "body") if key in sent}


# ---------------------------------------------------------------------------- codec


def sample_records() -> list[LogRecord]:
    minimal = LogRecord(0, T0, Resource(), Scope())
    bodies = [contract.record(n, body) for n, body in enumerate(contract.BODIES)]
    edges = [
        contract.record(1, value, attributes={"v": value})
        for value in (math.nan, math.inf, {"$bytes": "AQI="}, {"$bytes": "not base64!"})
    ]
    return [contract.full_record(), minimal, *bodies, *edges]


def test_documents_round_trip_through_json() -> None:
    for n, rec in enumerate(sample_records()):
        _, source = encode_document("acme", "b", n, rec)
        contract.assert_same(decode_document(stored_source(source)), rec)


def test_every_document_field_is_mapped() -> None:
    _, source = encode_document("acme", "b", 0, contract.full_record())
    assert set(source) <= set(MAPPINGS["properties"])
    assert set(MAPPINGS["_source"]["excludes"]) <= set(source)
    assert not set(MAPPINGS["_source"]["excludes"]) & {"record", "body"}


def test_indexed_copies_of_a_record() -> None:
    rec = contract.full_record()
    doc_id, source = encode_document("acme", "batch-7", 3, rec)
    assert source["seq"] == doc_id
    assert source["ts"] == rec.timestamp
    assert source["@timestamp"] == "2023-11-14T22:13:20.123456789Z"
    assert source["service"] == "checkout"
    assert source["severity_number"] == 17
    assert source["trace_id"] == rec.trace_id
    assert source["body_search"] == source["body"].lower()
    assert source["attributes"]["bool.true"] == "true"
    assert source["attributes"]["bytes"] == "AAH+/w=="
    assert source["attributes"]["float.tenth"] == "0.1"
    assert source["attributes"]["empty"] == ""
    assert source["attribute_keys"] == list(source["attributes"])
    assert source["resource"]["service.name"] == "checkout"


def test_body_kinds_and_search_copy() -> None:
    _, plain = encode_document("t", "b", 0, contract.record(0, "ÉCOLE Fermée"))
    assert (plain["body"], plain["body_search"]) == ("ÉCOLE Fermée", "école fermée")
    _, structured = encode_document("t", "b", 0, contract.record(0, {"User": "Alice"}))
    assert structured["body"] == '{"User":"Alice"}'
    _, absent = encode_document("t", "b", 0, contract.record(0, None))
    assert "body" not in absent and "body_search" not in absent


def test_long_values_are_indexed_by_digest() -> None:
    long_value = "x" * (KEYWORD_CHARS + 1)
    assert indexable("short") == "short"
    assert indexable("x" * KEYWORD_CHARS) == "x" * KEYWORD_CHARS
    digest = indexable(long_value)
    assert digest != long_value and len(digest) < 100 and digest == indexable(long_value)
    assert indexable(long_value + "y") != digest
    big = "v" * (FLATTENED_CHARS + 1)
    assert labels({"k": big})["k"] == indexable(big, FLATTENED_CHARS) != big


def test_unindexable_attribute_keys_are_left_out() -> None:
    got = labels({"": "a", "nul\0key": "b", "k" * (FLATTENED_CHARS + 1): "c", "ok": "d"})
    assert got == {"ok": "d"}
    assert attribute_filter("nul\0key", "b") == {"match_none": {}}


def test_timestamps_are_clamped_to_what_elasticsearch_holds() -> None:
    assert iso_nanos(0) == "1970-01-01T00:00:00.000000000Z"
    assert iso_nanos(MAX_LONG) == "2262-04-11T23:47:16.854775807Z"
    assert iso_nanos(2**64 - 1) == iso_nanos(MAX_LONG)
    rec = LogRecord(2**64 - 1, 0, Resource(), Scope(), severity_number=2**40)
    _, source = encode_document("t", "b", 0, rec)
    assert (source["ts"], source["severity_number"]) == (MAX_LONG, 2**31 - 1)
    contract.assert_same(decode_document(stored_source(source)), rec)


def test_document_ids() -> None:
    first = document_id("acme", "batch", 0)
    assert first == document_id("acme", "batch", 0)
    assert re.fullmatch(r"[0-9a-f]{40}", first)
    assert document_id("acme", "batch", 1) > first  # write order within a batch
    assert first[:32] == document_id("acme", "batch", 9)[:32]
    others = {document_id("acme2", "batch", 0), document_id("acme", "batch2", 0),
              document_id("acm", "ebatch", 0)}  # fmt: skip
    assert first not in others and len(others) == 3


def test_cursors() -> None:
    seq = document_id("t", "b", 5)
    assert decode_cursor(encode_cursor(T0, seq)) == (T0, seq)
    for bad in ("not a cursor", "", encode_cursor(T0, "zz"), encode_cursor(2**63, seq)):
        with pytest.raises(QueryError):
            decode_cursor(bad)


def test_unreadable_documents_are_permanent_errors() -> None:
    with pytest.raises(PermanentStoreError):
        decode_document({"record": '{"v": 99}'})
    with pytest.raises(PermanentStoreError):
        decode_document({})


# ---------------------------------------------------------------------------- query builder


def test_every_query_starts_with_the_tenant() -> None:
    query = LogQuery("acme", contains="x", service="s", attributes={"a": "b"})
    assert filters(query)[0] == {"term": {"tenant": "acme"}}
    assert delete_query("acme", T0) == {
        "bool": {"filter": [{"term": {"tenant": "acme"}}, {"range": {"ts": {"lt": T0}}}]}
    }


def test_contains_is_lowercased_and_escaped() -> None:
    assert escape_wildcard("a*b?c\\d") == "a\\*b\\?c\\\\d"
    assert contains_filter("ДИСК *.log") == {
        "wildcard": {"body_search": {"value": "*диск \\*.log*"}}
    }
    assert not any("wildcard" in clause for clause in filters(LogQuery("t", contains="")))


def test_time_range() -> None:
    assert time_range(None, None) is None
    assert time_range(1, 2) == {"range": {"ts": {"gte": 1, "lt": 2}}}
    assert time_range(2**64, None) == {"range": {"ts": {"gte": MAX_LONG}}}
    assert time_range(None, 2**64) is None  # nothing stored is that late
    assert delete_query("t", -(2**63)) is None


def test_attribute_filter_prefers_the_records_own_attribute() -> None:
    assert attribute_filter("env", "prod") == {
        "bool": {
            "should": [
                {"term": {"attributes.env": "prod"}},
                {"bool": {"filter": [{"term": {"resource.env": "prod"}}],
                          "must_not": [{"term": {"attribute_keys": "env"}}]}},
            ],
            "minimum_should_match": 1,
        }
    }  # fmt: skip


def test_search_request() -> None:
    seq = document_id("t", "b", 0)
    request = search_request(LogQuery("t", limit=10, min_severity=13, trace_id=""), (T0, seq))
    assert request["size"] == 11
    assert request["sort"] == SORT
    assert request["search_after"] == [T0, seq]
    assert request["track_total_hits"] is False
    clauses = request["query"]["bool"]["filter"]
    assert {"range": {"severity_number": {"gte": 13}}} in clauses
    assert {"term": {"trace_id": ""}} in clauses


# ---------------------------------------------------------------------------- schema


def test_ilm_policy() -> None:
    assert "delete" not in ilm_policy(Layout())["phases"]
    policy = ilm_policy(Layout(retention=dt.timedelta(days=7), rollover_max_age="12h"))
    assert policy["phases"]["delete"] == {"min_age": "604800s", "actions": {"delete": {}}}
    assert policy["phases"]["hot"]["actions"]["rollover"]["max_age"] == "12h"
    with pytest.raises(PermanentStoreError):
        Layout(retention=dt.timedelta(0))


def test_index_template() -> None:
    names = Names("argus")
    template = index_template(names, Layout(replicas=0))
    assert template["index_patterns"] == ["argus-logs"] and template["data_stream"] == {}
    settings = template["template"]["settings"]
    assert settings["index.lifecycle.name"] == "argus-logs"
    assert settings["index.number_of_replicas"] == 0
    assert settings["index.max_result_window"] == MAX_LIMIT + 1
    assert (
        "index.lifecycle.name"
        not in index_template(names, Layout(ilm=False))["template"]["settings"]
    )


@pytest.mark.parametrize("prefix", ["", "Argus", "_x", ".x", "a b", "a*", "x" * 201])
def test_invalid_prefixes(prefix: str) -> None:
    with pytest.raises(PermanentStoreError):
        Names(prefix)


# ---------------------------------------------------------------------------- errors, headers


def api_error(status: int, error: Any) -> ApiError:
    meta = ApiResponseMeta(status, "1.1", HttpHeaders(), 0.0, NodeConfig("http", "h", 9200))
    return ApiError(str(status), meta, {"error": error, "status": status})


def test_bulk_failures() -> None:
    conflict = {"create": {"status": 409, "error": {"type": "version_conflict_engine_exception"}}}
    mapping = {"create": {"status": 400, "error": {
        "type": "document_parsing_exception",
        "reason": "[1:42] failed to parse field [severity_number] of type [integer]"}}}  # fmt: skip
    busy = {"create": {"status": 429, "error": {"type": "es_rejected_execution_exception"}}}
    assert bulk_failure_error([], 3) is None
    assert bulk_failure_error([conflict, conflict], 3) is None
    permanent = bulk_failure_error([conflict, mapping], 3)
    assert isinstance(permanent, PermanentStoreError)
    assert str(permanent).startswith(
        "Elasticsearch rejected 1 of 3 log records: field severity_number:"
    )
    assert isinstance(bulk_failure_error([mapping, busy], 3), RetryableStoreError)
    unavailable = {"create": {"status": 503, "error": {"type": "unavailable_shards_exception"}}}
    assert isinstance(bulk_failure_error([unavailable], 1), RetryableStoreError)


def test_translate_error() -> None:
    assert isinstance(translate_error(api_error(429, "busy"), "x"), RetryableStoreError)
    assert isinstance(translate_error(api_error(503, "down"), "x"), RetryableStoreError)
    assert isinstance(translate_error(api_error(403, "denied"), "x"), RetryableStoreError)
    assert isinstance(translate_error(api_error(400, "bad"), "x"), PermanentStoreError)
    bad = translate_error(api_error(400, {"type": "t", "reason": "why"}), "x",
                          bad_request_is_query_error=True)  # fmt: skip
    assert isinstance(bad, QueryError) and "t: why" in str(bad)
    assert isinstance(translate_error(ConnectionError("refused"), "x"), RetryableStoreError)


def test_compatibility_headers_are_rewritten() -> None:
    sent = HttpHeaders({
        "accept": "application/vnd.elasticsearch+json; compatible-with=9",
        "content-type": "application/vnd.elasticsearch+x-ndjson; compatible-with=9",
        "authorization": "ApiKey k",
    })  # fmt: skip
    plain = ApiCompat(None).rewrite(sent)
    assert (plain["accept"], plain["content-type"]) == ("application/json", "application/x-ndjson")
    eight = ApiCompat(8).rewrite(sent)
    assert eight["accept"] == "application/vnd.elasticsearch+json; compatible-with=8"
    assert eight["content-type"] == "application/vnd.elasticsearch+x-ndjson; compatible-with=8"
    assert eight["authorization"] == "ApiKey k"
    assert sent["accept"].endswith("compatible-with=9")  # the caller's headers are untouched


# ---------------------------------------------------------------------------- no server


async def test_an_unreachable_server_is_retryable() -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(RetryableStoreError):
        await ElasticsearchLogStore.open(f"http://127.0.0.1:{port}", request_timeout=2)
