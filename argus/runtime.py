"""Everything the main `argus serve` process owns, opened in order and closed in reverse:
stores -> indexers (reading the write-ahead logs the receiver process writes) -> query."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .collector.attribute_limits import AttributeLimits, LimitCounts
from .collector.indexer import Indexer
from .collector.ingest import record_converter
from .collector.telemetry import IndexerMetrics
from .collector.wal import WalPosition, WalReader
from .config import Settings
from .proto.otlp import Signal
from .query.service import QueryService
from .storage.registry import Stores, open_embedded

log = logging.getLogger("argus")

# How long a graceful shutdown waits for indexers to index what the log holds.
_DRAIN_SECONDS = 10.0


@dataclass(slots=True)
class Runtime:
    settings: Settings
    stores: Stores
    indexers: dict[Signal, Indexer]
    query: QueryService
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    ready: bool = False

    @classmethod
    async def open(
        cls,
        settings: Settings,
        wals: Mapping[Signal, WalReader],
        publish_indexed: Mapping[Signal, Callable[[WalPosition], None]],
    ) -> Runtime:
        stores = await open_embedded(settings.data_dir)
        indexer_metrics = IndexerMetrics.create()
        attribute_limits = AttributeLimits(
            settings.limits.max_attributes_per_item, settings.limits.max_attribute_value_length
        )
        indexers = {
            signal: Indexer(
                name=signal.value,
                wal=wal,
                convert=record_converter(
                    signal,
                    attribute_limits,
                    _count_limited(indexer_metrics, signal),
                    time_bounds=settings.limits,
                ),
                sink=_sink_for(stores, signal),
                batch_bytes=settings.ingest.index_batch_bytes,
                state_dir=wal.directory,
                publish_applied=publish_indexed[signal],
                metrics=indexer_metrics,
            )
            for signal, wal in wals.items()
        }
        return cls(settings, stores, indexers, QueryService(stores, settings.query))

    def start(self) -> None:
        for indexer in self.indexers.values():
            self.tasks.append(asyncio.create_task(indexer.run(), name=f"{indexer.name} indexer"))
        self.ready = True

    def indexing_status(self) -> dict[str, dict[str, int]]:
        return {
            signal.value: {
                "lag_bytes": indexer.lag_bytes(),
                "indexed_items": indexer.stats.items,
                "dead_letters": indexer.stats.dead_letters,
                "store_failures": indexer.stats.store_failures,
            }
            for signal, indexer in self.indexers.items()
        }

    async def close(self) -> None:
        """Give indexers a bounded time to catch up, then stop and close everything.
        Nothing acknowledged is lost either way: what is not indexed stays in the log."""
        self.ready = False
        await self._drain()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.stores.close()

    async def _drain(self) -> None:
        pending = [
            indexer.caught_up.wait() for indexer in self.indexers.values() if indexer.lag()
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


def _sink_for(stores: Stores, signal: Signal) -> Callable[[str, Sequence[Any], str], Awaitable[None]]:
    if signal is Signal.TRACES:
        return stores.traces.write_spans
    if signal is Signal.METRICS:
        return stores.metrics.write_points
    return stores.logs.write_logs
