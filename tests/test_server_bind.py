"""The listeners `argus serve` binds."""

from __future__ import annotations

import socket

from argus.config import HostPort
from argus.server import bind


async def test_listeners_disable_nagle_for_their_connections() -> None:
    # Accepted connections inherit TCP_NODELAY; without it every keep-alive response
    # written in two pieces waits for the client's delayed ACK (~40 ms).
    listener = await bind(HostPort("127.0.0.1", 0), "--api")
    try:
        assert listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        client = socket.create_connection(listener.getsockname())
        listener.setblocking(True)
        accepted, _ = listener.accept()
        with client, accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        listener.close()
