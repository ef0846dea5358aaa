"""InfluxQL statements of the InfluxDB metric store.

Only what InfluxDB 1.x, 2.x (v1 compatibility API) and 3.x all serve is used: SELECT
with GROUP BY time(step, offset) and tags, fill(none), regex field keys, SHOW TAG KEYS and
SHOW TAG VALUES with a WHERE clause. Not SHOW SERIES (missing in 2.x and 3.x), not SLIMIT
(missing in 3.x), not subqueries (so every statement is one scan).

Every statement that reads points or tags carries the tenant condition: `where()` starts
with it, and no statement is built without `where()`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..metrics import LabelMatcher, MatchOp
from . import influxdb_schema as schema


def ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def anchored(pattern: str) -> str:
    """A Python regex as an InfluxQL regex literal that must match the whole value (RE2
    accepts the same syntax for everything but lookarounds and backreferences; the
    server refuses those and the store reports a QueryError)."""
    return "/^(?:" + pattern.replace("/", "\\/") + ")$/"


def matcher(m: LabelMatcher) -> str:
    key = ident(schema.tag_key(m.label))
    if m.op in (MatchOp.EQ, MatchOp.NE):
        value = schema.tag_value(m.value) if m.value else ""
        return f"{key} {m.op.value} {string(value)}"
    return f"{key} {m.op.value} {anchored(m.value)}"


def where(
    tenant: str,
    matchers: Sequence[LabelMatcher] = (),
    extra: Iterable[str] = (),
    start: int | None = None,
    end: int | None = None,
) -> str:
    """A WHERE clause: tenant, matchers, `extra` conditions, then [start, end)."""
    parts = [f"{ident(schema.TENANT_TAG)} = {string(schema.tag_value(tenant))}"]
    parts.extend(f"({matcher(m)})" for m in matchers)
    parts.extend(f"({condition})" for condition in extra)
    if start is not None:
        parts.append(f"time >= {int(start)}")
    if end is not None:
        parts.append(f"time < {int(end)}")
    return " WHERE " + " AND ".join(parts)


def kind_is(regex: str, negate: bool = False) -> str:
    return f"{ident(schema.KIND_TAG)} {'!~' if negate else '=~'} {regex}"


def per_series(tags: Sequence[str], labels: Sequence[str]) -> str:
    """GROUP BY terms: the logical series, the store tags `tags`, the labels `labels`."""
    keys = [schema.SERIES_TAG, *tags, *(schema.tag_key(label) for label in labels)]
    return ", ".join(ident(key) for key in dict.fromkeys(keys))


def by_step(start: int, step: int, group: str) -> str:
    """GROUP BY time buckets that start at `start` (InfluxDB aligns them to the epoch
    plus the offset) and `group`, empty buckets left out."""
    return f" GROUP BY time({int(step)}ns, {int(start) % int(step)}ns), {group} fill(none)"


def means(metric: str, where_clause: str, start: int, step: int, labels: Sequence[str]) -> str:
    return (f"SELECT mean({ident(schema.VALUE)}) FROM {ident(schema.measurement(metric))}"
            f"{where_clause}{by_step(start, step, per_series((), labels))}")


def raw_numbers(metric: str, where_clause: str, labels: Sequence[str]) -> str:
    return (f"SELECT {ident(schema.VALUE)}, {ident(schema.START)}"
            f" FROM {ident(schema.measurement(metric))}{where_clause}"
            f" GROUP BY {per_series([schema.KIND_TAG], labels)}")


def raw_buckets(metric: str, where_clause: str, labels: Sequence[str]) -> str:
    return (f"SELECT {ident(schema.START)}, {schema.BUCKET_REGEX}"
            f" FROM {ident(schema.measurement(metric))}{where_clause}"
            f" GROUP BY {per_series([schema.BOUNDS_TAG], labels)}")


def bucket_sums(metric: str, where_clause: str, start: int, step: int,
                labels: Sequence[str]) -> str:
    group = per_series([schema.BOUNDS_TAG], labels)
    return (f"SELECT sum({schema.BUCKET_REGEX}) FROM {ident(schema.measurement(metric))}"
            f"{where_clause}{by_step(start, step, group)}")


def points(metric: str, where_clause: str, limit: int) -> str:
    """Every field and tag as columns, oldest first, over all the metric's series."""
    return (f"SELECT * FROM {ident(schema.measurement(metric))}{where_clause}"
            f" ORDER BY time ASC LIMIT {int(limit)}")


def variants(tenant: str, metric: str, hashes: Iterable[str], lo: int, hi: int) -> str:
    """The catalog entries of `hashes`, whose lines sit at the hours of [lo, hi]."""
    wanted = " OR ".join(f"{ident(schema.VARIANT_TAG)} = {string(h)}" for h in sorted(hashes))
    metric_is = f"{ident(schema.METRIC_TAG)} = {string(schema.tag_key(metric))}"
    clause = where(tenant, extra=(metric_is, wanted), start=lo, end=hi + 1)
    return (f"SELECT last({ident(schema.DATA_FIELD)}) FROM "
            f"{ident(schema.SERIES_MEASUREMENT)}{clause} GROUP BY {ident(schema.VARIANT_TAG)}")


def metrics(tenant: str) -> str:
    return (f"SELECT last({ident(schema.DATA_FIELD)}) FROM "
            f"{ident(schema.METRICS_MEASUREMENT)}{where(tenant)}"
            f" GROUP BY {ident(schema.METRIC_TAG)}")


def tag_keys(tenant: str, metric: str) -> str:
    return f"SHOW TAG KEYS FROM {ident(schema.measurement(metric))}{where(tenant)}"


def tag_values(tenant: str, metric: str, key: str) -> str:
    return (f"SHOW TAG VALUES FROM {ident(schema.measurement(metric))}"
            f" WITH KEY = {ident(key)}{where(tenant)}")


# ---------------------------------------------------------------------------- retention


def tenants() -> str:
    """Every tenant tag value, over all measurements (catalog ones included, so a tenant
    whose last catalog lines are left is still visited, and they go too)."""
    return f"SHOW TAG VALUES WITH KEY = {ident(schema.TENANT_TAG)}"


def measurements(tenant: str) -> str:
    """The measurements holding series of the tenant (InfluxDB drops a series from its
    index once DELETE has removed its last point)."""
    return f"SHOW MEASUREMENTS{where(tenant)}"


def measurements_with(tenant: str, label: str, value: str) -> str:
    """The measurements holding series of the tenant whose `label` is `value` (not "")."""
    condition = f"{ident(schema.tag_key(label))} = {string(schema.tag_value(value))}"
    return f"SHOW MEASUREMENTS{where(tenant, extra=(condition,))}"


def catalog_metrics(tenant: str) -> str:
    """The `metric` tags of the tenant's metric metadata lines."""
    return (f"SHOW TAG VALUES FROM {ident(schema.METRICS_MEASUREMENT)}"
            f" WITH KEY = {ident(schema.METRIC_TAG)}{where(tenant)}")


def delete_points(tenant: str, before: int) -> str:
    return f"DELETE FROM {schema.POINT_MEASUREMENTS}{where(tenant, end=before)}"


def delete_catalog(measurement: str, tenant: str, before: int, metric_tag: str | None = None
                   ) -> str:
    """Catalog lines of `measurement` (SERIES_ or METRICS_MEASUREMENT) of the tenant
    before `before`, only those of one metric when `metric_tag` is given."""
    extra = () if metric_tag is None else (f"{ident(schema.METRIC_TAG)} = {string(metric_tag)}",)
    return f"DELETE FROM {ident(measurement)}{where(tenant, extra=extra, end=before)}"
