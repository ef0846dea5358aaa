"""The Elasticsearch log store without an Elasticsearch: its codec, query builder, error
mapping and API-compatibility headers as units, then the whole LogStore contract suite
(test_log_store.py) through the real client against FakeElasticsearch below.

FakeElasticsearch is an in-process HTTP server that answers the few REST calls the store
makes, modelled on Elasticsearch's documented behaviour: an 8.x server refusing the 9.x
client's `compatible-with=9`, data streams that need a matching template and take only
`create` with 409 on a known id, explicit mappings (ignore_above, Lucene's 32766-byte term
limit, flattened keys without NUL, date_nanos range), and the query DSL the store uses
(bool, term, range, wildcard with escapes, sort + search_after, composite, _source
includes/excludes). It checks our side of the protocol and our logic, not Elasticsearch:
the same suite against a real server is the `elasticsearch` parameter of conftest.py.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import re
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import test_log_store as contract  # the contract suite's module (tests/contract is on sys.path)
from argus.storage.backends import elasticsearch_logs as es_logs
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
from argus.storage.logs import LogQuery, LogStore
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


# ---------------------------------------------------------------------------- fake server


class FakeElasticsearch:
    """See the module docstring. One instance is one cluster with data streams."""

    def __init__(self, major: int) -> None:
        self.major = major
        self.templates: dict[str, dict[str, Any]] = {}
        self.policies: dict[str, dict[str, Any]] = {}
        self.streams: dict[str, dict[str, dict[str, Any]]] = {}  # name -> id -> source
        self.requests: list[tuple[str, str, str]] = []  # method, path, Accept

    # -- plumbing

    def app(self) -> Any:
        app = aiohttp_web.Application(client_max_size=200 * 1024 * 1024)
        app.router.add_route("*", "/{path:.*}", self.handle)
        return app

    @staticmethod
    def reply(body: Any, status: int = 200) -> Any:
        return aiohttp_web.json_response(
            body, status=status, headers={"X-Elastic-Product": "Elasticsearch"},
            dumps=lambda v: json.dumps(v, ensure_ascii=False),
        )  # fmt: skip

    def error(self, status: int, kind: str, reason: str = "") -> Any:
        return self.reply({"error": {"type": kind, "reason": reason, "root_cause": [
            {"type": kind, "reason": reason}]}, "status": status}, status)  # fmt: skip

    def header_error(self, request: Any, has_body: bool) -> str | None:
        versions = {}
        for name in ("Accept", "Content-Type"):
            found = re.search(r"compatible-with=(\d+)", request.headers.get(name, ""))
            if found:
                versions[name] = int(found.group(1))
        for version in versions.values():
            if version not in (self.major, self.major - 1):
                return f"Accept version must be either version {self.major} or {self.major - 1}, but found {version}"
        if has_body and len(versions) == 1:
            return "A compatible version is required on both Content-Type and Accept headers"
        return None

    async def handle(self, request: Any) -> Any:
        raw = await request.read()
        self.requests.append((request.method, request.path, request.headers.get("Accept", "")))
        problem = self.header_error(request, bool(raw))
        if problem:
            return self.error(400, "media_type_header_exception", problem)
        params = dict(request.query)
        parts = [p for p in request.path.split("/") if p]
        method = request.method
        if method == "GET" and not parts:
            return self.reply({"version": {"number": f"{self.major}.1.0"}, "tagline": "fake"})
        if parts == ["_bulk"] and method in ("POST", "PUT"):
            self.allow(params, {"refresh"})
            return self.bulk(raw)
        body = json.loads(raw) if raw else {}
        if len(parts) == 3 and parts[:2] == ["_ilm", "policy"]:
            return self.ilm(method, parts[2], body)
        if len(parts) == 2 and parts[0] == "_index_template":
            return self.template(method, parts[1], body)
        if len(parts) == 2 and parts[0] == "_data_stream":
            return self.data_stream(method, parts[1])
        if len(parts) == 2 and parts[1] == "_search" and method == "POST":
            self.allow(params, {"ignore_unavailable", "allow_no_indices"})
            return self.search(parts[0], body, params)
        if len(parts) == 2 and parts[1] == "_delete_by_query" and method == "POST":
            self.allow(params, {"conflicts", "refresh", "slices", "wait_for_completion",
                                "ignore_unavailable", "allow_no_indices"})  # fmt: skip
            return self.delete_by_query(parts[0], body)
        raise AssertionError(f"fake Elasticsearch: unexpected {method} {request.path}")

    @staticmethod
    def allow(params: dict[str, str], known: set[str]) -> None:
        assert set(params) <= known, f"unrecognized parameters {set(params) - known}"

    # -- management

    def ilm(self, method: str, name: str, body: dict[str, Any]) -> Any:
        if method == "PUT":
            phases = body["policy"]["phases"]
            assert set(phases) <= {"hot", "warm", "cold", "frozen", "delete"}
            self.policies[name] = body["policy"]
            return self.reply({"acknowledged": True})
        assert method == "DELETE"
        if self.policies.pop(name, None) is None:
            return self.error(404, "resource_not_found_exception", name)
        return self.reply({"acknowledged": True})

    def template(self, method: str, name: str, body: dict[str, Any]) -> Any:
        if method == "PUT":
            assert set(body) <= {"index_patterns", "data_stream", "priority", "template", "_meta",
                                 "composed_of", "version"}  # fmt: skip
            policy = body["template"]["settings"].get("index.lifecycle.name")
            assert policy is None or policy in self.policies
            self.templates[name] = body
            return self.reply({"acknowledged": True})
        assert method == "DELETE"
        if self.templates.pop(name, None) is None:
            return self.error(404, "resource_not_found_exception", name)
        return self.reply({"acknowledged": True})

    def data_stream(self, method: str, name: str) -> Any:
        if method == "PUT":
            if name in self.streams:
                return self.error(400, "resource_already_exists_exception", name)
            if self.template_for(name) is None:
                return self.error(400, "illegal_argument_exception", "no matching index template")
            self.streams[name] = {}
            return self.reply({"acknowledged": True})
        assert method == "DELETE"
        if self.streams.pop(name, None) is None:
            return self.error(404, "index_not_found_exception", name)
        return self.reply({"acknowledged": True})

    def template_for(self, name: str) -> dict[str, Any] | None:
        for template in self.templates.values():
            if name in template["index_patterns"] and "data_stream" in template:
                return template
        return None

    def mapping(self, stream: str) -> dict[str, Any]:
        template = self.template_for(stream)
        assert template is not None
        return dict(template["template"]["mappings"])

    # -- documents

    def bulk(self, raw: bytes) -> Any:
        lines = [json.loads(line) for line in raw.decode().splitlines() if line.strip()]
        items = []
        for action, source in zip(lines[::2], lines[1::2]):
            [(op, meta)] = action.items()
            stream, doc_id = meta["_index"], meta.get("_id")
            result: dict[str, Any] = {"_index": f".ds-{stream}-000001", "_id": doc_id}
            if op != "create":
                result.update(status=400, error={"type": "illegal_argument_exception",
                              "reason": "only write ops with an op_type of create are allowed in data streams"})  # fmt: skip
            elif stream not in self.streams and self.template_for(stream) is None:
                result.update(status=404, error={"type": "index_not_found_exception"})
            else:
                docs = self.streams.setdefault(stream, {})
                problem = self.check_document(self.mapping(stream), source, doc_id)
                if problem:
                    result.update(status=400, error={"type": "document_parsing_exception",
                                                     "reason": problem})  # fmt: skip
                elif doc_id in docs:
                    result.update(status=409, error={"type": "version_conflict_engine_exception"})
                else:
                    docs[doc_id] = source
                    result.update(status=201, result="created")
            items.append({op: result})
        errors = any(item[op]["status"] >= 300 for item in items for op in item)
        return self.reply({"took": 1, "errors": errors, "items": items})

    @staticmethod
    def check_document(mapping: dict[str, Any], source: dict[str, Any], doc_id: str) -> str | None:
        if "@timestamp" not in source:
            return "data stream timestamp field [@timestamp] is missing"
        for field, value in source.items():
            spec = mapping["properties"].get(field)
            if spec is None:
                return f"fake: unmapped field [{field}]"  # real: kept in _source, unindexed
            kind = spec["type"]
            failed = (
                f"failed to parse field [{field}] of type [{kind}] in document with id '{doc_id}'"
            )
            for item in value if isinstance(value, list) else [value]:
                if kind == "long" and not (isinstance(item, int) and -(2**63) <= item < 2**63):
                    return failed
                if kind == "integer" and not (isinstance(item, int) and -(2**31) <= item < 2**31):
                    return failed
                if kind == "date_nanos" and not (
                    isinstance(item, str)
                    and re.fullmatch(
                        r"(19[7-9]\d|2[0-2]\d\d)-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", item
                    )
                ):
                    return failed
                if kind in ("keyword", "text", "wildcard") and not isinstance(item, str):
                    return failed
                indexed = kind == "keyword" and len(item) <= spec.get("ignore_above", math.inf)
                if indexed and len(item.encode()) > 32766:
                    return f'Document contains at least one immense term in field="{field}"'
                if kind == "flattened":
                    if not isinstance(item, dict):
                        return failed
                    for key, leaf in item.items():
                        if "\0" in key:
                            return "Keys in [flattened] fields cannot contain the reserved character \\0."
                        assert key, "the store never sends an empty flattened key"
                        if not isinstance(leaf, str):
                            return failed
                        short = len(leaf) <= spec.get("ignore_above", math.inf)
                        if short and len(f"{key}\0{leaf}".encode()) > 32766:
                            return f'Document contains at least one immense term in field="{field}"'
        return None

    def values(self, mapping: dict[str, Any], doc: dict[str, Any], field: str) -> list[Any]:
        """The indexed values of `field` in `doc`."""
        properties = mapping["properties"]
        if field in properties:
            spec, value = properties[field], doc.get(field)
            if value is None:
                return []
            found = value if isinstance(value, list) else [value]
            limit = spec.get("ignore_above", math.inf)
            return [v for v in found if not isinstance(v, str) or len(v) <= limit]
        root, _, key = field.partition(".")
        assert properties.get(root, {}).get("type") == "flattened", f"unmapped field {field}"
        leaf = (doc.get(root) or {}).get(key)
        limit = properties[root].get("ignore_above", math.inf)
        return [] if leaf is None or len(leaf) > limit else [leaf]

    def matches(self, mapping: dict[str, Any], doc: dict[str, Any], query: dict[str, Any]) -> bool:
        [(kind, spec)] = query.items()
        if kind == "match_all":
            return True
        if kind == "match_none":
            return False
        if kind == "bool":
            assert set(spec) <= {"filter", "must", "should", "must_not", "minimum_should_match"}
            if not all(
                self.matches(mapping, doc, q) for q in spec.get("filter", []) + spec.get("must", [])
            ):
                return False
            if any(self.matches(mapping, doc, q) for q in spec.get("must_not", [])):
                return False
            should = spec.get("should", [])
            default = 0 if spec.get("filter") or spec.get("must") else 1
            wanted = spec.get("minimum_should_match", default if should else 0)
            return bool(sum(self.matches(mapping, doc, q) for q in should) >= wanted)
        [(field, condition)] = spec.items()
        found = self.values(mapping, doc, field)
        if kind == "term":
            wanted = condition["value"] if isinstance(condition, dict) else condition
            return wanted in found
        if kind == "range":
            assert set(condition) <= {"gte", "gt", "lt", "lte"}
            return any(
                all({"gte": v >= b, "gt": v > b, "lt": v < b, "lte": v <= b}[op]
                    for op, b in condition.items())
                for v in found
            )  # fmt: skip
        if kind == "wildcard":
            assert set(condition) == {"value"}
            pattern = wildcard_regex(condition["value"])
            return any(pattern.fullmatch(v) for v in found)
        raise AssertionError(f"fake Elasticsearch: unsupported query {kind}")

    def search(self, stream: str, body: dict[str, Any], params: dict[str, str]) -> Any:
        assert set(body) <= {"query", "sort", "size", "_source", "track_total_hits",
                             "search_after", "aggs"}  # fmt: skip
        if stream not in self.streams:
            if params.get("ignore_unavailable") == "true":
                return self.reply({"hits": {"hits": []}})
            return self.error(404, "index_not_found_exception", stream)
        mapping = self.mapping(stream)
        window = self.template_for(stream)["template"]["settings"].get(  # type: ignore[index]
            "index.max_result_window", 10_000)  # fmt: skip
        size = body.get("size", 10)
        if size > window:
            return self.error(400, "illegal_argument_exception", "Result window is too large")
        docs = [(doc_id, doc) for doc_id, doc in self.streams[stream].items()
                if self.matches(mapping, doc, body.get("query", {"match_all": {}}))]  # fmt: skip
        if "aggs" in body:
            return self.reply({"hits": {"hits": []}, "aggregations": self.composite(
                mapping, [doc for _, doc in docs], body["aggs"])})  # fmt: skip
        sort = [next(iter(s.items())) for s in body["sort"]]
        assert all(spec["order"] == "desc" for _, spec in sort)
        keyed = sorted(
            ((tuple(self.values(mapping, doc, field)[0] for field, _ in sort), doc_id, doc)
             for doc_id, doc in docs), key=lambda item: item[0], reverse=True,
        )  # fmt: skip
        if "search_after" in body:
            after = tuple(body["search_after"])
            keyed = [item for item in keyed if item[0] < after]
        includes = body.get("_source", {}).get("includes")
        excludes = mapping.get("_source", {}).get("excludes", [])
        hits = []
        for key, doc_id, doc in keyed[:size]:
            source = {k: v for k, v in doc.items() if k not in excludes}
            if includes is not None:
                source = {k: v for k, v in source.items() if k in includes}
            hits.append({"_index": f".ds-{stream}-000001", "_id": doc_id, "_source": source,
                         "sort": list(key)})  # fmt: skip
        return self.reply({"took": 1, "timed_out": False, "hits": {"hits": hits}})

    def composite(self, mapping: dict[str, Any], docs: list[dict[str, Any]],
                  aggs: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
        [(name, spec)] = aggs.items()
        composite = spec["composite"]
        [source] = composite["sources"]
        [(key_name, terms)] = source.items()
        field = terms["terms"]["field"]
        keys = sorted({v for doc in docs for v in self.values(mapping, doc, field)})
        if "after" in composite:
            keys = [k for k in keys if k > composite["after"][key_name]]
        buckets = [{"key": {key_name: k}, "doc_count": 1} for k in keys[: composite["size"]]]
        result: dict[str, Any] = {"buckets": buckets}
        if buckets:
            result["after_key"] = buckets[-1]["key"]
        return {name: result}

    def delete_by_query(self, stream: str, body: dict[str, Any]) -> Any:
        assert set(body) == {"query"}
        if stream not in self.streams:
            return self.reply({"deleted": 0, "failures": []})
        mapping = self.mapping(stream)
        doomed = [
            i
            for i, doc in self.streams[stream].items()
            if self.matches(mapping, doc, body["query"])
        ]
        for doc_id in doomed:
            del self.streams[stream][doc_id]
        return self.reply({"deleted": len(doomed), "failures": []})


def wildcard_regex(pattern: str) -> re.Pattern[str]:
    """Elasticsearch's wildcard syntax: `*`, `?`, and `\\` escaping the next character."""
    out, index = [], 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            out.append(re.escape(pattern[index + 1]))
            index += 2
            continue
        out.append(".*" if char == "*" else "." if char == "?" else re.escape(char))
        index += 1
    return re.compile("".join(out), re.DOTALL)


_prefixes = itertools.count()


@pytest.fixture(params=[8, 9], ids=["es8", "es9"])
async def fake_es(request: pytest.FixtureRequest) -> AsyncIterator[tuple[FakeElasticsearch, str]]:
    fake = FakeElasticsearch(request.param)
    runner = aiohttp_web.AppRunner(fake.app())
    await runner.setup()
    site = aiohttp_web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def log_store(fake_es: tuple[FakeElasticsearch, str]) -> AsyncIterator[LogStore]:
    """Overrides conftest's fixture: the contract tests below run against the fake."""
    fake, url = fake_es
    prefix = f"argus_offline_{next(_prefixes)}"
    store = await ElasticsearchLogStore.open(url, index_prefix=prefix, refresh=True)
    yield store
    await store.close()
    await es_logs.drop(url, index_prefix=prefix)
    assert not fake.streams and not fake.templates and not fake.policies


# The contract suite, collected again here with the fixture above.
for _name, _test in vars(contract).items():
    if _name.startswith("test_") and callable(_test):
        globals()[f"{_name}"] = _test


# ---------------------------------------------------------------------------- store + fake


async def test_open_installs_policy_template_and_stream(
    fake_es: tuple[FakeElasticsearch, str],
) -> None:
    fake, url = fake_es
    store = await ElasticsearchLogStore.open(url, index_prefix="p", retention=dt.timedelta(days=3))
    again = await ElasticsearchLogStore.open(url, index_prefix="p")  # idempotent
    await again.close()
    await store.close()
    assert set(fake.streams) == {"p-logs"}
    assert fake.templates["p-logs"]["template"]["settings"]["index.lifecycle.name"] == "p-logs"
    assert "delete" not in fake.policies["p-logs"]["phases"]  # the second open's policy
    await es_logs.drop(url, index_prefix="p")
    assert not fake.streams and not fake.templates and not fake.policies


async def test_replayed_batch_conflicts_and_counts_as_written(
    fake_es: tuple[FakeElasticsearch, str],
) -> None:
    fake, url = fake_es
    store = await ElasticsearchLogStore.open(url, index_prefix="r", refresh=True)
    records = [contract.record(n, f"r{n}") for n in range(3)]
    await store.write_logs("t", records[:2], "b")  # a first delivery that stopped half way
    await store.write_logs("t", records, "b")
    assert len(fake.streams["r-logs"]) == 3
    await store.close()


async def test_mapping_errors_are_permanent_and_name_the_field(
    fake_es: tuple[FakeElasticsearch, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, url = fake_es
    store = await ElasticsearchLogStore.open(url, index_prefix="m", refresh=True)
    real = es_logs.encode_document

    def broken(*args: Any) -> tuple[str, dict[str, Any]]:
        doc_id, source = real(*args)
        return doc_id, {**source, "ts": "not a number"}

    monkeypatch.setattr(es_logs, "encode_document", broken)
    with pytest.raises(PermanentStoreError, match=r"field ts: 400 document_parsing_exception"):
        await store.write_logs("t", [contract.record(1)], "b")
    await store.close()


async def test_long_values_are_stored_and_filtered_exactly(
    fake_es: tuple[FakeElasticsearch, str],
) -> None:
    _, url = fake_es
    store = await ElasticsearchLogStore.open(url, index_prefix="l", refresh=True)
    huge = "é" * 20_000  # 40,000 UTF-8 bytes: over Lucene's term limit
    rec = contract.record(1, huge, service=huge, attributes={"big": huge, huge[:5000]: "k"})
    await store.write_logs("t", [rec, contract.record(2, "other")], "b")
    for query in (
        LogQuery("t", service=huge),
        LogQuery("t", attributes={"big": huge}),
        LogQuery("t", contains=huge[1000:1300].upper()),
    ):
        contract.assert_same((await store.search(query)).records, [rec])
    assert (await store.search(LogQuery("t", attributes={huge[:5000]: "k"}))).records == []
    await store.close()


async def test_tenants_and_delete_before(fake_es: tuple[FakeElasticsearch, str]) -> None:
    _, url = fake_es
    store = await ElasticsearchLogStore.open(url, index_prefix="d", refresh=True)
    assert await store.tenants() == []
    await store.write_logs("b", [contract.record(n, f"b{n}") for n in range(5)], "1")
    await store.write_logs("a", [contract.record(n, f"a{n}") for n in range(5)], "1")
    assert await store.tenants() == ["a", "b"]
    assert await store.delete_before("a", T0 + 3 * contract.SECOND) == 3
    assert [r.body for r in (await store.search(LogQuery("a"))).records] == ["a4", "a3"]
    assert len((await store.search(LogQuery("b"))).records) == 5
    assert await store.delete_before("a", 2**64) == 2
    assert await store.tenants() == ["b"]
    await store.close()


async def test_tenant_listing_pages(fake_es: tuple[FakeElasticsearch, str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from argus.storage.backends import elasticsearch_logs_query as query_module

    _, url = fake_es
    store = await ElasticsearchLogStore.open(url, index_prefix="tp", refresh=True)
    names = [f"tenant-{n:02d}" for n in range(7)]
    for name in names:
        await store.write_logs(name, [contract.record(1)], "b")
    real = query_module.tenants_request
    monkeypatch.setattr(es_logs, "tenants_request", lambda after: real(after, size=3))
    assert await store.tenants() == names
    await store.close()


async def test_an_unreachable_server_is_retryable() -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(RetryableStoreError):
        await ElasticsearchLogStore.open(f"http://127.0.0.1:{port}", request_timeout=2)


async def test_requests_ask_for_the_servers_api_version(
    fake_es: tuple[FakeElasticsearch, str],
) -> None:
    fake, url = fake_es
    store = await ElasticsearchLogStore.open(url, index_prefix="h", refresh=True)
    await store.write_logs("t", [contract.record(1)], "b")
    assert len((await store.search(LogQuery("t"))).records) == 1
    await store.close()
    probe, *rest = fake.requests
    assert probe == ("GET", "/", "application/json")
    compat = f"application/vnd.elasticsearch+json; compatible-with={fake.major}"
    assert [accept for _, _, accept in rest] == [compat] * 5
