"""Tables and tuning constants of the DuckDB metric store.

Series identity has two levels:

* a *logical series* (`lid`) is what `series_labels()` identifies: tenant, metric name,
  kind and labels. Queries aggregate per logical series.
* a *physical series* (`series_id`) additionally pins everything a point carries besides
  its values (typed resource, scope, attributes, metadata, unit, description, temporality),
  so `points()` gives back exactly what was written. Points reference the physical series;
  in practice each logical series has one physical series, and a second one appears only
  when, say, an SDK upgrade changes the scope version.

Numeric points (gauge, sum) live in a columnar table; explicit histograms in their own
table with the bucket counts as a list and the bounds deduplicated into `hist_bounds`;
exponential histograms and summaries as JSON. Gauges and sums also get per-minute and
per-5-minute and per-10-minute rollups (see duckdb_metrics_rollup).
"""

from __future__ import annotations

import duckdb

NS = 1_000_000_000
# A cumulative point's increase is measured against the series' previous point only if
# that point is at most this old (Prometheus' staleness window).
LOOKBACK_NS = 300 * NS
# Rollups are computed per chunk of this length, once the chunk is older than GRACE_NS.
CHUNK_NS = 600 * NS
GRACE_NS = 120 * NS
# (resolution, table), coarsest first; every resolution divides CHUNK_NS.
ROLLUPS: tuple[tuple[int, str], ...] = (
    (600 * NS, "rollup_10m"), (300 * NS, "rollup_5m"), (60 * NS, "rollup_1m"),
)
# Bump when the rollup tables change meaning: rollups of older files are then rebuilt.
ROLLUP_VERSION = 2

MAX_SERIES = 10_000
MAX_STEPS = 11_000

NUMERIC_COLUMNS = (
    "series_id", "ts", "start_ts", "value", "is_int", "big_int", "flags", "exemplars",
)
HISTOGRAM_COLUMNS = (
    "series_id", "ts", "start_ts", "count", "sum", "min", "max", "bounds_id", "counts",
    "flags", "exemplars",
)
OTHER_COLUMNS = ("series_id", "ts", "start_ts", "flags", "data", "exemplars")
SERIES_COLUMNS = (
    "series_id", "lid", "metric_id", "tenant", "name", "kind", "temporality", "monotonic",
    "unit", "description", "labels", "resource", "scope", "attributes", "metadata",
)

_ROLLUP_COLUMNS = """(
    metric_id INTEGER NOT NULL, lid INTEGER NOT NULL, bucket BIGINT NOT NULL,
    cnt UBIGINT NOT NULL, sum DOUBLE, min DOUBLE, max DOUBLE, last DOUBLE, inc DOUBLE)"""

_DDL = f"""
CREATE TABLE IF NOT EXISTS series (
    series_id INTEGER PRIMARY KEY, lid INTEGER NOT NULL, metric_id INTEGER NOT NULL,
    tenant VARCHAR NOT NULL, name VARCHAR NOT NULL, kind UTINYINT NOT NULL,
    temporality UTINYINT NOT NULL, monotonic BOOLEAN NOT NULL,
    unit VARCHAR NOT NULL, description VARCHAR NOT NULL,
    labels VARCHAR NOT NULL,      -- series_labels() as JSON, keys sorted
    resource VARCHAR NOT NULL,    -- [attributes, dropped_attributes_count, schema_url]
    scope VARCHAR NOT NULL,       -- [name, version, attributes, dropped, schema_url]
    attributes VARCHAR NOT NULL, metadata VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS metrics (
    metric_id INTEGER PRIMARY KEY, tenant VARCHAR NOT NULL, name VARCHAR NOT NULL,
    kind UTINYINT NOT NULL, unit VARCHAR NOT NULL, description VARCHAR NOT NULL,
    temporality UTINYINT NOT NULL, monotonic BOOLEAN NOT NULL);
CREATE TABLE IF NOT EXISTS hist_bounds (bounds_id INTEGER PRIMARY KEY, bounds DOUBLE[]);
CREATE TABLE IF NOT EXISTS numeric_points (
    series_id INTEGER NOT NULL, ts BIGINT NOT NULL, start_ts BIGINT NOT NULL,
    value DOUBLE NOT NULL, is_int BOOLEAN NOT NULL,
    big_int BIGINT,               -- the exact int when it does not fit a double's mantissa
    flags UINTEGER NOT NULL, exemplars VARCHAR);
CREATE TABLE IF NOT EXISTS histogram_points (
    series_id INTEGER NOT NULL, ts BIGINT NOT NULL, start_ts BIGINT NOT NULL,
    count UBIGINT NOT NULL, sum DOUBLE, min DOUBLE, max DOUBLE,
    bounds_id INTEGER NOT NULL, counts UBIGINT[] NOT NULL,
    flags UINTEGER NOT NULL, exemplars VARCHAR);
CREATE TABLE IF NOT EXISTS other_points (
    series_id INTEGER NOT NULL, ts BIGINT NOT NULL, start_ts BIGINT NOT NULL,
    flags UINTEGER NOT NULL, data VARCHAR NOT NULL, exemplars VARCHAR);
CREATE TABLE IF NOT EXISTS applied_batches (
    tenant VARCHAR NOT NULL, batch_id VARCHAR NOT NULL, applied_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, batch_id));
CREATE TABLE IF NOT EXISTS rollup_1m {_ROLLUP_COLUMNS};
CREATE TABLE IF NOT EXISTS rollup_5m {_ROLLUP_COLUMNS};
CREATE TABLE IF NOT EXISTS rollup_10m {_ROLLUP_COLUMNS};
-- rollups are complete for every chunk before `watermark` except the dirty ones
CREATE TABLE IF NOT EXISTS rollup_state (name VARCHAR PRIMARY KEY, value BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS rollup_dirty (chunk BIGINT PRIMARY KEY);
"""


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(_DDL)
    rows = con.execute("SELECT value FROM rollup_state WHERE name = 'version'").fetchall()
    if rows != [(ROLLUP_VERSION,)]:  # new file, or rollups of another layout: rebuild
        tables = [table for _, table in ROLLUPS]
        con.execute("; ".join(f"DELETE FROM {t}" for t in [*tables, "rollup_dirty"]))
        con.execute("DELETE FROM rollup_state")
        con.execute("INSERT INTO rollup_state VALUES ('version', ?)", [ROLLUP_VERSION])
