"""LogStore contract: every log backend must pass these (see conftest.py)."""

from __future__ import annotations

import dataclasses
import itertools
import math
import sys
from typing import Any

import pytest
from argus.storage.errors import QueryError, StoreError
from argus.storage.logs import LogQuery, LogStore, SeverityBucket
from argus.storage.model import AnyValue, Attributes, LogRecord, Resource, Scope

T0 = 1_700_000_000_000_000_000
SECOND = 1_000_000_000
TENANT = "acme"

# Every AnyValue kind, including the ones JSON-based backends tend to get wrong.
EVERY_KIND: Attributes = {
    "str": "plain",
    "str.empty": "",
    "str.unicode": 'naïve café ✓ 日本語 🎉 \u0000 \n "quoted" \\ back',
    "bool.true": True,
    "bool.false": False,
    "int.zero": 0,
    "int.max": 2**63 - 1,
    "int.min": -(2**63),
    "float.tenth": 0.1,
    "float.whole": 3.0,
    "float.big": 1.7976931348623157e308,
    "float.tiny": 5e-324,
    "bytes": b"\x00\x01\xfe\xff",
    "bytes.empty": b"",
    "array.empty": [],
    "array.mixed": ["a", 1, 2.5, True, None, b"\x07", [1, [2, [3]]], {"k": "v"}],
    "kvlist.empty": {},
    "kvlist.nested": {"a": {"b": {"c": [1, {"d": b"\x10"}]}}, "n": None, "t": True},
    "empty": None,
    "ключ.юникод": "значение",
}

BODIES: list[AnyValue] = [
    "a plain line",
    "",
    "ünïcødé ✓ 🎉 with \u0000 nul and \\ backslash",
    True,
    False,
    0,
    2**63 - 1,
    -(2**63),
    0.1,
    -1e-300,
    b"\x00\xffbinary",
    b"",
    [],
    ["x", 1, [2.5, [None, b"\x01"]], {"k": False}],
    {},
    {"event": "login", "user": {"id": 7, "tags": ["a", "b"]}, "raw": b"\x02"},
    None,
]

_batch_ids = itertools.count()


def assert_same(actual: Any, expected: Any, path: str = "record") -> None:
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


def record(
    at: float,
    body: AnyValue = "line",
    *,
    severity: int = 9,
    service: str = "svc",
    trace_id: str = "",
    span_id: str = "",
    attributes: Attributes | None = None,
    res: Resource | None = None,
    observed_only: bool = False,
) -> LogRecord:
    """A record timestamped `at` seconds after T0 (as observed time only, if asked)."""
    ts = T0 + int(at * SECOND)
    return LogRecord(
        time_unix_nano=0 if observed_only else ts,
        observed_time_unix_nano=ts if observed_only else ts + SECOND,
        resource=res or Resource({"service.name": service}),
        scope=Scope("tests"),
        severity_number=severity,
        body=body,
        attributes=attributes or {},
        trace_id=trace_id,
        span_id=span_id,
    )


async def write(store: LogStore, records: list[LogRecord], tenant: str = TENANT) -> None:
    await store.write_logs(tenant, records, f"batch-{next(_batch_ids)}")


async def bodies(store: LogStore, **filters: Any) -> list[AnyValue]:
    """Bodies of the first page for TENANT with these LogQuery filters, in order."""
    page = await store.search(LogQuery(tenant=TENANT, **filters))
    return [r.body for r in page.records]


# ---------------------------------------------------------------------------- round trip


def full_record() -> LogRecord:
    return LogRecord(
        time_unix_nano=T0 + 123_456_789,
        observed_time_unix_nano=T0 + 223_456_789,
        resource=Resource(
            {"service.name": "checkout", **EVERY_KIND}, 3, "https://opentelemetry.io/schemas/1.21.0"
        ),
        scope=Scope("io.opentelemetry.logs", "1.2.3", dict(EVERY_KIND), 4, "https://scope"),
        severity_number=17,
        severity_text="ERROR ✗",
        body={"message": "payment failed", "details": dict(EVERY_KIND)},
        attributes=dict(EVERY_KIND),
        dropped_attributes_count=5,
        flags=1,
        trace_id="5b8efff798038103d269b633813fc60c",
        span_id="eee19b7ec3c1b174",
        event_name="payment.failed",
    )


async def test_every_record_field_round_trips(log_store: LogStore) -> None:
    rec = full_record()
    await write(log_store, [rec])

    page = await log_store.search(LogQuery(TENANT))
    assert_same(page.records, [rec])
    assert page.next_cursor is None


async def test_minimal_record_round_trips(log_store: LogStore) -> None:
    rec = LogRecord(0, T0, Resource(), Scope())
    await write(log_store, [rec])

    assert_same((await log_store.search(LogQuery(TENANT))).records, [rec])


async def test_bodies_of_every_kind_round_trip(log_store: LogStore) -> None:
    records = [record(n, body) for n, body in enumerate(BODIES)]
    await write(log_store, records)

    got = (await log_store.search(LogQuery(TENANT, limit=100))).records
    assert_same(got, records[::-1])


@pytest.mark.parametrize(
    "value", [math.nan, math.inf, {"$bytes": "AQI="}, {"$bytes": "not base64!"}], ids=repr
)
async def test_codec_edge_values_round_trip(log_store: LogStore, value: AnyValue) -> None:
    await write(log_store, [record(1, value, attributes={"v": value})])

    [got] = (await log_store.search(LogQuery(TENANT))).records
    assert_same((got.body, got.attributes), (value, {"v": value}))


# ---------------------------------------------------------------------------- idempotency, tenants


async def test_a_batch_id_is_applied_once(log_store: LogStore) -> None:
    await log_store.write_logs(TENANT, [record(1, "first")], "b-1")
    await log_store.write_logs(TENANT, [record(1, "first")], "b-1")
    await log_store.write_logs(TENANT, [record(2, "other")], "b-1")
    await log_store.write_logs(TENANT, [record(3, "second")], "b-2")

    assert await bodies(log_store) == ["second", "first"]


async def test_batch_ids_are_per_tenant(log_store: LogStore) -> None:
    await log_store.write_logs("a", [record(1, "for a")], "same-id")
    await log_store.write_logs("b", [record(1, "for b")], "same-id")

    assert [r.body for r in (await log_store.search(LogQuery("b"))).records] == ["for b"]


async def test_tenants_never_see_each_other(log_store: LogStore) -> None:
    await write(log_store, [record(1, "a-line", trace_id="ab" * 16)], tenant="a")
    await write(log_store, [record(2, "b-line", trace_id="ab" * 16)], tenant="b")

    for tenant in ("a", "b"):
        for query in (
            LogQuery(tenant),
            LogQuery(tenant, contains="line"),
            LogQuery(tenant, trace_id="ab" * 16),
        ):
            page = await log_store.search(query)
            assert [r.body for r in page.records] == [f"{tenant}-line"]
    assert (await log_store.search(LogQuery("c"))).records == []


# ---------------------------------------------------------------------------- ordering, time


async def test_newest_first_by_time_else_observed_time(log_store: LogStore) -> None:
    await write(log_store, [
        record(2, "t2"),
        record(5, "observed5", observed_only=True),
        record(1, "t1"),
        record(3, "observed3", observed_only=True),
    ])  # fmt: skip

    assert await bodies(log_store) == ["observed5", "observed3", "t2", "t1"]


async def test_time_range_is_half_open(log_store: LogStore) -> None:
    await write(log_store, [
        record(9.999, "before"), record(10, "at-start"), record(15, "inside"),
        record(12, "observed-inside", observed_only=True), record(20, "at-end"),
    ])  # fmt: skip

    assert await bodies(
        log_store, start_unix_nano=T0 + 10 * SECOND, end_unix_nano=T0 + 20 * SECOND
    ) == ["inside", "observed-inside", "at-start"]
    assert await bodies(log_store, start_unix_nano=T0 + 15 * SECOND) == ["at-end", "inside"]
    assert await bodies(log_store, end_unix_nano=T0 + 10 * SECOND) == ["before"]


async def test_limit_caps_the_page(log_store: LogStore) -> None:
    await write(log_store, [record(n, f"r{n}") for n in range(10)])

    page = await log_store.search(LogQuery(TENANT, limit=3))
    assert [r.body for r in page.records] == ["r9", "r8", "r7"]
    assert page.next_cursor is not None


# ---------------------------------------------------------------------------- filters


async def test_contains_is_a_case_insensitive_substring(log_store: LogStore) -> None:
    await write(log_store, [
        record(1, "User ALICE logged in"),
        record(2, "user bob logged out"),
        record(3, "Ошибка: ДИСК полон"),
        record(4, "ÉCOLE fermée"),
        record(5, "nothing here"),
    ])  # fmt: skip

    assert await bodies(log_store, contains="alice") == ["User ALICE logged in"]
    assert await bodies(log_store, contains="LOGGED") == [
        "user bob logged out", "User ALICE logged in"
    ]  # fmt: skip
    assert await bodies(log_store, contains="диск") == ["Ошибка: ДИСК полон"]
    assert await bodies(log_store, contains="école") == ["ÉCOLE fermée"]
    assert await bodies(log_store, contains="absent") == []
    assert len(await bodies(log_store, contains="")) == 5


async def test_contains_treats_wildcards_literally(log_store: LogStore) -> None:
    await write(log_store, [
        record(1, "disk 100% full"), record(2, "disk 1000 full"),
        record(3, "a_b"), record(4, "axb"),
        record(5, "C:\\temp\\x"), record(6, "C:tempx"),
        record(7, "*.log [x]"), record(8, "a.log x"),
    ])  # fmt: skip

    assert await bodies(log_store, contains="0%") == ["disk 100% full"]
    assert await bodies(log_store, contains="a_b") == ["a_b"]
    assert await bodies(log_store, contains="\\temp\\") == ["C:\\temp\\x"]
    assert await bodies(log_store, contains="*.log [") == ["*.log [x]"]


async def test_contains_searches_structured_bodies_as_json(log_store: LogStore) -> None:
    await write(log_store, [
        record(1, {"event": "Login", "user": "Alice"}),
        record(2, ["Alpha", "beta"]),
        record(3, 424242),
        record(4, "plain"),
    ])  # fmt: skip

    assert await bodies(log_store, contains="alice") == [{"event": "Login", "user": "Alice"}]
    assert await bodies(log_store, contains="ALPHA") == [["Alpha", "beta"]]
    assert await bodies(log_store, contains="2424") == [424242]


async def test_min_severity(log_store: LogStore) -> None:
    await write(log_store, [
        record(1, "debug", severity=5), record(2, "info", severity=9),
        record(3, "warn", severity=13), record(4, "error", severity=17),
    ])  # fmt: skip

    assert await bodies(log_store, min_severity=13) == ["error", "warn"]
    assert await bodies(log_store, min_severity=9) == ["error", "warn", "info"]


async def test_service_trace_and_span_filters(log_store: LogStore) -> None:
    trace_a, trace_b = "a" * 32, "b" * 32
    await write(log_store, [
        record(1, "api-a1", service="api", trace_id=trace_a, span_id="1" * 16),
        record(2, "api-a2", service="api", trace_id=trace_a, span_id="2" * 16),
        record(3, "db-b", service="db", trace_id=trace_b, span_id="1" * 16),
        record(4, "db-none", service="db"),
    ])  # fmt: skip

    assert await bodies(log_store, service="db") == ["db-none", "db-b"]
    assert await bodies(log_store, trace_id=trace_a) == ["api-a2", "api-a1"]
    assert await bodies(log_store, trace_id=trace_a, span_id="1" * 16) == ["api-a1"]
    assert await bodies(log_store, span_id="1" * 16) == ["db-b", "api-a1"]
    assert await bodies(log_store, service="api", trace_id=trace_b) == []
    assert await bodies(log_store, trace_id="c" * 32) == []


async def test_attribute_filter_uses_string_forms(log_store: LogStore) -> None:
    await write(log_store, [
        record(1, "get", attributes={"method": "GET", "status": 200}),
        record(2, "post", attributes={"method": "POST", "status": 500, "retry": True}),
        record(3, "float", attributes={"ratio": 0.5, "raw": b"\xff"}),
    ])  # fmt: skip

    assert await bodies(log_store, attributes={"method": "GET"}) == ["get"]
    assert await bodies(log_store, attributes={"status": "500", "retry": "true"}) == ["post"]
    assert await bodies(log_store, attributes={"status": "500", "method": "GET"}) == []
    assert await bodies(log_store, attributes={"ratio": "0.5"}) == ["float"]
    assert await bodies(log_store, attributes={"raw": "/w=="}) == ["float"]


async def test_attribute_filter_falls_back_to_resource(log_store: LogStore) -> None:
    prod = Resource({"service.name": "api", "env": "prod"})
    await write(log_store, [
        record(1, "prod", res=prod),
        record(2, "own-dev", res=prod, attributes={"env": "dev"}),
        record(3, "dev", res=Resource({"service.name": "api", "env": "dev"})),
    ])  # fmt: skip

    assert await bodies(log_store, attributes={"env": "prod"}) == ["prod"]
    assert await bodies(log_store, attributes={"env": "dev"}) == ["dev", "own-dev"]


async def test_filters_combine(log_store: LogStore) -> None:
    await write(log_store, [
        record(1, "disk error", severity=17, service="db"),
        record(2, "disk error", severity=17, service="api"),
        record(3, "disk ok", severity=9, service="db"),
        record(30, "disk error later", severity=17, service="db"),
    ])  # fmt: skip

    got = await log_store.search(LogQuery(
        TENANT, contains="ERROR", min_severity=13, service="db", end_unix_nano=T0 + 10 * SECOND
    ))  # fmt: skip
    assert [r.timestamp for r in got.records] == [T0 + SECOND]


# ---------------------------------------------------------------------------- pagination


async def pages(store: LogStore, query: LogQuery) -> list[list[LogRecord]]:
    result: list[list[LogRecord]] = []
    while True:
        page = await store.search(query)
        result.append(page.records)
        if page.next_cursor is None:
            return result
        assert len(result) < 20, "pagination does not end"
        query = dataclasses.replace(query, cursor=page.next_cursor)


async def test_pages_have_no_gap_or_duplicate_across_equal_timestamps(
    log_store: LogStore,
) -> None:
    # 25 records, three per timestamp, so page boundaries fall inside runs of ties.
    records = [record(n // 3, f"r{n}") for n in range(25)]
    await write(log_store, records[:12])
    await write(log_store, records[12:])

    got = await pages(log_store, LogQuery(TENANT, limit=10))
    assert [len(p) for p in got] == [10, 10, 5]
    flat = [r for p in got for r in p]
    assert sorted(str(r.body) for r in flat) == sorted(str(r.body) for r in records)
    timestamps = [r.timestamp for r in flat]
    assert timestamps == sorted(timestamps, reverse=True)


async def test_pagination_with_a_filter(log_store: LogStore) -> None:
    await write(log_store, [record(n, f"keep {n}" if n % 2 else f"drop {n}") for n in range(40)])

    got = await pages(log_store, LogQuery(TENANT, contains="KEEP", limit=7))
    assert [len(p) for p in got] == [7, 7, 6]
    assert [r.body for p in got for r in p] == [f"keep {n}" for n in range(39, 0, -2)]


async def test_pagination_within_one_trace(log_store: LogStore) -> None:
    trace = "5b8efff798038103d269b633813fc60c"
    await write(log_store, [record(n // 2, f"t{n}", trace_id=trace) for n in range(12)])
    await write(log_store, [record(n, f"other{n}", trace_id="f" * 32) for n in range(12)])

    got = await pages(log_store, LogQuery(TENANT, trace_id=trace, limit=5))
    assert [len(p) for p in got] == [5, 5, 2]
    assert sorted(str(r.body) for p in got for r in p) == sorted(f"t{n}" for n in range(12))
    assert [r.timestamp for p in got for r in p] == sorted(
        (T0 + n // 2 * SECOND for n in range(12)), reverse=True
    )


async def test_newer_records_do_not_shift_later_pages(log_store: LogStore) -> None:
    await write(log_store, [record(n, f"old {n}") for n in range(9)])
    first = await log_store.search(LogQuery(TENANT, limit=3))
    await write(log_store, [record(100 + n, f"new {n}") for n in range(5)])

    rest = await pages(log_store, LogQuery(TENANT, limit=3, cursor=first.next_cursor))
    assert [r.body for p in [first.records, *rest] for r in p] == [
        f"old {n}" for n in range(8, -1, -1)
    ]


@pytest.mark.parametrize("count", [0, 5])
async def test_no_cursor_when_nothing_older(log_store: LogStore, count: int) -> None:
    await write(log_store, [record(n) for n in range(count)])

    page = await log_store.search(LogQuery(TENANT, limit=5))
    assert (len(page.records), page.next_cursor) == (count, None)


async def test_malformed_cursor_is_a_query_error(log_store: LogStore) -> None:
    with pytest.raises(QueryError):
        await log_store.search(LogQuery(TENANT, cursor="not a cursor"))


async def test_close_is_idempotent_and_final(log_store: LogStore) -> None:
    await write(log_store, [record(1)])
    await log_store.close()
    await log_store.close()

    with pytest.raises(StoreError):
        await log_store.search(LogQuery(TENANT))
    with pytest.raises(StoreError):
        await write(log_store, [record(2)])


# ---------------------------------------------------------------------------- retention


def small_delete_chunks(store: LogStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make a backend that deletes in chunks use chunks of 2, so tests cross chunks."""
    monkeypatch.setattr(sys.modules[type(store).__module__], "DELETE_CHUNK", 2, raising=False)


async def test_tenants_lists_tenants_with_records(log_store: LogStore) -> None:
    assert await log_store.tenants() == []
    await write(log_store, [record(1)], tenant="zeta")
    await write(log_store, [record(1), record(9)])
    await write(log_store, [record(1)], tenant="ünï\\x")

    assert await log_store.tenants() == ["acme", "zeta", "ünï\\x"]
    assert await log_store.delete_before("zeta", T0 + 5 * SECOND) == 1
    assert await log_store.delete_before(TENANT, T0 + 5 * SECOND) == 1
    assert await log_store.tenants() == ["acme", "ünï\\x"]


async def test_delete_before_removes_one_tenants_older_records(
    log_store: LogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_delete_chunks(log_store, monkeypatch)
    await write(log_store, [
        record(1, "old 1", trace_id="5b8efff798038103d269b633813fc60c"),
        record(2, "old 2"),
        record(3, "observed old", observed_only=True),  # timestamp: the observed time
        record(4, "old 4", service="gone"),
        record(10, "at the cutoff", trace_id="5b8efff798038103d269b633813fc60c"),
        record(12, "observed new", observed_only=True),
        record(20, "new"),
    ])  # fmt: skip
    await write(log_store, [record(1, "other old"), record(20, "other new")], tenant="other")

    assert await log_store.delete_before(TENANT, T0 + 10 * SECOND) == 4

    assert await bodies(log_store) == ["new", "observed new", "at the cutoff"]
    assert await bodies(log_store, end_unix_nano=T0 + 10 * SECOND) == []
    assert await bodies(log_store, contains="old") == []
    assert await bodies(log_store, service="gone") == []
    assert await bodies(log_store, trace_id="5b8efff798038103d269b633813fc60c") == [
        "at the cutoff"]
    page = await log_store.search(LogQuery(TENANT, limit=2))
    assert [r.body for r in page.records] == ["new", "observed new"]
    assert page.next_cursor is not None
    rest = await log_store.search(LogQuery(TENANT, limit=2, cursor=page.next_cursor))
    assert ([r.body for r in rest.records], rest.next_cursor) == (["at the cutoff"], None)
    other = await log_store.search(LogQuery("other"))
    assert [r.body for r in other.records] == ["other new", "other old"]

    assert await log_store.delete_before(TENANT, T0 + 10 * SECOND) == 0  # idempotent
    assert await bodies(log_store) == ["new", "observed new", "at the cutoff"]


async def test_delete_before_everything_then_write_again(log_store: LogStore) -> None:
    await write(log_store, [record(1, "a"), record(2, "b")])
    assert await log_store.delete_before(TENANT, T0 + 100 * SECOND) == 2
    assert await bodies(log_store) == []
    assert await log_store.tenants() == []

    await write(log_store, [record(3, "c")])
    assert await bodies(log_store) == ["c"]
    assert await log_store.tenants() == [TENANT]


# ---------------------------------------------------------------------------- analytics


def histogram_counts(buckets: list[SeverityBucket]) -> list[tuple[int, dict[str, int]]]:
    """(seconds after T0, counts) per bucket."""
    return [((b.start_unix_nano - T0) // SECOND, b.counts) for b in buckets]


async def test_severity_histogram_counts_per_bucket_and_severity(log_store: LogStore) -> None:
    await write(log_store, [
        record(0, severity=1), record(3, severity=4), record(9.999, severity=5),  # [0, 10)
        record(12, severity=9), record(15, severity=12, observed_only=True),  # [10, 20)
        record(15, severity=13), record(16, severity=17), record(17, severity=21),
        record(18, severity=24), record(19, severity=0), record(19.5, severity=25),
        record(41, severity=20),  # [40, 50); [20, 40) is empty and left out
    ])  # fmt: skip

    buckets = await log_store.severity_histogram(LogQuery(TENANT), 10 * SECOND)
    assert histogram_counts(buckets) == [
        (0, {"TRACE": 2, "DEBUG": 1}),
        (10, {"INFO": 2, "WARN": 1, "ERROR": 1, "FATAL": 2, "UNSPECIFIED": 2}),
        (40, {"ERROR": 1}),
    ]
    assert [b.total for b in buckets] == [3, 8, 1]


async def test_severity_histogram_buckets_start_on_multiples_of_the_step(
    log_store: LogStore,
) -> None:
    step = 7 * SECOND  # T0 is not a multiple of 7 s: buckets align to the epoch, not to T0
    await write(log_store, [record(n) for n in range(20)])

    buckets = await log_store.severity_histogram(LogQuery(TENANT), step)
    assert all(b.start_unix_nano % step == 0 for b in buckets)
    assert sum(b.total for b in buckets) == 20
    for bucket in buckets:
        inside = [n for n in range(20) if 0 <= T0 + n * SECOND - bucket.start_unix_nano < step]
        assert bucket.counts == {"INFO": len(inside)}


async def test_severity_histogram_applies_the_search_filters(log_store: LogStore) -> None:
    trace = "5b8efff798038103d269b633813fc60c"
    await write(log_store, [
        record(1, "disk error", severity=17, service="db", trace_id=trace),
        record(2, "disk error", severity=17, service="api"),
        record(3, "disk ok", severity=9, service="db", trace_id=trace),
        record(10, "disk error at the end", severity=17, service="db"),
    ])  # fmt: skip
    step = 20 * SECOND  # T0 is a multiple of it

    async def counts(**filters: Any) -> list[tuple[int, dict[str, int]]]:
        return histogram_counts(await log_store.severity_histogram(
            LogQuery(TENANT, **filters), step))  # fmt: skip

    assert await counts(service="db", end_unix_nano=T0 + 10 * SECOND) == [
        (0, {"ERROR": 1, "INFO": 1})]
    assert await counts(contains="ERROR", min_severity=13) == [(0, {"ERROR": 3})]
    assert await counts(trace_id=trace) == [(0, {"ERROR": 1, "INFO": 1})]
    assert await counts(attributes={"service.name": "api"}) == [(0, {"ERROR": 1})]
    assert await counts(service="absent") == []
    # limit and cursor of the query play no part
    assert await counts(limit=1) == [(0, {"ERROR": 3, "INFO": 1})]


async def test_severity_histogram_refuses_bad_steps(log_store: LogStore) -> None:
    await write(log_store, [record(1)])
    for step in (0, -SECOND):
        with pytest.raises(QueryError, match="step"):
            await log_store.severity_histogram(LogQuery(TENANT), step)
    with pytest.raises(QueryError, match="buckets"):
        await log_store.severity_histogram(
            LogQuery(TENANT, start_unix_nano=T0, end_unix_nano=T0 + 86400 * SECOND), SECOND // 1000
        )


async def test_top_values_of_service_and_severity(log_store: LogStore) -> None:
    await write(log_store, [
        record(1, service="api", severity=9), record(2, service="api", severity=17),
        record(3, service="db", severity=9), record(4, service="web", severity=10),
        record(5, service="web", severity=0), record(6, service="api", severity=13),
    ])  # fmt: skip

    service = await log_store.top_values(LogQuery(TENANT), "service", 10)
    assert [(v.value, v.count) for v in service] == [("api", 3), ("web", 2), ("db", 1)]
    top2 = await log_store.top_values(LogQuery(TENANT), "service", 2)
    assert [(v.value, v.count) for v in top2] == [("api", 3), ("web", 2)]
    severity = await log_store.top_values(LogQuery(TENANT), "severity", 10)
    assert [(v.value, v.count) for v in severity] == [
        ("INFO", 3), ("ERROR", 1), ("UNSPECIFIED", 1), ("WARN", 1)]  # ties by value
    filtered = await log_store.top_values(LogQuery(TENANT, min_severity=13), "service", 10)
    assert [(v.value, v.count) for v in filtered] == [("api", 2)]


async def test_top_values_of_attributes_use_string_forms(log_store: LogStore) -> None:
    eu = Resource({"service.name": "api", "region": "eu", "status": "from-resource"})
    us = Resource({"service.name": "api", "region": "us"})
    await write(log_store, [
        record(1, res=eu, attributes={"status": 200, "retry": True}),
        record(2, res=eu, attributes={"status": 200}),
        record(3, res=us, attributes={"status": 500, "retry": False}),
        record(4, res=us, attributes={"ratio": 0.5}),
        record(5, res=eu),
    ])  # fmt: skip

    async def top(field: str, **filters: Any) -> list[tuple[str, int]]:
        found = await log_store.top_values(LogQuery(TENANT, **filters), field, 10)
        return [(v.value, v.count) for v in found]

    # Own attributes only: records without one are not counted, resources are not looked at.
    assert await top("attributes.status") == [("200", 2), ("500", 1)]
    assert await top("attributes.retry") == [("false", 1), ("true", 1)]
    assert await top("attributes.ratio") == [("0.5", 1)]
    assert await top("attributes.absent") == []
    assert await top("resource.region") == [("eu", 3), ("us", 2)]
    assert await top("resource.status") == [("from-resource", 3)]
    assert await top("resource.service.name") == [("api", 5)]
    assert await top("resource.region", attributes={"status": "200"}) == [("eu", 2)]


@pytest.mark.parametrize("field", ["", "body", "attributes.", "resource.", "region", "trace"])
async def test_top_values_refuses_unknown_fields_and_limits(
    log_store: LogStore, field: str
) -> None:
    with pytest.raises(QueryError):
        await log_store.top_values(LogQuery(TENANT), field, 10)
    with pytest.raises(QueryError, match="limit"):
        await log_store.top_values(LogQuery(TENANT), "service", 0)


async def test_patterns_group_similar_bodies(log_store: LogStore) -> None:
    await write(log_store, [
        record(1, "user 17 logged in from 10.0.0.1"),
        record(2, "user 42 logged in from 10.0.0.2"),
        record(3, "request 123e4567-e89b-12d3-a456-426614174000 took 12 ms"),
        record(4, "request 00000000-0000-4000-8000-000000000001 took 340 ms"),
        record(5, "request 99999999-0000-4000-8000-000000000001 took 7 ms"),
        record(6, "span 5b8efff798038103d269b633813fc60c failed with 0x1f"),
        record(7, "cache warmed"),
        record(8, {"event": "login", "user": 7}),
    ])  # fmt: skip

    result = await log_store.patterns(LogQuery(TENANT), 10, 1000)
    assert (result.records, result.sampled) == (8, False)
    got = [(p.template, p.count, p.sample.body) for p in result.patterns]
    assert got == [
        ("request <UUID> took <NUM> ms", 3,
         "request 99999999-0000-4000-8000-000000000001 took 7 ms"),  # the newest record
        ("user <NUM> logged in from <IP>", 2, "user 42 logged in from 10.0.0.2"),
        ("cache warmed", 1, "cache warmed"),
        ("span <HEX> failed with <HEX>", 1,
         "span 5b8efff798038103d269b633813fc60c failed with 0x1f"),
        ('{"event":"login","user":<NUM>}', 1, {"event": "login", "user": 7}),
    ]  # fmt: skip
    assert [p.template for p in (await log_store.patterns(LogQuery(TENANT), 2, 1000)).patterns] \
        == ["request <UUID> took <NUM> ms", "user <NUM> logged in from <IP>"]


async def test_patterns_generalise_words_that_differ(log_store: LogStore) -> None:
    await write(log_store, [record(n, f"payment failed for user {name}")
                            for n, name in enumerate(["alice", "bob", "carol"])])
    [pattern] = (await log_store.patterns(LogQuery(TENANT), 10, 1000)).patterns
    assert (pattern.template, pattern.count) == ("payment failed for user <*>", 3)


async def test_patterns_cluster_the_newest_sample(log_store: LogStore) -> None:
    await write(log_store, [record(n, f"old line {n}") for n in range(5)])
    await write(log_store, [record(10 + n, f"job {n} done") for n in range(3)])

    result = await log_store.patterns(LogQuery(TENANT), 10, 3)
    assert (result.records, result.sampled) == (3, True)
    assert [(p.template, p.count) for p in result.patterns] == [("job <NUM> done", 3)]
    only_old = await log_store.patterns(LogQuery(TENANT, contains="old"), 10, 1000)
    assert [(p.template, p.count) for p in only_old.patterns] == [("old line <NUM>", 5)]
    with pytest.raises(QueryError):
        await log_store.patterns(LogQuery(TENANT), 10, 0)
    with pytest.raises(QueryError):
        await log_store.patterns(LogQuery(TENANT), 0, 10)


async def test_analytics_never_see_other_tenants(log_store: LogStore) -> None:
    await write(log_store, [record(1, "a line 1", service="a-svc", severity=9,
                                   attributes={"k": "a"})], tenant="a")
    await write(log_store, [record(2, "b line 2", service="b-svc", severity=17,
                                   attributes={"k": "b"}) for _ in range(3)], tenant="b")

    for tenant, service, value, severity, count in (
        ("a", "a-svc", "a", "INFO", 1), ("b", "b-svc", "b", "ERROR", 3),
    ):
        query = LogQuery(tenant)
        assert histogram_counts(await log_store.severity_histogram(query, 20 * SECOND)) == [
            (0, {severity: count})]
        for field, expected in (("service", service), ("attributes.k", value),
                                ("severity", severity), ("resource.service.name", service)):
            found = await log_store.top_values(query, field, 10)
            assert [(v.value, v.count) for v in found] == [(expected, count)]
        patterns = await log_store.patterns(query, 10, 100)
        assert [(p.template, p.count) for p in patterns.patterns] == [
            (f"{tenant} line <NUM>", count)]
    empty = LogQuery("c")
    assert await log_store.severity_histogram(empty, SECOND) == []
    assert await log_store.top_values(empty, "service", 10) == []
    assert (await log_store.patterns(empty, 10, 100)).patterns == []
