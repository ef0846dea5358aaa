"""The run loop: paces trace generation to the requested rate, exports metrics on an interval,
prints a progress line every second and a summary at the end."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, TextIO

from argus.loadgen.logs import LogBatch, PeriodicLogs
from argus.loadgen.metrics import MetricState
from argus.loadgen.sender import Payload, Sender, SendStats
from argus.loadgen.topology import build_topology
from argus.loadgen.traces import TraceGenerator

if TYPE_CHECKING:
    from argus.loadgen import LoadgenOptions, LoadgenReport

MAX_FLUSH_DELAY = 0.5  # seconds a generated trace may wait for its batch to fill
MAX_LAG = 2.0  # seconds of schedule debt kept before skipping ahead (timestamps must stay "now")
DRAIN_TIMEOUT = 10.0


async def run(options: LoadgenOptions, out: TextIO) -> LoadgenReport:
    from argus.loadgen import LoadgenReport

    seed = options.seed if options.seed is not None else random.SystemRandom().getrandbits(63)
    topology = build_topology(random.Random(seed))
    start_ns = time.time_ns()
    metrics = MetricState(topology.all_instances, start_ns, random.Random(seed + 1))
    gen = TraceGenerator(topology, metrics, seed=seed + 2, error_rate=options.error_rate)
    periodic = PeriodicLogs(topology.instances, random.Random(seed + 3))
    stats = SendStats()
    sender = Sender(
        options.target,
        concurrency=options.concurrency,
        gzip=options.gzip,
        headers=options.headers,
        stats=stats,
    )
    try:
        await sender.probe()
    except BaseException:
        await sender.close(0)
        raise

    stop = asyncio.Event()
    t0 = time.monotonic()
    sender.start()
    progress = asyncio.create_task(_progress(stats, t0, out)) if options.progress else None
    try:
        with _sigint_stops(stop, out):
            await _produce(options, gen, metrics, periodic, sender, stop, t0)
            req, points = metrics.export(time.time_ns())  # final cumulative snapshot
            await sender.submit(Payload("metrics", req.SerializeToString(), points))
    finally:
        await sender.close(DRAIN_TIMEOUT)
        if progress is not None:
            progress.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await progress

    elapsed = time.monotonic() - t0
    report = LoadgenReport(
        traces=stats.traces_sent,
        spans=stats.sent["traces"] - stats.rejected["traces"],
        metric_points=stats.sent["metrics"] - stats.rejected["metrics"],
        log_records=stats.sent["logs"] - stats.rejected["logs"],
        spans_sent=stats.sent["traces"],
        metric_points_sent=stats.sent["metrics"],
        log_records_sent=stats.sent["logs"],
        dropped={k: v for k, v in stats.dropped.items() if v},
        requests=stats.requests,
        failed_requests=sum(stats.failed.values()),
        failed_by_status=dict(stats.failed),
        retries=stats.retries,
        elapsed=elapsed,
    )
    out.write(_summary(report) + "\n")
    out.flush()
    return report


async def _produce(
    options: LoadgenOptions,
    gen: TraceGenerator,
    metrics: MetricState,
    periodic: PeriodicLogs,
    sender: Sender,
    stop: asyncio.Event,
    t0: float,
) -> None:
    rate = options.rate
    batch_size = max(1, options.batch_traces)
    duration = options.duration
    generated = 0  # traces generated, relative to the (possibly re-based) schedule
    last_flush = t0
    next_metrics = t0 + options.metric_interval
    next_periodic = t0

    async def send_traces(n: int) -> int:
        batch = gen.new_batch()
        now_ns = time.time_ns()
        step = 1e9 / rate
        k = 0
        while k < n:  # evenly spaced over the interval they were due in, the last one ending now
            k += gen.add_trace(batch, now_ns - int((n - 1 - k) * step))
        await sender.submit(
            Payload("traces", batch.request.SerializeToString(), batch.spans, batch.traces)
        )
        if batch.logs.records:
            await sender.submit(
                Payload("logs", batch.logs.request.SerializeToString(), batch.logs.records)
            )
        return k

    while True:
        now = time.monotonic()
        elapsed = now - t0
        if stop.is_set() or (duration and elapsed >= duration):
            # What came due since the last batch still goes out; more than a batch means we were
            # behind schedule, and that debt is dropped as in the loop below.
            due = min(
                batch_size,
                int(rate * (min(elapsed, duration) if duration else elapsed)) - generated,
            )
            while due > 0:
                n = await send_traces(min(due, batch_size))
                generated += n
                due -= n
            break
        due = int(rate * elapsed) - generated
        if due > rate * MAX_LAG + batch_size:
            # Generation or the target can't keep up: drop the debt rather than send stale data.
            generated += due - batch_size
            due = batch_size
        if due >= batch_size or (due > 0 and now - last_flush >= MAX_FLUSH_DELAY):
            generated += await send_traces(min(due, batch_size))
            last_flush = now
        if now >= next_periodic:
            logs = LogBatch()
            periodic.emit(logs, time.time_ns())
            await sender.submit(Payload("logs", logs.request.SerializeToString(), logs.records))
            next_periodic += 1.0
        if now >= next_metrics:
            req, points = metrics.export(time.time_ns())
            await sender.submit(Payload("metrics", req.SerializeToString(), points))
            next_metrics += options.metric_interval
        wake = min(
            t0 + (generated + batch_size) / rate,
            last_flush + MAX_FLUSH_DELAY,
            next_periodic,
            next_metrics,
        )
        if duration:
            wake = min(wake, t0 + duration)
        delay = wake - time.monotonic()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
        else:
            await asyncio.sleep(0)  # let the sender workers run between back-to-back batches


async def _progress(stats: SendStats, t0: float, out: TextIO) -> None:
    prev = (0, 0, 0, 0)
    prev_t = t0
    while True:
        await asyncio.sleep(1.0 - (time.monotonic() - t0) % 1.0)
        now = time.monotonic()
        cur = (stats.traces_sent, stats.sent["traces"], stats.sent["metrics"], stats.sent["logs"])
        dt = max(now - prev_t, 1e-6)
        tr, sp, pt, lg = ((c - p) / dt for c, p in zip(cur, prev))
        errors = sum(stats.failed.values())
        out.write(
            f"[{now - t0:6.1f}s] {tr:8.1f} traces/s {sp:9.0f} spans/s {pt:7.0f} points/s"
            f" {lg:8.0f} logs/s"
            f"   errors {errors}  retries {stats.retries}\n"
        )
        out.flush()
        prev, prev_t = cur, now


def _summary(r: LoadgenReport) -> str:
    el = max(r.elapsed, 1e-9)
    line = (
        f"loadgen: {r.elapsed:.1f}s, sent {r.traces:,} traces, "
        f"{r.spans:,} spans ({r.spans / el:,.0f}/s), "
        f"{r.metric_points:,} metric points, {r.log_records:,} log records "
        f"in {r.requests:,} requests; "
        f"{r.failed_requests} failed, {r.retries} retries"
    )
    if r.failed_by_status:
        failures = ", ".join(f"{k}: {v}" for k, v in sorted(r.failed_by_status.items()))
        line += f" (failures: {failures})"
    rejected = {
        "spans": r.spans_sent - r.spans,
        "points": r.metric_points_sent - r.metric_points,
        "log records": r.log_records_sent - r.log_records,
    }
    if any(rejected.values()):
        line += "; rejected by target: " + ", ".join(f"{v:,} {k}" for k, v in rejected.items() if v)
    return line


@contextlib.contextmanager
def _sigint_stops(stop: asyncio.Event, out: TextIO) -> Iterator[None]:
    """First Ctrl-C ends the run gracefully (flush, summary); a second one aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint() -> None:
        if stop.is_set():
            if task is not None:
                task.cancel()
            return
        out.write("\nstopping: flushing queued data (Ctrl-C again to abort)\n")
        stop.set()

    try:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    except (NotImplementedError, RuntimeError, ValueError):
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        signal.signal(signal.SIGINT, previous)
