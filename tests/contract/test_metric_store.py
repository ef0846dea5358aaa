"""MetricStore contract: every metric backend must pass these, written against the Protocol.

Expected values are computed by hand in the comments, never read back from a backend.
Times are offsets in seconds from T, which is aligned to 10 minutes so steps of a minute
tile it exactly. Several query tests run twice: once on data that is the newest the store
has seen, and once after a point two hours later has made it old (a backend may keep old
data in another form, e.g. rollups; the answers must not change).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from argus.storage import capabilities
from argus.storage.errors import QueryError, Unsupported
from argus.storage.metrics import (
    Aggregation,
    LabelMatcher,
    MatchOp,
    MetricStore,
    PointQuery,
    ResultSeries,
    SeriesQuery,
)
from argus.storage.model import (
    Exemplar,
    ExponentialBuckets,
    ExponentialHistogramValue,
    HistogramValue,
    MetricKind,
    MetricPoint,
    QuantileValue,
    Resource,
    Scope,
    SummaryValue,
    Temporality,
)

S = 1_000_000_000
T = 1_700_000_400 * S  # a multiple of 600 s
TENANT = "acme"
RESOURCE = Resource({"service.name": "checkout", "host.name": "h1"})
SCOPE = Scope("argus.test", "1.0")

CUMULATIVE = Temporality.CUMULATIVE
DELTA = Temporality.DELTA


def require(store: MetricStore, *features: str) -> None:
    """Skip unless `store` can do `features` (a backend declares what it cannot, and why)."""
    for feature in features:
        reason = capabilities.reason(store, feature)
        if reason is not None:
            pytest.skip(f"{feature}: {reason}")


def gauge(name: str, at: float, value: float, **labels: str) -> MetricPoint:
    return MetricPoint(name, MetricKind.GAUGE, T + int(at * S), RESOURCE, SCOPE, dict(labels),
                       value=value)


def counter(
    name: str, at: float, value: float, temporality: Temporality = CUMULATIVE,
    start: int = T - 1000 * S, **labels: str,
) -> MetricPoint:
    return MetricPoint(
        name, MetricKind.SUM, T + int(at * S), RESOURCE, SCOPE, dict(labels), value=value,
        temporality=temporality, is_monotonic=True, start_time_unix_nano=start,
    )


def histogram(
    name: str, at: float, counts: list[int], temporality: Temporality, **labels: str
) -> MetricPoint:
    bounds = [1.0, 2.0, 4.0]
    value = HistogramValue(sum(counts), float(sum(counts)), counts, bounds)
    return MetricPoint(name, MetricKind.HISTOGRAM, T + int(at * S), RESOURCE, SCOPE,
                       dict(labels), temporality=temporality, histogram=value,
                       start_time_unix_nano=T - 1000 * S)


def query(metric: str, start: float, end: float, step: float, **kw: Any) -> SeriesQuery:
    return SeriesQuery(TENANT, metric, T + int(start * S), T + int(end * S), int(step * S),
                       **kw)


def as_dict(result: list[ResultSeries]) -> dict[tuple[tuple[str, str], ...], list[Any]]:
    """{sorted labels: [(offset seconds, value)]} for compact comparisons."""
    return {
        tuple(sorted(s.labels.items())): [
            ((ts - T) / S, pytest.approx(v)) for ts, v in zip(s.timestamps, s.values)
        ]
        for s in result
    }


async def write(store: MetricStore, points: list[MetricPoint], batch: str = "b1",
                tenant: str = TENANT) -> None:
    await store.write_points(tenant, points, batch)


async def age(store: MetricStore) -> None:
    """Make everything written so far old: a point of another metric two hours later."""
    await write(store, [gauge("zz_clock", 7200, 0)], "clock")


@pytest.fixture(params=["recent", "aged"])
def aged(request: pytest.FixtureRequest) -> bool:
    return bool(request.param == "aged")


# ------------------------------------------------------------------ round trip


def every_kind() -> list[MetricPoint]:
    resource = Resource(
        {"service.name": "checkout", "pid": 42, "ratio": 0.5, "on": True, "raw": b"\x00\xff",
         "tags": ["a", 1], "nested": {"k": "v"}},
        dropped_attributes_count=2, schema_url="https://opentelemetry.io/schemas/1.21.0",
    )
    scope = Scope("io.lib", "2.1", {"scope.attr": "x"}, 1, "https://schema/scope")
    exemplars = [
        Exemplar(T + 1, 0.25, "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331",
                 {"user": "u1", "bin": b"\x01"}),
        Exemplar(T + 2, 7),
    ]
    base: dict[str, Any] = {"resource": resource, "scope": scope, "description": "the thing",
                            "unit": "ms", "metadata": {"origin": "sdk"}}
    return [
        MetricPoint("g.int", MetricKind.GAUGE, T, value=-7, attributes={"a": "1"}, **base),
        MetricPoint("g.int", MetricKind.GAUGE, T + S, value=2**60 + 1, flags=1, **base),
        MetricPoint("g.double", MetricKind.GAUGE, T, value=3.25, exemplars=exemplars, **base),
        MetricPoint("s.cum", MetricKind.SUM, T, value=10, temporality=CUMULATIVE,
                    is_monotonic=True, start_time_unix_nano=T - 60 * S, **base),
        MetricPoint("s.delta", MetricKind.SUM, T, value=-1.5, temporality=DELTA,
                    is_monotonic=False, start_time_unix_nano=T - 10 * S, **base),
        MetricPoint("h", MetricKind.HISTOGRAM, T, temporality=DELTA,
                    histogram=HistogramValue(6, 12.5, [1, 2, 3], [0.5, 5.0], min=0.1, max=9.0),
                    exemplars=exemplars[:1], **base),
        MetricPoint("h", MetricKind.HISTOGRAM, T + S, temporality=DELTA,
                    histogram=HistogramValue(0, None, [], []), **base),
        MetricPoint("eh", MetricKind.EXPONENTIAL_HISTOGRAM, T, temporality=CUMULATIVE,
                    exponential_histogram=ExponentialHistogramValue(
                        count=9, sum=20.5, scale=3, zero_count=1,
                        positive=ExponentialBuckets(-2, [1, 0, 4]),
                        negative=ExponentialBuckets(1, [3]), min=-4.0, max=11.0,
                        zero_threshold=0.001),
                    **base),
        MetricPoint("sm", MetricKind.SUMMARY, T,
                    summary=SummaryValue(4, 10.0, [QuantileValue(0.5, 2.0),
                                                   QuantileValue(0.99, 4.5)]), **base),
    ]


async def test_points_round_trip_every_kind(
    metric_store: MetricStore, metric_read_back: Any
) -> None:
    points = every_kind()
    await write(metric_store, points)
    if metric_read_back is not None:  # a write-only backend: the numeric samples it kept
        names = ["g.int_value", "g.int_int", "g.double_value", "s.cum_value", "s.delta_value",
                 "h_count", "h_sum", "h_min", "h_b0", "h_b1", "h_b2", "eh_count", "eh_sum",
                 "sm_count", "sm_q0.99"]
        got = {name: await metric_read_back.samples(name, TENANT) for name in names}
        assert got == {
            "g.int_value": [(T, -7), (T + S, pytest.approx(2**60 + 1))],
            "g.int_int": [(T, -7), (T + S, pytest.approx(2**60 + 1))],
            "g.double_value": [(T, 3.25)], "s.cum_value": [(T, 10)], "s.delta_value": [(T, -1.5)],
            "h_count": [(T, 6), (T + S, 0)], "h_sum": [(T, 12.5)], "h_min": [(T, 0.1)],
            "h_b0": [(T, 1)], "h_b1": [(T, 2)], "h_b2": [(T, 3)], "eh_count": [(T, 9)],
            "eh_sum": [(T, 20.5)], "sm_count": [(T, 4)], "sm_q0.99": [(T, 4.5)],
        }
        [(labels, _)] = await metric_read_back.series("g.double_value", TENANT)
        assert (labels["service.name"], labels["pid"], labels["kind"]) == ("checkout", "42", "gauge")
        return
    for name in sorted({p.name for p in points}):
        expected = [p for p in points if p.name == name]
        got = await metric_store.points(PointQuery(TENANT, name))
        assert got == expected, name
        if name == "g.int":
            assert [type(p.value) for p in got] == [int, int]


async def test_points_filters_limit_and_order(metric_store: MetricStore) -> None:
    require(metric_store, capabilities.POINTS)
    await write(metric_store, [
        gauge("m", 30, 3, host="a"), gauge("m", 10, 1, host="a"), gauge("m", 20, 2, host="b"),
        gauge("m", 40, 4, host="b"),
    ])
    got = await metric_store.points(PointQuery(TENANT, "m"))
    assert [p.value for p in got] == [1, 2, 3, 4]  # oldest first
    got = await metric_store.points(PointQuery(TENANT, "m", limit=2))
    assert [p.value for p in got] == [1, 2]
    got = await metric_store.points(PointQuery(TENANT, "m", start_unix_nano=T + 20 * S,
                                               end_unix_nano=T + 40 * S))
    assert [p.value for p in got] == [2, 3]  # [start, end)
    matcher = LabelMatcher("host", MatchOp.EQ, "b")
    got = await metric_store.points(PointQuery(TENANT, "m", (matcher,)))
    assert [p.value for p in got] == [2, 4]
    assert await metric_store.points(PointQuery(TENANT, "nope")) == []


# ------------------------------------------------------------------ catalog


async def test_metric_and_label_names(metric_store: MetricStore) -> None:
    require(metric_store, capabilities.CATALOG)
    first = counter("requests", 0, 1, method="GET")
    later = counter("requests", 10, 2, method="POST", code="200")
    later.description, later.unit = "handled requests", "1"
    await write(metric_store, [gauge("cpu", 0, 0.5), first], "b1")
    await write(metric_store, [later], "b2")
    names = await metric_store.metric_names(TENANT)
    assert [m.name for m in names] == ["cpu", "requests"]
    requests = names[1]
    assert (requests.kind, requests.temporality, requests.is_monotonic) == (
        MetricKind.SUM, CUMULATIVE, True)
    assert (requests.description, requests.unit) == ("handled requests", "1")  # the latest
    assert await metric_store.label_names(TENANT, "requests") == [
        "code", "host.name", "method", "service.name"]  # resource labels included
    assert await metric_store.label_values(TENANT, "requests", "method") == ["GET", "POST"]
    assert await metric_store.label_values(TENANT, "requests", "code") == ["200"]
    assert await metric_store.label_values(TENANT, "requests", "nope") == []
    assert await metric_store.label_values(TENANT, "nope", "method") == []
    assert await metric_store.label_names(TENANT, "nope") == []


# ------------------------------------------------------------------ matchers and aggregation


@pytest.mark.parametrize(
    ("matcher", "hosts"),
    [
        (LabelMatcher("host", MatchOp.EQ, "web-1"), ["web-1"]),
        (LabelMatcher("host", MatchOp.NE, "web-1"), ["db-1", "web-2"]),
        (LabelMatcher("host", MatchOp.RE, "web-.*"), ["web-1", "web-2"]),
        (LabelMatcher("host", MatchOp.RE, "web"), []),  # anchored
        (LabelMatcher("host", MatchOp.NRE, "web-.*"), ["db-1"]),
        (LabelMatcher("zone", MatchOp.EQ, ""), ["db-1"]),  # a missing label is ""
        (LabelMatcher("zone", MatchOp.RE, "eu|us"), ["web-1", "web-2"]),
    ],
)
async def test_matchers(metric_store: MetricStore, matcher: LabelMatcher, hosts: list[str]) -> None:
    require(metric_store, capabilities.QUERY_RANGE)
    await write(metric_store, [
        gauge("up", 0, 1, host="web-1", zone="eu"),
        gauge("up", 0, 2, host="web-2", zone="us"),
        gauge("up", 0, 3, host="db-1"),
    ])
    result = await metric_store.query_range(
        query("up", 0, 60, 60, matchers=(matcher,), group_by=("host",)))
    assert sorted(s.labels["host"] for s in result) == hosts


def aggregation_data() -> list[MetricPoint]:
    # step [0, 60): a averages (1+2+3+4+5+6)/6 = 3.5, b 10, c (100+200)/2 = 150
    # step [60, 120): a 7, b 10, c has no points
    points = [gauge("load", 10 * i, i + 1, host="a", dc="x") for i in range(6)]
    points += [gauge("load", 60, 7, host="a", dc="x")]
    points += [gauge("load", 10 * i, 10, host="b", dc="x") for i in range(12)]
    points += [gauge("load", 0, 100, host="c", dc="y"), gauge("load", 30, 200, host="c", dc="y")]
    return points


@pytest.mark.parametrize(
    ("aggregation", "x", "y"),
    [
        (Aggregation.SUM, [13.5, 17], [150]),
        (Aggregation.AVG, [6.75, 8.5], [150]),
        (Aggregation.MIN, [3.5, 7], [150]),
        (Aggregation.MAX, [10, 10], [150]),
        (Aggregation.COUNT, [2, 2], [1]),
    ],
)
async def test_aggregation_by_label(
    metric_store: MetricStore, aged: bool, aggregation: Aggregation, x: list[float],
    y: list[float],
) -> None:
    require(metric_store, capabilities.QUERY_RANGE)
    await write(metric_store, aggregation_data())
    if aged:
        await age(metric_store)
    result = await metric_store.query_range(
        query("load", 0, 120, 60, aggregation=aggregation, group_by=("dc",)))
    assert as_dict(result) == {
        (("dc", "x"),): list(zip([0.0, 60.0], x)),
        (("dc", "y"),): [(0.0, y[0])],  # the step without data is left out
    }
    assert [s.labels for s in result] == [{"dc": "x"}, {"dc": "y"}]


@pytest.mark.parametrize(
    ("aggregation", "expected"),
    [(Aggregation.SUM, 163.5), (Aggregation.AVG, 54.5), (Aggregation.MIN, 3.5),
     (Aggregation.MAX, 150), (Aggregation.COUNT, 3)],
)
async def test_aggregation_without_group_by(
    metric_store: MetricStore, aged: bool, aggregation: Aggregation, expected: float
) -> None:
    require(metric_store, capabilities.QUERY_RANGE)
    await write(metric_store, aggregation_data())
    if aged:
        await age(metric_store)
    result = await metric_store.query_range(query("load", 0, 60, 60, aggregation=aggregation))
    assert as_dict(result) == {(): [(0.0, expected)]}


async def test_group_by_missing_label_and_odd_start(metric_store: MetricStore) -> None:
    require(metric_store, capabilities.QUERY_RANGE)
    await write(metric_store, [gauge("m", 5, 1, host="a"), gauge("m", 5, 3),
                               gauge("m", 25, 5, host="a")])
    # steps are cut from the start, whatever it is: [1, 21), [21, 41)
    result = await metric_store.query_range(
        query("m", 1, 41, 20, aggregation=Aggregation.SUM, group_by=("host",)))
    assert as_dict(result) == {(): [(1.0, 3)], (("host", "a"),): [(1.0, 1), (21.0, 5)]}


async def test_unknown_metric_is_empty(metric_store: MetricStore) -> None:
    require(metric_store, capabilities.QUERY_RANGE)
    assert await metric_store.query_range(query("nope", 0, 60, 60)) == []


# ------------------------------------------------------------------ rate and quantile


def reset_counter(pod: str = "1") -> list[MetricPoint]:
    # every 10 s; drops to 10 at 40 s (a reset)
    values = [100, 110, 130, 160, 10, 30, 60, 100, 150, 210, 280, 360]
    return [counter("requests", 10 * i, v, pod=pod) for i, v in enumerate(values)]


async def test_rate_cumulative_with_reset(metric_store: MetricStore, aged: bool) -> None:
    require(metric_store, capabilities.QUERY_RANGE)
    await write(metric_store, reset_counter())
    if aged:
        await age(metric_store)
    # [0, 60): increases 10+20+30, then 10 (the reset counts as the new value), 20 = 90
    # [60, 120): 30+40+50+60+70+80 = 330; the first point has no predecessor
    result = await metric_store.query_range(query("requests", 0, 120, 60, rate=True))
    assert as_dict(result) == {(): [(0.0, 90 / 60), (60.0, 330 / 60)]}


async def test_rate_at_fine_steps_and_summed(metric_store: MetricStore) -> None:
    require(metric_store, capabilities.QUERY_RANGE)
    await write(metric_store, reset_counter(pod="1") + reset_counter(pod="2"))
    result = await metric_store.query_range(
        query("requests", 0, 60, 15, rate=True, aggregation=Aggregation.SUM))
    # [0,15): 10 ; [15,30): 20 ; [30,45): 30 + 10 ; [45,60): 20 -- per pod, two pods
    expected = [(0.0, 2 * 10 / 15), (15.0, 2 * 20 / 15), (30.0, 2 * 40 / 15),
                (45.0, 2 * 20 / 15)]
    assert as_dict(result) == {(): expected}


async def test_rate_counts_increase_from_before_the_range(metric_store: MetricStore) -> None:
    require(metric_store, capabilities.QUERY_RANGE)
    await write(metric_store, reset_counter())
    # a range starting at 60 s measures the 60 s point from the 50 s point: 330 in [60,120)
    result = await metric_store.query_range(query("requests", 60, 120, 60, rate=True))
    assert as_dict(result) == {(): [(60.0, 330 / 60)]}


async def test_rate_reset_by_start_time(metric_store: MetricStore) -> None:
    require(metric_store, capabilities.QUERY_RANGE)
    # the start time moves to 25 s: the counter restarted, 50 at 30 s counts whole
    points = [counter("c", 0, 10), counter("c", 10, 20), counter("c", 20, 40),
              counter("c", 30, 50, start=T + 25 * S), counter("c", 40, 55, start=T + 25 * S)]
    await write(metric_store, points)
    result = await metric_store.query_range(query("c", 0, 60, 60, rate=True))
    assert as_dict(result) == {(): [(0.0, (10 + 20 + 50 + 5) / 60)]}


async def test_rate_delta_counter(metric_store: MetricStore, aged: bool) -> None:
    require(metric_store, capabilities.QUERY_RANGE)
    await write(metric_store, [counter("d", 10 * i, i + 1, DELTA) for i in range(12)])
    if aged:
        await age(metric_store)
    # [0, 60): 1+..+6 = 21 ; [60, 120): 7+..+12 = 57
    result = await metric_store.query_range(query("d", 0, 120, 60, rate=True))
    assert as_dict(result) == {(): [(0.0, 21 / 60), (60.0, 57 / 60)]}


async def test_quantile_delta_histogram(metric_store: MetricStore) -> None:
    require(metric_store, capabilities.QUERY_RANGE)
    await write(metric_store, [
        histogram("lat", 10, [0, 2, 4, 0], DELTA, route="/a"),
        histogram("lat", 40, [2, 2, 0, 0], DELTA, route="/a"),
        histogram("lat", 70, [0, 0, 0, 5], DELTA, route="/a"),
        histogram("lat", 10, [4, 0, 0, 0], DELTA, route="/b"),
    ])
    # /a [0,60): buckets summed [2,4,4,0], cumulative [2,6,10,10], bounds 1,2,4,+Inf
    #   q=.5: rank 5 in (1,2]: 1 + 1*(5-2)/4 = 1.75 ; q=.9: rank 9 in (2,4]: 2 + 2*3/4 = 3.5
    # /a [60,120): everything in +Inf: the highest finite bound, 4
    # /b [0,60): [4,0,0,0]: q=.5 rank 2 in (0,1]: 0 + 1*2/4 = 0.5
    by_route = ("route",)
    result = await metric_store.query_range(query("lat", 0, 120, 60, quantile=0.5,
                                                  group_by=by_route))
    assert as_dict(result) == {(("route", "/a"),): [(0.0, 1.75), (60.0, 4.0)],
                               (("route", "/b"),): [(0.0, 0.5)]}
    result = await metric_store.query_range(query("lat", 0, 60, 60, quantile=0.9,
                                                  aggregation=Aggregation.MAX))
    # per series then max: /a 3.5, /b 0 + 1*3.6/4 = 0.9
    assert as_dict(result) == {(): [(0.0, 3.5)]}


async def test_quantile_cumulative_histogram(metric_store: MetricStore) -> None:
    require(metric_store, capabilities.QUERY_RANGE)
    counts = {-10: [1, 0, 0, 0], 0: [1, 0, 1, 0], 50: [1, 2, 3, 0], 110: [3, 6, 3, 0]}
    await write(metric_store, [histogram("lat", at, c, CUMULATIVE) for at, c in counts.items()])
    # the increase in a step is measured from the previous step's last point:
    # [0,60): [1,2,3,0] - [1,0,0,0] = [0,2,3,0]; q=.5: rank 2.5 in (2,4]: 2 + 2*0.5/3
    # [60,120): [3,6,3,0] - [1,2,3,0] = [2,4,0,0]; q=.5: rank 3 in (1,2]: 1 + 1*1/4
    result = await metric_store.query_range(query("lat", 0, 120, 60, quantile=0.5))
    assert as_dict(result) == {(): [(0.0, 2 + 2 * 0.5 / 3), (60.0, 1.25)]}


# ------------------------------------------------------------------ batches and tenants


async def test_batch_ids_are_idempotent(metric_store: MetricStore, metric_read_back: Any) -> None:
    await write(metric_store, [gauge("m", 0, 1)], "batch-1")
    await write(metric_store, [gauge("m", 0, 1)], "batch-1")  # a retry: ignored
    await write(metric_store, [gauge("m", 10, 2)], "batch-2")
    await write(metric_store, [gauge("m", 20, 3)], "batch-1", tenant="other")  # per tenant
    if metric_read_back is not None:  # a write-only backend: the samples it kept
        assert await metric_read_back.samples("m_value", TENANT) == [(T, 1), (T + 10 * S, 2)]
        assert await metric_read_back.samples("m_value", "other") == [(T + 20 * S, 3)]
        return
    assert [p.value for p in await metric_store.points(PointQuery(TENANT, "m"))] == [1, 2]
    result = await metric_store.query_range(query("m", 0, 60, 60, aggregation=Aggregation.COUNT))
    assert as_dict(result) == {(): [(0.0, 1)]}


async def test_tenant_isolation(metric_store: MetricStore, metric_read_back: Any) -> None:
    await write(metric_store, [gauge("shared", 0, 1, who="acme")])
    await write(metric_store, [gauge("shared", 0, 5, who="other"), gauge("own", 0, 2)],
                tenant="other")
    if metric_read_back is not None:  # a write-only backend: the samples it kept
        [(labels, samples)] = await metric_read_back.series("shared_value", TENANT)
        assert (labels["who"], samples) == ("acme", [(T, 1)])
        [(labels, samples)] = await metric_read_back.series("shared_value", "other")
        assert (labels["who"], samples) == ("other", [(T, 5)])
        assert await metric_read_back.samples("own_value", TENANT) == []
        assert await metric_read_back.samples("own_value", "other") == [(T, 2)]
        return
    assert [m.name for m in await metric_store.metric_names(TENANT)] == ["shared"]
    assert await metric_store.label_values(TENANT, "shared", "who") == ["acme"]
    result = await metric_store.query_range(query("shared", 0, 60, 60, aggregation=Aggregation.SUM))
    assert as_dict(result) == {(): [(0.0, 1)]}
    assert [p.value for p in await metric_store.points(PointQuery(TENANT, "shared"))] == [1]
    assert await metric_store.query_range(query("own", 0, 60, 60)) == []


async def test_late_points_are_counted(metric_store: MetricStore, metric_read_back: Any) -> None:
    await write(metric_store, [gauge("m", 0, 1), gauge("m", 30, 3)], "b1")
    await age(metric_store)
    await write(metric_store, [gauge("m", 20, 8)], "late")
    if metric_read_back is not None:  # a write-only backend: the samples it kept
        assert await metric_read_back.samples("m_value", TENANT) == [
            (T, 1), (T + 20 * S, 8), (T + 30 * S, 3)]
        return
    result = await metric_store.query_range(query("m", 0, 60, 60, aggregation=Aggregation.AVG))
    assert as_dict(result) == {(): [(0.0, 4.0)]}  # (1 + 8 + 3) / 3


# ------------------------------------------------------------------ refusals


async def test_query_errors(metric_store: MetricStore) -> None:
    require(metric_store, capabilities.QUERY_RANGE)
    await write(metric_store, [gauge("g", 0, 1), counter("c", 0, 1)])
    refused = [
        query("g", 0, 60, 60, quantile=0.5),  # no buckets
        query("c", 0, 60, 60, quantile=0.5),
        query("g", 0, 60, 60, rate=True),  # a gauge has no rate
        query("g", 0, 60, 60, matchers=(LabelMatcher("x", MatchOp.RE, "("),)),
        query("g", 0, 11_001, 1),  # more than 11,000 steps
        query("g", 0, 60, 0),
    ]
    for bad in refused:
        with pytest.raises(QueryError):
            await metric_store.query_range(bad)
    await metric_store.query_range(query("g", 0, 11_000, 1))  # exactly the limit is fine


async def test_too_many_series(metric_store: MetricStore) -> None:
    require(metric_store, capabilities.QUERY_RANGE)
    await write(metric_store, [gauge("wide", 0, i, id=str(i)) for i in range(10_001)])
    with pytest.raises(QueryError):
        await metric_store.query_range(query("wide", 0, 60, 60))
    narrowed = (LabelMatcher("id", MatchOp.RE, "1.*"),)  # 1 + 10 + 100 + 1000 + 1 = 1112
    result = await metric_store.query_range(
        query("wide", 0, 60, 60, matchers=narrowed, aggregation=Aggregation.COUNT))
    assert as_dict(result) == {(): [(0.0, 1112)]}


async def test_nan_gauge_value_round_trips(metric_store: MetricStore) -> None:
    require(metric_store, capabilities.NONFINITE_VALUES, capabilities.POINTS)
    await write(metric_store, [gauge("n", 0, math.nan), gauge("n", 1, math.inf)])
    got = await metric_store.points(PointQuery(TENANT, "n"))
    assert isinstance(got[0].value, float) and math.isnan(got[0].value)
    assert got[1].value == math.inf


# ------------------------------------------------------------------ retention


async def test_a_store_without_retention_refuses_it(metric_store: MetricStore) -> None:
    if capabilities.reason(metric_store, capabilities.RETENTION) is None:
        pytest.skip("this backend has retention")
    with pytest.raises(Unsupported):
        await metric_store.tenants()
    with pytest.raises(Unsupported):
        await metric_store.delete_before(TENANT, T)


async def test_tenants_lists_tenants_with_points(metric_store: MetricStore) -> None:
    require(metric_store, capabilities.RETENTION)
    assert await metric_store.tenants() == []
    await write(metric_store, [gauge("m", 0, 1)], tenant="zeta")
    await write(metric_store, [gauge("m", 0, 1), counter("c", 0, 1)])
    await write(metric_store, [gauge("m", 0, 1)], tenant="ünï\\x")
    assert await metric_store.tenants() == ["acme", "zeta", "ünï\\x"]


def retention_data() -> list[MetricPoint]:
    return [
        gauge("g", -300, 1.0, host="h1"), gauge("g", 0, 2.0, host="h1"),
        gauge("g", 120, 4.0, host="h1"), gauge("g", 330, 8.0, host="h1"),
        gauge("g", 400, 16.0, host="h1"), gauge("g", 630, 32.0, host="h1"),
        gauge("g", 60, 100.0, host="h_old"),  # a series wholly before the cutoff
        gauge("old.metric", 100, 5.0),  # a metric wholly before the cutoff
        counter("c", 240, 10), counter("c", 300, 20), counter("c", 360, 30),
        counter("c", 420, 40),
        histogram("h", 200, [1, 0, 0, 0], DELTA), histogram("h", 400, [0, 2, 0, 0], DELTA),
    ]  # fmt: skip


async def test_delete_before_removes_one_tenants_older_points(
    metric_store: MetricStore, aged: bool
) -> None:
    require(metric_store, capabilities.RETENTION, capabilities.QUERY_RANGE,
            capabilities.POINTS, capabilities.CATALOG)
    await write(metric_store, retention_data())
    await write(metric_store, [gauge("g", 0, 7.0, host="h1"), gauge("g", 400, 9.0, host="h1")],
                tenant="other")
    if aged:  # the embedded store has rolled the data up: rollups must follow
        await age(metric_store)
    g_fine = query("g", -600, 1200, 60, group_by=("host",))
    before = as_dict(await metric_store.query_range(g_fine))
    assert before[(("host", "h_old"),)] == [(60.0, 100.0)]
    cutoff = T + 330 * S  # mid-chunk

    removed = await metric_store.delete_before(TENANT, cutoff)

    assert removed in (3 + 1 + 1 + 2 + 1, -1)  # g h1, g h_old, old.metric, c, h
    assert [(p.time_unix_nano - T) // S for p in await metric_store.points(
        PointQuery(TENANT, "g"))] == [330, 400, 630]
    assert await metric_store.points(PointQuery(TENANT, "old.metric")) == []
    assert [(p.time_unix_nano - T) // S for p in await metric_store.points(
        PointQuery(TENANT, "h"))] == [400]
    names = [m.name for m in await metric_store.metric_names(TENANT)]
    assert names == ["c", "g", "h"] + (["zz_clock"] if aged else [])
    assert await metric_store.label_values(TENANT, "g", "host") == ["h1"]
    assert as_dict(await metric_store.query_range(g_fine)) == {
        (("host", "h1"),): [(300.0, 8.0), (360.0, 16.0), (600.0, 32.0)]}
    assert as_dict(await metric_store.query_range(query("g", -600, 1200, 600))) == {
        (): [(0.0, 12.0), (600.0, 32.0)]}
    assert await metric_store.query_range(query("g", -600, 300, 60)) == []
    assert await metric_store.query_range(query("old.metric", -600, 1200, 60)) == []
    # The first counter point kept has no predecessor left to measure an increase from.
    assert as_dict(await metric_store.query_range(query("c", 0, 600, 60, rate=True))) == {
        (): [(420.0, 10 / 60)]}
    assert as_dict(await metric_store.query_range(query("h", 0, 600, 600, quantile=0.5))) == {
        (): [(0.0, 1.5)]}  # [0,2,0,0]: rank 1 in (1,2]: 1 + 1 * 1/2
    # The other tenant keeps everything.
    assert [p.value for p in await metric_store.points(PointQuery("other", "g"))] == [7.0, 9.0]
    assert as_dict(await metric_store.query_range(SeriesQuery(
        "other", "g", T - 600 * S, T + 1200 * S, 600 * S))) == {(): [(0.0, 8.0)]}

    assert await metric_store.delete_before(TENANT, cutoff) in (0, -1)  # idempotent
    assert [p.value for p in await metric_store.points(PointQuery(TENANT, "g"))] == [
        8.0, 16.0, 32.0]
    assert sorted(await metric_store.tenants()) == ["acme", "other"]


async def test_delete_before_everything_then_write_again(metric_store: MetricStore) -> None:
    require(metric_store, capabilities.RETENTION, capabilities.QUERY_RANGE,
            capabilities.POINTS, capabilities.CATALOG)
    await write(metric_store, retention_data(), tenant="gone")
    await write(metric_store, [gauge("g", 0, 1.0)])

    assert await metric_store.delete_before("gone", T + 3600 * S) in (14, -1)

    assert await metric_store.tenants() == [TENANT]
    assert await metric_store.metric_names("gone") == []
    assert await metric_store.label_names("gone", "g") == []
    assert await metric_store.points(PointQuery("gone", "g")) == []
    assert await metric_store.query_range(SeriesQuery(
        "gone", "g", T - 600 * S, T + 1200 * S, 60 * S)) == []

    await write(metric_store, [gauge("g", 700, 3.0, host="h2")], "again", tenant="gone")
    assert [m.name for m in await metric_store.metric_names("gone")] == ["g"]
    assert await metric_store.label_values("gone", "g", "host") == ["h2"]
    assert [p.value for p in await metric_store.points(PointQuery("gone", "g"))] == [3.0]
    assert [p.value for p in await metric_store.points(PointQuery(TENANT, "g"))] == [1.0]
