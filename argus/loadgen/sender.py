"""Async OTLP/HTTP sender: a bounded queue drained by N workers sharing one httpx.AsyncClient.

Retries follow the OTLP/HTTP spec: 429, 502, 503 and 504 (and transport errors) are retried,
waiting for Retry-After when the server sends one, exponential backoff with jitter otherwise.
"""

from __future__ import annotations

import asyncio
import email.utils
import gzip as gzip_mod
import json
import random
import socket
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

SIGNALS = ("traces", "metrics", "logs")
RETRYABLE = frozenset({429, 502, 503, 504})
MAX_ATTEMPTS = 6
MAX_RETRY_AFTER = 60.0
# Compress in a worker thread above this size: zlib releases the GIL, so the event loop
# keeps generating meanwhile.
THREAD_GZIP_BYTES = 64 * 1024

_RESPONSES: dict[str, tuple[type[Message], str]] = {
    "traces": (ExportTraceServiceResponse, "rejected_spans"),
    "metrics": (ExportMetricsServiceResponse, "rejected_data_points"),
    "logs": (ExportLogsServiceResponse, "rejected_log_records"),
}
_JSON_REJECTED = {
    "traces": "rejectedSpans",
    "metrics": "rejectedDataPoints",
    "logs": "rejectedLogRecords",
}


class LoadgenError(ConnectionError):
    """The target can't be used (unreachable, not OTLP, unauthorized): a one-line message.

    A ConnectionError so callers that only know the builtin hierarchy still catch it.
    """


@dataclass(slots=True)
class Payload:
    signal: str  # "traces" | "metrics" | "logs"
    body: bytes
    items: int  # spans, data points or log records
    traces: int = 0


@dataclass
class SendStats:
    """Counters shared with the runner (single event loop: no locking needed)."""

    sent: Counter[str] = field(
        default_factory=Counter
    )  # items in 2xx-answered requests, per signal
    rejected: Counter[str] = field(
        default_factory=Counter
    )  # items the server reported rejected (partial success)
    dropped: Counter[str] = field(default_factory=Counter)  # items in requests that finally failed
    traces_sent: int = 0
    requests: int = 0  # HTTP attempts, retries included
    retries: int = 0
    failed: Counter[str] = field(
        default_factory=Counter
    )  # final failures by status code or exception name
    bytes_sent: int = 0


def endpoint_urls(target: str) -> dict[str, str]:
    base = target.rstrip("/")
    for suffix in ("/v1/traces", "/v1/metrics", "/v1/logs"):
        base = base.removesuffix(suffix)
    if "://" not in base:
        base = "http://" + base
    return {s: f"{base}/v1/{s}" for s in SIGNALS}


def retry_after_seconds(value: str | None) -> float | None:
    """Parse Retry-After: delta-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Sender:
    def __init__(
        self,
        target: str,
        *,
        concurrency: int = 4,
        gzip: bool = False,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
        stats: SendStats | None = None,
    ) -> None:
        self.urls = endpoint_urls(target)
        self.target = target
        self.gzip = gzip
        self.concurrency = max(1, concurrency)
        self.stats = stats or SendStats()
        base_headers = {"Content-Type": "application/x-protobuf", "User-Agent": "argus-loadgen/0.1"}
        if gzip:
            base_headers["Content-Encoding"] = "gzip"
        base_headers.update(headers or {})
        self._client = httpx.AsyncClient(
            headers=base_headers,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(
                max_connections=self.concurrency, max_keepalive_connections=self.concurrency
            ),
        )
        self._queue: asyncio.Queue[Payload] = asyncio.Queue(maxsize=self.concurrency * 2)
        self._workers: list[asyncio.Task[None]] = []
        self._jitter = random.Random()
        self._closing = False

    async def probe(self) -> None:
        """One empty trace export: fails fast with a clear message when nobody is listening."""
        url = self.urls["traces"]
        try:
            resp = await self._client.post(
                url, content=gzip_mod.compress(b"") if self.gzip else b"", timeout=5.0
            )
        except httpx.HTTPError as exc:
            raise LoadgenError(f"cannot reach OTLP/HTTP target {url}: {_describe(exc)}") from exc
        if resp.status_code in (404, 405):
            raise LoadgenError(f"{url} answered {resp.status_code}: not an OTLP/HTTP endpoint?")
        if resp.status_code in (401, 403):
            raise LoadgenError(
                f"{url} answered {resp.status_code}: missing or wrong credentials (see --header)"
            )

    def start(self) -> None:
        self._workers = [
            asyncio.create_task(self._worker(), name=f"loadgen-sender-{i}")
            for i in range(self.concurrency)
        ]

    async def submit(self, payload: Payload) -> None:
        """Queue a payload; waits when all workers are busy (backpressure to the generator)."""
        await self._queue.put(payload)

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    async def close(self, drain_timeout: float = 10.0) -> None:
        """Send what is queued (bounded by `drain_timeout`), then stop the workers."""
        self._closing = True
        try:
            await asyncio.wait_for(self._queue.join(), drain_timeout)
        except TimeoutError:
            pass
        for w in self._workers:
            w.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        while not self._queue.empty():
            p = self._queue.get_nowait()
            self.stats.dropped[p.signal] += p.items
            self.stats.failed["not sent (shutdown)"] += 1
        await self._client.aclose()

    async def _worker(self) -> None:
        while True:
            payload = await self._queue.get()
            try:
                await self._send(payload)
            except asyncio.CancelledError:
                self.stats.dropped[payload.signal] += payload.items
                self.stats.failed["not sent (shutdown)"] += 1
                raise
            finally:
                self._queue.task_done()

    async def _send(self, p: Payload) -> None:
        stats = self.stats
        body = p.body
        if self.gzip:
            body = (
                await asyncio.to_thread(gzip_mod.compress, body, 1)
                if len(body) > THREAD_GZIP_BYTES
                else gzip_mod.compress(body, 1)
            )
        url = self.urls[p.signal]
        for attempt in range(1, MAX_ATTEMPTS + 1):
            stats.requests += 1
            wait: float | None
            try:
                resp = await self._client.post(url, content=body)
            except httpx.HTTPError as exc:
                reason = type(exc).__name__
                wait = None
            else:
                if 200 <= resp.status_code < 300:
                    rejected = rejected_items(
                        p.signal, resp.headers.get("content-type", ""), resp.content
                    )
                    stats.sent[p.signal] += p.items
                    stats.rejected[p.signal] += min(rejected, p.items)
                    stats.traces_sent += p.traces
                    stats.bytes_sent += len(body)
                    return
                reason = str(resp.status_code)
                if resp.status_code not in RETRYABLE:
                    break
                wait = retry_after_seconds(resp.headers.get("retry-after"))
            if attempt == MAX_ATTEMPTS or (self._closing and wait is not None and wait > 5):
                break
            if wait is None:
                wait = min(8.0, 0.25 * 2 ** (attempt - 1)) * self._jitter.uniform(0.5, 1.5)
            stats.retries += 1
            await asyncio.sleep(min(wait, MAX_RETRY_AFTER))
        stats.failed[reason] += 1
        stats.dropped[p.signal] += p.items


def rejected_items(signal: str, content_type: str, content: bytes) -> int:
    """Items the server rejected in an otherwise successful export (OTLP partial success)."""
    if not content:
        return 0
    try:
        if "protobuf" in content_type:
            cls, attr = _RESPONSES[signal]
            msg = cls()
            msg.ParseFromString(content)
            return int(getattr(msg.partial_success, attr))
        if "json" in content_type:
            doc = json.loads(content)
            ps = doc.get("partialSuccess") if isinstance(doc, dict) else None
            return int(ps.get(_JSON_REJECTED[signal], 0)) if isinstance(ps, dict) else 0
    except (DecodeError, ValueError, TypeError):  # a malformed answer doesn't fail the export
        return 0
    return 0


def _describe(exc: BaseException) -> str:
    """The root cause of a transport error, in a few words."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused (is the server running?)"
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve host ({cause.strerror})"
        cause = cause.__cause__ or cause.__context__
    return str(exc) or type(exc).__name__
