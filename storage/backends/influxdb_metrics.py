"""The metric store on InfluxDB, and a write-only mirror to VictoriaMetrics.

Serves InfluxDB 1.8, 2.x and 3.x through what all of them offer: line protocol on
`POST /write` (or influxdb-client's `POST /api/v2/write` with `write_api="v2"`, needed for
2.x buckets without a v1 user) and InfluxQL on `/query` (2.x answers it for buckets with
a DBRP mapping, 3.x natively). Verified against InfluxDB 1.6.7 and VictoriaMetrics 1.79.

## How OTLP metric points are stored

One measurement per metric name; one line per point. Every point carries the tags
`tenant` (every statement filters on it), `kind`, `sid` (a hash of kind and labels: the
logical series, which statements group by instead of the slow GROUP BY *) and the point's
labels (resource attributes, then the point's own attributes, as `series_labels` gives
them; empty values are left out, as InfluxDB has none):

| kind | `kind` tag | fields |
| --- | --- | --- |
| gauge | `gauge` | `value` float; `int` integer, the exact value, when it is an int |
| sum | `sum[.delta / .cumulative][.monotonic]` | as gauge, `start` integer |
| histogram | `histogram[.temporality]`, tag `bounds` (JSON) | `count`, `sum`, `min`, `max`, `b0`..`bN` per-bucket counts (integers), `start` |
| exponential histogram | `exponential_histogram[.temporality]` | `count`, `sum`, `min`, `max`, `zero_count`, `scale`, `data` (all of it, JSON) |
| summary | `summary` | `count`, `sum`, `q<quantile>` per quantile, `data` (JSON) |

Every point may also have `flags` (integer), `exemplars` (JSON text: InfluxDB has no
exemplar type, but text keeps them with their point) and `nonfinite` (JSON text, e.g.
{"value": "NaN"}: line protocol has no NaN or infinity, so such a value is left out of its
numeric field and kept here; query_range does not see it). Sum, histogram and exponential
histogram temporality, and monotonicity, are in the `kind` tag, so queries pick delta
and cumulative series apart without reading points. The histogram bounds are a tag, so
InfluxQL sums delta buckets per layout; a series keeps its layout, so the tag adds no
series in practice.

What labels cannot express (typed resource and point attributes, dropped counts, schema
URLs, scope, metadata, unit, description) lives in a catalog measurement `~series`: one
line per *variant* (a hash of all that plus tenant, metric and kind tag, stored on each
point as the string field `v`) and hour, written once per hour the variant has points
(retention drops catalog lines with the points they describe). `~metrics` holds each
metric's latest kind, unit and description, rewritten when they change and once a day.
How names are escaped (label keys that collide with the store's tags or fields, text line
protocol cannot carry) is in influxdb_schema.

## Writes

A batch is encoded off the event loop and sent in requests of `lines_per_request` lines.
InfluxDB overwrites a point written again with the same measurement, tags and timestamp;
the encoding is deterministic (influxdb_lines), so replaying a batch, whole or after a
partial failure, stores exactly what the first attempt would have: writes are idempotent
per batch id without recording batch ids. The flip side: two points of one series with
the same timestamp (say, a scope version changing mid-flight) keep only the later one.
A write has been accepted by the server when `write_points` returns (InfluxDB syncs its
WAL per write by default).

## Reads

InfluxQL does per-series step averages and delta-histogram bucket sums; combining series,
counter rates and cumulative-histogram increases happen in Python (influxdb_compute says
why). Limits and refusals are the embedded store's (`validate`, MAX_SERIES, MAX_STEPS),
except that the series limit counts series with points in the queried range.

## VictoriaMetrics

With `server="victoriametrics"` the store only writes, through `/api/v2/write`
(`write_api="v2"`): numeric fields only (VictoriaMetrics keeps each as a sample named
`measurement_field` and turns text fields into bogus zero samples) and no catalog. Reads
raise Unsupported; see `unsupported`. Replays are idempotent only if VictoriaMetrics
deduplicates (`-dedup.minScrapeInterval`), since it keeps duplicate samples otherwise.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Self

import aiohttp
import httpx
import orjson

from .. import capabilities
from ..errors import PermanentStoreError, QueryError, RetryableStoreError, StoreError
from ..metrics import MatchOp, MetricInfo, PointQuery, ResultSeries, SeriesQuery
from ..model import MetricKind, MetricPoint, Temporality
from . import influxdb_influxql as influxql
from . import influxdb_schema as schema
from .duckdb_metrics_query import validate
from .duckdb_metrics_schema import LOOKBACK_NS, MAX_SERIES
from .influxdb_compute import (
    StepValues,
    combine,
    cumulative_buckets,
    delta_buckets,
    from_means,
    quantiles,
    rates,
)
from .influxdb_lines import DAY_NS, HOUR_NS, Catalog, SeriesMemo, encode_batch
from .influxdb_results import SeriesCollector, VariantInfo, decode_points, decode_variant

_INFLUXDB_GAPS: Mapping[str, str] = {
    capabilities.NONFINITE_AGGREGATION: (
        "line protocol has no NaN or infinity: such values are kept as text, so points()"
        " returns them but query_range cannot aggregate them"
    ),
}
_VICTORIA_GAPS: Mapping[str, str] = {
    capabilities.POINTS: "VictoriaMetrics serves no InfluxQL; read its samples with PromQL",
    capabilities.QUERY_RANGE: "VictoriaMetrics serves no InfluxQL; query it with PromQL",
    capabilities.CATALOG: "VictoriaMetrics serves no InfluxQL; list series with its API",
    capabilities.EXEMPLARS: "VictoriaMetrics keeps numeric fields only",
    capabilities.NONFINITE_VALUES: (
        "line protocol has no NaN or infinity, and VictoriaMetrics keeps numeric fields only"
    ),
    capabilities.RETENTION: (
        "VictoriaMetrics has only a global -retentionPeriod: it cannot delete one tenant's"
        " samples by age"
    ),
}
_CHUNK_ROWS = "10000"
_DELETE_TIMEOUT = 600.0  # seconds: a DELETE over weeks of points takes a while
_STATEMENTS_PER_REQUEST = 50


@dataclass(frozen=True, slots=True)
class InfluxDBConfig:
    """Where and how to write and read. Reads always use the v1 API (`/query`, InfluxQL)
    on `database` (and `retention_policy`); writes use `/write` (v1) or, with
    `write_api="v2"`, influxdb-client's `/api/v2/write` into `bucket` of `org`.
    `token` goes in an `Authorization: Token` header (InfluxDB 2.x and 3.x, both APIs);
    `username`/`password` are InfluxDB 1.x basic auth."""

    url: str
    database: str = "argus"
    retention_policy: str = ""
    write_api: Literal["v1", "v2"] = "v1"
    org: str = ""
    bucket: str = ""
    token: str = ""
    username: str = ""
    password: str = ""
    server: Literal["influxdb", "victoriametrics"] = "influxdb"
    timeout_seconds: float = 10.0
    lines_per_request: int = 5000
    create_database: bool = False  # CREATE DATABASE on open (1.x; needs admin rights)

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"InfluxDB url must be http(s)://...; got {self.url!r}")
        if self.write_api not in ("v1", "v2"):
            raise ValueError(f"write_api must be 'v1' or 'v2'; got {self.write_api!r}")
        if self.server not in ("influxdb", "victoriametrics"):
            raise ValueError(f"server must be 'influxdb' or 'victoriametrics'; got {self.server!r}")
        if self.write_api == "v2" and not (self.org and self.bucket):
            raise ValueError("write_api 'v2' needs org and bucket")
        if self.server == "victoriametrics" and self.write_api != "v2":
            raise ValueError("VictoriaMetrics is written through write_api 'v2'")
        if self.write_api == "v1" and not self.database:
            raise ValueError("write_api 'v1' needs a database")
        if self.timeout_seconds <= 0 or self.lines_per_request <= 0:
            raise ValueError("timeout_seconds and lines_per_request must be positive")


class InfluxDBMetricStore:
    """A MetricStore on InfluxDB; see the module docstring. Open with `open()`."""

    def __init__(self, config: InfluxDBConfig, http: httpx.AsyncClient,
                 v2: Any = None) -> None:
        self._config = config
        self._http = http
        self._v2 = v2  # InfluxDBClientAsync for write_api "v2"
        self._catalog = Catalog() if config.server == "influxdb" else None
        self._memo = SeriesMemo()
        self._closed = False

    @property
    def unsupported(self) -> Mapping[str, str]:
        return _VICTORIA_GAPS if self._config.server == "victoriametrics" else _INFLUXDB_GAPS

    @classmethod
    async def open(cls, config: InfluxDBConfig) -> Self:
        headers = {"Authorization": f"Token {config.token}"} if config.token else {}
        auth = (config.username, config.password) if config.username else None
        http = httpx.AsyncClient(base_url=config.url, headers=headers, auth=auth,
                                 timeout=config.timeout_seconds)
        v2: Any = None
        try:
            if config.write_api == "v2":
                from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync

                v2 = InfluxDBClientAsync(url=config.url, token=config.token or "-",
                                         org=config.org,
                                         timeout=int(config.timeout_seconds * 1000))
            store = cls(config, http, v2)
            if config.create_database:
                await store._execute(f"CREATE DATABASE {influxql.ident(config.database)}")
            return store
        except BaseException:
            await http.aclose()
            if v2 is not None:
                await v2.close()
            raise

    # ---------------------------------------------------------------- writes

    async def write_points(
        self, tenant: str, points: Sequence[MetricPoint], batch_id: str
    ) -> None:
        """Idempotent per batch (see the module docstring); `batch_id` is not stored.
        PermanentStoreError for points that cannot be encoded or that the server refuses
        (bad data, a field type conflict), RetryableStoreError when it is unreachable,
        overloaded or timing out."""
        self._check_open()
        if not points:
            return
        try:
            batch = await asyncio.to_thread(
                encode_batch, tenant, points, self._catalog, self._memo)
        except (TypeError, ValueError, OverflowError, AttributeError) as exc:
            raise PermanentStoreError(f"cannot store metric points: {exc!r}") from exc
        for body in batch.bodies(self._config.lines_per_request):
            if self._v2 is not None:
                await self._write_v2(body)
            else:
                await self._write_v1(body)
        if self._catalog is not None:
            self._catalog.merge(batch)

    async def _write_v1(self, body: bytes) -> None:
        params = {"db": self._config.database, "precision": "ns"}
        if self._config.retention_policy:
            params["rp"] = self._config.retention_policy
        try:
            response = await self._http.post("/write", params=params, content=body)
        except httpx.HTTPError as exc:
            raise RetryableStoreError(f"InfluxDB write failed: {exc!r}") from exc
        if response.status_code != 204 and response.status_code != 200:
            raise _status_error("write", response.status_code, response.text)

    async def _write_v2(self, body: bytes) -> None:
        from influxdb_client.domain.write_precision import WritePrecision
        from influxdb_client.rest import ApiException

        try:
            await self._v2.write_api().write(
                bucket=self._config.bucket, org=self._config.org, record=body,
                write_precision=WritePrecision.NS,
            )
        except ApiException as exc:
            raise _status_error("write", int(exc.status or 0), str(exc.body)) from exc
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise RetryableStoreError(f"InfluxDB v2 write failed: {exc!r}") from exc

    # ---------------------------------------------------------------- catalog reads

    async def metric_names(self, tenant: str) -> list[MetricInfo]:
        """Every metric with the metadata of its newest recorded point, sorted by name."""
        self._check_readable(capabilities.CATALOG)
        infos = []
        for s in (await self._query(influxql.metrics(tenant))).result():
            data = s.values[0][1] if s.values else None
            if data is None:
                continue
            kind, unit, description, temporality, monotonic = orjson.loads(data)
            name = schema.label_key(s.tags.get(schema.METRIC_TAG, "")) or ""
            infos.append(MetricInfo(name, MetricKind(kind), unit, description,
                                    Temporality(temporality), bool(monotonic)))
        return sorted(infos, key=lambda info: info.name)

    async def label_names(self, tenant: str, metric: str) -> list[str]:
        """Label keys of the metric's series (labels with an empty value are not kept)."""
        self._check_readable(capabilities.CATALOG)
        collector = await self._query(influxql.tag_keys(tenant, metric))
        keys = {schema.label_key(row[0]) for s in collector.result() for row in s.values}
        return sorted(k for k in keys if k is not None)

    async def label_values(self, tenant: str, metric: str, label: str) -> list[str]:
        self._check_readable(capabilities.CATALOG)
        collector = await self._query(influxql.tag_values(tenant, metric, schema.tag_key(label)))
        return sorted({schema.label_value(row[1]) for s in collector.result() for row in s.values})

    async def metrics_with_label(self, tenant: str, label: str, value: str) -> list[MetricInfo]:
        """SHOW MEASUREMENTS with a tag condition, joined with metric_names (measurement
        names are escaped metric names, see influxdb_schema)."""
        self._check_readable(capabilities.CATALOG)
        if not value:
            return []
        shown = await self._query(influxql.measurements_with(tenant, label, value))
        measurements = {str(row[0]) for s in shown.result() for row in s.values}
        return [
            info for info in await self.metric_names(tenant)
            if schema.measurement(info.name) in measurements
        ]

    async def _kinds(self, tenant: str, metric: str) -> set[MetricKind]:
        collector = await self._query(influxql.tag_values(tenant, metric, schema.KIND_TAG))
        return {schema.parse_kind_tag(row[1])[0] for s in collector.result() for row in s.values}

    # ---------------------------------------------------------------- range queries

    async def query_range(self, query: SeriesQuery) -> list[ResultSeries]:
        self._check_readable(capabilities.QUERY_RANGE)
        validate(query)
        if query.end_unix_nano <= query.start_unix_nano:
            return []
        kinds = await self._kinds(query.tenant, query.metric)
        if not kinds:
            return []
        _check_kinds(query, kinds)
        if query.quantile is not None:
            parts = await self._quantiles(query, query.quantile)
        elif query.rate:
            parts = await self._rates(query)
        else:
            parts = await self._means(query)
        return combine(parts, query)

    async def _means(self, query: SeriesQuery) -> list[StepValues]:
        numeric = influxql.kind_is(schema.kind_regex(MetricKind.GAUGE, MetricKind.SUM))
        clause = influxql.where(query.tenant, query.matchers, [numeric],
                                query.start_unix_nano, query.end_unix_nano)
        statement = influxql.means(query.metric, clause, query.start_unix_nano, query.step_nano,
                                   query.group_by)
        collector = await self._query(statement, MAX_SERIES)
        return from_means(collector.result(), query)

    async def _rates(self, query: SeriesQuery) -> list[StepValues]:
        sums = influxql.kind_is(schema.kind_regex(MetricKind.SUM))
        clause = influxql.where(query.tenant, query.matchers, [sums],
                                query.start_unix_nano - LOOKBACK_NS, query.end_unix_nano)
        statement = influxql.raw_numbers(query.metric, clause, query.group_by)
        collector = await self._query(statement, MAX_SERIES)
        return rates(collector.result(), query)

    async def _quantiles(self, query: SeriesQuery, q: float) -> list[StepValues]:
        histograms = influxql.kind_is(schema.kind_regex(MetricKind.HISTOGRAM))
        delta_regex = schema.kind_regex(MetricKind.HISTOGRAM, temporality="delta")
        back = max(1, -(-LOOKBACK_NS // query.step_nano))  # steps that may hold baselines
        cumulative = influxql.where(
            query.tenant, query.matchers,
            [histograms, influxql.kind_is(delta_regex, negate=True)],
            query.start_unix_nano - back * query.step_nano, query.end_unix_nano,
        )
        delta = influxql.where(query.tenant, query.matchers, [influxql.kind_is(delta_regex)],
                               query.start_unix_nano, query.end_unix_nano)
        raw, sums = await asyncio.gather(
            self._query(influxql.raw_buckets(query.metric, cumulative, query.group_by),
                        MAX_SERIES),
            self._query(influxql.bucket_sums(query.metric, delta, query.start_unix_nano,
                                             query.step_nano, query.group_by), MAX_SERIES),
        )
        candidates = cumulative_buckets(raw.result(), query, back)
        return quantiles(candidates.merge(delta_buckets(sums.result(), query)), q)

    # ---------------------------------------------------------------- points

    async def points(self, query: PointQuery) -> list[MetricPoint]:
        self._check_readable(capabilities.POINTS)
        for matcher in query.matchers:
            if matcher.op in (MatchOp.RE, MatchOp.NRE):
                matcher.compiled()  # raises QueryError for an invalid regex
        if query.limit <= 0:
            return []
        clause = influxql.where(query.tenant, query.matchers, (),
                                query.start_unix_nano, query.end_unix_nano)
        found = (await self._query(influxql.points(query.metric, clause, query.limit))).result()
        variants = await self._variants(query.tenant, query.metric, found)
        return decode_points(found, query.metric, variants)

    async def _variants(self, tenant: str, metric: str, found: list[Any]
                        ) -> dict[str, VariantInfo]:
        hashes: set[str] = set()
        times: list[int] = []
        for s in found:
            v = s.column(schema.VARIANT)
            if v is None:
                continue
            hashes.update(row[v] for row in s.values if row[v] is not None)
            times.extend(int(row[0]) for row in s.values)
        if not hashes:
            return {}
        lo, hi = min(times) // HOUR_NS * HOUR_NS, max(times) // HOUR_NS * HOUR_NS
        collector = await self._query(influxql.variants(tenant, metric, hashes, lo, hi))
        return {
            s.tags[schema.VARIANT_TAG]: decode_variant(s.values[-1][1])
            for s in collector.result() if s.values and s.values[-1][1] is not None
        }

    # ---------------------------------------------------------------- retention

    async def tenants(self) -> list[str]:
        self._check_readable(capabilities.RETENTION)
        collector = await self._query(influxql.tenants())
        return sorted({schema.label_value(row[1]) for s in collector.result() for row in s.values})

    async def delete_before(self, tenant: str, cutoff_unix_nano: int) -> int:
        """InfluxQL DELETE of the tenant's points before the cutoff, then of the catalog
        lines nothing needs any more. Returns -1: InfluxDB does not say how many points
        a DELETE removed. Verified on InfluxDB 1.x only: 2.x's v1 /query API and 3.x
        are not known to serve DELETE, and a server refusing it is reported as a
        PermanentStoreError."""
        self._check_readable(capabilities.RETENTION)
        self._forget_catalog(tenant)
        await self._delete([influxql.delete_points(tenant, cutoff_unix_nano)])
        # A variant's line sits at the start of every hour it has points in, so the
        # cutoff's hour keeps its line for the points after the cutoff. Metadata lines
        # are rewritten every day a metric has points: the cutoff's day keeps its own.
        hour = cutoff_unix_nano // HOUR_NS * HOUR_NS
        day = cutoff_unix_nano // DAY_NS * DAY_NS
        await self._delete([
            influxql.delete_catalog(schema.SERIES_MEASUREMENT, tenant, hour),
            influxql.delete_catalog(schema.METRICS_MEASUREMENT, tenant, day),
        ])
        # Metrics left without points lose the rest of their metadata lines (those after
        # the cutoff came with points written meanwhile), and a tenant left without any
        # points the rest of its variant lines.
        shown = await self._query(influxql.measurements(tenant))
        left = {str(row[0]) for s in shown.result() for row in s.values}
        recorded = await self._query(influxql.catalog_metrics(tenant))
        statements = [
            influxql.delete_catalog(schema.METRICS_MEASUREMENT, tenant, cutoff_unix_nano, tag)
            for tag in sorted({str(row[1]) for s in recorded.result() for row in s.values})
            if schema.measurement(schema.label_key(tag) or "") not in left
        ]
        if not left - {schema.SERIES_MEASUREMENT, schema.METRICS_MEASUREMENT}:
            statements.append(
                influxql.delete_catalog(schema.SERIES_MEASUREMENT, tenant, cutoff_unix_nano))
        for i in range(0, len(statements), _STATEMENTS_PER_REQUEST):
            await self._delete(statements[i:i + _STATEMENTS_PER_REQUEST])
        self._forget_catalog(tenant)  # again: a write may have remembered lines meanwhile
        return -1

    def _forget_catalog(self, tenant: str) -> None:
        """Forget which catalog lines of the tenant this process wrote, so that the next
        write of each variant and metric writes them again (retention deletes them)."""
        if self._catalog is None:
            return
        for hours_key in [k for k in self._catalog.variant_hours if k[0] == tenant]:
            self._catalog.variant_hours.pop(hours_key, None)
        for days_key in [k for k in self._catalog.metric_days if k[0] == tenant]:
            self._catalog.metric_days.pop(days_key, None)

    async def _delete(self, statements: list[str]) -> None:
        """Run DELETE statements in one request, with a longer timeout than queries."""
        try:
            response = await self._http.post(
                "/query", params={"db": self._config.database},
                data={"q": ";".join(statements)},
                timeout=max(self._config.timeout_seconds, _DELETE_TIMEOUT),
            )
        except httpx.HTTPError as exc:
            raise RetryableStoreError(f"InfluxDB delete failed: {exc!r}") from exc
        if response.status_code != 200:
            raise _status_error("delete", response.status_code, response.text)
        try:
            SeriesCollector().feed(response.content)
        except QueryError as exc:
            raise PermanentStoreError(f"InfluxDB refused to delete: {exc}") from exc

    # ---------------------------------------------------------------- HTTP

    async def _query(self, statement: str, max_series: int | None = None) -> SeriesCollector:
        """Run one statement; the answer is streamed in chunks, and reading stops (with a
        QueryError) once more than `max_series` series have arrived."""
        self._check_open()
        collector = SeriesCollector(max_series)
        try:
            async with self._http.stream(
                "POST", "/query", params=self._query_params(), data={"q": statement}
            ) as response:
                if response.status_code != 200:
                    body = (await response.aread()).decode(errors="replace")
                    raise _status_error("query", response.status_code, body)
                async for document in _documents(response.aiter_bytes()):
                    collector.feed(document)
        except httpx.HTTPError as exc:
            raise RetryableStoreError(f"InfluxDB query failed: {exc!r}") from exc
        return collector

    def _query_params(self) -> dict[str, str]:
        params = {"db": self._config.database, "epoch": "ns", "chunked": "true",
                  "chunk_size": _CHUNK_ROWS}
        if self._config.retention_policy:
            params["rp"] = self._config.retention_policy
        return params

    async def _execute(self, statement: str) -> None:
        try:
            response = await self._http.post("/query", data={"q": statement})
        except httpx.HTTPError as exc:
            raise RetryableStoreError(f"InfluxDB statement failed: {exc!r}") from exc
        if response.status_code != 200:
            raise _status_error("statement", response.status_code, response.text)
        SeriesCollector().feed(response.content)

    # ---------------------------------------------------------------- lifecycle

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the metric store is closed")

    def _check_readable(self, feature: str) -> None:
        self._check_open()
        capabilities.check(self, feature)

    async def close(self) -> None:
        """Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        await self._http.aclose()
        if self._v2 is not None:
            await self._v2.close()


async def _documents(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Newline-separated JSON documents of a chunked answer (or the one of a plain one)."""
    pending = b""
    async for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for document in complete:
            yield document
    if pending:
        yield pending


def _check_kinds(query: SeriesQuery, kinds: set[MetricKind]) -> None:
    """QueryError when the query does not apply to the metric's kinds (as the embedded
    store decides it)."""
    names = "/".join(sorted(k.name.lower() for k in kinds))
    if query.quantile is not None:
        if MetricKind.HISTOGRAM not in kinds:
            reason = (
                "exponential histograms are not supported yet"
                if MetricKind.EXPONENTIAL_HISTOGRAM in kinds else "it has no buckets"
            )
            raise QueryError(f"cannot take a quantile of {query.metric} ({names}): {reason}")
    elif query.rate:
        if MetricKind.SUM not in kinds:
            raise QueryError(f"rate needs a counter (sum); {query.metric} is a {names}")
    elif not kinds & {MetricKind.GAUGE, MetricKind.SUM}:
        raise QueryError(f"{query.metric} is a {names}; ask for a quantile")


def _status_error(what: str, status: int, body: str) -> StoreError:
    message = f"InfluxDB {what} answered {status}: {body.strip()[:500]}"
    if status in (408, 429) or status >= 500 or status == 0:
        return RetryableStoreError(message)
    if what == "query" and status == 400:
        return QueryError(message)
    return PermanentStoreError(message)
