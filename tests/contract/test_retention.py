"""Retention (storage/retention.py): policies with per-tenant overrides, enforced on real
stores (the embedded ones, and every trace/log/metric backend the contract fixtures
serve), and the task's behaviour when stores fail or cannot do retention."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from argus.storage import capabilities
from argus.storage.backends.duckdb_metrics import DuckDBMetricStore
from argus.storage.backends.sqlite_logs import SqliteLogStore
from argus.storage.backends.sqlite_traces import SqliteTraceStore
from argus.storage.errors import RetryableStoreError
from argus.storage.logs import LogQuery, LogStore
from argus.storage.metrics import MetricStore, PointQuery
from argus.storage.model import LogRecord, MetricKind, MetricPoint, Resource, Scope, Span
from argus.storage.retention import ALL_TENANTS, RetentionPolicy, RetentionTask, enforce
from argus.storage.traces import TraceQuery, TraceStore

S = 1_000_000_000
DAY = 86_400
NOW = 1_700_000_400 * S  # a multiple of 10 minutes (the embedded metric rollup chunk)
RESOURCE = Resource({"service.name": "svc"})
SCOPE = Scope("tests")
TENANTS = ("acme", "keep", "short")

# Default: traces 3 days, logs 7, metrics 30. "keep" keeps its traces forever and its
# logs 10 days; "short" keeps everything 1 day.
POLICY = RetentionPolicy(
    traces=3 * DAY, logs=7 * DAY, metrics=30 * DAY,
    tenants={"keep": {"traces": 0, "logs": 10 * DAY},
             "short": {"traces": DAY, "logs": DAY, "metrics": DAY}},
)  # fmt: skip
AGES = (0.5, 2, 5, 8, 20, 40)  # days: what each store gets, per tenant


def ago(days: float) -> int:
    return NOW - int(days * DAY * S)


def span(n: int, days: float) -> Span:
    start = ago(days)
    return Span(f"{n:032x}", f"{n:016x}", "op", start, start + S, RESOURCE, SCOPE)


def log_record(days: float) -> LogRecord:
    return LogRecord(ago(days), ago(days), RESOURCE, SCOPE, body=f"{days} days old")


def gauge(days: float) -> MetricPoint:
    return MetricPoint("g", MetricKind.GAUGE, ago(days), RESOURCE, SCOPE, value=days)


async def fill(traces: TraceStore, logs: LogStore, metrics: MetricStore) -> None:
    for tenant in TENANTS:
        await traces.write_spans(tenant, [span(i, d) for i, d in enumerate(AGES)], "b")
        await logs.write_logs(tenant, [log_record(d) for d in AGES], "b")
        await metrics.write_points(tenant, [gauge(d) for d in AGES], "b")


async def span_ages(store: TraceStore, tenant: str) -> list[float]:
    found = await store.find_traces(TraceQuery(tenant, limit=100))
    return sorted((NOW - t.start_unix_nano) / (DAY * S) for t in found)


async def log_ages(store: LogStore, tenant: str) -> list[float]:
    page = await store.search(LogQuery(tenant, limit=100))
    return sorted((NOW - r.timestamp) / (DAY * S) for r in page.records)


async def point_ages(store: MetricStore, tenant: str) -> list[float]:
    points = await store.points(PointQuery(tenant, "g"))
    return sorted(float(p.value or 0) for p in points)


# ------------------------------------------------------------------ policy


def test_policy_defaults_and_overrides() -> None:
    assert POLICY.max_age_seconds("traces", "acme") == 3 * DAY
    assert POLICY.max_age_seconds("traces", "keep") == 0
    assert POLICY.max_age_seconds("metrics", "keep") == 30 * DAY  # not overridden
    assert POLICY.max_age_seconds("logs", "short") == DAY
    assert POLICY.cutoff("traces", "acme", NOW) == NOW - 3 * DAY * S
    assert POLICY.cutoff("traces", "keep", NOW) is None
    assert RetentionPolicy().keeps_everything("logs")
    assert not RetentionPolicy(tenants={"a": {"logs": 5}}).keeps_everything("logs")
    assert RetentionPolicy(tenants={"a": {"logs": 5}}).keeps_everything("traces")


@pytest.mark.parametrize("bad", [
    {"traces": -1}, {"logs": 1.5}, {"metrics": True},
    {"tenants": {"a": {"spans": 5}}}, {"tenants": {"a": {"logs": -5}}},
])  # fmt: skip
def test_policy_refuses_nonsense(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RetentionPolicy(**bad)
    with pytest.raises(ValueError):
        POLICY.max_age_seconds("spans", "acme")


# ------------------------------------------------------------------ enforce


@pytest.fixture
async def embedded(tmp_path: Path) -> Any:
    traces = await SqliteTraceStore.open(tmp_path / "traces.db")
    logs = await SqliteLogStore.open(tmp_path / "logs.db")
    metrics = await DuckDBMetricStore.open(tmp_path / "metrics.duckdb")
    yield traces, logs, metrics
    for store in (traces, logs, metrics):
        await store.close()


async def test_task_enforces_per_tenant_overrides_on_embedded_stores(embedded: Any) -> None:
    traces, logs, metrics = embedded
    await fill(traces, logs, metrics)
    heard: list[tuple[str, str, int]] = []
    task = RetentionTask({"traces": traces, "logs": logs, "metrics": metrics}, POLICY,
                         on_removed=lambda *removal: heard.append(removal), clock=lambda: NOW)

    results = await task.run_once()

    assert results == {
        "traces": {"acme": 4, "short": 5},  # older than 3 days; "keep" keeps all
        "logs": {"acme": 3, "keep": 2, "short": 5},  # 7 days, 10 for "keep", 1 for "short"
        "metrics": {"acme": 1, "keep": 1, "short": 5},  # 30 days, 1 for "short"
    }
    assert sorted(heard) == sorted(
        (signal, tenant, count)
        for signal, counts in results.items() for tenant, count in counts.items()
    )
    assert await span_ages(traces, "acme") == [0.5, 2]
    assert await span_ages(traces, "keep") == list(AGES)
    assert await span_ages(traces, "short") == [0.5]
    assert await log_ages(logs, "acme") == [0.5, 2, 5]
    assert await log_ages(logs, "keep") == [0.5, 2, 5, 8]
    assert await log_ages(logs, "short") == [0.5]
    assert await point_ages(metrics, "acme") == [0.5, 2, 5, 8, 20]
    assert await point_ages(metrics, "short") == [0.5]

    assert await task.run_once() == {"traces": {}, "logs": {}, "metrics": {}}  # nothing left


async def test_enforce_on_every_trace_backend(trace_store: TraceStore) -> None:
    """Runs on PostgreSQL too, where whole day partitions go first."""
    await trace_store.write_spans("acme", [span(i, d) for i, d in enumerate(AGES)], "b")
    await trace_store.write_spans("short", [span(i, d) for i, d in enumerate(AGES)], "b")
    policy = RetentionPolicy(traces=3 * DAY, tenants={"short": {"traces": DAY}})

    removed = await enforce(trace_store, "traces", policy, NOW)

    if hasattr(trace_store, "drop_partitions_before"):  # days before the 3-day cutoff
        assert removed[ALL_TENANTS] == -1
    else:
        assert removed == {"acme": 4, "short": 5}
    assert await span_ages(trace_store, "acme") == [0.5, 2]
    assert await span_ages(trace_store, "short") == [0.5]
    assert await enforce(trace_store, "traces", policy, NOW) == {}


async def test_a_tenant_keeping_forever_blocks_dropping_partitions(
    trace_store: TraceStore,
) -> None:
    await trace_store.write_spans("acme", [span(i, d) for i, d in enumerate(AGES)], "b")
    await trace_store.write_spans("keep", [span(i, d) for i, d in enumerate(AGES)], "b")
    policy = RetentionPolicy(traces=3 * DAY, tenants={"keep": {"traces": 0}})

    assert await enforce(trace_store, "traces", policy, NOW) == {"acme": 4}

    assert await span_ages(trace_store, "keep") == list(AGES)
    assert await span_ages(trace_store, "acme") == [0.5, 2]


async def test_enforce_on_every_log_backend(log_store: LogStore) -> None:
    await log_store.write_logs("acme", [log_record(d) for d in AGES], "b")
    assert await enforce(log_store, "logs", POLICY, NOW) == {"acme": 3}  # 8, 20, 40 days
    assert await log_ages(log_store, "acme") == [0.5, 2, 5]


async def test_enforce_on_every_metric_backend(metric_store: MetricStore) -> None:
    if capabilities.reason(metric_store, capabilities.RETENTION) is not None:
        pytest.skip("this backend declares retention unsupported")
    await metric_store.write_points("acme", [gauge(d) for d in AGES], "b")
    await metric_store.write_points("short", [gauge(d) for d in AGES], "b")

    removed = await enforce(metric_store, "metrics", POLICY, NOW)

    assert removed in ({"acme": 1, "short": 5}, {"acme": -1, "short": -1})
    assert await point_ages(metric_store, "acme") == [0.5, 2, 5, 8, 20]
    assert await point_ages(metric_store, "short") == [0.5]


# ------------------------------------------------------------------ the task


class FakeStore:
    """A store answering tenants() and delete_before() from a dict, or failing."""

    def __init__(self, tenants: Mapping[str, int] | None = None, *, fail: bool = False,
                 unsupported: Mapping[str, str] | None = None) -> None:
        self.counts = dict(tenants or {})
        self.fail = fail
        self.unsupported = unsupported or {}
        self.deleted: list[tuple[str, int]] = []

    async def tenants(self) -> list[str]:
        if self.fail:
            raise RetryableStoreError("down")
        return sorted(self.counts)

    async def delete_before(self, tenant: str, cutoff_unix_nano: int) -> int:
        if self.fail:
            raise RetryableStoreError("down")
        self.deleted.append((tenant, cutoff_unix_nano))
        return self.counts.pop(tenant, 0)


class PartitionedFakeStore(FakeStore):
    def __init__(self, tenants: Mapping[str, int]) -> None:
        super().__init__(tenants)
        self.dropped: list[int] = []

    async def drop_partitions_before(self, cutoff_unix_nano: int) -> list[str]:
        self.dropped.append(cutoff_unix_nano)
        return ["spans_p20231110"]


async def test_a_failing_store_does_not_stop_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = FakeStore(fail=True)
    logs = FakeStore({"acme": 5})
    unable = FakeStore({"acme": 1}, unsupported={capabilities.RETENTION: "no way"})
    task = RetentionTask({"traces": down, "logs": logs, "metrics": unable}, POLICY,
                         clock=lambda: NOW)

    with caplog.at_level(logging.WARNING, logger="argus.storage.retention"):
        assert await task.run_once() == {"logs": {"acme": 5}}
        assert await task.run_once() == {"logs": {}}

    assert logs.deleted == [("acme", NOW - 7 * DAY * S)]  # then acme had no logs left
    assert unable.deleted == []
    messages = [r.getMessage() for r in caplog.records]
    assert sum("retention of traces failed" in m for m in messages) == 2  # every round
    assert sum("no way" in m for m in messages) == 1  # said once


async def test_one_tenant_failing_does_not_stop_the_others() -> None:
    class Flaky(FakeStore):
        async def delete_before(self, tenant: str, cutoff_unix_nano: int) -> int:
            if tenant == "bad":
                raise RetryableStoreError("busy")
            return await super().delete_before(tenant, cutoff_unix_nano)

    store = Flaky({"a": 1, "bad": 1, "c": 2})
    heard: list[tuple[str, str, int]] = []
    with pytest.raises(RetryableStoreError):
        await enforce(store, "logs", POLICY, NOW, on_removed=lambda *r: heard.append(r))
    assert heard == [("logs", "a", 1), ("logs", "c", 2)]


async def test_partitions_are_dropped_before_the_earliest_cutoff() -> None:
    store = PartitionedFakeStore({"acme": 2, "short": 3})
    removed = await enforce(store, "traces", POLICY, NOW)
    assert store.dropped == [NOW - 3 * DAY * S]  # "short" (1 day) is past it anyway
    assert removed == {ALL_TENANTS: -1, "acme": 2, "short": 3}
    assert store.deleted == [("acme", NOW - 3 * DAY * S), ("short", NOW - DAY * S)]

    keeping = PartitionedFakeStore({"acme": 2, "keep": 3})
    assert await enforce(keeping, "traces", POLICY, NOW) == {"acme": 2}
    assert keeping.dropped == []  # "keep" keeps its traces forever
    assert keeping.deleted == [("acme", NOW - 3 * DAY * S)]


async def test_a_proxy_answering_every_attribute_is_not_taken_for_partitioned() -> None:
    class Proxy:  # like a lazily opened store: forwards whatever is asked
        def __init__(self, store: Any) -> None:
            self._store = store

        def __getattr__(self, name: str) -> Any:
            return getattr(self._store, name)

    store = FakeStore({"acme": 2})
    assert await enforce(Proxy(store), "traces", POLICY, NOW) == {"acme": 2}
    assert store.deleted == [("acme", NOW - 3 * DAY * S)]


async def test_nothing_is_asked_of_stores_when_everything_is_kept() -> None:
    down = FakeStore(fail=True)
    assert await RetentionTask({"traces": down}, RetentionPolicy()).run_once() == {"traces": {}}


async def test_run_keeps_going_until_cancelled() -> None:
    rounds = 0

    def clock() -> int:
        nonlocal rounds
        rounds += 1
        if rounds == 2:
            raise RuntimeError("a bug in one round")
        return NOW

    task = RetentionTask({"traces": FakeStore(fail=True)}, POLICY, clock=clock)
    runner = asyncio.create_task(task.run(0.01))
    while rounds < 4:
        await asyncio.sleep(0.01)
    assert not runner.done()
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
