"""TraceStore contract: every trace backend must pass these (see conftest.py)."""

from __future__ import annotations

import dataclasses
import itertools
import math
import sys
from typing import Any

import pytest
from argus.storage.errors import StoreError
from argus.storage.model import (
    AnyValue,
    Attributes,
    Resource,
    Scope,
    Span,
    SpanEvent,
    SpanKind,
    SpanLink,
    StatusCode,
)
from argus.storage.traces import ServiceOperations, TraceQuery, TraceStore

T0 = 1_700_000_000_000_000_000
MS = 1_000_000
SECOND = 1_000 * MS
TENANT = "acme"

# Every AnyValue kind, including the ones JSON-based backends tend to get wrong.
EVERY_KIND: Attributes = {
    "str": "plain",
    "str.empty": "",
    "str.unicode": 'naïve café ✓ 日本語 🎉 \u0000 \n "quoted" \\ back',
    "bool.true": True,
    "bool.false": False,
    "int.zero": 0,
    "int.negative": -42,
    "int.max": 2**63 - 1,
    "int.min": -(2**63),
    "float.tenth": 0.1,
    "float.whole": 3.0,
    "float.big": 1.7976931348623157e308,
    "float.tiny": 5e-324,
    "float.negative": -2.5,
    "bytes": b"\x00\x01\xfe\xff",
    "bytes.empty": b"",
    "array.empty": [],
    "array.mixed": ["a", 1, 2.5, True, None, b"\x07", [1, [2, [3]]], {"k": "v"}],
    "kvlist.empty": {},
    "kvlist.nested": {"a": {"b": {"c": [1, {"d": b"\x10"}]}}, "n": None, "t": True},
    "empty": None,
    "ключ.юникод": "значение",
}

_batch_ids = itertools.count()


def assert_same(actual: Any, expected: Any, path: str = "span") -> None:
    """Deep equality that also compares types (True != 1, 1.0 != 1, b"" != "")."""
    assert type(actual) is type(expected), f"{path}: {actual!r} is not {expected!r}"
    if dataclasses.is_dataclass(expected):
        for f in dataclasses.fields(expected):
            assert_same(getattr(actual, f.name), getattr(expected, f.name), f"{path}.{f.name}")
    elif isinstance(expected, dict):
        assert set(actual) == set(expected), f"{path}: keys {set(actual) ^ set(expected)}"
        for key in expected:
            assert_same(actual[key], expected[key], f"{path}[{key!r}]")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), f"{path}: {actual!r} != {expected!r}"
        for index, (a, e) in enumerate(zip(actual, expected)):
            assert_same(a, e, f"{path}[{index}]")
    elif isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(actual), f"{path}: {actual!r} is not nan"
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def trace_id(n: int) -> str:
    return f"{n:032x}"


def span_id(n: int) -> str:
    return f"{n:016x}"


def resource(service: str, **attributes: AnyValue) -> Resource:
    return Resource({"service.name": service, **attributes})


def make_span(
    trace: int,
    span: int,
    *,
    start: float = 0.0,
    duration: float = 0.1,
    name: str = "op",
    service: str = "svc",
    parent: int | None = None,
    status: StatusCode = StatusCode.UNSET,
    attributes: Attributes | None = None,
    res: Resource | None = None,
) -> Span:
    """A span starting `start` seconds after T0 and lasting `duration` seconds."""
    begin = T0 + int(start * SECOND)
    return Span(
        trace_id=trace_id(trace),
        span_id=span_id(span),
        name=name,
        start_time_unix_nano=begin,
        end_time_unix_nano=begin + int(duration * SECOND),
        resource=res or resource(service),
        scope=Scope("tests"),
        parent_span_id="" if parent is None else span_id(parent),
        status_code=status,
        attributes=attributes or {},
    )


async def write(store: TraceStore, spans: list[Span], tenant: str = TENANT) -> None:
    await store.write_spans(tenant, spans, f"batch-{next(_batch_ids)}")


async def found(store: TraceStore, **filters: Any) -> list[str]:
    """Trace ids found for TENANT with these TraceQuery filters, in returned order."""
    return [s.trace_id for s in await store.find_traces(TraceQuery(tenant=TENANT, **filters))]


# ---------------------------------------------------------------------------- round trip


def full_span() -> Span:
    return Span(
        trace_id="0af7651916cd43dd8448eb211c80319c",
        span_id="b7ad6b7169203331",
        name="GET /api/ünïcode",
        start_time_unix_nano=T0 + 123_456_789,
        end_time_unix_nano=T0 + 987_654_321,
        resource=Resource(
            {"service.name": "checkout", **EVERY_KIND},
            dropped_attributes_count=3,
            schema_url="https://opentelemetry.io/schemas/1.21.0",
        ),
        scope=Scope(
            "io.opentelemetry.http", "1.2.3", dict(EVERY_KIND), 4, "https://scope.example"
        ),
        parent_span_id="00f067aa0ba902b7",
        trace_state="rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
        flags=0x301,
        kind=SpanKind.SERVER,
        attributes=dict(EVERY_KIND),
        dropped_attributes_count=5,
        events=[
            SpanEvent(T0 + 200_000_000, "exception", dict(EVERY_KIND), 1),
            SpanEvent(T0 + 300_000_000, "empty"),
        ],
        dropped_events_count=6,
        links=[
            SpanLink("5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174", "k=v",
                     dict(EVERY_KIND), 2, 1),
            SpanLink("5b8efff798038103d269b633813fc60d", "eee19b7ec3c1b175"),
        ],
        dropped_links_count=7,
        status_code=StatusCode.ERROR,
        status_message="boom: ✗",
    )  # fmt: skip


async def test_every_span_field_round_trips(trace_store: TraceStore) -> None:
    span = full_span()
    await write(trace_store, [span])

    assert_same(await trace_store.get_trace(TENANT, span.trace_id), [span])


async def test_minimal_span_round_trips(trace_store: TraceStore) -> None:
    span = Span(trace_id(1), span_id(1), "", T0, T0, Resource(), Scope())
    await write(trace_store, [span])

    assert_same(await trace_store.get_trace(TENANT, trace_id(1)), [span])


async def test_every_kind_enum_value_round_trips(trace_store: TraceStore) -> None:
    spans = [
        dataclasses.replace(make_span(1, n, start=n), kind=kind, status_code=status)
        for n, (kind, status) in enumerate(itertools.product(SpanKind, StatusCode))
    ]
    await write(trace_store, spans)

    assert_same(await trace_store.get_trace(TENANT, trace_id(1)), spans)


async def test_spans_sharing_resource_objects_round_trip(trace_store: TraceStore) -> None:
    shared = resource("api", host="h1")
    spans = [make_span(1, n, start=n, res=shared) for n in range(3)]
    spans.append(make_span(1, 9, start=9, res=resource("api", host="h2")))
    await write(trace_store, spans)

    got = await trace_store.get_trace(TENANT, trace_id(1))
    assert [s.resource.attributes["host"] for s in got] == ["h1", "h1", "h1", "h2"]


@pytest.mark.parametrize(
    "value", [math.nan, math.inf, {"$bytes": "AQI="}, {"$bytes": "not base64!"}], ids=repr
)
async def test_codec_edge_values_round_trip(trace_store: TraceStore, value: AnyValue) -> None:
    await write(trace_store, [make_span(1, 1, attributes={"v": value})])

    [span] = await trace_store.get_trace(TENANT, trace_id(1))
    assert_same(span.attributes, {"v": value})


# ---------------------------------------------------------------------------- get_trace


async def test_get_trace_orders_spans_by_start_across_batches(trace_store: TraceStore) -> None:
    await write(trace_store, [make_span(1, 3, start=3.0), make_span(1, 1, start=1.0)])
    await write(trace_store, [make_span(1, 2, start=2.0), make_span(2, 9, start=0.5)])

    got = await trace_store.get_trace(TENANT, trace_id(1))
    assert [s.span_id for s in got] == [span_id(1), span_id(2), span_id(3)]


async def test_get_trace_of_unknown_id_is_empty(trace_store: TraceStore) -> None:
    await write(trace_store, [make_span(1, 1)])

    assert await trace_store.get_trace(TENANT, trace_id(2)) == []
    assert await trace_store.get_trace(TENANT, "") == []


# ---------------------------------------------------------------------------- idempotency


async def test_a_batch_id_is_applied_once(trace_store: TraceStore) -> None:
    await trace_store.write_spans(TENANT, [make_span(1, 1)], "b-1")
    await trace_store.write_spans(TENANT, [make_span(1, 1)], "b-1")
    await trace_store.write_spans(TENANT, [make_span(1, 2, start=1)], "b-1")  # same id wins

    assert [s.span_id for s in await trace_store.get_trace(TENANT, trace_id(1))] == [span_id(1)]
    summary = (await trace_store.find_traces(TraceQuery(TENANT)))[0]
    assert summary.span_count == 1


async def test_distinct_batch_ids_are_all_applied(trace_store: TraceStore) -> None:
    await trace_store.write_spans(TENANT, [make_span(1, 1)], "b-1")
    await trace_store.write_spans(TENANT, [make_span(1, 2, start=1)], "b-2")

    assert len(await trace_store.get_trace(TENANT, trace_id(1))) == 2


async def test_batch_ids_are_per_tenant(trace_store: TraceStore) -> None:
    await trace_store.write_spans("a", [make_span(1, 1)], "same-id")
    await trace_store.write_spans("b", [make_span(1, 1)], "same-id")

    assert len(await trace_store.get_trace("b", trace_id(1))) == 1


# ---------------------------------------------------------------------------- tenants


async def test_tenants_never_see_each_other(trace_store: TraceStore) -> None:
    await write(trace_store, [make_span(1, 1, service="a-svc", name="a-op")], tenant="a")
    await write(trace_store, [make_span(1, 2, service="b-svc", name="b-op")], tenant="b")
    await write(trace_store, [make_span(2, 3, service="b-svc")], tenant="b")

    assert [s.span_id for s in await trace_store.get_trace("a", trace_id(1))] == [span_id(1)]
    assert [s.trace_id for s in await trace_store.find_traces(TraceQuery("a"))] == [trace_id(1)]
    summary = (await trace_store.find_traces(TraceQuery("a")))[0]
    assert (summary.span_count, summary.services) == (1, ["a-svc"])
    assert await trace_store.services("a") == [ServiceOperations("a-svc", ["a-op"])]
    assert await trace_store.get_trace("c", trace_id(1)) == []
    assert await trace_store.find_traces(TraceQuery("c")) == []
    assert await trace_store.services("c") == []


# ---------------------------------------------------------------------------- find_traces


async def test_find_orders_by_trace_start_newest_first(trace_store: TraceStore) -> None:
    # Trace 1 started first but has the latest span: trace start decides, not span start.
    await write(trace_store, [make_span(1, 1, start=0), make_span(1, 2, start=50, parent=1)])
    await write(trace_store, [make_span(2, 3, start=10), make_span(3, 4, start=20)])
    await write(trace_store, [make_span(4, 5, start=30)])

    assert await found(trace_store) == [trace_id(4), trace_id(3), trace_id(2), trace_id(1)]
    assert await found(trace_store, limit=2) == [trace_id(4), trace_id(3)]


async def test_find_respects_limit_with_many_traces(trace_store: TraceStore) -> None:
    spans = [make_span(t, s, start=t + s / 10) for t in range(1, 31) for s in range(3)]
    await write(trace_store, spans)

    assert await found(trace_store, limit=7) == [trace_id(t) for t in range(30, 23, -1)]
    assert len(await found(trace_store, limit=100)) == 30


async def test_summary_describes_the_whole_trace(trace_store: TraceStore) -> None:
    await write(trace_store, [
        make_span(1, 2, start=1.0, duration=0.5, service="db", name="query", parent=1),
        make_span(1, 1, start=0.5, duration=1.0, service="api", name="GET /", status=StatusCode.OK),
        make_span(1, 3, start=1.2, duration=2.0, service="cache", name="get", parent=1,
                  status=StatusCode.ERROR),
        make_span(1, 4, start=1.3, service="db", name="query", parent=2, status=StatusCode.ERROR),
    ])  # fmt: skip

    [summary] = await trace_store.find_traces(TraceQuery(TENANT, service="cache"))
    assert summary.trace_id == trace_id(1)
    assert (summary.root_service, summary.root_name) == ("api", "GET /")
    assert summary.start_unix_nano == T0 + SECOND // 2
    assert summary.duration_nano == int(2.7 * SECOND)  # earliest start to latest end
    assert (summary.span_count, summary.error_count, summary.has_error) == (4, 2, True)
    assert sorted(summary.services) == ["api", "cache", "db"]


async def test_summary_root_is_the_parentless_span_despite_clock_skew(
    trace_store: TraceStore,
) -> None:
    await write(trace_store, [
        make_span(1, 2, start=0.25, duration=0.5, service="skewed", name="child", parent=1),
        make_span(1, 1, start=0.5, duration=1.0, service="api", name="root"),
    ])  # fmt: skip

    [summary] = await trace_store.find_traces(TraceQuery(TENANT))
    assert (summary.root_service, summary.root_name) == ("api", "root")
    assert summary.start_unix_nano == T0 + SECOND // 4
    assert summary.duration_nano == 5 * SECOND // 4


async def test_summary_root_is_earliest_span_when_root_missing(trace_store: TraceStore) -> None:
    await write(trace_store, [
        make_span(1, 3, start=2.0, service="late", name="late-op", parent=1),
        make_span(1, 2, start=1.0, service="early", name="early-op", parent=1),
    ])  # fmt: skip

    [summary] = await trace_store.find_traces(TraceQuery(TENANT))
    assert (summary.root_service, summary.root_name) == ("early", "early-op")
    assert (summary.error_count, summary.has_error) == (0, False)


async def test_find_by_service_and_operation(trace_store: TraceStore) -> None:
    await write(trace_store, [
        make_span(1, 1, start=1, service="api", name="GET /a"),
        make_span(2, 2, start=2, service="api", name="GET /b"),
        make_span(3, 3, start=3, service="db", name="GET /a"),
    ])  # fmt: skip

    assert await found(trace_store, service="api") == [trace_id(2), trace_id(1)]
    assert await found(trace_store, operation="GET /a") == [trace_id(3), trace_id(1)]
    assert await found(trace_store, service="api", operation="GET /a") == [trace_id(1)]
    assert await found(trace_store, service="nope") == []


async def test_every_filter_must_hold_on_one_span(trace_store: TraceStore) -> None:
    await write(trace_store, [
        make_span(1, 1, start=1, service="api", name="x", duration=5),
        make_span(1, 2, start=2, service="db", name="y", parent=1, status=StatusCode.ERROR),
    ])  # fmt: skip

    assert await found(trace_store, service="api", operation="y") == []
    assert await found(trace_store, service="api", errors_only=True) == []
    assert await found(trace_store, operation="y", min_duration_nano=SECOND) == []
    assert await found(trace_store, service="db", errors_only=True) == [trace_id(1)]


async def test_find_by_duration(trace_store: TraceStore) -> None:
    await write(trace_store, [
        make_span(1, 1, start=1, duration=0.010),
        make_span(2, 2, start=2, duration=0.200),
        make_span(3, 3, start=3, duration=3.000),
    ])  # fmt: skip

    assert await found(trace_store, min_duration_nano=100 * MS) == [trace_id(3), trace_id(2)]
    assert await found(trace_store, max_duration_nano=1 * SECOND) == [trace_id(2), trace_id(1)]
    assert await found(trace_store, min_duration_nano=50 * MS, max_duration_nano=SECOND) == [
        trace_id(2)
    ]


async def test_find_errors_only(trace_store: TraceStore) -> None:
    await write(trace_store, [
        make_span(1, 1, start=1, status=StatusCode.ERROR),
        make_span(2, 2, start=2, status=StatusCode.OK),
        make_span(3, 3, start=3),
        make_span(3, 4, start=4, parent=3, status=StatusCode.ERROR),
    ])  # fmt: skip

    assert await found(trace_store, errors_only=True) == [trace_id(3), trace_id(1)]


async def test_find_by_time_range_is_half_open(trace_store: TraceStore) -> None:
    # Trace 2 started before the window, but a span of it started inside: it matches.
    await write(trace_store, [
        make_span(1, 1, start=10),
        make_span(2, 2, start=5), make_span(2, 3, start=12, parent=2),
        make_span(3, 4, start=20),
        make_span(4, 5, start=9.999),
    ])  # fmt: skip
    window = {"start_unix_nano": T0 + 10 * SECOND, "end_unix_nano": T0 + 20 * SECOND}

    assert await found(trace_store, **window) == [trace_id(1), trace_id(2)]
    assert await found(trace_store, start_unix_nano=T0 + 20 * SECOND) == [trace_id(3)]
    assert await found(trace_store, end_unix_nano=T0 + 10 * SECOND) == [trace_id(4), trace_id(2)]


async def test_find_by_span_attributes_compares_string_forms(trace_store: TraceStore) -> None:
    await write(trace_store, [
        make_span(1, 1, start=1, attributes={"http.method": "GET", "http.status_code": 200}),
        make_span(2, 2, start=2, attributes={"http.method": "POST", "http.status_code": 500}),
        make_span(3, 3, start=3, attributes={"retry": True, "ratio": 1.5, "raw": b"\x01\x02"}),
        make_span(4, 4, start=4, attributes={"tags": ["a", 1], "map": {"k": "v"}, "nil": None}),
        make_span(5, 5, start=5, attributes={'we"ird\\key': "x", "": "empty-key"}),
    ])  # fmt: skip

    assert await found(trace_store, attributes={"http.method": "GET"}) == [trace_id(1)]
    assert await found(trace_store, attributes={"http.status_code": "500"}) == [trace_id(2)]
    assert (
        await found(trace_store, attributes={"http.method": "GET", "http.status_code": "500"}) == []
    )
    assert await found(trace_store, attributes={"retry": "true"}) == [trace_id(3)]
    assert await found(trace_store, attributes={"ratio": "1.5"}) == [trace_id(3)]
    assert await found(trace_store, attributes={"raw": "AQI="}) == [trace_id(3)]
    assert await found(trace_store, attributes={"tags": '["a",1]'}) == [trace_id(4)]
    assert await found(trace_store, attributes={"map": '{"k":"v"}'}) == [trace_id(4)]
    assert await found(trace_store, attributes={"nil": ""}) == [trace_id(4)]
    assert await found(trace_store, attributes={'we"ird\\key': "x"}) == [trace_id(5)]
    assert await found(trace_store, attributes={"": "empty-key"}) == [trace_id(5)]
    assert await found(trace_store, attributes={"http.method": "get"}) == []
    assert await found(trace_store, attributes={"absent": ""}) == []


async def test_find_by_attribute_falls_back_to_resource(trace_store: TraceStore) -> None:
    prod = resource("api", env="prod", zone=1)
    await write(trace_store, [
        make_span(1, 1, start=1, res=prod),
        make_span(2, 2, start=2, res=prod, attributes={"env": "dev"}),  # the span's own wins
        make_span(3, 3, start=3, res=resource("api", env="dev")),
    ])  # fmt: skip

    assert await found(trace_store, attributes={"env": "prod"}) == [trace_id(1)]
    assert await found(trace_store, attributes={"env": "dev"}) == [trace_id(3), trace_id(2)]
    assert await found(trace_store, attributes={"zone": "1", "env": "dev"}) == [trace_id(2)]
    assert await found(trace_store, attributes={"service.name": "api"}) == [
        trace_id(3), trace_id(2), trace_id(1)
    ]  # fmt: skip


# ---------------------------------------------------------------------------- services


async def test_services_lists_sorted_services_with_sorted_operations(
    trace_store: TraceStore,
) -> None:
    await write(trace_store, [
        make_span(1, 1, service="web", name="GET /b"),
        make_span(1, 2, service="web", name="GET /a"),
        make_span(1, 3, service="db", name="select"),
        make_span(2, 4, res=Resource({"host": "h"}), name="orphan"),
    ])  # fmt: skip
    await write(trace_store, [make_span(3, 5, service="web", name="GET /a")])

    assert await trace_store.services(TENANT) == [
        ServiceOperations("db", ["select"]),
        ServiceOperations("unknown_service", ["orphan"]),
        ServiceOperations("web", ["GET /a", "GET /b"]),
    ]


@pytest.mark.parametrize("limit", [1, 3])
async def test_find_limit_counts_traces_not_spans(trace_store: TraceStore, limit: int) -> None:
    await write(trace_store, [make_span(1, n, start=n / 100) for n in range(10)])
    await write(trace_store, [make_span(2, 100 + n, start=1 + n / 100) for n in range(10)])

    assert await found(trace_store, limit=limit) == [trace_id(2), trace_id(1)][:limit]


async def test_attribute_filter_edge_cases(trace_store: TraceStore) -> None:
    prod = resource("api", env="prod")
    await write(trace_store, [
        make_span(1, 1, start=1, res=prod, attributes={"outer": {"env": "dev"}}),  # nested only
        make_span(2, 2, start=2, res=prod, attributes={"env": "dev", "note": "prod"}),
        make_span(3, 3, start=3, attributes={"small": 1e-05, "big": 1e20, "q": 'say "hi"'}),
        make_span(4, 4, start=4, attributes={"ключ": "значение", "n": -7, "f": -0.5}),
    ])  # fmt: skip

    assert await found(trace_store, attributes={"env": "prod"}) == [trace_id(1)]
    assert await found(trace_store, attributes={"env": "dev"}) == [trace_id(2)]
    assert await found(trace_store, attributes={"small": "1e-05"}) == [trace_id(3)]
    assert await found(trace_store, attributes={"small": "0.00001"}) == []
    assert await found(trace_store, attributes={"big": "1e+20"}) == [trace_id(3)]
    assert await found(trace_store, attributes={"q": 'say "hi"'}) == [trace_id(3)]
    assert await found(trace_store, attributes={"ключ": "значение"}) == [trace_id(4)]
    assert await found(trace_store, attributes={"n": "-7", "f": "-0.5"}) == [trace_id(4)]


async def test_close_is_idempotent_and_final(trace_store: TraceStore) -> None:
    await write(trace_store, [make_span(1, 1)])
    await trace_store.close()
    await trace_store.close()

    with pytest.raises(StoreError):
        await trace_store.get_trace(TENANT, trace_id(1))
    with pytest.raises(StoreError):
        await write(trace_store, [make_span(2, 2)])


# ---------------------------------------------------------------------------- retention


ODD_TENANT = "ünï\\x"  # a backslash, which PostgreSQL text escapes get wrong easily


def small_delete_chunks(store: TraceStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make a backend that deletes in chunks use chunks of 2, so tests cross chunks."""
    monkeypatch.setattr(sys.modules[type(store).__module__], "DELETE_CHUNK", 2, raising=False)


async def test_tenants_lists_tenants_with_spans(trace_store: TraceStore) -> None:
    assert await trace_store.tenants() == []
    await write(trace_store, [make_span(1, 1, start=1)], tenant="zeta")
    await write(trace_store, [make_span(1, 1, start=1), make_span(2, 2, start=9)])
    await write(trace_store, [make_span(3, 3, start=1)], tenant=ODD_TENANT)

    assert await trace_store.tenants() == ["acme", "zeta", ODD_TENANT]
    assert await trace_store.delete_before("zeta", T0 + 5 * SECOND) == 1
    assert await trace_store.delete_before(TENANT, T0 + 5 * SECOND) == 1
    assert await trace_store.tenants() == ["acme", ODD_TENANT]


async def test_delete_before_removes_one_tenants_older_spans(
    trace_store: TraceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = trace_store
    small_delete_chunks(store, monkeypatch)
    await write(store, [
        make_span(1, 1, start=1, service="api", name="GET /"),
        make_span(1, 2, start=10, service="db", name="query", parent=1),
        make_span(2, 3, start=5, service="old", name="gone"),
        make_span(3, 4, start=11, service="api", name="GET /"),
    ])  # fmt: skip
    await write(store, [make_span(2, 3, start=5, service="old", name="gone")], tenant="other")

    assert await store.delete_before(TENANT, T0 + 10 * SECOND) == 2  # a span at 10 s stays

    assert [s.span_id for s in await store.get_trace(TENANT, trace_id(1))] == [span_id(2)]
    assert await store.get_trace(TENANT, trace_id(2)) == []
    assert await found(store) == [trace_id(3), trace_id(1)]
    summary = (await store.find_traces(TraceQuery(TENANT, service="db")))[0]
    assert (summary.start_unix_nano, summary.span_count) == (T0 + 10 * SECOND, 1)
    assert await store.services(TENANT) == [
        ServiceOperations("api", ["GET /"]),
        ServiceOperations("db", ["query"]),
    ]
    assert [s.span_id for s in await store.get_trace("other", trace_id(2))] == [span_id(3)]
    assert await store.services("other") == [ServiceOperations("old", ["gone"])]
    assert await store.find_traces(TraceQuery(TENANT, service="old")) == []
    assert await store.find_traces(TraceQuery(TENANT, end_unix_nano=T0 + 10 * SECOND)) == []

    assert await store.delete_before(TENANT, T0 + 10 * SECOND) == 0  # idempotent
    assert await found(store) == [trace_id(3), trace_id(1)]


async def test_delete_before_in_many_chunks(
    trace_store: TraceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_delete_chunks(trace_store, monkeypatch)
    day = 86_400.0  # spans over three days, so partitioned backends delete from several
    old = [make_span(n, n, start=n * day / 4, name=f"op{n % 3}") for n in range(1, 10)]
    new = [make_span(n, n, start=3 * day + n, name="op0") for n in range(10, 13)]
    await write(trace_store, old + new)
    await write(trace_store, old, tenant="other")

    assert await trace_store.delete_before(TENANT, T0 + int(3 * day * SECOND)) == 9

    assert await found(trace_store, limit=100) == [trace_id(n) for n in (12, 11, 10)]
    assert await trace_store.services(TENANT) == [ServiceOperations("svc", ["op0"])]
    assert len(await trace_store.find_traces(TraceQuery("other", limit=100))) == 9
    assert await trace_store.services("other") == [
        ServiceOperations("svc", ["op0", "op1", "op2"])]
    assert await trace_store.delete_before(TENANT, T0 + int(3 * day * SECOND)) == 0


async def test_a_trace_written_again_after_delete_before_is_whole(
    trace_store: TraceStore,
) -> None:
    store = trace_store
    await write(store, [make_span(1, 1, start=1, name="early")])
    assert await store.delete_before(TENANT, T0 + 5 * SECOND) == 1

    await write(store, [make_span(1, 2, start=6, parent=1, name="late")])

    assert [s.span_id for s in await store.get_trace(TENANT, trace_id(1))] == [span_id(2)]
    [summary] = await store.find_traces(TraceQuery(TENANT))
    assert (summary.trace_id, summary.span_count, summary.root_name) == (trace_id(1), 1, "late")
    assert await store.services(TENANT) == [ServiceOperations("svc", ["late"])]


async def test_drop_partitions_before_drops_whole_days_of_every_tenant(
    trace_store: TraceStore,
) -> None:
    drop = getattr(trace_store, "drop_partitions_before", None)
    if drop is None:
        pytest.skip("no day partitions in this backend: its retention is delete_before")
    day = 86_400.0
    midnight = -(T0 % (86_400 * SECOND)) / SECOND  # T0's UTC midnight, in seconds from T0
    await write(trace_store, [
        make_span(1, 1, start=midnight + 60, service="old", name="gone"),
        make_span(2, 2, start=midnight + 120),
        make_span(2, 3, start=midnight + day + 60, parent=2),
    ])  # fmt: skip
    await write(trace_store, [make_span(1, 1, start=midnight + 60)], tenant="other")

    # The next day straddles the cutoff, so it stays whole.
    assert len(await drop(T0 + int((midnight + day + 3600) * SECOND))) == 1

    assert await trace_store.get_trace(TENANT, trace_id(1)) == []
    assert await trace_store.get_trace("other", trace_id(1)) == []
    assert [s.span_id for s in await trace_store.get_trace(TENANT, trace_id(2))] == [span_id(3)]
    assert await trace_store.services(TENANT) == [ServiceOperations("svc", ["op"])]
    assert await trace_store.services("other") == []
    await write(trace_store, [make_span(4, 4, start=midnight + 60)])  # the day comes back
    assert await found(trace_store) == [trace_id(2), trace_id(4)]


# ---------------------------------------------------------------------------- analytics

MINUTE = 60 * SECOND
M0 = T0 - T0 % MINUTE  # a whole minute: analytics count spans by the minute they start
N_TRACES = 20  # traces 0-14 start in minute 0, 15-19 in minute 2


def _kind_span(
    trace: int, span: int, service: str, name: str, kind: SpanKind, start_ms: float,
    duration_ms: float, parent: int | None = None, attributes: Attributes | None = None,
    status: StatusCode = StatusCode.UNSET, message: str = "",
    events: list[SpanEvent] | None = None,
) -> Span:
    begin = M0 + int(start_ms * MS)
    return Span(
        trace_id=trace_id(trace), span_id=span_id(span), name=name,
        start_time_unix_nano=begin, end_time_unix_nano=begin + int(duration_ms * MS),
        resource=resource(service), scope=Scope("tests"),
        parent_span_id="" if parent is None else span_id(parent), kind=kind,
        attributes=attributes or {}, status_code=status, status_message=message,
        events=events or [],
    )  # fmt: skip


def shop_trace(i: int) -> list[Span]:
    """One checkout: frontend -> checkout -> payment (CLIENT/SERVER pairs), checkout ->
    postgres, checkout -> kafka -> email (a linked trace), email -> an external API, and
    frontend's render (INTERNAL) -> currency (SERVER, no CLIENT span)."""
    at = i * 1000.0 if i < 15 else 120_000.0 + (i - 15) * 1000.0
    t, e, s = 1000 + i, 5000 + i, 100 * i  # trace ids, span ids
    payment_fails = i % 5 == 0  # traces 0, 5, 10, 15
    err = StatusCode.ERROR
    exception = SpanEvent(M0, "exception", {
        "exception.type": "CardDeclined" if i != 15 else "TimeoutError",
        "exception.message": "card declined" if i != 15 else "upstream timed out",
    })  # fmt: skip
    return [
        _kind_span(t, s + 1, "frontend", "GET /checkout", SpanKind.SERVER, at, 100 + 10 * i),
        _kind_span(t, s + 2, "frontend", "POST", SpanKind.CLIENT, at + 1, 80 + 10 * i, s + 1,
                   {"server.address": "checkout", "url.full": "http://checkout:5050/checkout"},
                   status=err if payment_fails else StatusCode.UNSET),
        _kind_span(t, s + 3, "checkout", "POST /checkout", SpanKind.SERVER, at + 2, 70 + 10 * i,
                   s + 2, status=err if payment_fails else StatusCode.UNSET,
                   message="payment failed" if payment_fails else "",
                   attributes={"error.type": "PaymentError"} if payment_fails else None),
        _kind_span(t, s + 4, "checkout", "POST", SpanKind.CLIENT, at + 3, 30 + i, s + 3,
                   {"server.address": "payment", "server.port": 8443},
                   status=err if payment_fails and i % 10 == 0 else StatusCode.UNSET),
        _kind_span(t, s + 5, "payment", "POST /charge", SpanKind.SERVER, at + 4, 20 + i, s + 4,
                   status=err if payment_fails else StatusCode.UNSET,
                   events=[exception] if payment_fails else None),
        _kind_span(t, s + 6, "checkout", "INSERT shop.orders", SpanKind.CLIENT, at + 40,
                   2 + 0.1 * i, s + 3, {"db.system": "postgresql", "db.name": "shop",
                                        "server.address": "postgres"}),
        _kind_span(t, s + 7, "checkout", "send orders", SpanKind.PRODUCER, at + 45, 1 + 0.1 * i,
                   s + 3, {"messaging.system": "kafka", "messaging.destination.name": "orders"}),
        _kind_span(t, s + 8, "frontend", "render", SpanKind.INTERNAL, at + 90, 9, s + 1),
        _kind_span(t, s + 9, "currency", "GET /rates", SpanKind.SERVER, at + 91, 3 + 0.5 * i,
                   s + 8),
        _kind_span(e, s + 10, "email", "process orders", SpanKind.CONSUMER, at + 60, 40 + i,
                   attributes={"messaging.system": "kafka",
                               "messaging.destination.name": "orders"}),
        _kind_span(e, s + 11, "email", "POST", SpanKind.CLIENT, at + 61, 30 + i, s + 10,
                   {"url.full": "https://api.sendgrid.com/v3/mail/send"}),
    ]  # fmt: skip


def pct(values: list[float], quantile: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(quantile * len(ordered))) - 1]


def assert_percentiles(stats: Any, durations_ms: list[float]) -> None:
    """p50/p95/p99 within the documented error of the exact nearest-rank values."""
    from argus.storage.traces import PERCENTILE_RELATIVE_ERROR

    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        want = int(pct(durations_ms, q) * MS)
        got = getattr(stats, name)
        assert got is not None and abs(got - want) <= want * PERCENTILE_RELATIVE_ERROR + 1, (
            name, got, want)


async def write_shop(store: TraceStore, tenant: str = TENANT, traces: int = N_TRACES) -> None:
    """Each service's spans in its own batches, as SDKs export them: callers first for
    even traces, callees first for odd ones, so pairs form in both orders."""
    order = ["frontend", "checkout", "payment", "currency", "email"]
    for parity, services in ((0, order), (1, order[::-1])):
        for service in services:
            spans = [s for i in range(parity, traces, 2) for s in shop_trace(i)
                     if s.service_name == service]  # fmt: skip
            await write(store, spans, tenant=tenant)


def analytics_or_skip(store: TraceStore) -> None:
    from argus.storage import capabilities

    why = capabilities.unsupported(store).get(capabilities.TRACE_ANALYTICS)
    if why:
        pytest.skip(why)


def by_id(service_map: Any) -> tuple[dict[str, Any], dict[tuple[str, str], Any]]:
    nodes = {node.id: node for node in service_map.nodes}
    edges = {(edge.source, edge.target): edge for edge in service_map.edges}
    return nodes, edges


async def test_service_map_of_a_known_topology(trace_store: TraceStore) -> None:
    analytics_or_skip(trace_store)
    await write_shop(trace_store)

    got = await trace_store.service_map(TENANT, M0, M0 + 3 * MINUTE)

    assert (got.start_unix_nano, got.end_unix_nano) == (M0, M0 + 3 * MINUTE)
    nodes, edges = by_id(got)
    assert sorted(nodes) == [
        "database:postgresql/shop", "external:api.sendgrid.com", "messaging:kafka/orders",
        "service:checkout", "service:currency", "service:email", "service:frontend",
        "service:payment",
    ]  # fmt: skip
    assert [n.id for n in got.nodes] == sorted(nodes)
    assert sorted(edges) == [
        ("messaging:kafka/orders", "service:email"),
        ("service:checkout", "database:postgresql/shop"),
        ("service:checkout", "messaging:kafka/orders"),
        ("service:checkout", "service:payment"),
        ("service:email", "external:api.sendgrid.com"),
        ("service:frontend", "service:checkout"),
        ("service:frontend", "service:currency"),
    ]
    n = N_TRACES
    seconds = 180.0
    for edge in got.edges:
        assert edge.stats.count == n, edge
        assert edge.stats.rate == pytest.approx(n / seconds)
    failing = [i for i in range(n) if i % 5 == 0]
    # Errors: a pair fails when either span does (checkout's own CLIENT marks only 2 of 4).
    expected_errors = {
        ("service:frontend", "service:checkout"): len(failing),
        ("service:checkout", "service:payment"): len(failing),
    }
    for key, edge in edges.items():
        assert edge.stats.errors == expected_errors.get(key, 0), key
        assert edge.stats.error_rate == pytest.approx(edge.stats.errors / n)
    # Latency: the CLIENT (or PRODUCER) span's where there is one, else the server's.
    assert_percentiles(edges[("service:frontend", "service:checkout")].stats,
                       [80 + 10 * i for i in range(n)])  # fmt: skip
    assert_percentiles(edges[("service:checkout", "service:payment")].stats,
                       [30 + i for i in range(n)])  # fmt: skip
    assert_percentiles(edges[("service:frontend", "service:currency")].stats,
                       [3 + 0.5 * i for i in range(n)])  # fmt: skip
    assert_percentiles(edges[("service:checkout", "database:postgresql/shop")].stats,
                       [2 + 0.1 * i for i in range(n)])  # fmt: skip
    assert_percentiles(edges[("service:checkout", "messaging:kafka/orders")].stats,
                       [1 + 0.1 * i for i in range(n)])  # fmt: skip
    assert_percentiles(edges[("messaging:kafka/orders", "service:email")].stats,
                       [40 + i for i in range(n)])  # fmt: skip
    # Service nodes count their entry spans; inferred nodes the requests into them.
    frontend, payment = nodes["service:frontend"], nodes["service:payment"]
    assert (frontend.type, frontend.system, frontend.name) == ("service", "", "frontend")
    assert (frontend.stats.count, frontend.stats.errors) == (n, 0)
    assert_percentiles(frontend.stats, [100 + 10 * i for i in range(n)])
    assert (payment.stats.count, payment.stats.errors) == (n, len(failing))
    assert payment.stats.error_rate == pytest.approx(len(failing) / n)
    assert_percentiles(payment.stats, [20 + i for i in range(n)])
    assert nodes["service:email"].stats.count == n  # the CONSUMER roots
    database = nodes["database:postgresql/shop"]
    assert (database.type, database.system, database.name) == ("database", "postgresql", "shop")
    assert database.stats.count == n
    assert_percentiles(database.stats, [2 + 0.1 * i for i in range(n)])
    assert nodes["messaging:kafka/orders"].stats.count == n
    external = nodes["external:api.sendgrid.com"]
    assert (external.stats.count, external.system) == (n, "")
    assert_percentiles(external.stats, [30 + i for i in range(n)])


async def test_service_map_time_range_counts_whole_minutes(trace_store: TraceStore) -> None:
    analytics_or_skip(trace_store)
    await write_shop(trace_store)

    # Minute 2 only (traces 15-19): the end is rounded up, the start down.
    got = await trace_store.service_map(TENANT, M0 + 2 * MINUTE + 5 * SECOND,
                                        M0 + 2 * MINUTE + 10 * SECOND)  # fmt: skip
    assert (got.start_unix_nano, got.end_unix_nano) == (M0 + 2 * MINUTE, M0 + 3 * MINUTE)
    nodes, edges = by_id(got)
    assert edges[("service:frontend", "service:checkout")].stats.count == 5
    assert edges[("service:frontend", "service:checkout")].stats.rate == pytest.approx(5 / 60)
    assert nodes["service:payment"].stats.errors == 1  # trace 15
    empty = await trace_store.service_map(TENANT, M0 + MINUTE, M0 + 2 * MINUTE)
    assert (empty.nodes, empty.edges) == ([], [])


async def test_service_map_pairs_spans_across_batches_in_any_order(
    trace_store: TraceStore,
) -> None:
    analytics_or_skip(trace_store)
    spans = shop_trace(1)
    client = next(s for s in spans if s.name == "POST" and s.service_name == "checkout")
    server = next(s for s in spans if s.service_name == "payment")
    await write(trace_store, [client])  # alone, the call looks external ...
    nodes, edges = by_id(await trace_store.service_map(TENANT, M0, M0 + MINUTE))
    assert list(edges) == [("service:checkout", "external:payment")]

    await write(trace_store, [server])  # ... until its server span arrives
    nodes, edges = by_id(await trace_store.service_map(TENANT, M0, M0 + MINUTE))
    assert list(edges) == [("service:checkout", "service:payment")]
    assert edges[("service:checkout", "service:payment")].stats.count == 1
    assert sorted(nodes) == ["service:checkout", "service:payment"]
    assert nodes["service:checkout"].stats.count == 0  # no entry span of checkout yet


async def test_red_series_counts_per_step(trace_store: TraceStore) -> None:
    analytics_or_skip(trace_store)
    await write_shop(trace_store)

    points = await trace_store.red_series(TENANT, M0, M0 + 3 * MINUTE, MINUTE, "checkout")

    assert [p.time_unix_nano for p in points] == [M0, M0 + MINUTE, M0 + 2 * MINUTE]
    assert [(p.count, p.errors) for p in points] == [(15, 3), (0, 0), (5, 1)]
    assert points[0].rate == pytest.approx(15 / 60)
    assert points[0].error_rate == pytest.approx(3 / 15)
    assert_percentiles(points[0], [70 + 10 * i for i in range(15)])
    assert_percentiles(points[2], [70 + 10 * i for i in range(15, 20)])
    assert (points[1].p50, points[1].p95, points[1].p99, points[1].rate) == (None, None, None, 0)

    wide = await trace_store.red_series(TENANT, M0, M0 + 3 * MINUTE, 2 * MINUTE, "checkout")
    assert [(p.time_unix_nano, p.count) for p in wide] == [(M0, 15), (M0 + 2 * MINUTE, 5)]
    assert wide[0].rate == pytest.approx(15 / 120)

    clients = await trace_store.red_series(
        TENANT, M0, M0 + MINUTE, MINUTE, "checkout", span_kinds=[SpanKind.CLIENT])
    assert [p.count for p in clients] == [30]  # the payment call and the insert
    one = await trace_store.red_series(
        TENANT, M0, M0 + MINUTE, MINUTE, "checkout", operation="INSERT shop.orders",
        span_kinds=[SpanKind.CLIENT])
    assert [p.count for p in one] == [15]
    roots = await trace_store.red_series(TENANT, M0, M0 + MINUTE, MINUTE, "email")
    assert [p.count for p in roots] == [15]
    assert [p.count for p in await trace_store.red_series(
        TENANT, M0, M0 + MINUTE, MINUTE, "checkout", operation="nope")] == [0]


async def test_red_series_refuses_steps_that_are_not_whole_minutes(
    trace_store: TraceStore,
) -> None:
    analytics_or_skip(trace_store)
    from argus.storage.errors import QueryError

    for step in (0, -MINUTE, 30 * SECOND, 90 * SECOND):
        with pytest.raises(QueryError, match="step"):
            await trace_store.red_series(TENANT, M0, M0 + 3 * MINUTE, step, "checkout")


async def test_latency_histogram(trace_store: TraceStore) -> None:
    analytics_or_skip(trace_store)
    await write_shop(trace_store)
    durations = [int((100 + 10 * i) * MS) for i in range(N_TRACES)]

    got = await trace_store.latency_histogram(
        TENANT, M0, M0 + 3 * MINUTE, "frontend", "GET /checkout")

    # Powers of two from the one above the shortest duration to the one above the longest.
    low, high = min(durations).bit_length(), max(durations).bit_length()
    expected = [(1 << k, sum(1 for d in durations if d.bit_length() == k))
                for k in range(low, high + 1)]  # fmt: skip
    assert [(b.upper_bound_nano, b.count) for b in got] == expected
    assert sum(b.count for b in got) == N_TRACES

    # 100..290 ms in steps of 10. No duration lies within the documented margin above
    # 141 ms; 2^28 ns is a power of two, always exact.
    bounds = [141 * MS, 1 << 28]
    explicit = await trace_store.latency_histogram(
        TENANT, M0, M0 + 3 * MINUTE, "frontend", "GET /checkout", bounds=bounds)
    assert [(b.upper_bound_nano, b.count) for b in explicit] == [
        (141 * MS, 5), (1 << 28, 12), (None, 3)]
    assert await trace_store.latency_histogram(TENANT, M0, M0 + 3 * MINUTE, "nope") == []


async def test_top_operations(trace_store: TraceStore) -> None:
    analytics_or_skip(trace_store)
    await write_shop(trace_store)
    window = (TENANT, M0, M0 + 3 * MINUTE)

    slow = await trace_store.top_operations(*window, by="p95", limit=3)
    assert [(o.service, o.operation) for o in slow] == [
        ("frontend", "GET /checkout"), ("checkout", "POST /checkout"),
        ("email", "process orders")]  # fmt: skip
    assert slow[0].stats.count == N_TRACES
    assert_percentiles(slow[0].stats, [100 + 10 * i for i in range(N_TRACES)])

    failing = await trace_store.top_operations(*window, by="error_rate", limit=2)
    # checkout and payment both fail 4 of 20; ties go by count, then name.
    assert [(o.service, o.operation, o.stats.errors) for o in failing] == [
        ("checkout", "POST /checkout", 4), ("payment", "POST /charge", 4)]

    clients = await trace_store.top_operations(
        *window, by="count", limit=10, span_kinds=[SpanKind.CLIENT])
    assert [(o.service, o.operation, o.stats.count) for o in clients] == [
        ("checkout", "INSERT shop.orders", 20), ("checkout", "POST", 20),
        ("email", "POST", 20), ("frontend", "POST", 20)]  # fmt: skip
    assert await trace_store.top_operations(*window, by="count", limit=0) == []


async def test_top_errors_group_by_exception(trace_store: TraceStore) -> None:
    analytics_or_skip(trace_store)
    await write_shop(trace_store)

    got = await trace_store.top_errors(TENANT, M0, M0 + 3 * MINUTE)

    # CLIENT spans without exception or message; the status message and error.type
    # fallback; exception events.
    assert [(g.exception_type, g.message, g.count, g.services) for g in got] == [
        ("", "", 6, ["checkout", "frontend"]),
        ("PaymentError", "payment failed", 4, ["checkout"]),
        ("CardDeclined", "card declined", 3, ["payment"]),
        ("TimeoutError", "upstream timed out", 1, ["payment"]),
    ]
    counts = {(g.exception_type, g.message): g for g in got}
    assert counts[("CardDeclined", "card declined")].sample_trace_id == trace_id(1010)
    assert counts[("TimeoutError", "upstream timed out")].sample_trace_id == trace_id(1015)
    latest = counts[("PaymentError", "payment failed")]
    assert latest.last_seen_unix_nano == M0 + 120_000 * MS + 2 * MS  # trace 15's span

    only = await trace_store.top_errors(TENANT, M0, M0 + 3 * MINUTE, service="payment", limit=1)
    assert [(g.exception_type, g.count) for g in only] == [("CardDeclined", 3)]
    minute_two = await trace_store.top_errors(TENANT, M0 + 2 * MINUTE, M0 + 3 * MINUTE)
    assert {(g.exception_type, g.count) for g in minute_two} == {
        ("", 1), ("PaymentError", 1), ("TimeoutError", 1)}


async def test_analytics_keep_tenants_apart(trace_store: TraceStore) -> None:
    analytics_or_skip(trace_store)
    await write_shop(trace_store, tenant="a", traces=4)
    await write(trace_store, [
        _kind_span(1, 1, "solo", "GET /", SpanKind.SERVER, 0, 5, status=StatusCode.ERROR,
                   message="boom"),
    ], tenant="b")  # fmt: skip

    solo = await trace_store.service_map("b", M0, M0 + MINUTE)
    assert [n.id for n in solo.nodes] == ["service:solo"] and solo.edges == []
    assert solo.nodes[0].stats.count == 1
    shop = await trace_store.service_map("a", M0, M0 + MINUTE)
    assert "service:solo" not in {n.id for n in shop.nodes}
    assert (await trace_store.service_map("a", M0, M0 + MINUTE)).edges[0].stats.count == 4
    assert [p.count for p in await trace_store.red_series(
        "b", M0, M0 + MINUTE, MINUTE, "checkout")] == [0]
    assert [(g.message, g.count) for g in await trace_store.top_errors("b", M0, M0 + MINUTE)] \
        == [("boom", 1)]
    assert [o.service for o in await trace_store.top_operations(
        "b", M0, M0 + MINUTE, by="count")] == ["solo"]
    nothing = await trace_store.service_map("c", M0, M0 + MINUTE)
    assert (nothing.nodes, nothing.edges) == ([], [])


async def test_delete_before_removes_analytics_of_whole_minutes(trace_store: TraceStore) -> None:
    analytics_or_skip(trace_store)
    await write_shop(trace_store)

    await trace_store.delete_before(TENANT, M0 + 2 * MINUTE)

    nodes, edges = by_id(await trace_store.service_map(TENANT, M0, M0 + 3 * MINUTE))
    assert edges[("service:frontend", "service:checkout")].stats.count == 5
    assert nodes["service:payment"].stats.count == 5
    points = await trace_store.red_series(TENANT, M0, M0 + 3 * MINUTE, MINUTE, "checkout")
    assert [p.count for p in points] == [0, 0, 5]
    assert sum(g.count for g in await trace_store.top_errors(TENANT, M0, M0 + 3 * MINUTE)) == 3


async def test_analytics_over_hours_with_late_spans(trace_store: TraceStore) -> None:
    """Hours of spans in time order, then late ones: every way of cutting the range (whole
    hours, 10-minute blocks, minutes) counts each span once."""
    analytics_or_skip(trace_store)
    hour = 60 * MINUTE
    h0 = T0 - T0 % hour + hour
    base = (h0 - M0) / MS  # start_ms of h0 for _kind_span

    def call(n: int, minute: int) -> list[Span]:
        at = base + minute * 60_000 + 1000
        fails = StatusCode.ERROR if n % 4 == 0 else StatusCode.UNSET
        return [
            _kind_span(n, 3 * n, "web", "GET /", SpanKind.SERVER, at, 50 + n % 7),
            _kind_span(n, 3 * n + 1, "web", "GET", SpanKind.CLIENT, at + 1, 40 + n % 7, 3 * n,
                       {"server.address": "api"}),
            _kind_span(n, 3 * n + 2, "api", "GET /items", SpanKind.SERVER, at + 2, 30 + n % 7,
                       3 * n + 1, status=fails, message="boom"),
        ]  # fmt: skip

    for first in range(0, 180, 10):  # one call a minute for 3 hours, 10 minutes a batch
        await write(trace_store, [s for m in range(first, first + 10) for s in call(m, m)])
    await write(trace_store, [s for m in range(5, 10) for s in call(1000 + m, m)])  # late

    got = await trace_store.service_map(TENANT, h0, h0 + 3 * hour)
    nodes, edges = by_id(got)
    assert edges[("service:web", "service:api")].stats.count == 185
    assert nodes["service:api"].stats.errors == 45 + 1  # n % 4 == 0, and late 1008
    hourly = await trace_store.red_series(TENANT, h0, h0 + 3 * hour, hour, "api")
    assert [p.count for p in hourly] == [65, 60, 60]
    tens = await trace_store.red_series(TENANT, h0, h0 + hour, 10 * MINUTE, "web")
    assert [p.count for p in tens] == [15, 10, 10, 10, 10, 10]
    shifted = await trace_store.red_series(TENANT, h0 + 7 * MINUTE, h0 + 127 * MINUTE, hour,
                                           "web")  # fmt: skip
    assert [p.count for p in shifted] == [60 + 3, 60]  # late 1007-1009 inside
    edge = (await trace_store.service_map(TENANT, h0 + 5 * MINUTE, h0 + 135 * MINUTE)).edges
    assert [e.stats.count for e in edge] == [130 + 5]
    errors = await trace_store.top_errors(TENANT, h0, h0 + 3 * hour)
    assert [(g.message, g.count) for g in errors] == [("boom", 46)]
