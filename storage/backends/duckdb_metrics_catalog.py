"""The in-memory catalog of series, metrics and histogram bounds.

The catalog mirrors the small tables so that writes never query them: a point's physical
series is one dict lookup. A write builds a `CatalogDelta` (new rows, read-only use of
the catalog), inserts it in the batch's transaction, and only after the commit merges it
with `Catalog.apply` on the event-loop thread. So the catalog never holds an id the
database lacks, and readers in worker threads only ever see it grow.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import orjson

from ..metrics import MetricInfo, series_labels
from ..model import MetricKind, MetricPoint, Temporality
from .duckdb_metrics_schema import SERIES_COLUMNS

# name, kind, temporality, monotonic, unit, description, resource, scope, attributes,
# metadata: everything that must be equal for two points to share a physical series.
VariantKey = tuple[str, int, int, bool, str, str, bytes, bytes, bytes, bytes]


@dataclass(slots=True)
class Variant:
    """A physical series: one exact combination of the fields in `VariantKey`."""

    series_id: int
    lid: int
    temporality: Temporality
    monotonic: bool
    unit: str
    description: str
    resource: str
    scope: str
    attributes: str
    metadata: str
    key: VariantKey | None = None  # its key in Catalog.variant_ids


@dataclass(slots=True)
class LogicalSeries:
    lid: int
    metric_id: int
    tenant: str
    name: str
    kind: MetricKind
    labels: dict[str, str]
    variants: list[Variant] = field(default_factory=list)
    key: tuple[str, str, int, bytes] = ("", "", 0, b"")  # its key in Catalog.logical_ids


@dataclass(slots=True)
class MetricMeta:
    metric_id: int
    info: MetricInfo


class Catalog:
    def __init__(self) -> None:
        self.variant_ids: dict[str, dict[VariantKey, int]] = {}
        self.variants: dict[int, Variant] = {}
        self.logical_ids: dict[tuple[str, str, int, bytes], int] = {}
        self.logical: dict[int, LogicalSeries] = {}
        self.by_metric: dict[tuple[str, str], list[LogicalSeries]] = {}
        self.metrics: dict[tuple[str, str], MetricMeta] = {}
        self.bounds_ids: dict[tuple[float, ...], int] = {}
        self.bounds: dict[int, list[float]] = {}
        # The highest ids handed out: retention removes series and metrics, so counts
        # are no longer the highest ids.
        self.max_metric_id = 0
        self.max_series_id = 0
        self.max_lid = 0

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection) -> Catalog:
        catalog = cls()
        for metric_id, tenant, name, kind, unit, desc, temp, mono in con.execute(
            "SELECT metric_id, tenant, name, kind, unit, description, temporality, monotonic"
            " FROM metrics"
        ).fetchall():
            info = MetricInfo(name, MetricKind(kind), unit, desc, Temporality(temp), mono)
            catalog.metrics[(tenant, name)] = MetricMeta(metric_id, info)
            catalog.max_metric_id = max(catalog.max_metric_id, metric_id)
        for bounds_id, bounds in con.execute("SELECT bounds_id, bounds FROM hist_bounds").fetchall():
            catalog.bounds_ids[tuple(bounds)] = bounds_id
            catalog.bounds[bounds_id] = list(bounds)
        rows = con.execute(
            f"SELECT {', '.join(SERIES_COLUMNS)} FROM series ORDER BY series_id"
        ).fetchall()
        catalog.apply(CatalogDelta(catalog, series_rows=[tuple(row) for row in rows]))
        return catalog

    def apply(self, delta: CatalogDelta) -> None:
        for row in delta.series_rows:
            self._add_series(row)
        self.metrics.update(delta.metric_updates)
        self.max_metric_id = max([self.max_metric_id, *delta.new_metric_ids.values()])
        for bounds, bounds_id in delta.bounds_ids.items():
            self.bounds_ids[bounds] = bounds_id
            self.bounds[bounds_id] = list(bounds)

    def _add_series(self, row: tuple) -> None:  # type: ignore[type-arg]
        (series_id, lid, metric_id, tenant, name, kind, temporality, monotonic, unit, desc,
         labels, resource, scope, attributes, metadata) = row
        logical = self.logical.get(lid)
        if logical is None:
            logical_key = (tenant, name, kind, labels.encode())
            logical = LogicalSeries(
                lid, metric_id, tenant, name, MetricKind(kind), orjson.loads(labels),
                key=logical_key,
            )
            self.logical[lid] = logical
            self.logical_ids[logical_key] = lid
            self.by_metric.setdefault((tenant, name), []).append(logical)
        key: VariantKey = (
            name, kind, temporality, monotonic, unit, desc, resource.encode(), scope.encode(),
            attributes.encode(), metadata.encode(),
        )
        variant = Variant(
            series_id, lid, Temporality(temporality), monotonic, unit, desc, resource,
            scope, attributes, metadata, key,
        )
        logical.variants.append(variant)
        self.variants[series_id] = variant
        self.max_series_id = max(self.max_series_id, series_id)
        self.max_lid = max(self.max_lid, lid)
        self.variant_ids.setdefault(tenant, {})[key] = series_id

    def series_of(self, tenant: str, metric: str) -> list[LogicalSeries]:
        """A snapshot (the list may grow while a worker thread reads it)."""
        return list(self.by_metric.get((tenant, metric), ()))

    def tenants(self) -> list[str]:
        return sorted({tenant for tenant, _ in list(self.metrics)})

    def series_ids(self, tenant: str) -> set[int]:
        """Every physical series of the tenant."""
        return {
            v.series_id for (t, _), lists in list(self.by_metric.items()) if t == tenant
            for s in lists for v in s.variants
        }

    def removal(self, series_ids: set[int]) -> tuple[list[int], list[int]]:
        """(logical series, metric ids) left without series once `series_ids` go."""
        lids: set[int] = set()
        for series_id in series_ids:
            variant = self.variants.get(series_id)
            if variant is None or variant.lid in lids:
                continue
            logical = self.logical[variant.lid]
            if all(v.series_id in series_ids for v in logical.variants):
                lids.add(variant.lid)
        metric_ids = []
        for key in {(self.logical[lid].tenant, self.logical[lid].name) for lid in lids}:
            meta = self.metrics.get(key)
            if meta is not None and all(s.lid in lids for s in self.by_metric.get(key, ())):
                metric_ids.append(meta.metric_id)
        return sorted(lids), sorted(metric_ids)

    def remove(self, series_ids: set[int]) -> None:
        """Forget series (after the commit that deleted them), and the logical series
        and metrics left without any. Readers in worker threads may still hold them:
        lists are replaced, never changed in place."""
        lids, _ = self.removal(series_ids)
        touched: set[tuple[str, str]] = set()
        for series_id in series_ids:
            variant = self.variants.pop(series_id, None)
            if variant is None:
                continue
            logical = self.logical[variant.lid]
            if variant.key is not None:
                self.variant_ids.get(logical.tenant, {}).pop(variant.key, None)
            logical.variants = [v for v in logical.variants if v.series_id != series_id]
            touched.add((logical.tenant, logical.name))
        for lid in lids:
            self.logical_ids.pop(self.logical.pop(lid).key, None)
        for key in touched:
            left = [s for s in self.by_metric.get(key, ()) if s.lid not in lids]
            if left:
                self.by_metric[key] = left
            else:
                self.by_metric.pop(key, None)
                self.metrics.pop(key, None)


class CatalogDelta:
    """New series, bounds and metric metadata of one batch, not yet committed."""

    def __init__(self, catalog: Catalog, series_rows: list[tuple] | None = None) -> None:  # type: ignore[type-arg]
        self._catalog = catalog
        self.series_rows: list[tuple] = series_rows or []  # type: ignore[type-arg]
        self.new_logical: dict[tuple[str, str, int, bytes], int] = {}
        self.new_variants: dict[VariantKey, int] = {}
        self.new_metric_ids: dict[tuple[str, str], int] = {}
        self.metric_updates: dict[tuple[str, str], MetricMeta] = {}
        self.bounds_ids: dict[tuple[float, ...], int] = {}
        # bounds ids are dense from 1 (bounds are never removed); series may be
        self._next_series = catalog.max_series_id + 1
        self._next_lid = catalog.max_lid + 1
        self._next_metric = catalog.max_metric_id + 1
        self._next_bounds = len(catalog.bounds) + 1

    def series_id(self, tenant: str, key: VariantKey, point: MetricPoint) -> int:
        """The physical series of a point whose key the catalog does not know yet."""
        series_id = self.new_variants.get(key)
        if series_id is not None:
            return series_id
        series_id = self._next_series
        self._next_series += 1
        self.new_variants[key] = series_id
        labels = orjson.dumps(series_labels(point), option=orjson.OPT_SORT_KEYS)
        lid = self._lid(tenant, point, labels)
        name, kind, temporality, monotonic, unit, desc, res, scope, attrs, meta = key
        self.series_rows.append((
            series_id, lid, self._metric_id(tenant, name), tenant, name, int(kind),
            int(temporality), bool(monotonic), unit, desc, labels.decode(), res.decode(), scope.decode(),
            attrs.decode(), meta.decode(),
        ))
        return series_id

    def _lid(self, tenant: str, point: MetricPoint, labels: bytes) -> int:
        logical_key = (tenant, point.name, int(point.kind), labels)
        lid = self._catalog.logical_ids.get(logical_key) or self.new_logical.get(logical_key)
        if lid is None:
            lid = self.new_logical[logical_key] = self._next_lid
            self._next_lid += 1
        return lid

    def _metric_id(self, tenant: str, name: str) -> int:
        known = self._catalog.metrics.get((tenant, name))
        if known is not None:
            return known.metric_id
        metric_id = self.new_metric_ids.get((tenant, name))
        if metric_id is None:
            metric_id = self.new_metric_ids[(tenant, name)] = self._next_metric
            self._next_metric += 1
        return metric_id

    def bounds_id(self, bounds: tuple[float, ...]) -> int:
        bounds_id = self._catalog.bounds_ids.get(bounds) or self.bounds_ids.get(bounds)
        if bounds_id is None:
            bounds_id = self.bounds_ids[bounds] = self._next_bounds
            self._next_bounds += 1
        return bounds_id

    def note_latest(self, tenant: str, key: VariantKey) -> None:
        """Record `key` as the metric's latest metadata if it differs from the known one."""
        name, kind, temporality, monotonic, unit, desc = key[:6]
        info = MetricInfo(
            name, MetricKind(kind), unit, desc, Temporality(temporality), monotonic
        )
        known = self.metric_updates.get((tenant, name)) or self._catalog.metrics.get(
            (tenant, name)
        )
        if known is None or known.info != info:
            meta = MetricMeta(self._metric_id(tenant, name), info)
            self.metric_updates[(tenant, name)] = meta
