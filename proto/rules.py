"""The per-item validation rules, shared by the protobuf and the JSON paths.

Every rule is a predicate over fields read the same way from either encoding (ids as raw
bytes), so both paths reject exactly the same items for the same reasons. A predicate
returns None for a valid item, else the reason shown to the client.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .time_window import TimeWindow

_ZERO_TRACE_ID = bytes(16)
_ZERO_SPAN_ID = bytes(8)

BAD_TRACE_ID = "invalid trace id (must be 16 bytes, not all zero)"
BAD_SPAN_ID = "invalid span id (must be 8 bytes, not all zero)"
BAD_PARENT_SPAN_ID = "invalid parent span id (must be empty or 8 bytes)"
BAD_LINK = "invalid link (trace id must be 16 bytes and span id 8 bytes, neither all zero)"
BAD_LOG_TRACE_ID = "invalid trace id (must be empty or 16 bytes)"
BAD_LOG_SPAN_ID = "invalid span id (must be empty or 8 bytes)"
EMPTY_METRIC_NAME = "empty metric name"
NO_NUMBER_VALUE = "no value (a number data point needs asInt or asDouble)"
BAD_BUCKET_COUNTS = "bucketCounts not len(explicitBounds) + 1 long"
BAD_EXPLICIT_BOUNDS = "explicitBounds not strictly increasing (or NaN)"

# Cap on distinct notes in one message, so a request with many odd metrics cannot make
# the response as large as the request.
_MAX_NOTES = 5


@dataclass(slots=True)
class Validation:
    """What validate() found: counts of spans / data points / log records. Of the
    rejected, `rejected_too_old` and `rejected_in_future` were rejected for their timestamp
    alone (an item that breaks another rule is counted for that one)."""

    accepted: int
    rejected: int
    message: str
    rejected_too_old: int = 0
    rejected_in_future: int = 0


def span_problem(trace_id: bytes, span_id: bytes, parent_span_id: bytes) -> str | None:
    if len(trace_id) != 16 or trace_id == _ZERO_TRACE_ID:
        return BAD_TRACE_ID
    if len(span_id) != 8 or span_id == _ZERO_SPAN_ID:
        return BAD_SPAN_ID
    if parent_span_id and len(parent_span_id) != 8:
        return BAD_PARENT_SPAN_ID
    return None


def parent_hex(parent_span_id: bytes) -> str:
    """The parent id as stored: "" for a root, which some SDKs send as eight zero bytes."""
    return "" if parent_span_id == _ZERO_SPAN_ID else parent_span_id.hex()


def link_problem(trace_id: bytes, span_id: bytes) -> str | None:
    if len(trace_id) != 16 or trace_id == _ZERO_TRACE_ID:
        return BAD_LINK
    if len(span_id) != 8 or span_id == _ZERO_SPAN_ID:
        return BAD_LINK
    return None


def log_problem(trace_id: bytes, span_id: bytes) -> str | None:
    if trace_id and len(trace_id) != 16:
        return BAD_LOG_TRACE_ID
    if span_id and len(span_id) != 8:
        return BAD_LOG_SPAN_ID
    return None


def no_data_note(metric_name: str) -> str:
    """The note for a Metric with no data set: it counts as nothing, but is worth a word."""
    return f"metric {metric_name[:100]!r} has no data"


def histogram_problem(bucket_count_len: int, explicit_bounds: Sequence[float]) -> str | None:
    if bucket_count_len and bucket_count_len != len(explicit_bounds) + 1:
        return BAD_BUCKET_COUNTS
    previous: float | None = None
    for bound in explicit_bounds:
        # NaN has no place in an ordered list of bounds.
        if math.isnan(bound) or (previous is not None and not previous < bound):
            return BAD_EXPLICIT_BOUNDS
        previous = bound
    return None


class Tally:
    """Counts accepted and rejected items of one request and words the result. It also
    carries the request's time window (None: no timestamp is judged) to the walkers."""

    __slots__ = (
        "_extra_notes", "_notes", "_plural", "_reasons", "_singular", "accepted", "window"
    )

    def __init__(self, singular: str, plural: str, window: TimeWindow | None = None) -> None:
        self._singular = singular
        self._plural = plural
        self.window = window
        self.accepted = 0
        self._reasons: dict[str, int] = {}
        self._notes: list[str] = []
        self._extra_notes = 0

    def reject(self, reason: str, count: int = 1) -> None:
        self._reasons[reason] = self._reasons.get(reason, 0) + count

    def note(self, text: str) -> None:
        """Something the client should hear about that rejects nothing."""
        if text in self._notes:
            return
        if len(self._notes) < _MAX_NOTES:
            self._notes.append(text)
        else:
            self._extra_notes += 1

    def validation(self) -> Validation:
        rejected = sum(self._reasons.values())
        parts: list[str] = []
        if rejected:
            noun = self._singular if rejected == 1 else self._plural
            if len(self._reasons) == 1:
                detail = next(iter(self._reasons))
            else:
                detail = "; ".join(
                    f"{count} with {reason}" for reason, count in self._reasons.items()
                )
            parts.append(f"{rejected} {noun} rejected: {detail}")
        parts.extend(self._notes)
        if self._extra_notes:
            parts.append(f"and {self._extra_notes} more notes")
        too_old = in_future = 0
        window = self.window
        if window is not None and rejected:
            too_old = self._reasons.get(window.too_old, 0)
            in_future = self._reasons.get(window.in_future, 0)
        return Validation(self.accepted, rejected, "; ".join(parts), too_old, in_future)
