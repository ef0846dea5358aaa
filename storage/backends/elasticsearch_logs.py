"""The Elasticsearch log store: the LogStore contract on Elasticsearch 8 or 9.

Untested against a live server where it was written (none could be installed there); the
contract suite runs against one when ARGUS_TEST_ELASTICSEARCH_URL is set (docs/deploy.md).

Layout. One data stream, `<index_prefix>-logs`, holds every tenant's records, each with a
`tenant` keyword; every search, aggregation and delete starts with a term filter on it
(elasticsearch_logs_query), so isolation does not depend on callers. One stream rather
than one per tenant because Elasticsearch's cost is per shard: a stream per tenant would
multiply backing indices, shards and ILM work by the number of tenants, most of them
small, while a term filter on a keyword is cheap. The index template maps every field
explicitly (elasticsearch_logs_schema.MAPPINGS): body as text, plus a lowercased wildcard
copy for `contains`; severity, service, trace and span ids as keywords or integers;
attributes and resource attributes as `flattened` string forms for equality filters; the
record itself as lossless JSON that Elasticsearch stores but does not parse
(elasticsearch_logs_codec), so records read back exactly as written.

Writes. Records go through elasticsearch.helpers.async_streaming_bulk as `create`
operations with ids derived from (tenant, batch id, position in the batch). A replayed
batch therefore conflicts (409) instead of duplicating, and 409 counts as success; a
partly failed batch can simply be retried. Per-record failures: 429 and 5xx raise
RetryableStoreError, anything else (a mapping error, say) PermanentStoreError naming the
field. Limits of this scheme: ids are unique per backing index, so a batch replayed
after the stream rolled over (daily by default) is stored twice; and a replay with more
records than the first delivery adds the extra ones (the embedded store ignores it).

Reads. Newest first by `ts` (the record's timestamp), ties by document id, paged with
search_after on those two values; the cursor carries them, so records written after the
first page do not shift later pages. Written records are searchable after the index's
refresh (about a second) unless the store was opened with `refresh`.

Analytics (elasticsearch_logs_query). severity_histogram is a date_histogram on
`@timestamp` with a severity range aggregation per bucket: Elasticsearch aggregates
date_nanos by the millisecond, so steps must be whole milliseconds (a QueryError
otherwise). top_values is a terms aggregation on `service` or on a key of the flattened
`attributes`/`resource` fields (exact on one shard, Elasticsearch's usual approximation
across several), severity a range aggregation. patterns clusters one search page, as the
embedded store does (log_patterns).

Retention. The data stream's ILM policy rolls backing indices over (`rollover_max_age`,
`rollover_max_primary_shard_size`) and, with `retention`, deletes them that long after
rollover: the global default. delete_before(tenant, cutoff) removes one tenant's older
records with delete_by_query.

API versions: see elasticsearch_common (the 9.x client talks to 8.x servers too).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, Self

import orjson
from elasticsearch import AsyncElasticsearch, NotFoundError
from elasticsearch.helpers import async_streaming_bulk

from ..errors import PermanentStoreError, QueryError, RetryableStoreError, StoreError
from ..log_patterns import patterns_by_search
from ..logs import (
    MAX_HISTOGRAM_BUCKETS,
    LogPage,
    LogPatterns,
    LogQuery,
    SeverityBucket,
    ValueCount,
    check_histogram,
    check_top_values,
    top_field,
)
from ..model import LogRecord
from .elasticsearch_common import (
    CLIENT_ERRORS,
    ApiCompat,
    compat_major,
    describe,
    detect_major,
    error_type,
    is_retryable_status,
    make_client,
    translate_error,
)
from .elasticsearch_logs_codec import decode_cursor, decode_document, encode_cursor, encode_document
from .elasticsearch_logs_query import (
    NANOS_PER_MILLI,
    delete_query,
    histogram_request,
    search_request,
    severity_counts,
    tenants_request,
    top_values_request,
)
from .elasticsearch_logs_schema import MAX_LIMIT, Layout, Names, ilm_policy, index_template

Refresh = bool | Literal["wait_for"]

BULK_CHUNK_DOCS = 1000
BULK_CHUNK_BYTES = 10 * 1024 * 1024  # well under http.max_content_length (100mb)
_FIELD = re.compile(r"field \[([^\]]+)\]")


def bulk_failure_error(failures: list[dict[str, Any]], total: int) -> StoreError | None:
    """The error to raise for the failed items of a bulk write, None if there is none.

    409 is a record an earlier delivery of the batch stored: success. Any 429 or 5xx (or
    401/403, see is_retryable_status) makes the whole batch retryable (its stored records
    will conflict on the retry); otherwise the first rejection is reported, leading with
    the field Elasticsearch names in its reason (a mapping error).
    """
    retryable: list[str] = []
    permanent: list[str] = []
    for failure in failures:
        for info in failure.values():
            status = int(info.get("status", 500))
            if status == 409:
                continue
            reason = describe(info.get("error"))
            field = _FIELD.search(reason)
            text = f"{status} {reason}" if field is None else f"field {field[1]}: {status} {reason}"
            (retryable if is_retryable_status(status) else permanent).append(text)
    if retryable:
        return RetryableStoreError(
            f"Elasticsearch refused {len(retryable)} of {total} log records for now: {retryable[0]}"
        )
    if permanent:
        return PermanentStoreError(
            f"Elasticsearch rejected {len(permanent)} of {total} log records: {permanent[0]}"
        )
    return None


def _failure(failure: Any) -> str:
    """One entry of delete_by_query's `failures` (a bulk or a search failure)."""
    if isinstance(failure, dict):
        return describe(failure.get("cause") or failure.get("reason") or failure)
    return describe(failure)


class ElasticsearchLogStore:
    """LogStore on an Elasticsearch data stream (see the module docstring)."""

    def __init__(
        self,
        client: AsyncElasticsearch,
        names: Names,
        *,
        refresh: Refresh = False,
        delete_timeout: float = 3600.0,
    ) -> None:
        self._client = client
        self._names = names
        self._refresh = refresh
        self._delete_timeout = delete_timeout
        self._closed = False

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        index_prefix: str = "argus",
        api_key: str = "",
        retention: dt.timedelta | None = None,
        rollover_max_age: str = "1d",
        rollover_max_primary_shard_size: str = "50gb",
        ilm: bool = True,
        shards: int = 1,
        replicas: int | None = None,
        setup: bool = True,
        refresh: Refresh = False,
        server_major: int | None = None,
        request_timeout: float = 30.0,
    ) -> Self:
        """Connect, and (with `setup`) install or update the ILM policy and index template
        and create the data stream if missing.

        `retention`: how long ILM keeps a rolled-over backing index (None: forever).
        `ilm=False` leaves lifecycle management out entirely (e.g. it is done elsewhere).
        `setup=False` skips installing, for API keys without the cluster privileges
        `manage_ilm` and `manage_index_templates`. `server_major` skips the version probe
        (`GET /`, which needs `monitor`). `refresh` is passed to bulk writes: True or
        "wait_for" make records searchable as soon as write_logs returns (tests use it).
        """
        names = Names(index_prefix)
        layout = Layout(
            retention=retention, rollover_max_age=rollover_max_age,
            rollover_max_primary_shard_size=rollover_max_primary_shard_size, ilm=ilm,
            shards=shards, replicas=replicas,
        )  # fmt: skip
        client = await connect(
            url, api_key=api_key, server_major=server_major, request_timeout=request_timeout
        )
        store = cls(client, names, refresh=refresh)
        try:
            if setup:
                await store.install(layout)
        except BaseException:
            await client.close()
            raise
        return store

    async def install(self, layout: Layout) -> None:
        """Put the ILM policy and index template, create the data stream. Idempotent, and
        safe when several processes open the store at once."""
        names, es = self._names, self._client
        try:
            if layout.ilm:
                await es.ilm.put_lifecycle(name=names.policy, policy=ilm_policy(layout))
            await es.indices.put_index_template(**index_template(names, layout))
            try:
                await es.indices.create_data_stream(name=names.stream)
            except CLIENT_ERRORS as exc:
                if error_type(exc) != "resource_already_exists_exception":
                    raise
        except CLIENT_ERRORS as exc:
            raise translate_error(exc, f"setup of {names.stream}") from exc

    # ------------------------------------------------------------------------ LogStore

    async def write_logs(self, tenant: str, records: Sequence[LogRecord], batch_id: str) -> None:
        self._check_open()
        if not records:
            return
        stream = self._names.stream
        try:
            actions = []
            for position, record in enumerate(records):
                doc_id, source = encode_document(tenant, batch_id, position, record)
                actions.append(
                    {"_op_type": "create", "_index": stream, "_id": doc_id, "_source": source}
                )
        except (TypeError, ValueError, OverflowError, orjson.JSONEncodeError) as exc:
            raise PermanentStoreError(f"cannot encode log records: {exc}") from exc
        options: dict[str, Any] = {"refresh": self._refresh} if self._refresh else {}
        failures: list[dict[str, Any]] = []
        try:
            async for ok, item in async_streaming_bulk(
                self._client,
                actions,
                chunk_size=BULK_CHUNK_DOCS,
                max_chunk_bytes=BULK_CHUNK_BYTES,
                raise_on_error=False,  # failed items are yielded; bulk_failure_error sorts them
                raise_on_exception=True,
                max_retries=0,  # the collector retries the whole batch; ids make that safe
                yield_ok=False,
                **options,
            ):
                if not ok:
                    failures.append(item)
        except CLIENT_ERRORS as exc:
            raise translate_error(exc, f"bulk write to {stream}") from exc
        error = bulk_failure_error(failures, len(records))
        if error is not None:
            raise error

    async def search(self, query: LogQuery) -> LogPage:
        self._check_open()
        if query.limit < 0 or query.limit > MAX_LIMIT:
            raise QueryError(f"limit must be between 0 and {MAX_LIMIT}, got {query.limit}")
        after = decode_cursor(query.cursor) if query.cursor is not None else None
        if query.limit == 0:
            return LogPage([], None)
        body = await self._search(search_request(query, after), "log search")
        hits: list[dict[str, Any]] = body.get("hits", {}).get("hits", [])
        page = hits[: query.limit]
        records = [decode_document(hit["_source"]) for hit in page]
        next_cursor = None
        if len(hits) > query.limit:
            ts, seq = page[-1]["sort"]
            next_cursor = encode_cursor(int(ts), str(seq))
        return LogPage(records, next_cursor)

    async def severity_histogram(self, query: LogQuery, step_nanos: int) -> list[SeverityBucket]:
        """date_histogram with a severity range aggregation per bucket (see
        elasticsearch_logs_query.histogram_request: the step must be whole milliseconds)."""
        self._check_open()
        check_histogram(query, step_nanos)
        body = await self._search(histogram_request(query, step_nanos), "log histogram")
        found = body.get("aggregations", {}).get("buckets", {}).get("buckets", [])
        if len(found) > MAX_HISTOGRAM_BUCKETS:
            raise QueryError(
                f"the histogram has more than {MAX_HISTOGRAM_BUCKETS} buckets; use a larger"
                " step or a time range"
            )
        buckets = []
        for bucket in found:
            counts = severity_counts(bucket.get("severity", {}), int(bucket["doc_count"]))
            if counts:
                buckets.append(SeverityBucket(int(bucket["key"]) * NANOS_PER_MILLI, counts))
        return buckets

    async def top_values(self, query: LogQuery, field: str, limit: int) -> list[ValueCount]:
        self._check_open()
        kind, _ = top_field(field)
        check_top_values(limit)
        request = top_values_request(query, field, limit)
        if request is None:
            return []
        body = await self._search(request, "log top values")
        aggregations = body.get("aggregations", {})
        if kind == "severity":
            total = int(body.get("hits", {}).get("total", {}).get("value", 0))
            counts = severity_counts(aggregations.get("severity", {}), total)
            found = [ValueCount(name, count) for name, count in counts.items()]
            return sorted(found, key=lambda v: (-v.count, v.value))[:limit]
        return [
            ValueCount(str(bucket["key"]), int(bucket["doc_count"]))
            for bucket in aggregations.get("values", {}).get("buckets", [])
        ]

    async def patterns(self, query: LogQuery, limit: int, sample_limit: int) -> LogPatterns:
        self._check_open()
        return await patterns_by_search(self, query, limit, sample_limit)

    async def tenants(self) -> list[str]:
        """Every tenant that has log records, sorted."""
        self._check_open()
        found: list[str] = []
        after: dict[str, Any] | None = None
        while True:
            body = await self._search(tenants_request(after), "tenant listing")
            aggregation = body.get("aggregations", {}).get("tenants", {})
            buckets = aggregation.get("buckets", [])
            found.extend(str(bucket["key"]["tenant"]) for bucket in buckets)
            after = aggregation.get("after_key")
            if not buckets or after is None:
                return sorted(found)

    async def delete_before(self, tenant: str, cutoff_unix_nano: int) -> int:
        """Delete the tenant's records whose timestamp is before the cutoff; returns how
        many. For every tenant at once, give the store a `retention` (ILM) instead."""
        self._check_open()
        query = delete_query(tenant, cutoff_unix_nano)
        if query is None:
            return 0
        client = self._client.options(request_timeout=self._delete_timeout)
        try:
            response = await client.delete_by_query(
                index=self._names.stream,
                query=query,
                conflicts="proceed",
                refresh=True,
                slices="auto",
                wait_for_completion=True,
                ignore_unavailable=True,
                allow_no_indices=True,
            )
        except NotFoundError:
            return 0
        except CLIENT_ERRORS as exc:
            raise translate_error(exc, f"delete_by_query on {self._names.stream}") from exc
        body = response.body
        if body.get("failures"):
            raise RetryableStoreError(
                f"Elasticsearch delete_by_query on {self._names.stream} partly failed"
                f" ({body.get('deleted', 0)} deleted): {_failure(body['failures'][0])}"
            )
        return int(body.get("deleted", 0))

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._client.close()

    # ------------------------------------------------------------------------ helpers

    def _check_open(self) -> None:
        if self._closed:
            raise PermanentStoreError("Elasticsearch log store is closed")

    async def _search(self, request: dict[str, Any], what: str) -> dict[str, Any]:
        try:
            response = await self._client.search(
                index=self._names.stream, ignore_unavailable=True, allow_no_indices=True,
                **request,
            )  # fmt: skip
        except NotFoundError:  # the data stream was deleted behind our back
            return {}
        except CLIENT_ERRORS as exc:
            raise translate_error(exc, what, bad_request_is_query_error=True) from exc
        body: dict[str, Any] = response.body
        return body


async def connect(
    url: str,
    *,
    api_key: str = "",
    server_major: int | None = None,
    request_timeout: float = 30.0,
) -> AsyncElasticsearch:
    """A client speaking the API version of the server at `url` (probed unless given)."""
    compat = ApiCompat(None if server_major is None else compat_major(server_major))
    client = make_client(url, api_key=api_key, request_timeout=request_timeout, compat=compat)
    if server_major is None:
        try:
            compat.major = compat_major(await detect_major(client))
        except BaseException as exc:
            await client.close()
            if isinstance(exc, CLIENT_ERRORS):
                raise translate_error(exc, f"version probe of {url}") from exc
            raise
    return client


async def drop(url: str, *, index_prefix: str, api_key: str = "") -> None:
    """Delete everything a store with this prefix installed: its data stream (with all its
    records), index template and ILM policy. Missing pieces are skipped."""
    names = Names(index_prefix)
    client = await connect(url, api_key=api_key)
    try:
        steps: list[Callable[[], Awaitable[object]]] = [
            lambda: client.indices.delete_data_stream(name=names.stream),
            lambda: client.indices.delete_index_template(name=names.template),
            lambda: client.ilm.delete_lifecycle(name=names.policy),
        ]
        for call in steps:
            try:
                await call()
            except NotFoundError:
                pass
            except CLIENT_ERRORS as exc:
                raise translate_error(exc, f"drop of {names.stream}") from exc
    finally:
        await client.close()
