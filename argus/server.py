"""`argus serve`: bind the listeners, start the receiver process, open the stores and
indexers, serve the API until SIGINT/SIGTERM.

Sockets are bound before anything else is opened, so a port in use stops start-up with
one line naming the flag, and nothing is left half-open.

Two processes: the receiver process (`receiver_process.py`) answers OTLP and writes the
write-ahead logs; this process indexes the logs into the stores and answers queries.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import multiprocessing
import signal
import socket
import time

from . import selfmetrics
from .auth import Authenticator, AuthError
from .collector.wal import WalReader
from .config import HostPort, Settings, meta_postgres_dsn
from .proto.otlp import Signal
from .query.app import create_api_app
from .receiver_process import ReceiverProcess, recover_wals, wal_directory
from .runtime import Runtime
from .selfexport import SelfExporter
from .storage.errors import StoreError
from .storage.keys import KeyStore
from .storage.registry import open_key_store
from .uvicorn_server import Server, server_for

log = logging.getLogger("argus")


class StartupError(RuntimeError):
    """Start-up cannot go on; the message is the one line shown to the user."""


class ReceiverDied(RuntimeError):
    """The receiver process exited while Argus was serving."""


# A receiver process of a crashed `argus serve` dies with it, but a moment later than its
# parent: a restart right after a crash waits this long for the ports to come free.
_BIND_RETRY_SECONDS = 3.0


async def bind(address: HostPort, flag: str) -> socket.socket:
    deadline = time.monotonic() + _BIND_RETRY_SECONDS
    while True:
        try:
            return _bind_once(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                continue
            reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise StartupError(f"cannot listen on {address} ({flag}): {reason}") from None


def _bind_once(address: HostPort) -> socket.socket:
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: without it a response written in two pieces waits
    # ~40 ms for the client's delayed ACK on every keep-alive request (Nagle).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((address.host, address.port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def check_exposure(settings: Settings, authenticator: Authenticator) -> None:
    """Refuse to serve without API keys on a non-loopback address, unless --insecure."""
    if authenticator.enforced or settings.server.insecure:
        return
    listeners = (
        ("--otlp-http", settings.server.otlp_http),
        ("--otlp-grpc", settings.server.otlp_grpc),
        ("--api", settings.server.api),
    )
    exposed = [f"{address} ({flag})" for flag, address in listeners if not address.is_loopback]
    if exposed:
        raise StartupError(
            f"refusing to listen on {', '.join(exposed)} without API keys: anyone who can"
            " reach it could read and write all data. Create a key first (argus keys create"
            " --tenant NAME --role admin), listen on loopback only, or pass --insecure"
            " (server.insecure) to run open on purpose"
        )


def self_exporter(settings: Settings, authenticator: Authenticator) -> SelfExporter | None:
    """The self-telemetry exporter if enabled; a missing or unusable key stops start-up."""
    telemetry = settings.telemetry
    if not telemetry.self_export:
        return None
    token = telemetry.self_export_key
    if authenticator.enforced:
        if not token:
            raise StartupError(
                "telemetry.self_export is on and API keys are in use: set"
                " telemetry.self_export_key to an ingest key"
            )
        try:
            principal = authenticator.authenticate(f"Bearer {token}")
        except AuthError as exc:
            raise StartupError(f"telemetry.self_export_key: {exc}") from None
        if not principal.role.may_ingest():
            raise StartupError("telemetry.self_export_key: the key's role may not ingest")
    address = settings.server.otlp_http
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(address.host, address.host)
    endpoint = f"http://{HostPort(host, address.port)}/v1/metrics"
    return SelfExporter(endpoint, token, telemetry.self_export_interval_seconds)


async def serve(settings: Settings) -> None:
    try:
        keys = await open_key_store(
            settings.data_dir, meta_postgres_dsn(settings), settings.postgres.schema
        )
    except StoreError as exc:
        raise StartupError(f"cannot open the API key store in {settings.data_dir}: {exc}") from None
    try:
        authenticator = await Authenticator.load(keys)
        check_exposure(settings, authenticator)
        exporter = self_exporter(settings, authenticator)
        await _serve_with_keys(settings, keys, authenticator, exporter)
    finally:
        await keys.close()


async def _serve_with_keys(
    settings: Settings,
    keys: KeyStore,
    authenticator: Authenticator,
    exporter: SelfExporter | None,
) -> None:
    otlp_socket = await bind(settings.server.otlp_http, "--otlp-http")
    api_socket = await bind(settings.server.api, "--api")
    # gRPC binds its own socket in the receiver process; check the address here so that a
    # port in use is reported like the others. (Closed at once: a small window remains.)
    (await bind(settings.server.otlp_grpc, "--otlp-grpc")).close()
    context = multiprocessing.get_context("spawn")
    shares = await asyncio.to_thread(recover_wals, settings, context)
    receiver = ReceiverProcess.start(context, settings, otlp_socket, shares)
    otlp_socket.close()  # the receiver process holds its own copy
    runtime: Runtime | None = None
    try:
        readers = {
            signal_: WalReader(wal_directory(settings, signal_), shares[signal_].durable.get)
            for signal_ in Signal
        }
        publishers = {signal_: shares[signal_].indexed.set for signal_ in Signal}
        runtime = await Runtime.open(settings, readers, publishers)
        runtime.start()
        background = [asyncio.create_task(authenticator.keep_fresh(keys))]
        if exporter is not None:
            registry = selfmetrics.merged_registry(runtime.indexing_status)
            background.append(asyncio.create_task(exporter.run(registry.collect)))
        try:
            await _serve_api(settings, runtime, receiver, api_socket, keys, authenticator)
        finally:
            for task in background:
                task.cancel()
    finally:
        code = await asyncio.to_thread(receiver.stop)
        if runtime is not None:
            await runtime.close()
        log.warning("argus stopped (receiver exit code %s)", code)


async def _serve_api(
    settings: Settings,
    runtime: Runtime,
    receiver: ReceiverProcess,
    api_socket: socket.socket,
    keys: KeyStore,
    authenticator: Authenticator,
) -> None:
    api = server_for(
        create_api_app(
            runtime.query,
            authenticator,
            keys,
            lambda: runtime.ready and receiver.ready.is_set(),
            runtime.indexing_status,
            lambda: selfmetrics.render(runtime.indexing_status),
            live=runtime.live,
        )
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, setattr, api, "should_exit", True)
    watcher = asyncio.create_task(_watch(receiver, api))
    log.warning(
        "argus serving: OTLP/HTTP on http://%s, OTLP/gRPC on %s,"
        " API and GraphQL on http://%s/graphql, data in %s",
        settings.server.otlp_http,
        settings.server.otlp_grpc,
        settings.server.api,
        settings.data_dir,
    )
    try:
        await api.serve(sockets=[api_socket])
    finally:
        watcher.cancel()
    if watcher.done() and not watcher.cancelled() and watcher.result() is not None:
        raise ReceiverDied(f"the OTLP receiver process exited with code {watcher.result()}")


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _watch(receiver: ReceiverProcess, api: Server) -> int | None:
    """Stop serving if the receiver process dies: a half-up Argus would accept queries
    while refusing all data."""
    sentinel = receiver.process.sentinel
    loop = asyncio.get_running_loop()
    died: asyncio.Future[None] = loop.create_future()
    loop.add_reader(sentinel, _resolve, died)
    try:
        await died
    finally:
        loop.remove_reader(sentinel)
    receiver.process.join()
    api.should_exit = True
    return receiver.process.exitcode
