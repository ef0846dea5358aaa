"""Live data: what the primary indexer has just stored, pushed to subscribers.

The hub lives in the main process. The primary sink's indexer of each signal calls
`LiveHub.published(signal, tenant, items)` after every successful store write, so a
subscriber sees an item only once a query could see it too. Front doors built on it:
GraphQL subscriptions (`query/schema/live.py`, graphql-transport-ws on `/graphql`) and
Socket.IO (`query/live_socketio.py`, on `/socket.io`).

Sequence numbers and cursors
----------------------------
Every item published for a (tenant, signal) gets the next number of that pair's sequence
(per tenant, so a client learns nothing of other tenants' volume). A subscriber receives
`LiveBatch`es: the matching items with their numbers, and `end_seq`, the number up to
which everything published has been considered. `Cursor(epoch, seq, wall_ns)` encodes
such a position (opaque base64 to clients); `epoch` is random per server start, `wall_ns`
is when `seq` was published.

The hub keeps the last `replay_items` items per tenant of each replayable signal (logs).
A client that comes back with a cursor of this epoch whose `seq` is still in that buffer
is resumed exactly: the hub hands it the matching items after `seq`, and the live
subscription starts right after them (both in one synchronous step, so nothing is lost
or repeated). Otherwise (server restarted, or the client was away for more than the
buffer) `resume_logs` replays from the store instead: matching records whose timestamp is
at or after the cursor's `wall_ns`, oldest first, at most `STORE_REPLAY_LIMIT`, merged
with the buffer's items indexed while that search ran (duplicates at that boundary are
removed by content); the batch is flagged `gap=True`, since late records (timestamp
before the cursor's time) and those past the limit cannot be recovered that way.

A subscriber whose filter matches nothing still advances: `Subscription.next` returns
an empty "progress" batch after `progress_after` idle seconds when the sequence moved,
so its cursor stays within the replay buffer.

Memory: a subscriber's undelivered items are bounded (`max_pending_items`); one that
falls further behind is dropped (`SubscriberDropped`, with a message saying why) rather
than buffered without limit. The replay buffer is bounded per tenant.

Logs match with `log_predicate(LogQuery)`, the embedded store's search semantics in
Python (`storage/backends/sqlite_logs.py`): case-insensitive `contains` on the body's
string form (ASCII-only case folding for an ASCII needle, as SQLite's LIKE; full
`str.lower` otherwise), `min_severity`, `service`, trace and span ids ("" = absent),
attributes on the record else its resource, [start, end) on the timestamp.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import secrets
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..storage.attributes import encode_value, value_as_label
from ..storage.errors import QueryError
from ..storage.logs import LogPage, LogQuery
from ..storage.metrics import LabelMatcher, series_labels
from ..storage.model import LogRecord, MetricPoint

log = logging.getLogger("argus.live")

Predicate = Callable[[Any], bool]
# A subscription may name the one value of a cheap key its items must have (a log's
# service, a point's metric name): a publish is grouped by that key once, and each such
# subscription tests only its group, so many subscriptions cost little at a high rate.
Partition = tuple[Callable[[Any], Hashable], Hashable]

REPLAY_ITEMS = 10_000  # per tenant, of each replayable signal
MAX_PENDING_ITEMS = 10_000  # per subscriber, not yet taken by its consumer
STORE_REPLAY_LIMIT = 1_000  # records a resume from the store replays at most
_STORE_PAGE = 100  # within every deployment's query.max_limit


class SubscriberDropped(Exception):
    """The subscription ended: the consumer fell too far behind, the server is stopping,
    or its predicate failed. The message says which, for the client."""


# ---------------------------------------------------------------------------- cursors


@dataclass(frozen=True, slots=True)
class Cursor:
    epoch: str
    seq: int
    wall_ns: int

    def encode(self) -> str:
        raw = f"1:{self.epoch}:{self.seq}:{self.wall_ns}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            version, epoch, seq, wall = raw.split(":")
            if version != "1" or int(seq) < 0:
                raise ValueError(raw)
            return cls(epoch, int(seq), int(wall))
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise QueryError(f"invalid live cursor {text!r}") from exc


# ---------------------------------------------------------------------------- batches


@dataclass(slots=True)
class LiveBatch:
    """Matching items, oldest first, each with its sequence number (0 for a record that
    came from the store, whose number is unknown). Everything published up to `end_seq`
    has been considered."""

    items: list[Any]
    seqs: list[int]
    end_seq: int
    wall_ns: int
    replay: bool = False  # the first batch of a subscription: what the client missed
    gap: bool = False  # replayed from the store: see the module docstring

    def chunks(self, epoch: str, size: int, previous: str | None) -> Iterator[tuple[list[Any], str]]:
        """The items in pieces of at most `size` (at least one piece), each with the cursor
        to resume after it. A piece ending in a store record (seq 0) keeps `previous`: a
        client that stops there resumes from the store again rather than skip."""
        if not self.items:
            yield [], Cursor(epoch, self.end_seq, self.wall_ns).encode()
            return
        for start in range(0, len(self.items), size):
            end = min(start + size, len(self.items))
            if end == len(self.items):
                cursor = Cursor(epoch, self.end_seq, self.wall_ns).encode()
            elif self.seqs[end - 1]:
                cursor = Cursor(epoch, self.seqs[end - 1], self.wall_ns).encode()
            else:
                cursor = previous or ""
            yield self.items[start:end], cursor


@dataclass(slots=True)
class _Buffer:
    """The last items published for one (tenant, signal): (first seq, items) per publish."""

    batches: deque[tuple[int, list[Any]]] = field(default_factory=deque)
    count: int = 0
    floor: int = 0  # the newest seq no longer held (0: everything since start is here)


class Subscription:
    """One subscriber: a bounded stream of `LiveBatch`es, plus any markers injected by its
    owner (kept in order with the batches)."""

    def __init__(
        self,
        hub: LiveHub,
        key: tuple[str, str],
        predicate: Predicate | None,
        max_pending_items: int,
        notify_only: bool,
        start_seq: int,
        start_wall: int,
        partition: Partition | None = None,
    ) -> None:
        self._hub = hub
        self.key = key
        self.partition = partition
        self._predicate = predicate
        self._max_pending = max_pending_items
        self._notify_only = notify_only
        self._entries: deque[Any] = deque()
        self._pending_items = 0
        self._wake = asyncio.Event()
        self._error: str | None = None
        self.seen_seq = start_seq  # everything published up to here was offered
        self.seen_wall = start_wall
        self.delivered_seq = start_seq  # what the consumer has been told about
        self._dirty = False

    @property
    def tenant(self) -> str:
        return self.key[0]

    @property
    def closed(self) -> bool:
        return self._error is not None

    def inject(self, marker: object) -> None:
        """Put a marker into the stream after everything published so far."""
        if self._error is None:
            self._entries.append(marker)
            self._wake.set()

    def close(self, reason: str = "subscription closed") -> None:
        if self._error is None:
            self._error = reason
            self._entries.clear()
            self._pending_items = 0
            self._wake.set()
            self._hub._forget(self)

    def _offer(
        self, items: Sequence[Any], first_seq: int, wall_ns: int, candidates: Sequence[int] | None
    ) -> None:
        """From the hub, synchronously, for every publish of this subscriber's key;
        `candidates`: the indexes of the items in this subscriber's partition, if any."""
        end_seq = first_seq + len(items) - 1
        self.seen_seq, self.seen_wall = end_seq, wall_ns
        predicate = self._predicate
        try:
            if candidates is None:
                candidates = range(len(items))
            if predicate is None:
                indexes = list(candidates)
            else:
                indexes = [n for n in candidates if predicate(items[n])]
        except Exception as exc:
            log.exception("live subscription predicate failed")
            self.close(f"live subscription failed: {exc!r}")
            return
        if not indexes:
            return
        if self._notify_only:
            self._dirty = True
            self._wake.set()
            return
        if self._pending_items + len(indexes) > self._max_pending:
            self.close(
                f"live subscription dropped: the client fell more than {self._max_pending}"
                " items behind; resubscribe with the last cursor to resume"
            )
            return
        self._entries.append(LiveBatch(
            [items[n] for n in indexes], [first_seq + n for n in indexes], end_seq, wall_ns,
        ))
        self._pending_items += len(indexes)
        self._wake.set()

    async def next(self, progress_after: float | None = None, max_items: int = 1_000) -> Any:
        """The next entry: a LiveBatch (consecutive batches merged up to `max_items`), or an
        injected marker. For a notify-only subscription a batch without items means "new
        data arrived". With `progress_after`, returns after that many idle seconds anyway:
        an empty "progress" batch if the sequence moved meanwhile (never for notify-only
        subscriptions), else None. Raises SubscriberDropped once the subscription ended."""
        while True:
            if self._error is not None:
                raise SubscriberDropped(self._error)
            if self._entries:
                return self._take(max_items)
            if self._dirty:
                self._dirty = False
                self.delivered_seq = self.seen_seq
                return LiveBatch([], [], self.seen_seq, self.seen_wall)
            self._wake.clear()
            if progress_after is None:
                await self._wake.wait()
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), progress_after)
            except TimeoutError:
                if self._error is not None or self._entries or self._dirty:
                    continue
                if self._notify_only or self.seen_seq == self.delivered_seq:
                    return None
                self.delivered_seq = self.seen_seq
                return LiveBatch([], [], self.seen_seq, self.seen_wall)

    def _take(self, max_items: int) -> Any:
        first = self._entries.popleft()
        if not isinstance(first, LiveBatch):
            return first
        while (
            self._entries
            and isinstance(self._entries[0], LiveBatch)
            and len(first.items) + len(self._entries[0].items) <= max_items
        ):
            more = self._entries.popleft()
            first.items.extend(more.items)
            first.seqs.extend(more.seqs)
            first.end_seq, first.wall_ns = more.end_seq, more.wall_ns
        self._pending_items -= len(first.items)
        if not self._entries:
            # Publishes that matched nothing since the last batch are covered too.
            first.end_seq, first.wall_ns = self.seen_seq, self.seen_wall
        self.delivered_seq = first.end_seq
        return first


# ---------------------------------------------------------------------------- the hub


class LiveHub:
    def __init__(
        self,
        replay_items: int = REPLAY_ITEMS,
        max_pending_items: int = MAX_PENDING_ITEMS,
        replay_signals: Sequence[str] = ("logs",),
    ) -> None:
        self.epoch = secrets.token_hex(6)
        self._replay_items = replay_items
        self._max_pending = max_pending_items
        self._replay_signals = frozenset(replay_signals)
        self._seq: dict[tuple[str, str], int] = {}
        self._wall: dict[tuple[str, str], int] = {}
        self._buffers: dict[tuple[str, str], _Buffer] = {}
        self._subscribers: dict[tuple[str, str], list[Subscription]] = {}
        self._closed = False

    def published(self, signal: str, tenant: str, items: Sequence[Any]) -> None:
        """Items of one tenant just written to the primary store. Synchronous and cheap;
        never raises into the caller (the indexer)."""
        if not items or self._closed:
            return
        key = (tenant, signal)
        first = self._seq.get(key, 0) + 1
        self._seq[key] = first + len(items) - 1
        wall = self._wall[key] = time.time_ns()
        if signal in self._replay_signals:
            self._remember(key, first, items)
        groups: dict[Any, dict[Hashable, list[int]]] = {}
        for subscriber in list(self._subscribers.get(key, ())):
            candidates: list[int] | None = None
            if subscriber.partition is not None:
                key_of, wanted = subscriber.partition
                grouped = groups.get(key_of)
                if grouped is None:
                    grouped = groups[key_of] = _group(items, key_of)
                candidates = grouped.get(wanted, [])
            subscriber._offer(items, first, wall, candidates)

    def _remember(self, key: tuple[str, str], first: int, items: Sequence[Any]) -> None:
        buffer = self._buffers.setdefault(key, _Buffer())
        buffer.batches.append((first, list(items)))
        buffer.count += len(items)
        excess = buffer.count - self._replay_items
        while excess > 0:
            start, held = buffer.batches[0]
            if len(held) <= excess:
                buffer.batches.popleft()
                buffer.floor = start + len(held) - 1
                cut = len(held)
            else:
                buffer.batches[0] = (start + excess, held[excess:])
                buffer.floor = start + excess - 1
                cut = excess
            buffer.count -= cut
            excess -= cut

    def position(self, tenant: str, signal: str) -> Cursor:
        key = (tenant, signal)
        return Cursor(self.epoch, self._seq.get(key, 0), self._wall.get(key, 0))

    def subscribe(
        self,
        tenant: str,
        signal: str,
        predicate: Predicate | None = None,
        *,
        notify_only: bool = False,
        partition: Partition | None = None,
    ) -> Subscription:
        """A subscription to what is published from now on (after `position()`): the
        items in `partition` (all without one) that pass `predicate`."""
        if self._closed:
            raise SubscriberDropped("the server is shutting down")
        key = (tenant, signal)
        subscription = Subscription(
            self, key, predicate, self._max_pending, notify_only,
            self._seq.get(key, 0), self._wall.get(key, 0), partition,
        )
        self._subscribers.setdefault(key, []).append(subscription)
        return subscription

    def replay(
        self, tenant: str, signal: str, after: Cursor, predicate: Predicate | None
    ) -> LiveBatch | None:
        """The matching items published after `after`, up to now, if the buffer still holds
        all of them; None when it cannot (another epoch, or evicted)."""
        key = (tenant, signal)
        current = self._seq.get(key, 0)
        if after.epoch != self.epoch:
            return None
        if after.seq > current:
            raise QueryError("the live cursor is ahead of the server: it is not from this tenant")
        buffer = self._buffers.get(key)
        if signal not in self._replay_signals or after.seq < (buffer.floor if buffer else 0):
            return None
        items: list[Any] = []
        seqs: list[int] = []
        for first, held in buffer.batches if buffer else ():
            if first + len(held) - 1 <= after.seq:
                continue
            for offset, item in enumerate(held):
                seq = first + offset
                if seq > after.seq and (predicate is None or predicate(item)):
                    items.append(item)
                    seqs.append(seq)
        return LiveBatch(items, seqs, current, self._wall.get(key, 0), replay=True)

    def subscriber_count(self) -> int:
        return sum(len(group) for group in self._subscribers.values())

    def close(self) -> None:
        """End every subscription (server shutdown)."""
        self._closed = True
        for group in list(self._subscribers.values()):
            for subscriber in list(group):
                subscriber.close("the server is shutting down")

    def _forget(self, subscription: Subscription) -> None:
        group = self._subscribers.get(subscription.key)
        if group and subscription in group:
            group.remove(subscription)
            if not group:
                del self._subscribers[subscription.key]


def _group(items: Sequence[Any], key_of: Callable[[Any], Hashable]) -> dict[Hashable, list[int]]:
    grouped: dict[Hashable, list[int]] = {}
    for index, item in enumerate(items):
        grouped.setdefault(key_of(item), []).append(index)
    return grouped


# ---------------------------------------------------------------------------- logs


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def body_search_text(body: Any) -> str | None:
    """The body's string form, as the stores search it (None for an empty body)."""
    if body is None:
        return None
    return body if isinstance(body, str) else encode_value(body).decode()


def log_predicate(query: LogQuery) -> Callable[[LogRecord], bool]:
    """`query`'s filters (not tenant, limit, cursor) as a test of one record."""
    tests: list[Callable[[LogRecord], bool]] = []
    start, end = query.start_unix_nano, query.end_unix_nano
    if start is not None:
        tests.append(lambda r: r.timestamp >= start)
    if end is not None:
        tests.append(lambda r: r.timestamp < end)
    if query.contains:
        needle = query.contains
        if needle.isascii():
            folded = needle.translate(_ASCII_LOWER)

            def contains(r: LogRecord) -> bool:
                text = body_search_text(r.body)
                return text is not None and folded in text.translate(_ASCII_LOWER)
        else:
            lowered = needle.lower()

            def contains(r: LogRecord) -> bool:
                text = body_search_text(r.body)
                return text is not None and lowered in text.lower()

        tests.append(contains)
    if query.min_severity is not None:
        minimum = query.min_severity
        tests.append(lambda r: r.severity_number >= minimum)
    if query.service is not None:
        service = query.service
        tests.append(lambda r: r.service_name == service)
    if query.trace_id is not None:
        trace_id = query.trace_id.strip().lower()
        tests.append(lambda r: r.trace_id == trace_id)
    if query.span_id is not None:
        span_id = query.span_id
        tests.append(lambda r: r.span_id == span_id)
    for key, value in query.attributes.items():
        tests.append(_attribute_test(key, value))

    def matches(record: LogRecord) -> bool:
        return all(test(record) for test in tests)

    return matches


def _service_of(record: LogRecord) -> str:
    return str(record.service_name)


def log_partition(query: LogQuery) -> Partition | None:
    """For `LiveHub.subscribe`: a query on one service only looks at that service's records."""
    return None if query.service is None else (_service_of, query.service)


def _metric_name(point: MetricPoint) -> str:
    return str(point.name)


def metric_partition(metric: str) -> Partition:
    return (_metric_name, metric)


def _attribute_test(key: str, value: str) -> Callable[[LogRecord], bool]:
    def test(record: LogRecord) -> bool:
        if key in record.attributes:
            return bool(value_as_label(record.attributes[key]) == value)
        resource = record.resource.attributes
        return key in resource and bool(value_as_label(resource[key]) == value)

    return test


def _fingerprint(record: LogRecord) -> tuple[Any, ...]:
    return (
        record.timestamp, record.observed_time_unix_nano, record.severity_number,
        record.trace_id, record.span_id, record.service_name, body_search_text(record.body),
    )


async def resume_logs(
    hub: LiveHub,
    query: LogQuery,
    after: str | None,
    search: Callable[[LogQuery], Awaitable[LogPage]],
) -> LiveBatch:
    """What a logs subscriber resuming from `after` missed, up to the hub's position at
    return. The caller must subscribe (or mark its stream) before awaiting anything else,
    so that the live part starts exactly after this batch."""
    predicate = log_predicate(query)
    tenant = query.tenant
    if after is None:
        now = hub.position(tenant, "logs")
        return LiveBatch([], [], now.seq, now.wall_ns, replay=True)
    cursor = Cursor.decode(after)
    exact = hub.replay(tenant, "logs", cursor, predicate)
    if exact is not None:
        return exact
    before_search = hub.position(tenant, "logs")
    start = cursor.wall_ns if query.start_unix_nano is None else max(query.start_unix_nano, cursor.wall_ns)
    found: list[LogRecord] = []
    page_cursor: str | None = None
    while len(found) < STORE_REPLAY_LIMIT:
        page = await search(replace(
            query, start_unix_nano=start, limit=_STORE_PAGE, cursor=page_cursor,
        ))
        found.extend(page.records)
        page_cursor = page.next_cursor
        if page_cursor is None:
            break
    # The search returns newest first; keep the newest STORE_REPLAY_LIMIT, oldest first.
    records = found[:STORE_REPLAY_LIMIT][::-1]
    # From here on nothing is awaited: the live part starts where `since` ends.
    since = hub.replay(tenant, "logs", before_search, predicate)
    if since is None:  # the buffer moved past the search's start meanwhile (rare)
        now = hub.position(tenant, "logs")
        return LiveBatch(records, [0] * len(records), now.seq, now.wall_ns, replay=True, gap=True)
    already = Counter(_fingerprint(record) for record in records)
    items: list[Any] = list(records)
    seqs = [0] * len(records)
    for item, seq in zip(since.items, since.seqs):
        fingerprint = _fingerprint(item)
        if already[fingerprint]:
            already[fingerprint] -= 1
            continue
        items.append(item)
        seqs.append(seq)
    return LiveBatch(items, seqs, since.end_seq, since.wall_ns, replay=True, gap=True)


# ---------------------------------------------------------------------------- metrics


def metric_predicate(metric: str, matchers: Sequence[LabelMatcher]) -> Callable[[MetricPoint], bool]:
    """Points of `metric` whose series labels satisfy every matcher."""
    wanted = tuple(matchers)
    for matcher in wanted:
        if matcher.op.value in ("=~", "!~"):
            matcher.compiled()  # an invalid regex fails the subscription, not the indexer

    def matches(point: MetricPoint) -> bool:
        if point.name != metric:
            return False
        if not wanted:
            return True
        labels = series_labels(point)
        return all(bool(matcher.matches(labels)) for matcher in wanted)

    return matches
