"""Runs `argus serve` as a real subprocess for end-to-end tests, and talks to it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ArgusProcess:
    """One `argus serve` on free loopback ports with its own data dir."""

    def __init__(self, data_dir: Path, extra_args: list[str] | None = None) -> None:
        self.data_dir = data_dir
        self.otlp_port = free_port()
        self.api_port = free_port()
        self.grpc_port = free_port()
        self.extra_args = extra_args or []
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"

    @property
    def otlp_url(self) -> str:
        return f"http://127.0.0.1:{self.otlp_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "argus.cli", "serve",
            "--data-dir", str(self.data_dir),
            "--otlp-http", f"127.0.0.1:{self.otlp_port}",
            "--api", f"127.0.0.1:{self.api_port}",
            "--otlp-grpc", f"127.0.0.1:{self.grpc_port}",
            *self.extra_args,
        ]

    def start(self, timeout: float = 30.0) -> ArgusProcess:
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the fd
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env=_argus_env()
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"argus serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.api_url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"argus serve did not become ready:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout: float = 30.0) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise

    def graphql(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        """Run a query; fails the test on GraphQL errors."""
        body = self.graphql_raw(query, variables, token)
        assert not body.get("errors"), body["errors"]
        return body["data"]  # type: ignore[no-any-return]

    def graphql_raw(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        response = httpx.post(
            f"{self.api_url}/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {token}"} if token else {},
            timeout=30,
        )
        return response.json()  # type: ignore[no-any-return]

    def create_key(self, tenant: str, role: str) -> str:
        """A new API key from `argus keys create` on this server's data dir; its token."""
        done = subprocess.run(
            [sys.executable, "-m", "argus.cli", "keys", "create", "--data-dir", str(self.data_dir),
             "--tenant", tenant, "--role", role],
            capture_output=True, text=True, check=True, env=_argus_env(),
        )
        return done.stdout.strip()


def _argus_env() -> dict[str, str]:
    """The environment without the caller's ARGUS_* settings (ARGUS_TEST_* stay)."""
    return {
        k: v for k, v in os.environ.items()
        if not k.startswith("ARGUS_") or k.startswith("ARGUS_TEST_")
    }


def eventually(probe: Callable[[], T | None], timeout: float = 15.0, interval: float = 0.1) -> T:
    """Poll until `probe` returns something truthy (data is indexed shortly after the 200)."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last: {result!r})")
        time.sleep(interval)
