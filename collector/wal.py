"""Write-ahead log: where acknowledged telemetry is durable before it is indexed.

A receiver answers 200 only after `append` returns, and `append` returns only after the
record is fsync'ed. Concurrent appends share one write and one fsync (group commit), so
the cost of durability is paid per flush, not per request.

On disk: a directory of segment files named by sequence number (`00000001.wal`, ...).
Each record is framed as

    u32 payload length | u32 crc32(payload) | payload
    payload = u8 flags+encoding | u8 tenant length | tenant (utf-8)
              | [u64 received_unix_nano] | [u64 max_past_nanos | u64 max_future_nanos]
              | request body                                  (integers little-endian)

The low 6 bits of the first byte are the encoding; bit 0x80 says that the receive time
follows the tenant, bit 0x40 that the time bounds the receiver applied follow that, so
the indexer applies the very same window even if the configuration changed meanwhile.
Records written before those bits existed lack them and read with None.

A crash can leave a torn record at the end of the newest segment; `open` cuts it off. It
was never acknowledged, because its fsync had not returned.

The writer and the readers may live in different processes: the writer publishes its
durable end to a `SharedPosition`, and a `WalReader` in another process reads only up to
what was published there.
"""

from __future__ import annotations

import asyncio
import multiprocessing.context
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

_HEADER = struct.Struct("<II")
_RECEIVED = struct.Struct("<Q")
_BOUNDS = struct.Struct("<QQ")
_HAS_RECEIVED = 0x80
_HAS_BOUNDS = 0x40
_ENCODING_MASK = 0x3F
_SUFFIX = ".wal"


class WalError(OSError):
    """The log could not be written or read; appends that raise were not acknowledged."""


@dataclass(frozen=True, order=True, slots=True)
class WalPosition:
    segment: int
    offset: int

    def __str__(self) -> str:
        return f"{self.segment}:{self.offset}"

    @classmethod
    def parse(cls, text: str) -> WalPosition:
        segment, _, offset = text.partition(":")
        return cls(int(segment), int(offset))


@dataclass(frozen=True, slots=True)
class WalRecord:
    position: WalPosition
    next_position: WalPosition
    tenant: str
    encoding: int
    body: bytes
    # When the receiver took the request (time.time_ns()), and the (max past, max future)
    # nanosecond bounds it judged timestamps by; None in records written before the log
    # kept them.
    received_unix_nano: int | None = None
    time_bounds: tuple[int, int] | None = None


def encode_record(
    tenant: str,
    encoding: int,
    body: bytes,
    received_unix_nano: int | None = None,
    time_bounds: tuple[int, int] | None = None,
) -> bytes:
    tenant_bytes = tenant.encode()
    if len(tenant_bytes) > 255:
        raise ValueError("tenant id longer than 255 bytes")
    if not 0 <= encoding <= _ENCODING_MASK:
        raise ValueError(f"encoding code {encoding} does not fit in 6 bits")
    if received_unix_nano is None:
        payload = bytes((encoding, len(tenant_bytes))) + tenant_bytes + body
    elif time_bounds is None:
        payload = b"".join((
            bytes((encoding | _HAS_RECEIVED, len(tenant_bytes))),
            tenant_bytes,
            _RECEIVED.pack(received_unix_nano),
            body,
        ))
    else:
        payload = b"".join((
            bytes((encoding | _HAS_RECEIVED | _HAS_BOUNDS, len(tenant_bytes))),
            tenant_bytes,
            _RECEIVED.pack(received_unix_nano),
            _BOUNDS.pack(*time_bounds),
            body,
        ))
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


class SharedPosition:
    """A WAL position in shared memory: written by the writer process after each fsync,
    read by indexers in another process."""

    def __init__(self, context: multiprocessing.context.BaseContext, start: WalPosition) -> None:
        self._segment = context.Value("q", start.segment)
        self._offset = context.Value("q", start.offset, lock=False)

    def set(self, position: WalPosition) -> None:
        with self._segment.get_lock():
            self._segment.value = position.segment
            self._offset.value = position.offset

    def get(self) -> WalPosition:
        with self._segment.get_lock():
            return WalPosition(self._segment.value, self._offset.value)


class WalReader:
    """Reads a log whose durable end is told by `durable_end` (the writer's own state, or a
    SharedPosition published by a writer in another process)."""

    def __init__(self, directory: Path, durable_end: Callable[[], WalPosition]) -> None:
        self._dir = directory
        self._durable_end = durable_end

    @property
    def directory(self) -> Path:
        return self._dir

    @property
    def durable_end(self) -> WalPosition:
        return self._durable_end()

    @property
    def first_position(self) -> WalPosition:
        segments = self.segments()
        return WalPosition(segments[0] if segments else self.durable_end.segment, 0)

    def segments(self) -> list[int]:
        return sorted(int(p.stem) for p in self._dir.glob(f"*{_SUFFIX}") if p.stem.isdigit())

    async def wait_for_append(self, after: WalPosition) -> None:
        """Return once the durable end has moved past `after`."""
        while self.durable_end <= after:
            await asyncio.sleep(0.01)

    def bytes_between(self, start: WalPosition, end: WalPosition) -> int:
        """Log bytes from `start` to `end` (e.g. not yet indexed), counting whole segments
        in between by their file size."""
        if end <= start:
            return 0
        if start.segment == end.segment:
            return end.offset - start.offset
        total = end.offset
        for segment in self.segments():
            if start.segment <= segment < end.segment:
                size = self._path(segment).stat().st_size
                total += size - (start.offset if segment == start.segment else 0)
        return total

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self._dir.glob(f"*{_SUFFIX}"))

    def _path(self, segment: int) -> Path:
        return self._dir / f"{segment:08d}{_SUFFIX}"

    def read(
        self, start: WalPosition, max_bytes: int, end: WalPosition | None = None
    ) -> list[WalRecord]:
        """Consecutive records from `start`, about `max_bytes` of them (at least one if any),
        never past `end` nor past the durable end. Blocking: call from a thread."""
        durable = self.durable_end
        limit = min(end, durable) if end is not None else durable
        records: list[WalRecord] = []
        size = 0
        position = start
        while position < limit and size < max_bytes:
            stop = limit.offset if position.segment == limit.segment else None
            found = self._read_segment(position.segment, position.offset, stop, max_bytes - size)
            if found:
                records.extend(found)
                size += sum(len(record.body) for record in found)
                position = found[-1].next_position
            elif position.segment < limit.segment:
                self._check_sealed_end(position)
                position = WalPosition(position.segment + 1, 0)
            else:
                break
        return records

    def _check_sealed_end(self, position: WalPosition) -> None:
        """A sealed segment must end exactly where its last record does; anything after it
        is corruption on disk, which is reported rather than skipped silently."""
        size = self._path(position.segment).stat().st_size
        if position.offset != size:
            raise WalError(
                0, f"corrupt write-ahead log segment {position.segment}: no valid record at "
                f"offset {position.offset} of {size}"
            )

    def _read_segment(
        self, segment: int, offset: int, stop: int | None, max_bytes: int
    ) -> list[WalRecord]:
        """Complete records from `offset`, reading only as much of the file as needed."""
        chunk = max(max_bytes, 64 * 1024)
        with open(self._path(segment), "rb") as file:
            file.seek(offset)
            data = file.read(chunk if stop is None else min(chunk, stop - offset))
            records = list(_parse_records(segment, data, 0, base=offset))
            if records or not data:
                return records
            # The first record is larger than the chunk: read exactly that record.
            length = _HEADER.unpack_from(data, 0)[0] if len(data) >= _HEADER.size else 0
            file.seek(offset)
            data = file.read(_HEADER.size + length)
            return list(_parse_records(segment, data, 0, base=offset))[:1]

    def truncate_before(self, position: WalPosition) -> None:
        """Delete whole segments that lie entirely before `position` (already indexed)."""
        for segment in self.segments():
            if segment < position.segment:
                self._path(segment).unlink(missing_ok=True)

class WriteAheadLog(WalReader):
    """An append-only, segmented, fsync'ed log. Safe for one writer task and any number of
    reader threads; readers only ever see records whose fsync has completed."""

    def __init__(
        self, directory: Path, segment_bytes: int, publish_to: SharedPosition | None = None
    ) -> None:
        super().__init__(directory, lambda: self._durable)
        self._segment_bytes = segment_bytes
        self._publish_to = publish_to
        self._fd = -1
        self._segment = 0
        self._durable = WalPosition(1, 0)
        self._pending: list[tuple[bytes, asyncio.Future[WalPosition]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.appended = asyncio.Event()

    @classmethod
    def open(
        cls, directory: Path, segment_bytes: int, publish_to: SharedPosition | None = None
    ) -> WriteAheadLog:
        """Open (creating if needed) and recover: the newest segment is cut back to its
        last complete record. Blocking; call before serving."""
        wal = cls(directory, segment_bytes, publish_to)
        directory.mkdir(parents=True, exist_ok=True)
        segments = wal.segments()
        segment = segments[-1] if segments else 1
        end = _valid_length(wal._path(segment))
        wal._open_segment(segment, truncate_to=end)
        wal._set_durable(WalPosition(segment, end))
        return wal

    def _set_durable(self, position: WalPosition) -> None:
        self._durable = position
        if self._publish_to is not None:
            self._publish_to.set(position)

    async def wait_for_append(self, after: WalPosition) -> None:
        while self._durable <= after:
            self.appended.clear()
            await self.appended.wait()

    async def append(
        self,
        tenant: str,
        encoding: int,
        body: bytes,
        received_unix_nano: int | None = None,
        time_bounds: tuple[int, int] | None = None,
    ) -> WalPosition:
        """Append one record; returns its position once it is on disk (fsync'ed)."""
        future: asyncio.Future[WalPosition] = asyncio.get_running_loop().create_future()
        frame = encode_record(tenant, encoding, body, received_unix_nano, time_bounds)
        self._pending.append((frame, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_pending())
        return await future

    async def _flush_pending(self) -> None:
        # Appends that arrive while a flush runs wait for the next one: group commit.
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                positions = await asyncio.to_thread(self._write, [frame for frame, _ in batch])
            except OSError as exc:
                error = WalError(exc.errno, f"write-ahead log write failed: {exc}")
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), position in zip(batch, positions):
                if not future.done():
                    future.set_result(position)
            self.appended.set()

    def _write(self, frames: list[bytes]) -> list[WalPosition]:
        start = self._durable
        if start.offset >= self._segment_bytes:
            self._rotate()
            start = self._durable
        positions: list[WalPosition] = []
        offset = start.offset
        for frame in frames:
            positions.append(WalPosition(self._segment, offset))
            offset += len(frame)
        try:
            _write_all(self._fd, b"".join(frames))
            os.fdatasync(self._fd)
        except OSError:
            os.ftruncate(self._fd, start.offset)  # drop a partial write; it was never acked
            os.lseek(self._fd, start.offset, os.SEEK_SET)
            raise
        self._set_durable(WalPosition(self._segment, offset))
        return positions

    def _rotate(self) -> None:
        os.close(self._fd)
        self._open_segment(self._segment + 1, truncate_to=0)
        self._set_durable(WalPosition(self._segment, 0))
        _fsync_dir(self._dir)

    def _open_segment(self, segment: int, truncate_to: int) -> None:
        self._fd = os.open(self._path(segment), os.O_WRONLY | os.O_CREAT, 0o644)
        os.ftruncate(self._fd, truncate_to)
        os.lseek(self._fd, truncate_to, os.SEEK_SET)
        self._segment = segment

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _parse_records(
    segment: int, data: bytes, offset: int, base: int = 0
) -> Iterator[WalRecord]:
    """Complete records in `data` from `offset`; `base` is data's offset in the segment."""
    view = memoryview(data)
    while offset + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, offset)
        body_start = offset + _HEADER.size
        payload = view[body_start : body_start + length]
        if len(payload) < length or zlib.crc32(payload) != crc:
            return
        flags, tenant_length = payload[0], payload[1]
        body_offset = 2 + tenant_length
        received: int | None = None
        bounds: tuple[int, int] | None = None
        if flags & _HAS_RECEIVED:
            received = _RECEIVED.unpack_from(payload, body_offset)[0]
            body_offset += _RECEIVED.size
            if flags & _HAS_BOUNDS:
                bounds = _BOUNDS.unpack_from(payload, body_offset)
                body_offset += _BOUNDS.size
        next_offset = body_start + length
        yield WalRecord(
            position=WalPosition(segment, base + offset),
            next_position=WalPosition(segment, base + next_offset),
            tenant=bytes(payload[2 : 2 + tenant_length]).decode(),
            encoding=flags & _ENCODING_MASK,
            body=bytes(payload[body_offset:]),
            received_unix_nano=received,
            time_bounds=bounds,
        )
        offset = next_offset


def _valid_length(path: Path) -> int:
    """Length of the longest prefix of complete, checksummed records."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    end = 0
    for record in _parse_records(0, data, 0):
        end = record.next_position.offset
    return end


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
