"""Per-tenant token buckets, driven by an explicit clock."""

from __future__ import annotations

import pytest
from argus.collector.errors import Throttled
from argus.collector.ratelimit import RateLimits, TenantRateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_requests_beyond_the_burst_are_throttled_until_refilled() -> None:
    clock = Clock()
    limiter = TenantRateLimiter(RateLimits(requests_per_second=2, items_per_second=0, burst_seconds=1), clock=clock)
    limiter.admit_request("a")
    limiter.admit_request("a")
    with pytest.raises(Throttled) as refused:
        limiter.admit_request("a")
    assert refused.value.retry_after_seconds == 1 and "2 requests/s" in str(refused.value)
    limiter.admit_request("b")  # tenants have their own buckets
    clock.now += 0.5
    limiter.admit_request("a")


def test_a_batch_larger_than_the_burst_passes_once_then_its_debt_delays_the_next() -> None:
    clock = Clock()
    limiter = TenantRateLimiter(RateLimits(requests_per_second=0, items_per_second=100, burst_seconds=1), clock=clock)
    limiter.admit_items("a", 500)  # full bucket: granted, 400 items of debt
    with pytest.raises(Throttled) as refused:
        limiter.admit_items("a", 1)
    assert refused.value.retry_after_seconds == 5  # (1 + 400) / 100 s, rounded up
    clock.now += 4.02
    limiter.admit_items("a", 1)


def test_zero_means_unlimited() -> None:
    limiter = TenantRateLimiter(RateLimits(0, 0), clock=Clock())
    for _ in range(10_000):
        limiter.admit_request("a")
        limiter.admit_items("a", 10**6)


def test_a_tenant_override_replaces_the_default_limits() -> None:
    clock = Clock()
    limiter = TenantRateLimiter(
        RateLimits(requests_per_second=1, items_per_second=0, burst_seconds=1),
        {"big": RateLimits(requests_per_second=100, items_per_second=0, burst_seconds=1)},
        clock=clock,
    )
    limiter.admit_request("small")
    with pytest.raises(Throttled):
        limiter.admit_request("small")
    for _ in range(100):
        limiter.admit_request("big")
    with pytest.raises(Throttled):
        limiter.admit_request("big")
