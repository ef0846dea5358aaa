"""Moves acknowledged records from the write-ahead log into a store, exactly once.

The indexer keeps a checkpoint file beside the log: the position up to which everything
is in the store, and, while a store write is in flight, where that batch ends. The batch
id given to the store is derived from the batch's start position, so after a crash the
same batch is rebuilt from the same records with the same id, and the store (idempotent
per batch id) applies it at most once.

A signal that fans out to several sinks has one indexer per sink over the same log, each
with its own checkpoint: the log is every sink's on-disk spool, and a sink that is down
simply resumes from its checkpoint when it is back. A segment is deleted only once every
sink has passed it (`SharedTruncation`). The primary sink (the one queries read) holds
the receivers back when it falls behind (backpressure); a secondary sink must never do
that, so it has `max_lag_bytes`: beyond it, it gives up its oldest unsent data, which is
logged and counted (`argus_sink_dropped_bytes_total`), never silently lost.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..storage.errors import PermanentStoreError
from .telemetry import IndexerMetrics
from .wal import WalPosition, WalReader, WalRecord

log = logging.getLogger("argus.indexer")

# Converts one WAL record (tenant, encoding, body) into model items; must not raise for a
# record the receiver accepted, but if it does the record goes to the dead-letter file.
Convert = Callable[[WalRecord], Sequence[Any]]
Sink = Callable[[str, Sequence[Any], str], Awaitable[None]]


@dataclass(slots=True)
class Checkpoint:
    applied: WalPosition
    pending_end: WalPosition | None = None


class CheckpointFile:
    def __init__(self, path: Path) -> None:
        self._path = path

    def load(self, default: WalPosition) -> Checkpoint:
        try:
            data = json.loads(self._path.read_text())
        except FileNotFoundError:
            return Checkpoint(default)
        pending = data.get("pending_end")
        return Checkpoint(
            WalPosition.parse(data["applied"]),
            WalPosition.parse(pending) if pending else None,
        )

    def save(self, checkpoint: Checkpoint) -> None:
        """Atomically replace the checkpoint (write, fsync, rename)."""
        pending = checkpoint.pending_end
        text = json.dumps(
            {"applied": str(checkpoint.applied), "pending_end": str(pending) if pending else None}
        )
        tmp = self._path.with_suffix(".tmp")
        with open(tmp, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, self._path)


@dataclass(slots=True)
class IndexerStats:
    batches: int = 0
    items: int = 0
    dead_letters: int = 0
    store_failures: int = 0
    dropped_bytes: int = 0
    last_error: str | None = None  # of the write being retried now; None while healthy


class SharedTruncation:
    """Deletes a log's segments only once every one of its indexers has passed them."""

    def __init__(self, wal: WalReader, names: Sequence[str]) -> None:
        self._wal = wal
        self._positions: dict[str, WalPosition | None] = dict.fromkeys(names)

    def applied(self, name: str, position: WalPosition) -> None:
        """Blocking (deletes files): call from a thread."""
        self._positions[name] = position
        known = [p for p in self._positions.values() if p is not None]
        if len(known) == len(self._positions):
            self._wal.truncate_before(min(known))


class _TooFarBehind(Exception):
    """A secondary sink's backlog passed its limit while a write was being retried."""


class Indexer:
    """One per signal: WAL -> convert (in a worker thread) -> store, in order."""

    def __init__(
        self,
        name: str,
        wal: WalReader,
        convert: Convert,
        sink: Sink,
        batch_bytes: int,
        state_dir: Path,
        publish_applied: Callable[[WalPosition], None] | None = None,
        metrics: IndexerMetrics | None = None,
        sink_name: str = "embedded",
        truncation: SharedTruncation | None = None,
        max_lag_bytes: int | None = None,
        on_written: Callable[[str, Sequence[Any]], None] | None = None,
    ) -> None:
        self.name = name
        self.sink_name = sink_name
        self._wal = wal
        self._convert = convert
        self._sink = sink
        self._batch_bytes = batch_bytes
        # Per sink; the embedded sink keeps the names from before sinks could fan out.
        suffix = "" if sink_name == "embedded" else f"-{sink_name}"
        self._checkpoints = CheckpointFile(state_dir / f"checkpoint{suffix}.json")
        self._truncation = truncation or SharedTruncation(wal, [sink_name])
        self._max_lag_bytes = max_lag_bytes
        # Told (tenant, items) after each successful store write: live subscriptions.
        self._on_written = on_written
        self._dead_letters = state_dir / f"dead-letter{suffix}.log"
        self.stats = IndexerStats()
        self._applied = WalPosition(0, 0)
        self._publish_applied = publish_applied or (lambda position: None)
        self._metrics = metrics or IndexerMetrics.create()
        self.caught_up = asyncio.Event()

    @property
    def applied(self) -> WalPosition:
        return self._applied

    def lag(self) -> bool:
        return self._applied < self._wal.durable_end

    def lag_bytes(self) -> int:
        """Acknowledged bytes not yet in the store."""
        return self._wal.bytes_between(self._applied, self._wal.durable_end)

    async def run(self) -> None:
        """Index until cancelled. Store failures are retried with backoff forever: the
        data is safe in the log meanwhile."""
        checkpoint = self._checkpoints.load(self._wal.first_position)
        self._applied = max(checkpoint.applied, self._wal.first_position)
        self._publish_applied(self._applied)
        await asyncio.to_thread(self._truncation.applied, self.sink_name, self._applied)
        if checkpoint.pending_end is not None:
            await self._index(checkpoint.pending_end)
        while True:
            if not await self._index(None):
                self.caught_up.set()
                await self._wal.wait_for_append(self._applied)
                self.caught_up.clear()

    async def _index(self, end: WalPosition | None) -> bool:
        """Index one batch (exactly up to `end` when given); False when there was none."""
        if self._too_far_behind():
            await self._skip_ahead()
            end = None  # a pending batch, if any, was among what was given up
        records = await asyncio.to_thread(self._wal.read, self._applied, self._batch_bytes, end)
        if not records:
            return False
        batch_end = records[-1].next_position
        await asyncio.to_thread(self._checkpoints.save, Checkpoint(self._applied, batch_end))
        by_tenant = await asyncio.to_thread(self._convert_all, records)
        for tenant, items in by_tenant.items():
            try:
                await self._write_with_retry(tenant, items, f"{self._applied}/{tenant}")
                self._written(tenant, items)
            except PermanentStoreError as exc:
                for record in records:
                    if record.tenant == tenant:
                        await asyncio.to_thread(self._dead_letter, record, exc)
            except _TooFarBehind:
                await self._skip_ahead()
                return True
        self._applied = batch_end
        self._publish_applied(batch_end)
        await asyncio.to_thread(self._finish_batch, batch_end)
        self.stats.batches += 1
        return True

    def _written(self, tenant: str, items: list[Any]) -> None:
        if self._on_written is None or not items:
            return
        try:
            self._on_written(tenant, items)
        except Exception:
            log.exception("%s indexer: on_written callback failed", self.name)

    def _finish_batch(self, batch_end: WalPosition) -> None:
        self._checkpoints.save(Checkpoint(batch_end))
        self._truncation.applied(self.sink_name, batch_end)

    def _too_far_behind(self) -> bool:
        return self._max_lag_bytes is not None and self.lag_bytes() > self._max_lag_bytes

    async def _skip_ahead(self) -> None:
        """Give up the oldest whole segments until the backlog is within max_lag_bytes."""
        assert self._max_lag_bytes is not None
        durable = self._wal.durable_end
        target = self._applied
        for segment in self._wal.segments():
            candidate = WalPosition(segment, 0)
            if candidate <= target:
                continue
            target = candidate
            if self._wal.bytes_between(target, durable) <= self._max_lag_bytes:
                break
        if target == self._applied:
            return
        dropped = self._wal.bytes_between(self._applied, target)
        log.error(
            "%s: sink more than %d bytes behind; gave up %d bytes of its backlog (%s to %s)",
            self.name, self._max_lag_bytes, dropped, self._applied, target,
        )
        self.stats.dropped_bytes += dropped
        self._metrics.dropped_bytes.labels(self.name, self.sink_name).inc(dropped)
        self._applied = target
        self._publish_applied(target)
        await asyncio.to_thread(self._finish_batch, target)

    def _convert_all(self, records: list[WalRecord]) -> dict[str, list[Any]]:
        by_tenant: dict[str, list[Any]] = {}
        for record in records:
            try:
                items = self._convert(record)
            except Exception as exc:  # noqa: BLE001 - a conversion bug must not lose the record
                self._dead_letter(record, exc)
                continue
            by_tenant.setdefault(record.tenant, []).extend(items)
        return by_tenant

    def _dead_letter(self, record: WalRecord, exc: Exception) -> None:
        self.stats.dead_letters += 1
        self._metrics.dead_letters.labels(self.name, self.sink_name).inc()
        log.error("%s indexer: cannot convert WAL record %s: %r", self.name, record.position, exc)
        with open(self._dead_letters, "ab") as file:
            header = json.dumps(
                {"position": str(record.position), "tenant": record.tenant,
                 "encoding": record.encoding, "error": repr(exc), "size": len(record.body)}
            )
            file.write(header.encode() + b"\n" + record.body + b"\n")

    async def _write_with_retry(self, tenant: str, items: list[Any], batch_id: str) -> None:
        delay = 0.1
        while True:
            started = time.perf_counter()
            try:
                await self._sink(tenant, items, batch_id)
                self._metrics.store_write_seconds.labels(self.name, self.sink_name).observe(
                    time.perf_counter() - started
                )
                self._metrics.indexed_items.labels(self.name, self.sink_name).inc(len(items))
                self.stats.items += len(items)
                self.stats.last_error = None
                return
            except PermanentStoreError:
                raise
            except Exception as exc:  # noqa: BLE001 - retried: a store may be down for a while
                self.stats.store_failures += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"[:500]
                self._metrics.store_failures.labels(self.name, self.sink_name).inc()
                log.warning("%s indexer: store write failed (%r); retrying in %.1fs", self.name, exc, delay)
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 10.0)
                if self._too_far_behind():
                    raise _TooFarBehind from None
