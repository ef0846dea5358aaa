"""How far in the past or future an item's timestamp may lie, relative to when its request
was received.

Which timestamp is judged: a span's start_time_unix_nano; a data point's time_unix_nano
(every point kind); a log record's time_unix_nano, or its observed_time_unix_nano when
the time is 0. A log record with neither is never rejected for time (the store then uses
the receive time). A span or data point whose time is 0 is judged like any other: it lies
far in the past, so it is rejected when, and only when, a past bound is set.

The window is fixed by the receive time, not by the time of conversion: the indexer,
converting a logged request later (perhaps after a restart hours later), builds the same
window from the receive time the write-ahead log keeps, and so skips exactly the items
the receiver rejected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

_NANOS_PER_SECOND = 1_000_000_000
# Larger than any uint64 timestamp: "no future bound".
_NO_LATEST = 1 << 64
_UNITS = (("d", 86_400 * _NANOS_PER_SECOND), ("h", 3_600 * _NANOS_PER_SECOND),
          ("m", 60 * _NANOS_PER_SECOND), ("s", _NANOS_PER_SECOND))


class TimeWindow:
    """Timestamps from `now - max_past` to `now + max_future` (nanoseconds) are fine; a
    bound of 0 leaves that side unlimited."""

    __slots__ = ("bounds", "earliest", "in_future", "latest", "max_future_nanos",
                 "max_past_nanos", "now_unix_nano", "too_old")

    def __init__(self, now_unix_nano: int, max_past_nanos: int = 0, max_future_nanos: int = 0):
        if max_past_nanos < 0 or max_future_nanos < 0:
            raise ValueError("time window bounds must not be negative")
        self.now_unix_nano = now_unix_nano
        self.max_past_nanos = max_past_nanos
        self.max_future_nanos = max_future_nanos
        # Inclusive bounds; a timestamp is a uint64, so -1 lets even 0 through.
        self.earliest = now_unix_nano - max_past_nanos if max_past_nanos else -1
        self.latest = now_unix_nano + max_future_nanos if max_future_nanos else _NO_LATEST
        # For hot loops that test `earliest <= t <= latest` inline before asking for a reason.
        self.bounds = (self.earliest, self.latest)
        # The reasons shown to the client; `Tally` counts rejections by them.
        self.too_old = too_old_reason(max_past_nanos)
        self.in_future = in_future_reason(max_future_nanos)

    def time_problem(self, timestamp_unix_nano: int) -> str | None:
        """None when the timestamp is within the window, else the reason to reject."""
        if timestamp_unix_nano < self.earliest:
            return self.too_old
        if timestamp_unix_nano > self.latest:
            return self.in_future
        return None

    def log_time_problem(self, time_unix_nano: int, observed_time_unix_nano: int) -> str | None:
        """The rule for a log record: its time, else its observed time, else nothing to judge."""
        timestamp = time_unix_nano or observed_time_unix_nano
        return self.time_problem(timestamp) if timestamp else None

    def __repr__(self) -> str:
        return (f"TimeWindow({self.now_unix_nano}, max_past_nanos={self.max_past_nanos},"
                f" max_future_nanos={self.max_future_nanos})")


class TimeBoundSettings(Protocol):
    """Where the bounds come from (argus.config.LimitSettings has these two fields)."""

    @property
    def max_past_seconds(self) -> float: ...

    @property
    def max_future_seconds(self) -> float: ...


@dataclass(frozen=True, slots=True)
class TimeBounds:
    """The configured bounds, in nanoseconds (0: unlimited); `window` places them around
    a receive time."""

    max_past_nanos: int = 0
    max_future_nanos: int = 0

    @classmethod
    def from_settings(cls, settings: TimeBoundSettings | None) -> TimeBounds:
        """From seconds (0, negative or not finite: unlimited); None: no bounds at all."""
        if settings is None:
            return cls()
        return cls(_nanos(settings.max_past_seconds), _nanos(settings.max_future_seconds))

    def window(self, now_unix_nano: int) -> TimeWindow | None:
        """The window around `now_unix_nano`, or None when neither side is bounded."""
        if not (self.max_past_nanos or self.max_future_nanos):
            return None
        return TimeWindow(now_unix_nano, self.max_past_nanos, self.max_future_nanos)


def _nanos(seconds: float) -> int:
    """Seconds as nanoseconds; 0 (off) for anything not a positive finite number."""
    if not math.isfinite(seconds) or seconds <= 0:
        return 0
    return round(seconds * _NANOS_PER_SECOND)


@lru_cache(maxsize=64)
def too_old_reason(max_past_nanos: int) -> str:
    return f"timestamp more than {format_duration(max_past_nanos)} in the past"


@lru_cache(maxsize=64)
def in_future_reason(max_future_nanos: int) -> str:
    return f"timestamp more than {format_duration(max_future_nanos)} in the future"


def format_duration(nanos: int) -> str:
    """A short human form: 7d, 1h, 1h30m, 90s -> 1m30s, 0.25s."""
    if nanos % _NANOS_PER_SECOND:
        return f"{nanos / _NANOS_PER_SECOND:g}s"
    parts = []
    for unit, size in _UNITS:
        count, nanos = divmod(nanos, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
