"""Service map, RED metrics and trace analytics for postgres_traces, computed by SQL over
the spans of the range (the rules are storage/traces.py's).

Percentiles are exact (percentile_disc). The node a span calls and an error span's group
are columns computed at write time (postgres_traces_rows), so no query parses JSON. Edges
of a parent/child pair join the partner span through the (tenant, trace_id, start_ns)
index, whenever it started. Spans written before those columns existed count in the
nodes and RED figures but add no inferred nodes or error groups.

Concurrent writers need no coordination: everything is derived when a query runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection

from ..model import SpanKind, StatusCode
from ..span_analytics import make_stats, rank_operations
from ..traces import (
    ENTRY_KINDS,
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
    node_id,
)
from .postgres_common import from_pg_text, to_pg_text

SECOND_NS = 1_000_000_000
_ERROR = int(StatusCode.ERROR)
_CALLERS = f"{int(SpanKind.CLIENT)}, {int(SpanKind.PRODUCER)}"
_CLIENT, _CONSUMER = int(SpanKind.CLIENT), int(SpanKind.CONSUMER)
_PERCENTILES = "percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY {value})"
_VIA_NODE = "('database', 'messaging')"
_SERVICE = NodeType.SERVICE.value


def _kinds(span_kinds: Sequence[SpanKind] | None, params: dict[str, Any]) -> str:
    """SQL selecting the spans of `span_kinds`, or entry spans when None."""
    if span_kinds is None:
        entry = ", ".join(str(int(kind)) for kind in ENTRY_KINDS)
        return f"(kind IN ({entry}) OR parent_span_id = '')"
    params["kinds"] = sorted({int(kind) for kind in span_kinds})
    return "kind = ANY(%(kinds)s::smallint[])"


def _stats(row: Sequence[Any], seconds: float) -> RequestStats:
    """RequestStats of (count, errors, [p50, p95, p99])."""
    count, errors, percentiles = row
    p50, p95, p99 = percentiles or (None, None, None)
    return make_stats(int(count), int(errors), seconds, p50, p95, p99)


async def _fetch(conn: AsyncConnection[Any], sql: str, params: dict[str, Any]) -> list[Any]:
    cursor = await conn.execute(sql, params)
    return await cursor.fetchall()


def _service_map_sql(s: str) -> str:
    spans = f"{s}.spans"
    return f"""
WITH r AS MATERIALIZED (
  SELECT trace_id, span_id, parent_span_id, service, kind, status_code = {_ERROR} AS err,
         duration_ns AS d, peer_type, peer_system, peer_name
  FROM {spans} WHERE tenant = %(tenant)s AND start_ns >= %(start)s AND start_ns < %(end)s
), remote AS (  -- CLIENT/PRODUCER spans of the range and their children elsewhere
  SELECT p.trace_id, p.span_id, p.service, p.d, p.err, p.peer_type, c.service AS child_service,
         c.kind AS child_kind, c.peer_type AS child_peer, c.status_code AS child_status
  FROM r p JOIN {spans} c ON c.tenant = %(tenant)s AND c.trace_id = p.trace_id
       AND c.parent_span_id = p.span_id
  WHERE p.kind IN ({_CALLERS}) AND c.service <> p.service
), contributions AS (
  SELECT '{_SERVICE}' AS st, '' AS ss, service AS sn, peer_type AS tt, peer_system AS ts,
         peer_name AS tn, d, err
  FROM r WHERE kind IN ({_CALLERS}) AND peer_type IN {_VIA_NODE}
  UNION ALL
  SELECT peer_type, peer_system, peer_name, '{_SERVICE}', '', service, d, err
  FROM r WHERE kind = {_CONSUMER} AND peer_type = 'messaging'
  UNION ALL
  SELECT '{_SERVICE}', '', service, '{_SERVICE}', '', child_service, d,
         err OR child_status = {_ERROR}
  FROM remote WHERE peer_type IS DISTINCT FROM 'database'
    AND peer_type IS DISTINCT FROM 'messaging'
    AND NOT (child_kind = {_CONSUMER} AND child_peer IS NOT DISTINCT FROM 'messaging')
  UNION ALL
  SELECT '{_SERVICE}', '', p.service, '{_SERVICE}', '', c.service, c.d,
         c.err OR p.status_code = {_ERROR}
  FROM r c JOIN {spans} p ON p.tenant = %(tenant)s AND p.trace_id = c.trace_id
       AND p.span_id = c.parent_span_id
  WHERE c.parent_span_id <> '' AND p.kind NOT IN ({_CALLERS}) AND p.service <> c.service
    AND NOT (c.kind = {_CONSUMER} AND c.peer_type IS NOT DISTINCT FROM 'messaging')
  UNION ALL
  SELECT '{_SERVICE}', '', x.service, 'external', '', x.peer_name, x.d, x.err
  FROM r x WHERE x.kind = {_CLIENT} AND x.peer_type = 'external' AND NOT EXISTS (
    SELECT 1 FROM {spans} c WHERE c.tenant = %(tenant)s AND c.trace_id = x.trace_id
      AND c.parent_span_id = x.span_id AND c.service <> x.service)
)
SELECT GROUPING(st), st, ss, sn, tt, ts, tn, count(*), count(*) FILTER (WHERE err),
       {_PERCENTILES.format(value="d")}
FROM contributions
GROUP BY GROUPING SETS ((st, ss, sn, tt, ts, tn), (tt, ts, tn))
"""


def _entry_sql(s: str) -> str:
    return (
        f"SELECT service, count(*), count(*) FILTER (WHERE status_code = {_ERROR}),"
        f" {_PERCENTILES.format(value='duration_ns')} FROM {s}.spans"
        " WHERE tenant = %(tenant)s AND start_ns >= %(start)s AND start_ns < %(end)s"
        f" AND {_kinds(None, {})} GROUP BY service"
    )


async def service_map(
    conn: AsyncConnection[Any], s: str, tenant: str, start: int, end: int
) -> ServiceMap:
    start, end = minute_range(start, end)
    seconds = (end - start) / SECOND_NS
    params = {"tenant": to_pg_text(tenant), "start": start, "end": end}
    node_stats: dict[tuple[str, str, str], RequestStats] = {}
    for service, *values in await _fetch(conn, _entry_sql(s), params):
        node_stats[(_SERVICE, "", from_pg_text(service))] = _stats(values, seconds)
    edges: list[ServiceMapEdge] = []
    for grouping, *names, count, errors, percentiles in await _fetch(
        conn, _service_map_sql(s), params
    ):
        st, ss, sn, tt, ts, tn = (None if n is None else from_pg_text(n) for n in names)
        stats = _stats((count, errors, percentiles), seconds)
        target = (tt, ts, tn)
        if grouping:  # the requests into a node
            if tt != _SERVICE:
                node_stats[target] = stats  # type: ignore[index]
            continue
        for key in ((st, ss, sn), target):
            node_stats.setdefault(key, make_stats(0, 0, seconds, None, None, None))  # type: ignore[arg-type]
        edges.append(ServiceMapEdge(
            node_id(NodeType(st), ss, sn), node_id(NodeType(tt), ts, tn), stats  # type: ignore[arg-type]
        ))  # fmt: skip
    nodes = [
        ServiceMapNode(NodeType(kind), system, name, stats)
        for (kind, system, name), stats in node_stats.items()
    ]
    nodes.sort(key=lambda node: node.id)
    edges.sort(key=lambda edge: (edge.source, edge.target))
    return ServiceMap(start, end, nodes, edges)


def _span_where(
    service: str | None, operation: str | None, span_kinds: Sequence[SpanKind] | None,
    params: dict[str, Any],
) -> str:  # fmt: skip
    where = (
        "tenant = %(tenant)s AND start_ns >= %(start)s AND start_ns < %(end)s"
        f" AND {_kinds(span_kinds, params)}"
    )
    if service is not None:
        params["service"] = to_pg_text(service)
        where += " AND service = %(service)s"
    if operation is not None:
        params["operation"] = to_pg_text(operation)
        where += " AND name = %(operation)s"
    return where


async def red_series(
    conn: AsyncConnection[Any],
    s: str,
    tenant: str,
    start: int,
    end: int,
    step: int,
    service: str,
    operation: str | None,
    span_kinds: Sequence[SpanKind] | None,
) -> list[RedPoint]:
    start, end = minute_range(start, end)
    steps = -(-(end - start) // step)
    params: dict[str, Any] = {"tenant": to_pg_text(tenant), "start": start,
                              "end": start + steps * step, "step": step}  # fmt: skip
    where = _span_where(service, operation, span_kinds, params)
    rows = await _fetch(
        conn,
        f"SELECT (start_ns - %(start)s) / %(step)s, count(*),"
        f" count(*) FILTER (WHERE status_code = {_ERROR}),"
        f" {_PERCENTILES.format(value='duration_ns')} FROM {s}.spans WHERE {where} GROUP BY 1",
        params,
    )
    by_step = {int(row[0]): _stats(row[1:], step / SECOND_NS) for row in rows}
    empty = make_stats(0, 0, step / SECOND_NS, None, None, None)
    points = []
    for index in range(steps):
        x = by_step.get(index, empty)
        points.append(RedPoint(start + index * step, x.count, x.errors, x.rate, x.error_rate,
                               x.p50, x.p95, x.p99))  # fmt: skip
    return points


async def latency_histogram(
    conn: AsyncConnection[Any],
    s: str,
    tenant: str,
    start: int,
    end: int,
    service: str,
    operation: str | None,
    bounds: Sequence[int] | None,
    span_kinds: Sequence[SpanKind] | None,
) -> list[LatencyBucket]:
    start, end = minute_range(start, end)
    params: dict[str, Any] = {"tenant": to_pg_text(tenant), "start": start, "end": end}
    where = _span_where(service, operation, span_kinds, params)
    if bounds is None:
        [(low, high)] = await _fetch(
            conn, f"SELECT min(duration_ns), max(duration_ns) FROM {s}.spans WHERE {where}",
            params,
        )  # fmt: skip
        if low is None:
            return []
        edges = [1 << k for k in range(int(low).bit_length(), int(high).bit_length() + 1)]
    else:
        edges = list(bounds)
    params["edges"] = edges
    rows = await _fetch(
        conn,
        "SELECT width_bucket(duration_ns, %(edges)s::bigint[]), count(*)"
        f" FROM {s}.spans WHERE {where} GROUP BY 1",
        params,
    )
    counts = dict(rows)
    buckets = [LatencyBucket(bound, int(counts.get(i, 0))) for i, bound in enumerate(edges)]
    if bounds is not None:
        buckets.append(LatencyBucket(None, int(counts.get(len(edges), 0))))
    return buckets


async def top_operations(
    conn: AsyncConnection[Any],
    s: str,
    tenant: str,
    start: int,
    end: int,
    by: TopBy,
    limit: int,
    span_kinds: Sequence[SpanKind] | None,
) -> list[OperationStats]:
    start, end = minute_range(start, end)
    params: dict[str, Any] = {"tenant": to_pg_text(tenant), "start": start, "end": end}
    where = _span_where(None, None, span_kinds, params)
    rows = await _fetch(
        conn,
        f"SELECT service, name, count(*), count(*) FILTER (WHERE status_code = {_ERROR}),"
        f" {_PERCENTILES.format(value='duration_ns')} FROM {s}.spans WHERE {where}"
        " GROUP BY service, name",
        params,
    )
    seconds = (end - start) / SECOND_NS
    found = [
        OperationStats(from_pg_text(service), from_pg_text(name), _stats(values, seconds))
        for service, name, *values in rows
    ]
    return rank_operations(found, by, limit)


async def top_errors(
    conn: AsyncConnection[Any],
    s: str,
    tenant: str,
    start: int,
    end: int,
    service: str | None,
    limit: int,
) -> list[ErrorGroup]:
    start, end = minute_range(start, end)
    params: dict[str, Any] = {"tenant": to_pg_text(tenant), "start": start, "end": end}
    where = (
        f"tenant = %(tenant)s AND start_ns >= %(start)s AND start_ns < %(end)s"
        f" AND status_code = {_ERROR}"
    )
    if service is not None:
        params["service"] = to_pg_text(service)
        where += " AND service = %(service)s"
    params["limit"] = limit
    rows = await _fetch(
        conn,
        "SELECT coalesce(error_type, ''), coalesce(error_message, ''), count(*),"
        " array_agg(DISTINCT service), (array_agg(trace_id ORDER BY start_ns DESC))[1],"
        f" max(start_ns) FROM {s}.spans WHERE {where} GROUP BY 1, 2"
        " ORDER BY count(*) DESC, coalesce(error_type, '') COLLATE \"C\","
        " coalesce(error_message, '') COLLATE \"C\" LIMIT %(limit)s",
        params,
    )
    groups = [
        ErrorGroup(from_pg_text(kind), from_pg_text(message), int(count),
                   sorted(from_pg_text(name) for name in services), from_pg_text(sample),
                   int(last))
        for kind, message, count, services, sample, last in rows
    ]  # fmt: skip
    # The SQL order compares escaped text; the contract's order is the original text's.
    groups.sort(key=lambda g: (-g.count, g.exception_type, g.message))
    return groups
