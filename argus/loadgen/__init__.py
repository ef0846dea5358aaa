"""`argus loadgen`: realistic synthetic traces, metrics and logs sent over OTLP/HTTP (protobuf).

The CLI calls `add_arguments` / `options_from_args` / `run_loadgen`. `run_loadgen` raises
`LoadgenError` (one-line message) when the target cannot be reached at start.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from typing import TextIO

from argus.loadgen.sender import LoadgenError

__all__ = [
    "LoadgenError",
    "LoadgenOptions",
    "LoadgenReport",
    "add_arguments",
    "options_from_args",
    "run_loadgen",
]


@dataclass
class LoadgenOptions:
    target: str = "http://127.0.0.1:4318"
    rate: float = 50.0  # traces per second (async jobs linked to a request count as traces too)
    duration: float = 10.0  # seconds; 0 = until Ctrl-C
    seed: int | None = None
    gzip: bool = False
    concurrency: int = 4  # parallel HTTP requests
    headers: dict[str, str] = field(default_factory=dict)
    progress: bool = True
    batch_traces: int = (
        100  # traces per export request (~550 spans, near the SDK's 512-span batches)
    )
    error_rate: float = 0.03  # share of traces that fail somewhere
    metric_interval: float = 5.0  # seconds between cumulative metric exports


@dataclass
class LoadgenReport:
    """What the run sent. "Acknowledged" items were in 2xx-answered requests, minus any the
    target reported rejected (OTLP partial success); the `*_sent` counts are before that."""

    traces: int = 0  # traces in acknowledged export requests
    spans: int = 0  # acknowledged spans
    metric_points: int = 0  # acknowledged data points
    log_records: int = 0  # acknowledged log records
    spans_sent: int = 0
    metric_points_sent: int = 0
    log_records_sent: int = 0
    # signal -> items lost in requests that failed for good
    dropped: dict[str, int] = field(default_factory=dict)
    requests: int = 0  # HTTP requests, retries included
    failed_requests: int = 0  # requests given up on (after retries)
    # HTTP status (e.g. "500") or transport error name -> requests given up on
    failed_by_status: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    elapsed: float = 0.0  # seconds

    @property
    def ok(self) -> bool:
        return self.failed_requests == 0 and self.traces > 0


async def run_loadgen(options: LoadgenOptions, out: TextIO = sys.stderr) -> LoadgenReport:
    """Generate and send telemetry until `options.duration` elapses (or Ctrl-C when it is 0)."""
    if options.rate <= 0:
        raise ValueError("rate must be positive")
    from argus.loadgen.runner import run

    return await run(options, out)


def _header(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {value!r}")
    return key.strip(), val.strip()


def _positive(value: str) -> float:
    f = float(value)
    if f <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return f


def _non_negative(value: str) -> float:
    f = float(value)
    if f < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return f


def _fraction(value: str) -> float:
    f = float(value)
    if not 0 <= f <= 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return f


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = LoadgenOptions()
    parser.add_argument(
        "--target",
        metavar="URL",
        default=d.target,
        help=f"OTLP/HTTP base URL; /v1/traces etc. are appended (default {d.target})",
    )
    parser.add_argument(
        "--rate", type=_positive, default=d.rate, help=f"traces per second (default {d.rate:g})"
    )
    parser.add_argument(
        "--duration",
        metavar="SECONDS",
        type=_non_negative,
        default=d.duration,
        help=f"how long to run, 0 = until Ctrl-C (default {d.duration:g})",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="seed for reproducible trace shapes and ids"
    )
    parser.add_argument("--gzip", action="store_true", help="gzip request bodies")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=d.concurrency,
        help=f"parallel HTTP requests (default {d.concurrency})",
    )
    parser.add_argument(
        "--header",
        metavar="KEY=VALUE",
        type=_header,
        action="append",
        default=[],
        help="extra HTTP header, repeatable (e.g. Authorization=Bearer ...)",
    )
    parser.add_argument(
        "--batch-traces",
        type=int,
        default=d.batch_traces,
        help=f"traces per export request (default {d.batch_traces})",
    )
    parser.add_argument(
        "--error-rate",
        type=_fraction,
        default=d.error_rate,
        help=f"share of traces that fail (default {d.error_rate:g})",
    )
    parser.add_argument(
        "--metric-interval",
        metavar="SECONDS",
        type=_positive,
        default=d.metric_interval,
        help=f"seconds between metric exports (default {d.metric_interval:g})",
    )
    parser.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no per-second progress lines"
    )


def options_from_args(ns: argparse.Namespace) -> LoadgenOptions:
    d = LoadgenOptions()
    return LoadgenOptions(
        target=ns.target,
        rate=ns.rate,
        duration=ns.duration,
        seed=ns.seed,
        gzip=ns.gzip,
        concurrency=max(1, ns.concurrency),
        headers=dict(ns.header or []),
        progress=getattr(ns, "progress", d.progress),
        batch_traces=max(1, getattr(ns, "batch_traces", d.batch_traces)),
        error_rate=getattr(ns, "error_rate", d.error_rate),
        metric_interval=getattr(ns, "metric_interval", d.metric_interval),
    )
