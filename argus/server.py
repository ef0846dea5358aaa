"""`argus serve`: bind the listeners, open the runtime, serve until SIGINT/SIGTERM.

Sockets are bound before anything else is opened, so a port in use stops start-up with
one line naming the flag, and nothing is left half-open.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
from collections.abc import Iterator

import uvicorn

from .collector.receivers.otlp_http import OtlpHttpReceiver
from .collector.tenancy import single_tenant
from .config import HostPort, Settings
from .query.app import create_api_app
from .runtime import Runtime

log = logging.getLogger("argus")


class StartupError(RuntimeError):
    """Start-up cannot go on; the message is the one line shown to the user."""


def bind(address: HostPort, flag: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address.host, address.port))
    except OSError as exc:
        sock.close()
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise StartupError(f"cannot listen on {address} ({flag}): {reason}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to `serve` (we run two of them)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _uvicorn(app: object) -> _Server:
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
        server_header=False,
    )
    return _Server(config)


async def serve(settings: Settings) -> None:
    otlp_socket = bind(settings.server.otlp_http, "--otlp-http")
    api_socket = bind(settings.server.api, "--api")
    runtime = await Runtime.open(settings)
    runtime.start()
    receiver = OtlpHttpReceiver(
        runtime.ingest,
        single_tenant,
        settings.ingest.max_request_bytes,
        settings.ingest.max_decompressed_bytes,
    )
    servers = [
        _uvicorn(receiver.app()),
        _uvicorn(create_api_app(runtime.query, lambda: runtime.ready, runtime.indexing_status)),
    ]
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _request_exit, servers)
    log.warning(
        "argus serving: OTLP/HTTP on http://%s, API and GraphQL on http://%s/graphql,"
        " data in %s",
        settings.server.otlp_http,
        settings.server.api,
        settings.data_dir,
    )
    try:
        await asyncio.gather(
            servers[0].serve(sockets=[otlp_socket]), servers[1].serve(sockets=[api_socket])
        )
    finally:
        await runtime.close()
        log.warning("argus stopped")


def _request_exit(servers: list[_Server]) -> None:
    for server in servers:
        server.should_exit = True
