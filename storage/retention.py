"""Retention: how long each signal's data is kept, per tenant, and the task enforcing it.

A `RetentionPolicy` gives each signal ("traces", "logs", "metrics") a default maximum age
in seconds (0: keep forever) and lets single tenants override it per signal. `enforce`
applies it to one store: it asks the store which tenants have data (`tenants()`) and
removes each tenant's data older than its cutoff (`delete_before`). A store that drops
whole partitions for every tenant at once (`drop_partitions_before`, the PostgreSQL
trace store) gets that first, for the days every tenant's cutoff has passed; the rows
left before each tenant's own cutoff are then deleted as usual.

`RetentionTask` runs `enforce` over all stores every `interval_seconds`. A failing store
is logged and tried again next round; it never stops the other stores or the loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import capabilities
from .errors import StoreError, Unsupported

log = logging.getLogger("argus.storage.retention")

TRACES = "traces"
LOGS = "logs"
METRICS = "metrics"
SIGNALS = (TRACES, LOGS, METRICS)

NS_PER_SECOND = 1_000_000_000
# The "tenant" of a removal that hit every tenant at once: dropped day partitions.
ALL_TENANTS = "*"

# Called as on_removed(signal, tenant, count) after data was removed: count > 0 items, or
# -1 when the backend removed data without counting it (InfluxDB; dropped partitions,
# reported once as tenant ALL_TENANTS).
OnRemoved = Callable[[str, str, int], None]


class RetainingStore(Protocol):
    """What retention needs of a store; every TraceStore, LogStore and MetricStore has it."""

    async def tenants(self) -> list[str]: ...

    async def delete_before(self, tenant: str, cutoff_unix_nano: int) -> int: ...


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Maximum ages in seconds per signal; 0 keeps data forever.

    `tenants` overrides the defaults for single tenants, signal by signal:
    `{"acme": {"logs": 30 * 86400}}` keeps acme's logs 30 days and everything else of
    acme as long as the defaults say; an override of 0 keeps that signal forever.

        RetentionPolicy(metrics=30 * 86400, logs=7 * 86400, traces=3 * 86400)
    """

    traces: int = 0
    logs: int = 0
    metrics: int = 0
    tenants: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for signal in SIGNALS:
            _check_age(f"{signal} retention", getattr(self, signal))
        for tenant, overrides in self.tenants.items():
            for signal, seconds in overrides.items():
                if signal not in SIGNALS:
                    raise ValueError(
                        f"retention override for tenant {tenant!r}: unknown signal"
                        f" {signal!r} (known: {', '.join(SIGNALS)})"
                    )
                _check_age(f"{signal} retention of tenant {tenant!r}", seconds)

    def max_age_seconds(self, signal: str, tenant: str) -> int:
        """The tenant's maximum age for `signal` in seconds; 0 means forever."""
        if signal not in SIGNALS:
            raise ValueError(f"unknown signal {signal!r} (known: {', '.join(SIGNALS)})")
        overrides = self.tenants.get(tenant)
        if overrides is not None and signal in overrides:
            return int(overrides[signal])
        return int(getattr(self, signal))

    def cutoff(self, signal: str, tenant: str, now_unix_nano: int) -> int | None:
        """Data of `signal` older than this goes; None when the tenant keeps it forever."""
        seconds = self.max_age_seconds(signal, tenant)
        return None if seconds == 0 else now_unix_nano - seconds * NS_PER_SECOND

    def keeps_everything(self, signal: str) -> bool:
        """Whether no tenant ever loses data of `signal` (nothing to enforce)."""
        if signal not in SIGNALS:
            raise ValueError(f"unknown signal {signal!r} (known: {', '.join(SIGNALS)})")
        return getattr(self, signal) == 0 and all(
            overrides.get(signal, 0) == 0 for overrides in self.tenants.values()
        )


def _check_age(what: str, seconds: object) -> None:
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 0:
        raise ValueError(f"{what} must be a whole number of seconds >= 0, got {seconds!r}")


async def enforce(
    store: Any,
    signal: str,
    policy: RetentionPolicy,
    now_unix_nano: int,
    on_removed: OnRemoved | None = None,
) -> dict[str, int]:
    """Remove from `store` (holding `signal`) what `policy` no longer keeps at
    `now_unix_nano`. Returns the removed count per tenant that had anything removed
    (-1: removed, but not counted; ALL_TENANTS: dropped partitions); tenants with
    nothing removed are left out. `on_removed` hears of each removal as it happens.

    Tenants are done one after the other. A tenant whose deletion fails does not stop
    the others; the first such error is raised once all were tried. Raises Unsupported
    when the policy removes something of `signal` and the store declares retention
    unsupported.
    """
    if policy.keeps_everything(signal):
        return {}
    capabilities.check(store, capabilities.RETENTION)
    retaining: RetainingStore = store
    tenants = await retaining.tenants()
    cutoffs = {
        tenant: cutoff
        for tenant in tenants
        if (cutoff := policy.cutoff(signal, tenant, now_unix_nano)) is not None
    }
    removed: dict[str, int] = {}

    def note(tenant: str, count: int) -> None:
        if count == 0:
            return
        previous = removed.get(tenant, 0)
        removed[tenant] = -1 if count < 0 or previous < 0 else previous + count
        if on_removed is not None:
            try:
                on_removed(signal, tenant, count)
            except Exception:
                log.exception("retention: on_removed callback failed")

    # A tenant keeping the signal forever has no cutoff, and then no partition may go.
    if cutoffs and len(cutoffs) == len(tenants) and await _drop_partitions(store, cutoffs):
        note(ALL_TENANTS, -1)
    failure: StoreError | None = None
    for tenant, cutoff in sorted(cutoffs.items()):
        try:
            count = await retaining.delete_before(tenant, cutoff)
        except StoreError as exc:
            log.warning("retention: deleting %s of tenant %r failed: %s", signal, tenant, exc)
            failure = failure or exc
            continue
        note(tenant, count)
    if failure is not None:
        raise failure
    return removed


async def _drop_partitions(store: Any, cutoffs: dict[str, int]) -> bool:
    """The partition fast path, for stores that have it: drop the partitions (whole
    days, every tenant) that end before every tenant's cutoff. True if any went.

    Looked up on the class: a proxy answering every attribute (a lazily opened store)
    must not pass for a partitioned store; behind one, delete_before does the work."""
    if not callable(getattr(type(store), "drop_partitions_before", None)):
        return False
    drop: Callable[[int], Awaitable[list[str]]] = store.drop_partitions_before
    dropped = await drop(min(cutoffs.values()))
    if dropped:
        log.info("retention dropped partitions %s", ", ".join(dropped))
    return bool(dropped)


class RetentionTask:
    """Enforces a policy on a set of stores, now (`run_once`) or every interval (`run`).

    `stores` maps signal ("traces", "logs", "metrics") to its store; a `registry.Stores`
    can be passed with `RetentionTask.for_stores`. `on_removed(signal, tenant, count)`
    is called for every removal (count > 0, or -1 when the backend does not count),
    e.g. to feed a Prometheus counter. Stores that declare retention unsupported are
    skipped, with one warning saying why.
    """

    def __init__(
        self,
        stores: Mapping[str, Any],
        policy: RetentionPolicy,
        *,
        on_removed: OnRemoved | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        unknown = set(stores) - set(SIGNALS)
        if unknown:
            raise ValueError(f"unknown signals {sorted(unknown)} (known: {', '.join(SIGNALS)})")
        self.stores = dict(stores)
        self.policy = policy
        self.on_removed = on_removed
        self.clock = clock
        self._warned_unsupported: set[str] = set()

    @classmethod
    def for_stores(
        cls,
        stores: Any,
        policy: RetentionPolicy,
        *,
        on_removed: OnRemoved | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> RetentionTask:
        """A task over a `registry.Stores` (anything with traces, logs, metrics)."""
        by_signal = {signal: getattr(stores, signal) for signal in SIGNALS}
        return cls(by_signal, policy, on_removed=on_removed, clock=clock)

    async def run_once(self) -> dict[str, dict[str, int]]:
        """One round over every store: {signal: {tenant: removed}} for the stores that
        succeeded. Never raises for a store's failure (it is logged)."""
        now = self.clock()
        results: dict[str, dict[str, int]] = {}
        for signal, store in self.stores.items():
            try:
                results[signal] = await enforce(
                    store, signal, self.policy, now, on_removed=self.on_removed
                )
            except Unsupported as exc:
                if signal not in self._warned_unsupported:
                    self._warned_unsupported.add(signal)
                    log.warning("retention of %s is not enforced: %s", signal, exc)
            except Exception:
                log.exception("retention of %s failed; trying again next round", signal)
        for signal, removed in results.items():
            if removed:
                log.info("retention removed %s: %s", signal, removed)
        return results

    async def run(self, interval_seconds: float) -> None:
        """Run a round now and then every `interval_seconds` until cancelled."""
        if interval_seconds <= 0:
            raise ValueError(f"interval_seconds must be positive, got {interval_seconds!r}")
        while True:
            try:
                await self.run_once()
            except Exception:  # run_once already logs; this is a last resort
                log.exception("retention round failed")
            await asyncio.sleep(interval_seconds)
