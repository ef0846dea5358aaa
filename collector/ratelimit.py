"""Per-tenant rate limits: token buckets for requests/s and items/s.

A bucket refills at `rate` tokens per second up to `burst`. A request takes what it needs
when the bucket holds that much, or is full: a request larger than the burst still passes
then, leaving the bucket in debt, and the debt delays the tenant's next requests.
That keeps limits fair without refusing big batches forever.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .errors import Throttled


@dataclass(slots=True)
class TokenBucket:
    rate: float
    burst: float
    tokens: float
    updated: float

    def take(self, amount: float, now: float) -> float:
        """Take `amount`; returns 0 when granted, else the seconds until it would be."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        needed = min(amount, self.burst)
        if self.tokens >= needed:
            self.tokens -= amount
            return 0.0
        return (needed - self.tokens) / self.rate


@dataclass(frozen=True, slots=True)
class RateLimits:
    """0 means unlimited."""

    requests_per_second: float
    items_per_second: float
    burst_seconds: float = 1.0


@dataclass
class TenantRateLimiter:
    """`limits` for every tenant, except those named in `overrides`."""

    limits: RateLimits
    overrides: Mapping[str, RateLimits] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic
    _requests: dict[str, TokenBucket] = field(default_factory=dict)
    _items: dict[str, TokenBucket] = field(default_factory=dict)

    def limits_for(self, tenant: str) -> RateLimits:
        return self.overrides.get(tenant, self.limits)

    def admit_request(self, tenant: str) -> None:
        """Before decoding: raises Throttled when the tenant sends requests too fast."""
        limits = self.limits_for(tenant)
        self._take(self._requests, tenant, 1, limits.requests_per_second, limits, "requests")

    def admit_items(self, tenant: str, count: int) -> None:
        """After validation: raises Throttled when the tenant sends items too fast."""
        if count:
            limits = self.limits_for(tenant)
            self._take(self._items, tenant, count, limits.items_per_second, limits, "items")

    def _take(
        self,
        buckets: dict[str, TokenBucket],
        tenant: str,
        amount: int,
        rate: float,
        limits: RateLimits,
        unit: str,
    ) -> None:
        if rate <= 0:
            return
        now = self.clock()
        bucket = buckets.get(tenant)
        if bucket is None:
            burst = rate * limits.burst_seconds
            bucket = buckets[tenant] = TokenBucket(rate, burst, burst, now)
        wait = bucket.take(amount, now)
        if wait:
            raise Throttled(
                f"tenant {tenant!r} exceeds its limit of {rate:g} {unit}/s; retry later",
                retry_after_seconds=max(1, int(wait + 0.999)),
            )
