"""Attribute limits, applied as the OpenTelemetry SDKs apply theirs: at most
`max_count` attributes per span, span event, span link, log record and data point (the
rest dropped and added to the item's dropped count), and string or bytes values cut to
`max_value_length` (inside arrays too). Resource and scope attributes are left alone.

Applied by the indexer after conversion, so the request path pays nothing; items within
the limits (the normal case) cost a length check and one pass over their values.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..storage.model import AnyValue, Attributes, LogRecord, MetricPoint, Span


@dataclass(slots=True)
class LimitCounts:
    dropped: int = 0
    truncated: int = 0


@dataclass(frozen=True, slots=True)
class AttributeLimits:
    """0 turns a limit off."""

    max_count: int = 128
    max_value_length: int = 0

    @property
    def active(self) -> bool:
        return self.max_count > 0 or self.max_value_length > 0

    def apply(self, items: Iterable[Any]) -> LimitCounts:
        """Limit every item in place; returns how many attributes were dropped and values cut."""
        counts = LimitCounts()
        if not self.active:
            return counts
        for item in items:
            if isinstance(item, Span):
                item.dropped_attributes_count += self._limit(item.attributes, counts)
                for event in item.events:
                    event.dropped_attributes_count += self._limit(event.attributes, counts)
                for link in item.links:
                    link.dropped_attributes_count += self._limit(link.attributes, counts)
            elif isinstance(item, LogRecord):
                item.dropped_attributes_count += self._limit(item.attributes, counts)
            elif isinstance(item, MetricPoint):
                self._limit(item.attributes, counts)  # points have no dropped count in OTLP
        return counts

    def _limit(self, attributes: Attributes, counts: LimitCounts) -> int:
        dropped = 0
        if self.max_count and len(attributes) > self.max_count:
            # Keep the first ones, as sent; dicts keep insertion order.
            for key in list(attributes)[self.max_count :]:
                del attributes[key]
                dropped += 1
            counts.dropped += dropped
        if self.max_value_length:
            for key, value in attributes.items():
                cut = self._cut(value)
                if cut is not value:
                    attributes[key] = cut
                    counts.truncated += 1
        return dropped

    def _cut(self, value: AnyValue) -> AnyValue:
        """The value within the length limit; the same object when nothing was cut."""
        limit = self.max_value_length
        if isinstance(value, (str, bytes)):
            return value[:limit] if len(value) > limit else value
        if isinstance(value, list):
            cut_items = [self._cut(item) for item in value]
            if any(new is not old for new, old in zip(cut_items, value)):
                return cut_items
        return value
