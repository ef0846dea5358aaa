"""Line protocol for metric points: one line per point, plus catalog lines.

Encoding is deterministic: the same point always gives the same line (tags sorted, fields
in a fixed order, JSON without whitespace). InfluxDB keys a point by measurement, tag set
and timestamp and overwrites a point written again with the same key, so replaying a
batch rewrites the same points with the same values: that is what makes `write_points`
idempotent per batch without any bookkeeping of batch ids.

The catalog lines (see influxdb_metrics) are written in the same request, before the
points, and are remembered in `Catalog` only once the whole batch has been accepted.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..attributes import encode_value
from ..metrics import series_labels
from ..model import AnyValue, MetricKind, MetricPoint, Resource
from . import influxdb_schema as schema
from .duckdb_metrics_codec import (
    encode_exemplars,
    encode_exponential,
    encode_map,
    encode_resource,
    encode_scope,
    encode_summary,
)

HOUR_NS = 3600 * 1_000_000_000
DAY_NS = 24 * HOUR_NS
_NONFINITE_NAMES = {True: "Infinity", False: "-Infinity"}
_MEASUREMENT_ESCAPES = str.maketrans({",": "\\,", " ": "\\ "})
_TAG_ESCAPES = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ "})


def _string_field(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _float(value: float) -> str:
    return repr(float(value))


@dataclass(slots=True)
class Catalog:
    """What this process has recorded in the catalog measurements, to write each catalog
    line once per hour (variants) or day (metric metadata) instead of once per batch.

    Invariant: for every point at time t there is a variant line at t's hour, so a reader
    finds the variants of any points by looking at the hours the points span."""

    variant_hours: dict[tuple[str, str], int] = field(default_factory=dict)
    metric_days: dict[tuple[str, str], tuple[bytes, int]] = field(default_factory=dict)

    def merge(self, batch: EncodedBatch) -> None:
        self.variant_hours.update(batch.variant_hours)
        self.metric_days.update(batch.metric_days)


@dataclass(slots=True)
class EncodedBatch:
    lines: list[str]
    points: int
    variant_hours: dict[tuple[str, str], int] = field(default_factory=dict)
    metric_days: dict[tuple[str, str], tuple[bytes, int]] = field(default_factory=dict)

    def bodies(self, lines_per_request: int) -> list[bytes]:
        return [
            "\n".join(self.lines[i:i + lines_per_request]).encode()
            for i in range(0, len(self.lines), lines_per_request)
        ]


@dataclass(slots=True)
class _Series:
    """What every point of one variant shares: the line up to the fields, the variant
    hash and catalog text, and the metric's metadata as `~metrics` records it."""

    prefix: str  # measurement,tags
    variant: str  # "" without a catalog
    variant_field: str  # v="<variant>"
    variant_data: str  # the `~series` data field, already quoted
    meta: bytes


class SeriesMemo:
    """Encoded series by content, kept across batches (the per-point cost is then one
    JSON encoding of the point's attributes and a dict lookup). Bounded: cleared whole
    when full, which only costs re-encoding."""

    def __init__(self, limit: int = 200_000) -> None:
        self.limit = limit
        self.entries: dict[tuple[Any, ...], _Series] = {}

    def get(self, key: tuple[Any, ...]) -> _Series | None:
        return self.entries.get(key)

    def put(self, key: tuple[Any, ...], series: _Series) -> None:
        if len(self.entries) >= self.limit:
            self.entries = {}
        self.entries[key] = series


class _Encoder:
    """Encodes one batch; resources and scopes are encoded once per object."""

    def __init__(self, tenant: str, catalog: Catalog | None, memo: SeriesMemo) -> None:
        self.tenant = tenant
        self.catalog = catalog  # None: numeric fields only, no catalog (VictoriaMetrics)
        self.memo = memo
        self.tenant_tag = _tag(schema.TENANT_TAG, schema.tag_value(tenant))
        self.resources: dict[int, tuple[bytes, Resource]] = {}
        self.scopes: dict[int, bytes] = {}
        self.variant_lines: list[str] = []
        self.variant_hours: dict[tuple[str, str], int] = {}
        self.latest: dict[str, tuple[bytes, int]] = {}  # metric -> (metadata, newest ts)

    def line(self, point: MetricPoint) -> str:
        resource = self.resources.get(id(point.resource))
        if resource is None:
            resource = self.resources[id(point.resource)] = (
                encode_resource(point.resource), point.resource)
        scope = self.scopes.get(id(point.scope))
        if scope is None:
            scope = self.scopes[id(point.scope)] = encode_scope(point.scope)
        bounds = None
        if point.kind == MetricKind.HISTOGRAM and point.histogram is not None:
            bounds_list: list[AnyValue] = list(point.histogram.explicit_bounds)
            bounds = encode_value(bounds_list)
        key = (
            self.tenant, point.name, point.kind, point.temporality, point.is_monotonic,
            point.unit, point.description, resource[0], scope, encode_map(point.attributes),
            encode_map(point.metadata), bounds,
        )
        series = self.memo.get(key)
        if series is None:
            series = self._series(point, key)
            self.memo.put(key, series)
        ts = int(point.time_unix_nano)
        fields = _fields(point, strings=self.catalog is not None)
        if self.catalog is not None:
            self._note(point.name, series, ts)
            fields.append(series.variant_field)
        return f"{series.prefix} {','.join(fields)} {ts}"

    def _series(self, point: MetricPoint, key: tuple[Any, ...]) -> _Series:
        kind = schema.kind_tag(point.kind, point.temporality, point.is_monotonic)
        labels = {}
        for k, v in series_labels(point).items():
            if v:  # InfluxDB has no empty tag values; a missing label reads as ""
                labels[schema.tag_key(k)] = schema.tag_value(v)
        labels[schema.SERIES_TAG] = _series_id(point.kind, labels)
        labels[schema.KIND_TAG] = kind
        if key[-1] is not None:
            labels[schema.BOUNDS_TAG] = key[-1].decode()
        tags = ",".join([self.tenant_tag, *(_tag(k, labels[k]) for k in sorted(labels))])
        prefix = schema.measurement(point.name).translate(_MEASUREMENT_ESCAPES) + "," + tags
        meta = orjson.dumps([int(point.kind), point.unit, point.description,
                             int(point.temporality), bool(point.is_monotonic)])
        if self.catalog is None:
            return _Series(prefix, "", "", "", meta)
        _, _, _, _, _, unit, description, resource, scope, attributes, metadata, _ = key
        data = b"".join((
            b"[", orjson.dumps(unit), b",", orjson.dumps(description), b",", resource, b",",
            scope, b",", attributes, b",", metadata, b"]",
        ))
        digest = hashlib.blake2b(digest_size=8)
        for part in (self.tenant.encode(), point.name.encode(), kind.encode(), data):
            digest.update(len(part).to_bytes(8, "little"))
            digest.update(part)
        variant = digest.hexdigest()
        variant_field = schema.VARIANT + "=" + _string_field(variant)
        return _Series(prefix, variant, variant_field, _string_field(data.decode()), meta)

    def _note(self, name: str, series: _Series, ts: int) -> None:
        """Queue the variant's catalog line if its hour has none yet; track the metric's
        newest metadata."""
        hour = ts // HOUR_NS * HOUR_NS
        key = (self.tenant, series.variant)
        assert self.catalog is not None
        if self.variant_hours.get(key) != hour and self.catalog.variant_hours.get(key) != hour:
            self.variant_hours[key] = hour
            tags = ",".join((
                _tag(schema.METRIC_TAG, schema.tag_key(name)), self.tenant_tag,
                _tag(schema.VARIANT_TAG, series.variant),
            ))
            self.variant_lines.append(f"{schema.SERIES_MEASUREMENT},{tags}"
                                      f" {schema.DATA_FIELD}={series.variant_data} {hour}")
        known = self.latest.get(name)
        self.latest[name] = (series.meta, ts if known is None else max(known[1], ts))

    def metric_lines(self) -> tuple[list[str], dict[tuple[str, str], tuple[bytes, int]]]:
        """Metadata lines for metrics whose metadata is new to this process, or last
        recorded on another day (so retention never drops every copy of it)."""
        lines, days = [], {}
        assert self.catalog is not None
        for name, (meta, ts) in self.latest.items():
            day = ts // DAY_NS
            if self.catalog.metric_days.get((self.tenant, name)) == (meta, day):
                continue
            days[(self.tenant, name)] = (meta, day)
            tags = ",".join((_tag(schema.METRIC_TAG, schema.tag_key(name)), self.tenant_tag))
            lines.append(f"{schema.METRICS_MEASUREMENT},{tags} "
                         f"{schema.DATA_FIELD}={_string_field(meta.decode())} {ts}")
        return lines, days


def _series_id(kind: MetricKind, labels: dict[str, str]) -> str:
    """The logical series (kind and labels; not temporality, as in the embedded store)."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update(orjson.dumps([int(kind), sorted(labels.items())]))
    return digest.hexdigest()


def _tag(key: str, value: str) -> str:
    return key.translate(_TAG_ESCAPES) + "=" + value.translate(_TAG_ESCAPES)


def encode_batch(
    tenant: str, points: Sequence[MetricPoint], catalog: Catalog | None, memo: SeriesMemo
) -> EncodedBatch:
    """Lines for `points`, catalog lines first. Without a catalog only numeric fields are
    written (for servers such as VictoriaMetrics that turn strings into bogus samples).
    Raises ValueError or TypeError for a point that cannot be encoded."""
    encoder = _Encoder(tenant, catalog, memo)
    lines = [encoder.line(point) for point in points]
    if catalog is None:
        return EncodedBatch(lines, len(points))
    metric_lines, days = encoder.metric_lines()
    return EncodedBatch(
        encoder.variant_lines + metric_lines + lines, len(points), encoder.variant_hours, days
    )


# ---------------------------------------------------------------------------- fields


def _fields(point: MetricPoint, strings: bool) -> list[str]:
    """The point's fields in a fixed order."""
    fields: list[str] = []
    nonfinite: dict[str, str] = {}
    kind = point.kind
    if kind == MetricKind.GAUGE or kind == MetricKind.SUM:
        _number_fields(point, fields, nonfinite)
    elif kind == MetricKind.HISTOGRAM:
        _histogram_fields(point, fields, nonfinite)
    elif kind == MetricKind.EXPONENTIAL_HISTOGRAM:
        _exponential_fields(point, fields, nonfinite, strings)
    else:
        _summary_fields(point, fields, nonfinite, strings)
    if point.start_time_unix_nano:
        fields.append(f"{schema.START}={int(point.start_time_unix_nano)}i")
    if point.flags:
        fields.append(f"{schema.FLAGS}={int(point.flags)}i")
    if strings:
        if nonfinite:
            fields.append(f"{schema.NONFINITE}={_string_field(orjson.dumps(nonfinite).decode())}")
        if point.exemplars:
            exemplars = encode_exemplars(point.exemplars)
            if exemplars is not None:
                fields.append(f"{schema.EXEMPLARS}={_string_field(exemplars)}")
    if not fields:
        raise ValueError(f"{point.name}: nothing to store (a non-finite value alone)")
    return fields


def _put_float(fields: list[str], nonfinite: dict[str, str], key: str,
               value: float | None) -> None:
    if value is None:
        return
    if math.isfinite(value):
        fields.append(f"{key}={_float(value)}")
    else:
        nonfinite[key] = "NaN" if math.isnan(value) else _NONFINITE_NAMES[value > 0]


def _number_fields(point: MetricPoint, fields: list[str], nonfinite: dict[str, str]) -> None:
    value = point.value
    if value is None:
        raise ValueError(f"{point.name}: a {point.kind.name} point without a value")
    if isinstance(value, int):
        fields.append(f"{schema.VALUE}={_float(value)}")
        fields.append(f"{schema.INT}={int(value)}i")
    else:
        _put_float(fields, nonfinite, schema.VALUE, value)


def _histogram_fields(point: MetricPoint, fields: list[str], nonfinite: dict[str, str]) -> None:
    h = point.histogram
    if h is None:
        raise ValueError(f"{point.name}: a HISTOGRAM point without histogram data")
    fields.append(f"{schema.COUNT}={int(h.count)}i")
    _put_float(fields, nonfinite, schema.SUM, h.sum)
    _put_float(fields, nonfinite, schema.MIN, h.min)
    _put_float(fields, nonfinite, schema.MAX, h.max)
    fields.extend(f"{schema.BUCKET_PREFIX}{i}={int(c)}i" for i, c in enumerate(h.bucket_counts))


def _exponential_fields(point: MetricPoint, fields: list[str], nonfinite: dict[str, str],
                        strings: bool) -> None:
    e = point.exponential_histogram
    if e is None:
        raise ValueError(f"{point.name}: an EXPONENTIAL_HISTOGRAM point without its data")
    fields.append(f"{schema.COUNT}={int(e.count)}i")
    _put_float(fields, nonfinite, schema.SUM, e.sum)
    _put_float(fields, nonfinite, schema.MIN, e.min)
    _put_float(fields, nonfinite, schema.MAX, e.max)
    fields.append(f"{schema.ZERO_COUNT}={int(e.zero_count)}i")
    fields.append(f"{schema.SCALE}={int(e.scale)}i")
    if strings:
        fields.append(f"{schema.DATA_FIELD}={_string_field(encode_exponential(e))}")


def _summary_fields(point: MetricPoint, fields: list[str], nonfinite: dict[str, str],
                    strings: bool) -> None:
    s = point.summary
    if s is None:
        raise ValueError(f"{point.name}: a {point.kind.name} point without its data")
    fields.append(f"{schema.COUNT}={int(s.count)}i")
    _put_float(fields, nonfinite, schema.SUM, s.sum)
    for q in s.quantile_values:  # queryable copies; `data` keeps order and exact form
        _put_float(fields, nonfinite, schema.QUANTILE_PREFIX + _float(q.quantile), q.value)
    if strings:
        fields.append(f"{schema.DATA_FIELD}={_string_field(encode_summary(s))}")
