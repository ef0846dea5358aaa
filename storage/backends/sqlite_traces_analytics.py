"""Service map, RED metrics and trace analytics for the embedded trace store, from
pre-aggregates kept at write time (as production tracing systems do), so a query reads a
few thousand small rows rather than every span of its range.

Three rollup tables, with one row per block of time and key at three resolutions (`res`,
in seconds: blocks of 1 minute, 10 minutes and 1 hour):

* `span_rollups` (service, span name, kind, root): span count, errors, duration histogram;
* `edge_rollups` (source node, target node): requests, errors, latency histogram, from
  span_analytics.edge_contributions;
* `error_rollups` (service, exception type, message): count, latest occurrence and its
  trace.

Histograms are span_analytics' log-linear buckets (bytes form), summed on conflict by the
SQL function argus_hist_add; percentiles are estimated from them (within 1/32).

Writes upsert minute rows only. The coarser blocks are built once complete: when the
newest minute written is LATENESS past a block's end, the block is summed from the next
finer resolution, and `rollup_marks` (tenant, res) -> upto records that every block of
that resolution ending by `upto` is built. A span written later into a built block (late
data) updates that block directly as well. Queries take, for each part of their range,
the coarsest built blocks that fit, so an hour reads at most 23 rows per key, a day 51.

Edges need both spans of a pair. A batch that adds spans to traces written before reads
those traces' stored spans first (in the same write transaction); spans of traces new in
the batch need no read. A trace written in many batches is read once per batch.

Spans stored before this schema version are not in the rollups.
"""

from __future__ import annotations

import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, cast

import numpy as np

from ..attributes import decode_attributes
from ..model import Span, SpanKind, StatusCode
from ..span_analytics import (
    Contribution,
    Facts,
    HistogramSums,
    NodeKey,
    add_histograms,
    bucket_bounds,
    check_bounds,
    check_step,
    edge_contributions,
    encode_histogram,
    error_group,
    make_stats,
    peer_of,
    rank_operations,
)
from ..traces import (
    ENTRY_KINDS,
    MINUTE_NS,
    ErrorGroup,
    LatencyBucket,
    NodeType,
    OperationStats,
    RedPoint,
    RequestStats,
    ServiceMap,
    ServiceMapEdge,
    ServiceMapNode,
    TopBy,
    minute_range,
)

SECOND_NS = 1_000_000_000
LEVELS = (60, 600, 3600)  # block lengths in seconds, finest first
LATENESS = 5 * MINUTE_NS  # how long after its end a block is built
FUTURE = 10 * MINUTE_NS  # spans further ahead of the clock do not advance the building
DELETE_SLICE_BLOCKS = 360  # blocks of one resolution deleted per retention transaction
_MAX_RUNS = 32  # separate range reads per resolution before reading its whole span
_SPAN_KEY = ("service", "name", "kind", "root")
_EDGE_KEY = ("src_type", "src_system", "src", "dst_type", "dst_system", "dst")
_ERROR_KEY = ("service", "type", "message")

MIGRATION: tuple[str, ...] = (
    (
        "CREATE TABLE span_rollups (tenant TEXT NOT NULL, res INTEGER NOT NULL,"
        " t INTEGER NOT NULL, service TEXT NOT NULL, name TEXT NOT NULL, kind INTEGER NOT NULL,"
        " root INTEGER NOT NULL, count INTEGER NOT NULL, errors INTEGER NOT NULL, hist BLOB,"
        " PRIMARY KEY (tenant, res, t, service, name, kind, root)) WITHOUT ROWID"
    ),
    (
        "CREATE TABLE edge_rollups (tenant TEXT NOT NULL, res INTEGER NOT NULL,"
        " t INTEGER NOT NULL, src_type TEXT NOT NULL, src_system TEXT NOT NULL,"
        " src TEXT NOT NULL, dst_type TEXT NOT NULL, dst_system TEXT NOT NULL,"
        " dst TEXT NOT NULL, count INTEGER NOT NULL, errors INTEGER NOT NULL, hist BLOB,"
        " PRIMARY KEY (tenant, res, t, src_type, src_system, src, dst_type, dst_system, dst))"
        " WITHOUT ROWID"
    ),
    (
        "CREATE TABLE error_rollups (tenant TEXT NOT NULL, res INTEGER NOT NULL,"
        " t INTEGER NOT NULL, service TEXT NOT NULL, type TEXT NOT NULL,"
        " message TEXT NOT NULL, count INTEGER NOT NULL, last_ns INTEGER NOT NULL,"
        " sample TEXT NOT NULL,"
        " PRIMARY KEY (tenant, res, t, service, type, message)) WITHOUT ROWID"
    ),
    (
        "CREATE TABLE rollup_marks (tenant TEXT NOT NULL, res INTEGER NOT NULL,"
        " upto INTEGER NOT NULL, PRIMARY KEY (tenant, res)) WITHOUT ROWID"
    ),
)
TABLES = ("span_rollups", "edge_rollups", "error_rollups")


def _upsert(table: str, key: Sequence[str], values: str) -> str:
    columns = ", ".join(("tenant", "res", "t", *key))
    if table == "error_rollups":
        fields = "count, last_ns, sample"
        update = (
            "count = count + excluded.count,"
            " sample = CASE WHEN excluded.last_ns >= last_ns THEN excluded.sample ELSE sample END,"
            " last_ns = max(last_ns, excluded.last_ns)"
        )
    else:
        fields = "count, errors, hist"
        update = (
            "count = count + excluded.count, errors = errors + excluded.errors,"
            " hist = argus_hist_add(hist, excluded.hist)"
        )
    marks = ", ".join("?" * (3 + len(key) + 3))
    return (
        f"INSERT INTO {table} ({columns}, {fields}) {values.format(marks=marks)}"
        f" ON CONFLICT DO UPDATE SET {update}"
    )


_UPSERTS = {
    "span_rollups": _upsert("span_rollups", _SPAN_KEY, "VALUES ({marks})"),
    "edge_rollups": _upsert("edge_rollups", _EDGE_KEY, "VALUES ({marks})"),
    "error_rollups": _upsert("error_rollups", _ERROR_KEY, "VALUES ({marks})"),
}
_KEYS = {"span_rollups": _SPAN_KEY, "edge_rollups": _EDGE_KEY, "error_rollups": _ERROR_KEY}


def register_functions(conn: sqlite3.Connection) -> None:
    conn.create_function("argus_hist_add", 2, add_histograms, deterministic=True)


# ---------------------------------------------------------------------------- writing


class _Sums:
    """count, errors and {bucket: count} of one rollup key."""

    __slots__ = ("count", "errors", "hist")

    def __init__(self) -> None:
        self.count = 0
        self.errors = 0
        self.hist: dict[int, int] = {}


def _add(sums: _Sums, duration: int, error: bool, delta: int) -> None:
    sums.count += delta
    if error:
        sums.errors += delta
    if duration < 32:
        bucket = max(duration, 0)
    else:
        shift = duration.bit_length() - 5
        bucket = (shift << 4) + (duration >> shift)  # span_analytics.bucket_of, inlined
    hist = sums.hist
    hist[bucket] = hist.get(bucket, 0) + delta


class BatchRollup:
    """What one batch adds to the rollups, by minute."""

    def __init__(self) -> None:
        self.spans: dict[tuple[Any, ...], _Sums] = {}
        self.edges: dict[tuple[Any, ...], _Sums] = {}
        # (minute, service, type, message) -> [count, latest start, its trace id]
        self.errors: dict[tuple[Any, ...], list[Any]] = {}
        self.newest = 0  # the latest minute

    def add_edges(self, contributions: Iterable[Contribution]) -> None:
        edges = self.edges
        for item in contributions:
            key = (item.start - item.start % MINUTE_NS, *item.source, *item.target)
            sums = edges.get(key)
            if sums is None:
                sums = edges[key] = _Sums()
            _add(sums, item.duration, item.error, item.delta)

    def rows(self, tenant: str) -> dict[str, list[tuple[Any, ...]]]:
        """Minute rows to upsert, per table."""
        return {
            "span_rollups": _sum_rows(tenant, self.spans),
            "edge_rollups": _sum_rows(tenant, self.edges),
            "error_rollups": [
                (tenant, LEVELS[0], *key, *values) for key, values in self.errors.items()
            ],
        }


def _sum_rows(tenant: str, by_minute: dict[tuple[Any, ...], _Sums]) -> list[tuple[Any, ...]]:
    rows = []
    for key, sums in by_minute.items():
        hist = {bucket: count for bucket, count in sums.hist.items() if count}
        if sums.count or hist:
            blob = encode_histogram(hist) if hist else None
            rows.append((tenant, LEVELS[0], *key, sums.count, sums.errors, blob))
    return rows


def stored_facts(conn: sqlite3.Connection, trace_ref: int) -> list[Facts]:
    """Facts of the spans already stored for a trace."""
    rows = conn.execute(
        "SELECT span_id, parent_span_id, service, kind, start_ns, end_ns, status_code,"
        " CASE WHEN kind IN (3, 4, 5) THEN attributes END FROM spans WHERE trace_ref = ?",
        (trace_ref,),
    )
    return [
        Facts(span_id, parent, service, kind, start, max(0, end - start),
              status == StatusCode.ERROR,
              peer_of(kind, decode_attributes(attributes)) if attributes else None)
        for span_id, parent, service, kind, start, end, status, attributes in rows
    ]  # fmt: skip


def batch_rollup(
    conn: sqlite3.Connection, spans: Sequence[Span], refs: dict[str, int], new_refs: set[int]
) -> BatchRollup:
    """The rollup of a batch, before its spans are inserted (stored_facts must not see
    them)."""
    rollup = BatchRollup()
    rows, errors = rollup.spans, rollup.errors
    services: dict[int, str] = {}  # id(resource) -> service name
    by_trace: dict[str, list[Facts]] = {}
    error = StatusCode.ERROR
    newest = 0
    for span in spans:
        resource = span.resource
        service = services.get(id(resource))
        if service is None:
            service = services[id(resource)] = resource.service_name
        start = span.start_time_unix_nano
        duration = max(0, span.end_time_unix_nano - start)
        minute = start - start % MINUTE_NS
        newest = max(newest, minute)
        kind = int(span.kind)
        failed = span.status_code == error
        key = (minute, service, span.name, kind, not span.parent_span_id)
        sums = rows.get(key)
        if sums is None:
            sums = rows[key] = _Sums()
        _add(sums, duration, failed, 1)
        peer = peer_of(kind, span.attributes) if kind >= SpanKind.CLIENT else None
        facts = Facts(span.span_id, span.parent_span_id, service, kind, start, duration,
                      failed, peer)  # fmt: skip
        found = by_trace.get(span.trace_id)
        if found is None:
            by_trace[span.trace_id] = [facts]
        else:
            found.append(facts)
        if failed:
            group = error_group(span)
            assert group is not None
            error_key = (minute, service, *group)
            seen = errors.get(error_key)
            if seen is None:
                errors[error_key] = [1, start, span.trace_id]
            else:
                seen[0] += 1
                if start >= seen[1]:
                    seen[1], seen[2] = start, span.trace_id
    rollup.newest = newest
    for trace_id, new in by_trace.items():
        ref = refs[trace_id]
        existing = [] if ref in new_refs else stored_facts(conn, ref)
        rollup.add_edges(edge_contributions(existing, new))
    return rollup


class RollupWriter:
    """Writes batch rollups and builds complete coarse blocks (writer thread only)."""

    def __init__(self) -> None:
        self._marks: dict[tuple[str, int], int] = {}  # (tenant, res) -> upto
        self._ready = False

    def forget(self) -> None:
        """After a rollback: the cached marks may not be what is stored."""
        self._marks.clear()

    def write(self, conn: sqlite3.Connection, tenant: str, rollup: BatchRollup) -> None:
        if not self._ready:
            register_functions(conn)
            self._ready = True
        rows = rollup.rows(tenant)
        oldest = min((row[2] for table in rows.values() for row in table), default=None)
        if oldest is None:
            return
        for table, found in rows.items():
            conn.executemany(_UPSERTS[table], found)
        for res in LEVELS[1:]:
            upto = self._mark(conn, tenant, res, oldest)
            if oldest < upto:  # late data: the built blocks it falls in take it too
                for table, found in rows.items():
                    late = _coarsen([row for row in found if row[2] < upto], res, table)
                    conn.executemany(_UPSERTS[table], late)
        newest = min(rollup.newest, time.time_ns() + FUTURE) + MINUTE_NS
        for res, finer in zip(LEVELS[1:], LEVELS):
            block = res * SECOND_NS
            target = newest - LATENESS
            target -= target % block
            if res != LEVELS[1]:
                target = min(target, self._marks[(tenant, finer)])
                target -= target % block
            upto = self._marks[(tenant, res)]
            if target > upto:
                self._build(conn, tenant, res, finer, upto, target)

    def _mark(self, conn: sqlite3.Connection, tenant: str, res: int, oldest: int) -> int:
        mark = self._marks.get((tenant, res))
        if mark is None:
            row = conn.execute(
                "SELECT upto FROM rollup_marks WHERE tenant = ? AND res = ?", (tenant, res)
            ).fetchone()
            if row is None:  # a new tenant: nothing before this batch to build
                mark = oldest - oldest % (res * SECOND_NS)
                conn.execute("INSERT INTO rollup_marks VALUES (?, ?, ?)", (tenant, res, mark))
            else:
                mark = int(row[0])
            self._marks[(tenant, res)] = mark
        return mark

    def _build(
        self, conn: sqlite3.Connection, tenant: str, res: int, finer: int, low: int, high: int
    ) -> None:
        """Sum the blocks [low, high) of resolution `res` from `finer` blocks."""
        for table, key in _KEYS.items():
            fields = "count, last_ns, sample" if table == "error_rollups" else "count, errors, hist"
            found = conn.execute(
                f"SELECT tenant, res, t, {', '.join(key)}, {fields} FROM {table}"
                " WHERE tenant = ? AND res = ? AND t >= ? AND t < ?",
                (tenant, finer, low, high),
            ).fetchall()
            conn.executemany(_UPSERTS[table], _coarsen(found, res, table))
        conn.execute(
            "UPDATE rollup_marks SET upto = ? WHERE tenant = ? AND res = ?", (high, tenant, res)
        )
        self._marks[(tenant, res)] = high


def _coarsen(rows: list[tuple[Any, ...]], res: int, table: str) -> list[tuple[Any, ...]]:
    """Rows (tenant, res, t, *key, *values) summed into blocks of `res`."""
    block = res * SECOND_NS
    summed: dict[tuple[Any, ...], list[Any]] = {}
    for tenant, _, t, *rest in rows:
        key = (tenant, res, t - t % block, *rest[:-3])
        a, b, c = rest[-3:]
        found = summed.get(key)
        if found is None:
            summed[key] = [a, b, c]
        elif table == "error_rollups":  # count, last_ns, sample
            found[0] += a
            if b >= found[1]:
                found[1], found[2] = b, c
        else:  # count, errors, hist
            found[0] += a
            found[1] += b
            found[2] = add_histograms(found[2], c)
    return [(*key, *values) for key, values in summed.items()]


# ---------------------------------------------------------------------------- retention


def delete_slice(tenant: str, cutoff: int, conn: sqlite3.Connection) -> int:
    """Delete one slice of the tenant's rollup blocks that end at or before the cutoff,
    in one table and resolution; returns how many rows went (0: nothing left)."""
    for table in TABLES:
        for res in LEVELS:
            block = res * SECOND_NS
            last = cutoff - block  # the latest block start that ends by the cutoff
            row = conn.execute(
                f"SELECT min(t) FROM {table} WHERE tenant = ? AND res = ? AND t <= ?",
                (tenant, res, last),
            ).fetchone()
            if row[0] is None:
                continue
            upto = min(last + 1, row[0] + DELETE_SLICE_BLOCKS * block)
            return conn.execute(
                f"DELETE FROM {table} WHERE tenant = ? AND res = ? AND t >= ? AND t < ?",
                (tenant, res, row[0], upto),
            ).rowcount
    return 0


# ---------------------------------------------------------------------------- reading


def marks(conn: sqlite3.Connection, tenant: str) -> dict[int, int]:
    """res -> the end of the built blocks of that resolution (minutes: all)."""
    found = dict(conn.execute("SELECT res, upto FROM rollup_marks WHERE tenant = ?", (tenant,)))
    return {res: found.get(res, 0) if res != LEVELS[0] else 2**63 for res in LEVELS}


def blocks(start: int, end: int, built: dict[int, int]) -> list[tuple[int, int]]:
    """(res, block start) of the coarsest built blocks tiling the minute-aligned
    [start, end)."""
    out = []
    t = start
    while t < end:
        for res in reversed(LEVELS):
            block = res * SECOND_NS
            if t % block == 0 and t + block <= min(end, built[res]):
                out.append((res, t))
                t += block
                break
    return out


def _runs(wanted: Iterable[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """(res, first start, end) ranges covering the blocks, per resolution; a resolution
    with many separate runs is read over its whole span (the caller filters)."""
    by_res: dict[int, list[int]] = defaultdict(list)
    for res, t in wanted:
        by_res[res].append(t)
    out: list[tuple[int, int, int]] = []
    for res, starts in by_res.items():
        block = res * SECOND_NS
        starts.sort()
        runs: list[list[int]] = []
        for t in starts:
            if runs and runs[-1][1] == t:
                runs[-1][1] = t + block
            else:
                runs.append([t, t + block])
        if len(runs) > _MAX_RUNS:
            runs = [[runs[0][0], runs[-1][1]]]
        out.extend((res, low, high) for low, high in runs)
    return out


def _read(
    conn: sqlite3.Connection,
    table: str,
    columns: str,
    tenant: str,
    wanted: dict[tuple[int, int], int],
    where: str = "",
    params: Sequence[Any] = (),
) -> Iterable[tuple[int, tuple[Any, ...]]]:
    """(index of the block's window, the other columns) of the rollup rows of the wanted
    blocks {(res, t): window}."""
    for res, low, high in _runs(wanted):
        rows = conn.execute(
            f"SELECT t, {columns} FROM {table} WHERE tenant = ? AND res = ? AND t >= ?"
            f" AND t < ?{where}",
            (tenant, res, low, high, *params),
        )
        for t, *rest in rows:
            window = wanted.get((res, t))
            if window is not None:
                yield window, tuple(rest)


def _kind_filter(span_kinds: Sequence[SpanKind] | None) -> tuple[str, list[Any]]:
    if span_kinds is None:
        entry = ", ".join(str(int(k)) for k in ENTRY_KINDS)
        return f" AND (kind IN ({entry}) OR root)", []
    kinds = sorted({int(k) for k in span_kinds})
    return f" AND kind IN ({', '.join('?' * len(kinds))})", list(kinds)


def _span_filter(
    service: str | None, operation: str | None, span_kinds: Sequence[SpanKind] | None
) -> tuple[str, list[Any]]:
    where, params = _kind_filter(span_kinds)
    if service is not None:
        where += " AND service = ?"
        params.append(service)
    if operation is not None:
        where += " AND name = ?"
        params.append(operation)
    return where, params


def _whole(
    conn: sqlite3.Connection, tenant: str, start: int, end: int
) -> tuple[int, int, dict[tuple[int, int], int]]:
    start, end = minute_range(start, end)
    return start, end, dict.fromkeys(blocks(start, end, marks(conn, tenant)), 0)


def service_map(tenant: str, start: int, end: int, conn: sqlite3.Connection) -> ServiceMap:
    start, end, wanted = _whole(conn, tenant, start, end)
    seconds = (end - start) / SECOND_NS
    sums = HistogramSums()
    where, params = _kind_filter(None)
    for _, (service, count, errors, hist) in _read(
        conn, "span_rollups", "service, count, errors, hist", tenant, wanted, where, params
    ):
        sums.add(("node", NodeType.SERVICE.value, "", service), count, errors, hist)
    edge_columns = "src_type, src_system, src, dst_type, dst_system, dst, count, errors, hist"
    for _, row in _read(conn, "edge_rollups", edge_columns, tenant, wanted):
        source, target, (count, errors, hist) = row[0:3], row[3:6], row[6:9]
        sums.add(("edge", source, target), count, errors, hist)
        if target[0] != NodeType.SERVICE.value:
            sums.add(("node", *target), count, errors, hist)
    stats = cast(dict[tuple[Any, ...], RequestStats], sums.stats(seconds))
    edges = [
        (key[1], key[2], value)
        for key, value in stats.items()
        if key[0] == "edge" and value.count > 0
    ]
    nodes: set[NodeKey] = {key[1:] for key, value in stats.items()
                           if key[0] == "node" and value.count > 0}  # fmt: skip
    for source, target, _ in edges:
        nodes.update((source, target))
    empty = make_stats(0, 0, seconds, None, None, None)
    map_nodes = [
        ServiceMapNode(NodeType(kind), system, name, stats.get(("node", kind, system, name), empty))
        for kind, system, name in nodes
    ]
    map_edges = [
        ServiceMapEdge(_node_id(source), _node_id(target), value)
        for source, target, value in edges
    ]
    map_nodes.sort(key=lambda node: node.id)
    map_edges.sort(key=lambda edge: (edge.source, edge.target))
    return ServiceMap(start, end, map_nodes, map_edges)


def _node_id(key: tuple[Any, ...]) -> str:
    return ServiceMapNode(NodeType(key[0]), key[1], key[2], _EMPTY).id


_EMPTY = RequestStats(0, 0, 0.0, 0.0, None, None, None)


def red_series(
    tenant: str,
    start: int,
    end: int,
    step: int,
    service: str,
    operation: str | None,
    span_kinds: Sequence[SpanKind] | None,
    conn: sqlite3.Connection,
) -> list[RedPoint]:
    check_step(step)
    start, end = minute_range(start, end)
    windows = list(range(start, end, step))
    wanted: dict[tuple[int, int], int] = {}
    built = marks(conn, tenant)
    for index, t in enumerate(windows):
        wanted.update(dict.fromkeys(blocks(t, t + step, built), index))
    sums = HistogramSums()
    for index in range(len(windows)):
        sums.group(index)
    where, params = _span_filter(service, operation, span_kinds)
    for index, (count, errors, hist) in _read(
        conn, "span_rollups", "count, errors, hist", tenant, wanted, where, params
    ):
        sums.add(index, count, errors, hist)
    stats = sums.stats(step / SECOND_NS)
    points = []
    for index, t in enumerate(windows):
        s = stats[index]
        points.append(RedPoint(t, s.count, s.errors, s.rate, s.error_rate, s.p50, s.p95, s.p99))
    return points


def latency_histogram(
    tenant: str,
    start: int,
    end: int,
    service: str,
    operation: str | None,
    bounds: Sequence[int] | None,
    span_kinds: Sequence[SpanKind] | None,
    conn: sqlite3.Connection,
) -> list[LatencyBucket]:
    check_bounds(bounds)
    start, end, wanted = _whole(conn, tenant, start, end)
    sums = HistogramSums()
    sums.group(0)
    where, params = _span_filter(service, operation, span_kinds)
    for _, (hist,) in _read(conn, "span_rollups", "hist", tenant, wanted, where, params):
        sums.add(0, 0, 0, hist)
    return histogram_buckets(sums.histogram(0), bounds)


def histogram_buckets(counts: np.ndarray, bounds: Sequence[int] | None) -> list[LatencyBucket]:
    """Fine bucket counts regrouped into power-of-two buckets, or below explicit bounds
    (a fine bucket goes by its lower bound)."""
    nonzero = np.flatnonzero(counts)
    if bounds is None:
        if not len(nonzero):
            return []
        lows = [bucket_bounds(int(i))[0] for i in nonzero]
        first, last = _power_above(lows[0]), _power_above(lows[-1])
        edges = [1 << k for k in range(first, last + 1)]
    else:
        edges = list(bounds)
    out = [0] * (len(edges) + 1)
    lows = [bucket_bounds(int(i))[0] for i in nonzero]
    position = np.searchsorted(np.array(edges, dtype=np.float64), lows, side="right")
    for place, index in zip(position, nonzero):
        out[int(place)] += int(counts[index])
    buckets = [LatencyBucket(bound, count) for bound, count in zip(edges, out)]
    if bounds is not None:
        buckets.append(LatencyBucket(None, out[-1]))
    return buckets


def _power_above(value: int) -> int:
    """k of the power of two 2^k whose bucket [2^(k-1), 2^k) holds `value` (0 -> 0)."""
    return value.bit_length()


def top_operations(
    tenant: str,
    start: int,
    end: int,
    by: TopBy,
    limit: int,
    span_kinds: Sequence[SpanKind] | None,
    conn: sqlite3.Connection,
) -> list[OperationStats]:
    start, end, wanted = _whole(conn, tenant, start, end)
    sums = HistogramSums()
    where, params = _kind_filter(span_kinds)
    for _, (service, name, count, errors, hist) in _read(
        conn, "span_rollups", "service, name, count, errors, hist", tenant, wanted, where, params
    ):
        sums.add((service, name), count, errors, hist)
    stats = cast(dict[tuple[str, str], RequestStats], sums.stats((end - start) / SECOND_NS))
    found = [OperationStats(service, name, value)
             for (service, name), value in stats.items() if value.count > 0]  # fmt: skip
    return rank_operations(found, by, limit)


def top_errors(
    tenant: str,
    start: int,
    end: int,
    service: str | None,
    limit: int,
    conn: sqlite3.Connection,
) -> list[ErrorGroup]:
    start, end, wanted = _whole(conn, tenant, start, end)
    where, params = ("", []) if service is None else (" AND service = ?", [service])
    groups: dict[tuple[str, str], ErrorGroup] = {}
    for _, (name, kind, message, count, last, sample) in _read(
        conn, "error_rollups", "service, type, message, count, last_ns, sample", tenant, wanted,
        where, params,
    ):  # fmt: skip
        group = groups.get((kind, message))
        if group is None:
            group = groups[(kind, message)] = ErrorGroup(kind, message, 0, [], sample, last)
        group.count += count
        if name not in group.services:
            group.services.append(name)
        if last > group.last_seen_unix_nano:
            group.last_seen_unix_nano, group.sample_trace_id = last, sample
    ranked = sorted(
        (g for g in groups.values() if g.count > 0),
        key=lambda g: (-g.count, g.exception_type, g.message),
    )
    for group in ranked:
        group.services.sort()
    return ranked[:limit]


__all__ = ["MIGRATION", "batch_rollup", "check_bounds", "check_step", "delete_slice", "rank_operations"]
