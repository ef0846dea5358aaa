"""A bound on the request bytes the receivers hold in memory at once.

Each request reserves its body as it arrives (and its inflated size after gzip) and gives
it back when answered. A request that would take the total over the limit is refused at
once with a retryable error rather than queued: a queue would hold its connection and
buffers, which is the memory this exists to bound. One request is always let in when
nothing else is held, so a limit below one large body cannot stall ingest forever.

The receivers run on one event loop: no lock is needed.
"""

from __future__ import annotations

from typing import Self

from prometheus_client import Gauge

from .errors import Unavailable


class InflightBytes:
    def __init__(self, limit: int, gauge: Gauge | None = None) -> None:
        self.limit = limit
        self.used = 0
        self._gauge = gauge

    def reserve(self, size: int) -> None:
        """Take `size` bytes; raises Unavailable (nothing taken) over the limit."""
        if self.used and self.used + size > self.limit:
            raise Unavailable(
                f"receiver memory limit reached ({self.used} of {self.limit} bytes held"
                " by requests in progress); retry later",
                retry_after_seconds=1,
            )
        self.used += size
        if self._gauge is not None:
            self._gauge.set(self.used)

    def release(self, size: int) -> None:
        self.used -= size
        if self._gauge is not None:
            self._gauge.set(self.used)

    def hold(self) -> Held:
        return Held(self)


class Held:
    """The bytes one request holds; all given back when the `with` block ends."""

    __slots__ = ("_budget", "size")

    def __init__(self, budget: InflightBytes) -> None:
        self._budget = budget
        self.size = 0

    def add(self, size: int) -> None:
        self._budget.reserve(size)
        self.size += size

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._budget.release(self.size)
        self.size = 0
