"""Everything the main `argus serve` process owns, opened in order and closed in reverse:
stores -> indexers (reading the write-ahead logs the receiver process writes) -> query."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from .collector.attribute_limits import AttributeLimits, LimitCounts
from .collector.indexer import Indexer, SharedTruncation
from .collector.ingest import record_converter
from .collector.telemetry import IndexerMetrics
from .collector.wal import WalPosition, WalReader
from .config import RetentionSettings, Settings
from .proto.otlp import Signal
from .query.live import LiveHub
from .query.service import QueryService
from .storage.retention import RetentionPolicy, RetentionTask
from .stores import OpenedStores, open_stores

log = logging.getLogger("argus")

# How long a graceful shutdown waits for indexers to index what the log holds.
_DRAIN_SECONDS = 10.0


@dataclass(slots=True)
class Runtime:
    settings: Settings
    stores: OpenedStores
    indexers: dict[Signal, list[Indexer]]
    query: QueryService
    live: LiveHub = field(default_factory=LiveHub)  # what the primary sinks just stored
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    ready: bool = False

    @classmethod
    async def open(
        cls,
        settings: Settings,
        wals: Mapping[Signal, WalReader],
        publish_indexed: Mapping[Signal, Callable[[WalPosition], None]],
    ) -> Runtime:
        stores = await open_stores(settings)
        indexer_metrics = IndexerMetrics.create()
        attribute_limits = AttributeLimits(
            settings.limits.max_attributes_per_item, settings.limits.max_attribute_value_length
        )
        indexers: dict[Signal, list[Indexer]] = {}
        live = LiveHub()
        for signal, wal in wals.items():
            sinks = stores.sinks[signal]
            truncation = SharedTruncation(wal, [sink.name for sink in sinks])
            # One indexer per sink, each converting for itself: sinks move independently.
            indexers[signal] = [
                Indexer(
                    name=signal.value,
                    wal=wal,
                    convert=record_converter(
                        signal,
                        attribute_limits,
                        _count_limited(indexer_metrics, signal) if sink.primary else None,
                        time_bounds=settings.limits,
                    ),
                    sink=sink.write,
                    batch_bytes=settings.ingest.index_batch_bytes,
                    state_dir=wal.directory,
                    # The primary's position is what backpressure watches; a secondary
                    # never holds the receivers back, it gives up old data instead.
                    publish_applied=publish_indexed[signal] if sink.primary else None,
                    metrics=indexer_metrics,
                    sink_name=sink.name,
                    truncation=truncation,
                    max_lag_bytes=None if sink.primary else settings.ingest.max_secondary_lag_bytes,
                    on_written=partial(live.published, signal.value) if sink.primary else None,
                )
                for sink in sinks
            ]
        return cls(settings, stores, indexers, QueryService(stores.primary, settings.query), live)

    def start(self) -> None:
        for indexer in self._all_indexers():
            self.tasks.append(asyncio.create_task(
                indexer.run(), name=f"{indexer.name}/{indexer.sink_name} indexer"
            ))
        policy = retention_policy(self.settings.retention)
        if any(not policy.keeps_everything(signal.value) for signal in Signal):
            removed = IndexerMetrics.retention_counter()
            for sink_name, stores in _stores_by_sink(self.stores).items():
                task = RetentionTask(stores, policy, on_removed=_count_removed(removed, sink_name))
                self.tasks.append(asyncio.create_task(
                    task.run(self.settings.retention.interval_seconds),
                    name=f"retention on {sink_name}",
                ))
        self.ready = True

    def _all_indexers(self) -> list[Indexer]:
        return [indexer for group in self.indexers.values() for indexer in group]

    def indexing_status(self) -> dict[str, dict[str, Any]]:
        """Per signal: the primary sink's figures (what queries see), and every sink's."""
        status: dict[str, dict[str, Any]] = {}
        for signal, group in self.indexers.items():
            primary = group[0]
            status[signal.value] = {
                "lag_bytes": primary.lag_bytes(),
                "indexed_items": primary.stats.items,
                "dead_letters": primary.stats.dead_letters,
                "store_failures": primary.stats.store_failures,
                "sinks": {indexer.sink_name: _sink_status(indexer, index == 0)
                          for index, indexer in enumerate(group)},
            }
        return status

    async def close(self) -> None:
        """Give indexers a bounded time to catch up, then stop and close everything.
        Nothing acknowledged is lost either way: what is not indexed stays in the log."""
        self.ready = False
        await self._drain()
        self.live.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.stores.close()

    async def _drain(self) -> None:
        # A sink that is failing now would only use up the time: it resumes at next start.
        pending = [
            indexer.caught_up.wait() for indexer in self._all_indexers()
            if indexer.lag() and indexer.stats.last_error is None
        ]
        if not pending:
            return
        try:
            await asyncio.wait_for(asyncio.gather(*pending), _DRAIN_SECONDS)
        except TimeoutError:
            log.warning("shutdown: indexing not finished; the rest resumes at next start")


def _count_limited(metrics: IndexerMetrics, signal: Signal) -> Callable[[LimitCounts], None]:
    def count(counts: LimitCounts) -> None:
        metrics.limited_attributes.labels(signal.value, "dropped").inc(counts.dropped)
        metrics.limited_attributes.labels(signal.value, "truncated").inc(counts.truncated)

    return count


def retention_policy(settings: RetentionSettings) -> RetentionPolicy:
    """Days from the settings as the seconds RetentionPolicy counts in."""

    def seconds(days: float) -> int:
        return round(days * 86_400)

    tenants = {
        tenant: {
            signal: seconds(days)
            for signal, days in (("traces", override.traces_days),
                                 ("metrics", override.metrics_days),
                                 ("logs", override.logs_days))
            if days is not None
        }
        for tenant, override in settings.tenants.items()
    }
    return RetentionPolicy(
        traces=seconds(settings.traces_days),
        metrics=seconds(settings.metrics_days),
        logs=seconds(settings.logs_days),
        tenants=tenants,
    )


def _stores_by_sink(stores: OpenedStores) -> dict[str, dict[str, Any]]:
    """{sink name: {signal: store}}: one retention task per backend."""
    grouped: dict[str, dict[str, Any]] = {}
    for signal, sinks in stores.sinks.items():
        for sink in sinks:
            grouped.setdefault(sink.name, {})[signal.value] = sink.store
    return grouped


def _count_removed(counter: Any, sink: str) -> Callable[[str, str, int], None]:
    def count(signal: str, tenant: str, removed: int) -> None:
        if removed > 0:
            counter.labels(signal, sink, tenant).inc(removed)

    return count


def _sink_status(indexer: Indexer, primary: bool) -> dict[str, Any]:
    stats = indexer.stats
    return {
        "primary": primary,
        "healthy": stats.last_error is None,
        "last_error": stats.last_error,
        "lag_bytes": indexer.lag_bytes(),
        "indexed_items": stats.items,
        "store_failures": stats.store_failures,
        "dead_letters": stats.dead_letters,
        "dropped_bytes": stats.dropped_bytes,
    }
