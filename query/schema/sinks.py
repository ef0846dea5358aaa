"""GraphQL view of where each signal is written: every sink's health, lag and spool."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from ..context import QueryContext
from .scalars import Int64


@strawberry.type(description="One store a signal is written to.")
class Sink:
    signal: str
    name: str
    primary: bool = strawberry.field(description="Queries read this one.")
    healthy: bool = strawberry.field(description="False while its writes fail and are retried.")
    last_error: str | None
    lag_bytes: Int64 = strawberry.field(
        description="Acknowledged bytes not yet written to it: its spool in the write-ahead log."
    )
    indexed_items: Int64
    store_failures: Int64
    dead_letters: Int64
    dropped_bytes: Int64 = strawberry.field(
        description="Bytes a secondary sink gave up after falling too far behind."
    )


def resolve_sinks(info: Info[QueryContext, Any]) -> list[Sink]:
    context = info.context
    context.caller  # noqa: B018 - a reader's key is required, as for every query
    status = context.indexing_status() if context.indexing_status else {}
    return [
        Sink(
            signal=signal,
            name=name,
            primary=bool(sink["primary"]),
            healthy=bool(sink["healthy"]),
            last_error=sink["last_error"],
            lag_bytes=Int64(sink["lag_bytes"]),
            indexed_items=Int64(sink["indexed_items"]),
            store_failures=Int64(sink["store_failures"]),
            dead_letters=Int64(sink["dead_letters"]),
            dropped_bytes=Int64(sink["dropped_bytes"]),
        )
        for signal, state in status.items()
        for name, sink in state["sinks"].items()
    ]
