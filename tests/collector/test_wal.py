"""The write-ahead log: group commit, segments, reads, torn-tail recovery."""

from __future__ import annotations

import asyncio
import os
import struct
import zlib
from pathlib import Path

import pytest
from argus.collector.wal import WalError, WalPosition, WriteAheadLog


async def test_concurrent_appends_are_all_readable_in_order(tmp_path: Path) -> None:
    wal = WriteAheadLog.open(tmp_path, segment_bytes=1 << 20)
    bodies = [os.urandom(100 + index) for index in range(50)]
    positions = await asyncio.gather(*(wal.append("t1", 1, body) for body in bodies))
    assert positions == sorted(positions) and len(set(positions)) == 50
    records = wal.read(WalPosition(1, 0), max_bytes=1 << 30)
    assert [record.body for record in records] == bodies
    assert {record.tenant for record in records} == {"t1"}
    assert wal.durable_end == records[-1].next_position
    wal.close()


async def test_segments_rotate_and_reads_cross_them(tmp_path: Path) -> None:
    wal = WriteAheadLog.open(tmp_path, segment_bytes=1000)
    for index in range(12):
        await wal.append(f"tenant-{index % 2}", 2, bytes([index]) * 400)
    assert len(wal.segments()) > 3
    records = wal.read(WalPosition(1, 0), max_bytes=1 << 30)
    assert [record.body[0] for record in records] == list(range(12))
    assert [record.tenant for record in records[:2]] == ["tenant-0", "tenant-1"]
    middle = records[5].position
    assert wal.read(middle, max_bytes=1 << 30)[0].body == records[5].body
    wal.truncate_before(middle)
    assert wal.segments()[0] == middle.segment
    wal.close()


async def test_read_stops_at_end_bound(tmp_path: Path) -> None:
    wal = WriteAheadLog.open(tmp_path, segment_bytes=1 << 20)
    for index in range(5):
        await wal.append("t", 1, b"x" * 10)
    all_records = wal.read(WalPosition(1, 0), 1 << 30)
    bounded = wal.read(WalPosition(1, 0), 1 << 30, end=all_records[2].position)
    assert len(bounded) == 2
    wal.close()


async def test_torn_tail_is_cut_off_at_open(tmp_path: Path) -> None:
    wal = WriteAheadLog.open(tmp_path, segment_bytes=1 << 20)
    for _ in range(3):
        await wal.append("t", 1, b"complete")
    end = wal.durable_end
    wal.close()
    _append_raw(tmp_path / "00000001.wal", b"\x40\x00\x00\x00\x01\x02\x03\x04half a record")
    reopened = WriteAheadLog.open(tmp_path, segment_bytes=1 << 20)
    assert reopened.durable_end == end
    assert [r.body for r in reopened.read(WalPosition(1, 0), 1 << 30)] == [b"complete"] * 3
    await reopened.append("t", 1, b"after")
    assert reopened.read(end, 1 << 30)[0].body == b"after"
    reopened.close()


async def test_corrupted_record_ends_the_readable_log(tmp_path: Path) -> None:
    wal = WriteAheadLog.open(tmp_path, segment_bytes=1 << 20)
    first = await wal.append("t", 1, b"first")
    second = await wal.append("t", 1, b"second")
    wal.close()
    data = bytearray((tmp_path / "00000001.wal").read_bytes())
    data[second.offset + 12] ^= 0xFF  # flip a byte in the second record's payload
    (tmp_path / "00000001.wal").write_bytes(bytes(data))
    reopened = WriteAheadLog.open(tmp_path, segment_bytes=1 << 20)
    assert [r.body for r in reopened.read(first, 1 << 30)] == [b"first"]
    reopened.close()


async def test_reading_in_small_batches_returns_every_record_once_in_order(tmp_path: Path) -> None:
    """The indexer's access pattern: read a little, advance, read again, across segments."""
    wal = WriteAheadLog.open(tmp_path, segment_bytes=50_000)
    bodies = [index.to_bytes(4, "big") * 250 for index in range(400)]  # 1,000 bytes each
    for chunk in range(0, 400, 20):
        await asyncio.gather(*(wal.append("t", 1, body) for body in bodies[chunk : chunk + 20]))
    assert len(wal.segments()) >= 5
    seen: list[bytes] = []
    position = WalPosition(1, 0)
    while batch := wal.read(position, max_bytes=3_000):
        seen.extend(record.body for record in batch)
        position = batch[-1].next_position
    assert seen == bodies
    wal.close()


async def test_garbage_in_a_sealed_segment_is_an_error_not_a_skip(tmp_path: Path) -> None:
    wal = WriteAheadLog.open(tmp_path, segment_bytes=1_000)
    for _ in range(4):
        await wal.append("t", 1, b"y" * 600)
    wal.close()
    _append_raw(tmp_path / "00000001.wal", b"garbage after the last record")
    reopened = WriteAheadLog.open(tmp_path, segment_bytes=1_000)
    first = reopened.read(WalPosition(1, 0), 10)
    with pytest.raises(WalError, match="corrupt"):
        reopened.read(first[-1].next_position, 10)
    reopened.close()


async def test_receive_time_is_kept_with_the_record(tmp_path: Path) -> None:
    wal = WriteAheadLog.open(tmp_path, segment_bytes=1 << 20)
    received = 1_750_000_000_123_456_789
    await wal.append("tenant-a", 2, b"with time", received_unix_nano=received)
    await wal.append("tenant-a", 1, b"without")
    wal.close()
    reopened = WriteAheadLog.open(tmp_path, segment_bytes=1 << 20)
    with_time, without = reopened.read(WalPosition(1, 0), 1 << 30)
    assert (with_time.tenant, with_time.encoding, with_time.body) == ("tenant-a", 2, b"with time")
    assert with_time.received_unix_nano == received
    assert (without.encoding, without.body, without.received_unix_nano) == (1, b"without", None)
    reopened.close()


async def test_records_in_the_format_before_receive_times_still_read(tmp_path: Path) -> None:
    """payload = u8 encoding | u8 tenant length | tenant | body, as written before."""
    payload = bytes((1, 2)) + b"t1" + b"old body"
    old_frame = struct.pack("<II", len(payload), zlib.crc32(payload)) + payload
    (tmp_path / "00000001.wal").write_bytes(old_frame)
    wal = WriteAheadLog.open(tmp_path, segment_bytes=1 << 20)
    assert wal.durable_end == WalPosition(1, len(old_frame))  # not cut off as torn
    await wal.append("t2", 2, b"new body", received_unix_nano=42)
    old, new = wal.read(WalPosition(1, 0), 1 << 30)
    assert (old.tenant, old.encoding, old.body, old.received_unix_nano) == (
        "t1", 1, b"old body", None,
    )
    assert (new.tenant, new.encoding, new.body, new.received_unix_nano) == ("t2", 2, b"new body", 42)
    wal.close()


async def test_time_bounds_are_kept_with_the_record(tmp_path: Path) -> None:
    wal = WriteAheadLog.open(tmp_path, 1 << 20)
    await wal.append("t", 1, b"bounded", received_unix_nano=7, time_bounds=(3600 * 10**9, 0))
    await wal.append("t", 1, b"time only", received_unix_nano=8)
    bounded, time_only = wal.read(wal.first_position, 1 << 20)
    assert (bounded.body, bounded.received_unix_nano, bounded.time_bounds) == (
        b"bounded", 7, (3600 * 10**9, 0)
    )
    assert (time_only.body, time_only.received_unix_nano, time_only.time_bounds) == (
        b"time only", 8, None
    )


def _append_raw(path: Path, data: bytes) -> None:
    """Damage a segment as a crash or a disk fault would (blocking, but tiny)."""
    with open(path, "ab") as file:
        file.write(data)
