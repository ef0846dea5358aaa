"""The indexer moves every WAL record into the sink exactly once, across crashes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest
from argus.collector.indexer import Checkpoint, CheckpointFile, Indexer, SharedTruncation
from argus.collector.wal import WalPosition, WalRecord, WriteAheadLog
from argus.storage.errors import PermanentStoreError


class IdempotentSink:
    """An in-memory store honouring the batch-id contract of the store Protocols."""

    def __init__(self, fail_times: int = 0, permanent: bool = False) -> None:
        self.items: list[tuple[str, bytes]] = []
        self.batches: set[str] = set()
        self.fail_times = fail_times
        self.permanent = permanent

    async def write(self, tenant: str, items: Sequence[bytes], batch_id: str) -> None:
        if self.permanent:
            raise PermanentStoreError("rejected")
        if self.fail_times:
            self.fail_times -= 1
            raise ConnectionError("store down")
        if batch_id in self.batches:
            return
        self.batches.add(batch_id)
        self.items.extend((tenant, item) for item in items)


def _convert(record: WalRecord) -> list[bytes]:
    if record.body == b"poison":
        raise ValueError("cannot convert")
    return [record.body]


async def _run_until_caught_up(indexer: Indexer) -> None:
    task = asyncio.create_task(indexer.run())
    try:
        for _ in range(200):
            await asyncio.sleep(0.01)
            if indexer.caught_up.is_set() and not indexer.lag():
                return
        raise AssertionError("indexer did not catch up")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _indexer(tmp_path: Path, wal: WriteAheadLog, sink: IdempotentSink) -> Indexer:
    return Indexer("test", wal, _convert, sink.write, batch_bytes=64, state_dir=tmp_path)


async def test_every_record_reaches_the_sink_once_per_tenant(tmp_path: Path) -> None:
    wal = WriteAheadLog.open(tmp_path, 1 << 20)
    for index in range(20):
        await wal.append(f"t{index % 2}", 1, f"r{index}".encode())
    sink = IdempotentSink()
    await _run_until_caught_up(_indexer(tmp_path, wal, sink))
    assert sorted(sink.items) == sorted((f"t{i % 2}", f"r{i}".encode()) for i in range(20))


async def test_crash_between_store_write_and_checkpoint_does_not_duplicate(tmp_path: Path) -> None:
    wal = WriteAheadLog.open(tmp_path, 1 << 20)
    for index in range(5):
        await wal.append("t", 1, f"r{index}".encode())
    sink = IdempotentSink()
    # Simulate the crash: the whole batch was written to the store under the id the
    # indexer derives from its start, but the checkpoint still says "pending".
    start = WalPosition(1, 0)
    records = wal.read(start, 1 << 20)
    await sink.write("t", [r.body for r in records[:3]], f"{start}/t")
    CheckpointFile(tmp_path / "checkpoint.json").save(Checkpoint(start, records[2].next_position))
    await _run_until_caught_up(_indexer(tmp_path, wal, sink))
    assert [item for _, item in sink.items] == [f"r{i}".encode() for i in range(5)]


async def test_store_failures_are_retried(tmp_path: Path) -> None:
    wal = WriteAheadLog.open(tmp_path, 1 << 20)
    await wal.append("t", 1, b"only")
    sink = IdempotentSink(fail_times=2)
    indexer = _indexer(tmp_path, wal, sink)
    await _run_until_caught_up(indexer)
    assert sink.items == [("t", b"only")] and indexer.stats.store_failures == 2


@pytest.mark.parametrize("permanent", [False, True])
async def test_unconvertible_or_refused_records_go_to_the_dead_letter_file(
    tmp_path: Path, permanent: bool
) -> None:
    wal = WriteAheadLog.open(tmp_path, 1 << 20)
    await wal.append("t", 1, b"poison" if not permanent else b"refused")
    await wal.append("t", 1, b"fine") if not permanent else None
    sink = IdempotentSink(permanent=permanent)
    indexer = _indexer(tmp_path, wal, sink)
    await _run_until_caught_up(indexer)
    dead = (tmp_path / "dead-letter.log").read_bytes()
    assert (b"poison" if not permanent else b"refused") in dead
    assert indexer.stats.dead_letters == 1
    if not permanent:
        assert sink.items == [("t", b"fine")]


class DownSink(IdempotentSink):
    """A sink that fails every write while `down` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True

    async def write(self, tenant: str, items: Sequence[bytes], batch_id: str) -> None:
        if self.down:
            raise ConnectionError("sink down")
        await super().write(tenant, items, batch_id)


def _fan_out(
    tmp_path: Path, wal: WriteAheadLog, sinks: dict[str, IdempotentSink], max_lag: int | None = None
) -> list[Indexer]:
    truncation = SharedTruncation(wal, list(sinks))
    return [
        Indexer("test", wal, _convert, sink.write, batch_bytes=64, state_dir=tmp_path,
                sink_name=name, truncation=truncation,
                max_lag_bytes=None if name == "embedded" else max_lag)
        for name, sink in sinks.items()
    ]


async def test_a_dead_sink_holds_segments_and_catches_up_when_back(tmp_path: Path) -> None:
    wal = WriteAheadLog.open(tmp_path, 256)  # tiny segments: many of them
    primary, secondary = IdempotentSink(), DownSink()
    indexers = _fan_out(tmp_path, wal, {"embedded": primary, "postgres": secondary})
    tasks = [asyncio.create_task(indexer.run()) for indexer in indexers]
    try:
        for index in range(40):
            await wal.append("t", 1, f"record-{index:03d}".encode())
        for _ in range(200):
            await asyncio.sleep(0.01)
            if len(primary.items) == 40:
                break
        assert len(primary.items) == 40  # the primary never waited for the dead sink
        assert len(wal.segments()) > 2  # the log keeps what the dead sink still needs
        assert indexers[1].stats.last_error is not None
        secondary.down = False
        for _ in range(500):
            await asyncio.sleep(0.02)
            if len(secondary.items) == 40:
                break
        assert sorted(secondary.items) == sorted(primary.items)
        assert indexers[1].stats.last_error is None
        await asyncio.sleep(0.1)
        assert len(wal.segments()) <= 2  # both passed them: deleted
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert (tmp_path / "checkpoint-postgres.json").exists()


async def test_a_secondary_sink_too_far_behind_gives_up_its_oldest_data(tmp_path: Path) -> None:
    wal = WriteAheadLog.open(tmp_path, 256)
    primary, secondary = IdempotentSink(), DownSink()
    indexers = _fan_out(tmp_path, wal, {"embedded": primary, "influxdb": secondary}, max_lag=600)
    tasks = [asyncio.create_task(indexer.run()) for indexer in indexers]
    try:
        for index in range(60):
            await wal.append("t", 1, f"record-{index:03d}".encode())
        for _ in range(300):
            await asyncio.sleep(0.02)
            if indexers[1].stats.dropped_bytes and len(primary.items) == 60:
                break
        assert indexers[1].stats.dropped_bytes > 0
        assert indexers[1].lag_bytes() <= 600 + 256
        secondary.down = False
        for _ in range(300):
            await asyncio.sleep(0.02)
            if not indexers[1].lag():
                break
        received = {item for _, item in secondary.items}
        assert received and received < {item for _, item in primary.items}
        assert b"record-059" in received  # the newest data arrived; the oldest was given up
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
