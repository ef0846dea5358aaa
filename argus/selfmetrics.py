"""`/metrics`: Prometheus exposition merged from both `argus serve` processes."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # prometheus_client may be imported only after prepare_multiprocess_dir
    from prometheus_client import CollectorRegistry

ENV = "PROMETHEUS_MULTIPROC_DIR"
IndexingStatus = Callable[[], dict[str, dict[str, Any]]]


def prepare_multiprocess_dir(data_dir: Path) -> Path:
    """Point prometheus_client's multiprocess mode at a fresh directory. Must run before
    prometheus_client is imported: it picks its value storage at import time."""
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before its multiprocess dir was set")
    directory = data_dir / "run" / "prometheus"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[ENV] = str(directory)
    return directory


def merged_registry(indexing_status: IndexingStatus) -> CollectorRegistry:
    """Both processes' metrics plus the indexers' state. Collecting it blocks (it reads
    the per-process files)."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    if ENV in os.environ:
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    registry.register(_IndexingCollector(indexing_status))  # type: ignore[arg-type]
    return registry


def render(indexing_status: IndexingStatus) -> tuple[bytes, str]:
    """The exposition text and its content type. Blocking (reads the per-process files)."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(merged_registry(indexing_status)), CONTENT_TYPE_LATEST


class _IndexingCollector:
    """Indexer state read at scrape time from the running indexers."""

    def __init__(self, status: IndexingStatus) -> None:
        self._status = status

    def collect(self) -> Iterator[object]:
        from prometheus_client.core import GaugeMetricFamily

        lag = GaugeMetricFamily(
            "argus_unindexed_bytes",
            "Acknowledged write-ahead log bytes not yet in a sink's store (its spool), per"
            " signal and sink.",
            labels=["signal", "sink"],
        )
        healthy = GaugeMetricFamily(
            "argus_sink_healthy",
            "1 while a sink's writes succeed, 0 while they fail and are retried.",
            labels=["signal", "sink", "primary"],
        )
        for signal, state in self._status().items():
            for sink, sink_state in state["sinks"].items():
                lag.add_metric([signal, sink], sink_state["lag_bytes"])
                healthy.add_metric(
                    [signal, sink, str(sink_state["primary"]).lower()],
                    1 if sink_state["healthy"] else 0,
                )
        yield lag
        yield healthy
