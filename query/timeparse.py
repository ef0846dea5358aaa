"""Times and durations as people type them in queries.

Times: RFC 3339 (`2026-11-22T10:00:00Z`), Unix nanoseconds (`1732269600000000000`), or
relative to now (`now`, `now-1h`, `-15m`). Durations: `250ms`, `1.5s`, `2m`, `1h30m`,
`7d`, or plain nanoseconds.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
    "d": 86400 * 1_000_000_000,
    "w": 7 * 86400 * 1_000_000_000,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d|w)")


class TimeFormatError(ValueError):
    pass


def parse_duration(text: str | int) -> int:
    """Nanoseconds in a duration; TimeFormatError when it is not one."""
    if isinstance(text, int):
        return text
    compact = text.strip().replace(" ", "")
    if compact.isdigit():
        return int(compact)
    position = 0
    total = 0.0
    for match in _DURATION_PART.finditer(compact):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS_NS[match.group(2)]
        position = match.end()
    if position != len(compact) or not compact:
        raise TimeFormatError(f"invalid duration {text!r} (examples: 250ms, 1.5s, 1h30m)")
    return int(total)


def parse_time(text: str | int, now_ns: int | None = None) -> int:
    """Unix nanoseconds of a time given in any of the module's formats."""
    now = time.time_ns() if now_ns is None else now_ns
    if isinstance(text, int):
        return text
    value = text.strip()
    if value.isdigit():
        return int(value)
    if value == "now":
        return now
    if value.startswith(("now-", "-")):
        return now - parse_duration(value.removeprefix("now").removeprefix("-"))
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise TimeFormatError(
            f"invalid time {text!r} (examples: now-1h, 2026-11-22T10:00:00Z, unix nanoseconds)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp()) * 1_000_000_000 + parsed.microsecond * 1_000
