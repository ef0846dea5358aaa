"""The OTLP receiver process: decode, validate, write the write-ahead log, answer.

`argus serve` runs the receivers in a process of their own, so that the request path and
the indexers (which convert and store what the receivers logged) each get a core instead
of sharing one interpreter lock. The only state they share is the log on disk and, per
signal, two positions in shared memory (`WalShare`): the log's durable end, and how far
the indexer has got (for backpressure).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing.context
import multiprocessing.synchronize
import os
import signal
import socket
from dataclasses import dataclass
from pathlib import Path

from .auth import Authenticator
from .collector.indexer import CheckpointFile
from .collector.inflight import InflightBytes
from .collector.ingest import Backlog, Ingest
from .collector.ratelimit import RateLimits, TenantRateLimiter
from .collector.receivers.otlp_grpc import OtlpGrpcReceiver
from .collector.receivers.otlp_http import OtlpHttpReceiver
from .collector.telemetry import IngestMetrics
from .collector.tenancy import key_tenant
from .collector.wal import SharedPosition, WriteAheadLog
from .config import LimitSettings, Settings, meta_postgres_dsn
from .proto.otlp import Signal
from .storage.registry import open_key_store
from .uvicorn_server import server_for

log = logging.getLogger("argus.receiver")
_PR_SET_PDEATHSIG = 1


def tenant_rate_limits(limits: LimitSettings, defaults: RateLimits) -> dict[str, RateLimits]:
    """`[limits.tenants.NAME]` overrides over the defaults."""
    return {
        tenant: RateLimits(
            _or(override.requests_per_second, defaults.requests_per_second),
            _or(override.items_per_second, defaults.items_per_second),
            _or(override.burst_seconds, defaults.burst_seconds),
        )
        for tenant, override in limits.tenants.items()
    }


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def wal_directory(settings: Settings, signal_: Signal) -> Path:
    return settings.data_dir / "wal" / signal_.value


@dataclass(frozen=True)
class WalShare:
    """What the two processes share about one signal's log, in shared memory."""

    durable: SharedPosition  # written by the receiver after each fsync
    indexed: SharedPosition  # written by the indexer after each batch


def recover_wals(
    settings: Settings, context: multiprocessing.context.BaseContext
) -> dict[Signal, WalShare]:
    """Open each log once to cut off a torn tail, before any reader or writer runs, and
    return its durable end and indexed position as shared memory. Blocking."""
    shares: dict[Signal, WalShare] = {}
    for signal_ in Signal:
        directory = wal_directory(settings, signal_)
        wal = WriteAheadLog.open(directory, settings.ingest.wal_segment_bytes)
        indexed = CheckpointFile(directory / "checkpoint.json").load(wal.first_position).applied
        shares[signal_] = WalShare(
            SharedPosition(context, wal.durable_end), SharedPosition(context, indexed)
        )
        wal.close()
    return shares


@dataclass
class ReceiverProcess:
    process: multiprocessing.process.BaseProcess
    ready: multiprocessing.synchronize.Event

    @classmethod
    def start(
        cls,
        context: multiprocessing.context.BaseContext,
        settings: Settings,
        otlp_http: socket.socket,
        shares: dict[Signal, WalShare],
    ) -> ReceiverProcess:
        ready = context.Event()
        process = context.Process(  # type: ignore[attr-defined]
            target=run,
            args=(settings, otlp_http, shares, ready, logging.getLogger().level),
            name="argus-receiver",
            daemon=False,
        )
        process.start()
        return cls(process, ready)

    def stop(self, timeout: float = 30.0) -> int | None:
        """Ask the receiver to drain and exit (SIGTERM); kill it after `timeout`. Blocking."""
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout)
            if self.process.is_alive():
                self.process.kill()
                self.process.join()
        return self.process.exitcode


def run(
    settings: Settings,
    otlp_http: socket.socket,
    shares: dict[Signal, WalShare],
    ready: multiprocessing.synchronize.Event,
    log_level: int,
) -> None:
    """Entry point of the receiver process."""
    _die_with_parent()
    logging.basicConfig(level=log_level, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(_serve(settings, otlp_http, shares, ready))


def _die_with_parent() -> None:
    # If `argus serve` is killed (even with -9), the receiver must not live on holding the
    # port and the log: the kernel sends it SIGKILL when its parent dies.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:
        os._exit(1)


async def _serve(
    settings: Settings,
    otlp_http: socket.socket,
    shares: dict[Signal, WalShare],
    ready: multiprocessing.synchronize.Event,
) -> None:
    wals = {
        signal_: WriteAheadLog.open(
            wal_directory(settings, signal_),
            settings.ingest.wal_segment_bytes,
            publish_to=shares[signal_].durable,
        )
        for signal_ in Signal
    }
    backlogs = {
        signal_: Backlog(
            indexed=shares[signal_].indexed.get,
            segment_bytes=settings.ingest.wal_segment_bytes,
            limit_bytes=settings.ingest.max_unindexed_bytes,
        )
        for signal_ in Signal
    }
    metrics = IngestMetrics.create()
    limits = settings.limits
    defaults = RateLimits(limits.requests_per_second, limits.items_per_second, limits.burst_seconds)
    limiter = TenantRateLimiter(defaults, tenant_rate_limits(limits, defaults))
    ingest = Ingest(wals, backlogs, metrics, limiter, time_bounds=limits)
    keys = await open_key_store(
        settings.data_dir, meta_postgres_dsn(settings), settings.postgres.schema
    )
    authenticator = await Authenticator.load(keys)
    refresher = asyncio.create_task(authenticator.keep_fresh(keys))
    resolve_tenant = key_tenant(authenticator)
    inflight = InflightBytes(settings.ingest.max_inflight_bytes, metrics.inflight_bytes)
    receiver = OtlpHttpReceiver(
        ingest,
        resolve_tenant,
        settings.ingest.max_request_bytes,
        settings.ingest.max_decompressed_bytes,
        metrics,
        inflight,
    )
    server = server_for(receiver.app())
    grpc_server = OtlpGrpcReceiver(ingest, resolve_tenant, metrics, inflight).server(
        str(settings.server.otlp_grpc), settings.ingest.max_decompressed_bytes
    )
    await grpc_server.start()
    loop = asyncio.get_running_loop()
    # Ctrl-C reaches both processes; the parent handles it and then stops us with SIGTERM,
    # after which it still indexes what we logged.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    loop.add_signal_handler(signal.SIGTERM, setattr, server, "should_exit", True)
    announce = asyncio.create_task(_announce_when_started(server, ready))
    try:
        await server.serve(sockets=[otlp_http])
    finally:
        await grpc_server.stop(grace=10)  # drains in-flight calls
        announce.cancel()
        refresher.cancel()
        await keys.close()
        for wal in wals.values():
            wal.close()


async def _announce_when_started(server: object, ready: multiprocessing.synchronize.Event) -> None:
    while not getattr(server, "started", False):
        await asyncio.sleep(0.01)
    ready.set()
