"""Self-monitoring: the collector's Prometheus metrics.

Argus runs two processes (receiver and main), so the metrics use prometheus_client's
multiprocess mode: `argus serve` points PROMETHEUS_MULTIPROC_DIR at a directory under the
data dir before either process imports prometheus_client, each process writes its values
there, and `/metrics` in the main process merges them. Metric objects are created per
process on a private registry and passed to the code that records them (no globals).
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .errors import IngestError

# Request latencies: ingest requests take from under a millisecond to seconds under load.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

_REASONS = {
    "InvalidRequest": "invalid",
    "PayloadTooLarge": "too_large",
    "UnsupportedMediaType": "unsupported_media_type",
    "Unavailable": "unavailable",
    "Throttled": "throttled",
    "Unauthenticated": "unauthenticated",
    "PermissionDenied": "permission_denied",
}


def refusal_reason(exc: IngestError) -> str:
    return _REASONS.get(type(exc).__name__, "other")


@dataclass(frozen=True)
class IngestMetrics:
    """Recorded by the receivers and the ingest path (receiver process)."""

    items: Counter
    rejected_items: Counter
    refused_requests: Counter
    request_seconds: Histogram
    wal_append_seconds: Histogram
    inflight_bytes: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> IngestMetrics:
        registry = registry or CollectorRegistry()
        return cls(
            items=Counter(
                "argus_ingest_items",
                "Spans, data points or log records received, by outcome (accepted, rejected).",
                ["signal", "tenant", "outcome"],
                registry=registry,
            ),
            rejected_items=Counter(
                "argus_ingest_items_rejected",
                "Items rejected (partial success), by reason: timestamp_too_old or"
                " timestamp_in_future (outside limits.max_past_seconds /"
                " limits.max_future_seconds), invalid (any other rule).",
                ["signal", "tenant", "reason"],
                registry=registry,
            ),
            refused_requests=Counter(
                "argus_ingest_refused_requests",
                "Requests refused whole, by reason (invalid, too_large, unsupported_media_type,"
                " throttled: a tenant rate limit, unavailable: backpressure or a write-ahead"
                " log failure).",
                ["transport", "signal", "reason"],
                registry=registry,
            ),
            request_seconds=Histogram(
                "argus_ingest_request_duration_seconds",
                "Time from request to answer, per transport, signal and status.",
                ["transport", "signal", "status"],
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            ),
            wal_append_seconds=Histogram(
                "argus_wal_append_duration_seconds",
                "Time to make one request durable in the write-ahead log (write + fsync).",
                ["signal"],
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            ),
            inflight_bytes=Gauge(
                "argus_receiver_inflight_bytes",
                "Request bytes held in memory by requests in progress (ingest.max_inflight_bytes"
                " bounds it).",
                registry=registry,
                multiprocess_mode="livesum",
            ),
        )


@dataclass(frozen=True)
class IndexerMetrics:
    """Recorded by the indexers (main process)."""

    @staticmethod
    def retention_counter(registry: CollectorRegistry | None = None) -> Counter:
        return Counter(
            "argus_retention_removed_items",
            "Items removed by retention, per signal, sink and tenant (backends that remove"
            " whole partitions or indices uncounted are not included).",
            ["signal", "sink", "tenant"],
            registry=registry or CollectorRegistry(),
        )

    indexed_items: Counter
    store_write_seconds: Histogram
    store_failures: Counter
    dead_letters: Counter
    limited_attributes: Counter
    dropped_bytes: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> IndexerMetrics:
        registry = registry or CollectorRegistry()
        return cls(
            indexed_items=Counter(
                "argus_indexed_items", "Items written to the store, per signal and sink.",
                ["signal", "sink"],
                registry=registry,
            ),
            store_write_seconds=Histogram(
                "argus_store_write_duration_seconds",
                "Time of one store write (one batch of one tenant).",
                ["signal", "sink"],
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            ),
            store_failures=Counter(
                "argus_store_write_failures", "Store writes that failed and were retried.",
                ["signal", "sink"], registry=registry,
            ),
            dead_letters=Counter(
                "argus_dead_letters",
                "Write-ahead log records that could not be stored, kept in dead-letter.log.",
                ["signal", "sink"],
                registry=registry,
            ),
            limited_attributes=Counter(
                "argus_limited_attributes",
                "Attributes dropped (over the count limit) or values truncated (over the length"
                " limit), by action.",
                ["signal", "action"],
                registry=registry,
            ),
            dropped_bytes=Counter(
                "argus_sink_dropped_bytes",
                "Write-ahead log bytes a secondary sink gave up because it fell more than"
                " ingest.max_secondary_lag_bytes behind.",
                ["signal", "sink"],
                registry=registry,
            ),
        )
