"""What every trace store derives from spans for the service map, RED metrics and trace
analytics (storage/traces.py states the rules): inferred nodes, error groups, the
log-linear duration buckets, edge pairing, and percentiles from bucket counts.

Duration buckets are log-linear, as in HdrHistogram: durations below 32 ns have a bucket
each; above, every power of two is cut into 16 equal buckets, so a bucket is at most
1/16 as wide as its lower bound, and its midpoint is within 1/32 of any duration in it
(PERCENTILE_RELATIVE_ERROR). A 64-bit duration needs fewer than 976 buckets.

A histogram travels as bytes: little-endian int64 values, the first the index of the
first bucket, then the counts of consecutive buckets (counts may be negative in a delta,
never in a sum).
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, NamedTuple

import numpy as np

from .attributes import value_as_label
from .errors import QueryError
from .model import AnyValue, Attributes, Span, SpanKind, StatusCode
from .traces import (
    MAX_BUCKETS,
    MAX_ERROR_MESSAGE,
    MINUTE_NS,
    NodeType,
    OperationStats,
    RequestStats,
    TopBy,
)

SUB_BUCKETS = 16
BUCKETS = 976  # enough for any duration below 2^63 ns
QUANTILES = (0.5, 0.95, 0.99)
_DENSE_CELLS = 4_000_000  # sum histograms in a dense array up to this many buckets

_CLIENT, _PRODUCER, _CONSUMER = int(SpanKind.CLIENT), int(SpanKind.PRODUCER), int(SpanKind.CONSUMER)
_CALLER_KINDS = (_CLIENT, _PRODUCER)
_URL_HOST = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?(\[[^\]/?#]*\]|[^/:?#]+)")


# ---------------------------------------------------------------------------- buckets


def bucket_of(duration: int) -> int:
    """The bucket index of a duration in nanoseconds (negative ones count as 0)."""
    if duration < 32:
        return max(duration, 0)
    shift = duration.bit_length() - 5
    return (shift << 4) + (duration >> shift)


def bucket_bounds(index: int) -> tuple[int, int]:
    """[lower, upper) of a bucket."""
    if index < 32:
        return index, index + 1
    shift = (index >> 4) - 1
    mantissa = (index & 15) + 16
    return mantissa << shift, (mantissa + 1) << shift


def _midpoints() -> np.ndarray:
    values = []
    for index in range(BUCKETS):
        low, high = bucket_bounds(index)
        values.append((low + high - 1) // 2)
    return np.array(values, dtype=np.float64)


_MIDPOINTS = _midpoints()


def encode_histogram(counts: dict[int, int]) -> bytes:
    """The bytes form of {bucket index: count}."""
    first, last = min(counts), max(counts)
    dense = [0] * (last - first + 1)
    for index, count in counts.items():
        dense[index - first] = count
    return np.array([first, *dense], dtype="<i8").tobytes()


def add_histograms(left: bytes | None, right: bytes | None) -> bytes | None:
    """The sum of two histograms in bytes form (an SQL function of the embedded store)."""
    if left is None:
        return right
    if right is None:
        return left
    a = np.frombuffer(left, dtype="<i8")
    b = np.frombuffer(right, dtype="<i8")
    first = min(int(a[0]), int(b[0]))
    last = max(int(a[0]) + len(a) - 1, int(b[0]) + len(b) - 1)
    total = np.zeros(last - first + 1, dtype="<i8")
    total[0] = first
    total[int(a[0]) - first + 1 : int(a[0]) - first + len(a)] += a[1:]
    total[int(b[0]) - first + 1 : int(b[0]) - first + len(b)] += b[1:]
    return total.tobytes()


def nearest_rank(quantile: float, count: int) -> int:
    """The 1-based rank percentile_disc picks (the same float arithmetic as PostgreSQL)."""
    return max(1, math.ceil(quantile * count))


class HistogramSums:
    """Sums counts, errors and histograms (bytes form) per group key, then answers
    percentiles: the midpoint of the bucket holding the nearest-rank duration.

    The histograms are summed in one vectorised pass at the end, so thousands of rows cost
    a few milliseconds.
    """

    def __init__(self) -> None:
        self._groups: dict[Hashable, int] = {}
        self._counts: list[int] = []
        self._errors: list[int] = []
        self._row_groups: list[int] = []
        self._blobs: list[bytes] = []

    def group(self, key: Hashable) -> int:
        found = self._groups.get(key)
        if found is None:
            found = self._groups[key] = len(self._groups)
            self._counts.append(0)
            self._errors.append(0)
        return found

    def add(self, key: Hashable, count: int, errors: int, histogram: bytes | None) -> None:
        group = self.group(key)
        self._counts[group] += count
        self._errors[group] += errors
        if histogram:
            self._row_groups.append(group)
            self._blobs.append(histogram)

    def keys(self) -> Iterable[Hashable]:
        return self._groups.keys()

    def _entries(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(group, bucket, count) of every non-empty summed bucket, by group then bucket."""
        if not self._blobs:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, np.zeros(0, dtype=np.float64)
        lengths = np.fromiter((len(b) // 8 - 1 for b in self._blobs), np.int64, len(self._blobs))
        flat = np.frombuffer(b"".join(self._blobs), dtype="<i8")
        heads = np.concatenate(([0], np.cumsum(lengths + 1)[:-1]))
        firsts = flat[heads]
        keep = np.ones(len(flat), dtype=bool)
        keep[heads] = False
        counts = flat[keep]
        # The bucket of each count: its row's first bucket + its position in the row.
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        buckets = np.repeat(firsts, lengths) + np.arange(len(counts)) - np.repeat(starts, lengths)
        rows = np.repeat(np.array(self._row_groups, dtype=np.int64), lengths)
        cells = rows * BUCKETS + buckets
        if len(self._groups) * BUCKETS <= _DENSE_CELLS:  # one slot per (group, bucket)
            summed = np.bincount(cells, weights=counts, minlength=len(self._groups) * BUCKETS)
            keys = np.flatnonzero(summed > 0)
            return keys // BUCKETS, keys % BUCKETS, summed[keys]
        keys, inverse = np.unique(cells, return_inverse=True)
        summed = np.maximum(np.bincount(inverse, weights=counts), 0)
        nonzero = summed > 0
        keys = keys[nonzero]
        return keys // BUCKETS, keys % BUCKETS, summed[nonzero]

    def histogram(self, key: Hashable) -> np.ndarray:
        """The summed bucket counts of one group (BUCKETS of them)."""
        groups, buckets, counts = self._entries()
        mine = groups == self._groups[key]
        summed = np.bincount(buckets[mine], weights=counts[mine], minlength=BUCKETS)
        return np.rint(summed).astype(np.int64)

    def quantiles(self) -> list[tuple[int | None, ...]]:
        """(p50, p95, p99) estimates of each group, in key order; None when empty: the
        midpoint of the bucket holding the nearest-rank duration."""
        count = len(self._groups)
        groups, buckets, counts = self._entries()
        totals = np.bincount(groups, weights=counts, minlength=count)
        cumulative = np.cumsum(counts)
        before = np.concatenate(([0.0], np.cumsum(totals)[:-1]))
        columns = []
        for quantile in QUANTILES:
            ranks = np.maximum(1.0, np.ceil(quantile * totals))  # as nearest_rank
            found = np.searchsorted(cumulative, before + ranks, side="left")
            found = np.minimum(found, max(len(buckets) - 1, 0))
            values = _MIDPOINTS[buckets[found]] if len(buckets) else np.zeros(count)
            columns.append([None if t <= 0 else int(v) for t, v in zip(totals, values)])
        return list(zip(*columns)) if columns else []

    def stats(self, seconds: float) -> dict[Hashable, RequestStats]:
        """RequestStats of every group over `seconds`."""
        if not self._groups:
            return {}
        percentiles = self.quantiles()
        result: dict[Hashable, RequestStats] = {}
        for key, group in self._groups.items():
            count, errors = self._counts[group], self._errors[group]
            result[key] = make_stats(count, errors, seconds, *percentiles[group])
        return result


def make_stats(
    count: int, errors: int, seconds: float, p50: int | None, p95: int | None, p99: int | None
) -> RequestStats:
    return RequestStats(
        count=count,
        errors=errors,
        rate=count / seconds if seconds > 0 else 0.0,
        error_rate=errors / count if count else 0.0,
        p50=p50 if count else None,
        p95=p95 if count else None,
        p99=p99 if count else None,
    )


# ---------------------------------------------------------------------------- arguments


def check_step(step: int) -> None:
    """Refuse a RED step that is not a positive whole number of minutes."""
    if step <= 0 or step % MINUTE_NS:
        raise QueryError(f"step must be a positive whole number of minutes, got {step} ns")


def check_bounds(bounds: Sequence[int] | None) -> None:
    if bounds is None:
        return
    if not bounds or len(bounds) > MAX_BUCKETS:
        raise QueryError(f"give between 1 and {MAX_BUCKETS} bucket bounds")
    if any(b <= 0 for b in bounds) or any(a >= b for a, b in pairwise(bounds)):
        raise QueryError("bucket bounds must be positive and strictly ascending")


def rank_operations(found: list[OperationStats], by: TopBy, limit: int) -> list[OperationStats]:
    """The first `limit` of `found` by `by` (descending), then count, service, operation."""

    def order(item: OperationStats) -> tuple[Any, ...]:
        s = item.stats
        value = {"p95": s.p95 or 0, "count": s.count, "error_rate": s.error_rate}[by]
        return (-value, -s.count, item.service, item.operation)

    if by not in ("p95", "count", "error_rate"):
        raise QueryError(f"cannot rank operations by {by!r}: use p95, count or error_rate")
    return sorted(found, key=order)[:limit]


# ---------------------------------------------------------------------------- attributes


def _label(attributes: Attributes, key: str) -> str:
    value: AnyValue = attributes.get(key)
    if value is None:
        return ""
    return value if isinstance(value, str) else value_as_label(value)


def url_host(url: str) -> str:
    """The host of an absolute URL; "" when there is none."""
    match = _URL_HOST.match(url)
    return match.group(1) if match else ""


class Peer(NamedTuple):
    """The node a span calls (or, for a consumer, is called from) by its attributes."""

    type: NodeType
    system: str
    name: str


def peer_of(kind: int, attributes: Attributes) -> Peer | None:
    """The inferred node of a CLIENT, PRODUCER or CONSUMER span (see NodeType); None for
    other spans and those without the attributes. An EXTERNAL peer only becomes a node
    when the span has no child in another service."""
    if kind not in (_CLIENT, _PRODUCER, _CONSUMER) or not attributes:
        return None
    if kind == _CLIENT:
        system = _label(attributes, "db.system.name") or _label(attributes, "db.system")
        if system:
            name = (
                _label(attributes, "db.namespace")
                or _label(attributes, "db.name")
                or _label(attributes, "server.address")
                or system
            )
            return Peer(NodeType.DATABASE, system, name)
    system = _label(attributes, "messaging.system")
    if system:
        name = (
            _label(attributes, "messaging.destination.name")
            or _label(attributes, "messaging.destination")
            or _label(attributes, "server.address")
            or system
        )
        return Peer(NodeType.MESSAGING, system, name)
    if kind != _CLIENT:
        return None
    host = (
        _label(attributes, "peer.service")
        or _label(attributes, "server.address")
        or _label(attributes, "net.peer.name")
        or url_host(_label(attributes, "url.full"))
        or url_host(_label(attributes, "http.url"))
        or _label(attributes, "rpc.service")
    )
    return Peer(NodeType.EXTERNAL, "", host) if host else None


def error_group(span: Span) -> tuple[str, str] | None:
    """(exception type, message) of an error span (see ErrorGroup); None if no error."""
    if span.status_code != StatusCode.ERROR:
        return None
    for event in reversed(span.events):
        if event.name == "exception":
            kind = _label(event.attributes, "exception.type")
            message = _label(event.attributes, "exception.message")
            return kind, message[:MAX_ERROR_MESSAGE]
    return _label(span.attributes, "error.type"), span.status_message[:MAX_ERROR_MESSAGE]


# ---------------------------------------------------------------------------- edges

NodeKey = tuple[str, str, str]  # (NodeType value, system, name)


def service_node(service: str) -> NodeKey:
    return (NodeType.SERVICE.value, "", service)


@dataclass(slots=True)
class Facts:
    """What edge pairing needs of one span. `via_node`: its edge goes through its database
    or messaging node (see ServiceMap); `external`: a CLIENT span with an EXTERNAL peer."""

    span_id: str
    parent_id: str
    service: str
    kind: int
    start: int
    duration: int
    error: bool
    peer: Peer | None
    via_node: bool = False
    external: bool = False

    def __post_init__(self) -> None:
        peer = self.peer
        if peer is not None:
            if peer.type is NodeType.EXTERNAL:
                self.external = True
            else:
                self.via_node = self.kind in _CALLER_KINDS or peer.type is NodeType.MESSAGING

    @classmethod
    def of(cls, span: Span, service: str | None = None) -> Facts:
        kind = int(span.kind)
        return cls(
            span.span_id, span.parent_span_id, service or span.service_name, kind,
            span.start_time_unix_nano, span.duration_nano, span.is_error,
            peer_of(kind, span.attributes) if kind >= _CLIENT else None,
        )  # fmt: skip


class Contribution(NamedTuple):
    """One request of an edge (or its withdrawal, delta -1) in the minute of `start`."""

    start: int
    source: NodeKey
    target: NodeKey
    duration: int
    error: bool
    delta: int


def _peer_key(peer: Peer) -> NodeKey:
    return (peer.type.value, peer.system, peer.name)


def _pair(parent: Facts, child: Facts) -> Contribution | None:
    """The edge of a parent and its child in another service, if they form one."""
    if (parent.via_node and parent.kind in _CALLER_KINDS) or (
        child.via_node and child.kind == _CONSUMER
    ):
        return None
    anchor = parent if parent.kind in _CALLER_KINDS else child
    return Contribution(
        anchor.start, service_node(parent.service), service_node(child.service),
        anchor.duration, parent.error or child.error, 1,
    )  # fmt: skip


def edge_contributions(existing: Sequence[Facts], new: Sequence[Facts]) -> list[Contribution]:
    """The edge requests that spans `new` add to a trace that already holds `existing`.

    Applied batch after batch, in any order, the sums equal those of all the trace's
    spans at once: each parent/child pair counts when its second span arrives, and a
    CLIENT span counted as an external call is withdrawn when a child in another service
    turns up later.
    """
    out: list[Contribution] = []
    for span in new:
        if span.via_node:
            assert span.peer is not None
            if span.kind == _CONSUMER:
                source, target = _peer_key(span.peer), service_node(span.service)
            else:
                source, target = service_node(span.service), _peer_key(span.peer)
            out.append(Contribution(span.start, source, target, span.duration, span.error, 1))
    by_id = {span.span_id: span for span in existing}
    new_ids: set[str] | None = None  # None: every span is new
    spans: Sequence[Facts] = new
    if by_id:
        new_ids = {span.span_id for span in new}
        spans = [*existing, *new]
    by_id.update((span.span_id, span) for span in new)
    remote_children: dict[str, int] = {}  # span id -> its children in other services
    old_remote_children: set[str] = set()
    for child in spans:
        parent = by_id.get(child.parent_id) if child.parent_id else None
        if parent is None or parent.service == child.service:
            continue
        remote_children[parent.span_id] = remote_children.get(parent.span_id, 0) + 1
        child_new = new_ids is None or child.span_id in new_ids
        if not child_new:
            old_remote_children.add(parent.span_id)
        if child_new or parent.span_id in new_ids:  # type: ignore[operator]
            pair = _pair(parent, child)
            if pair is not None:
                out.append(pair)
    for span in by_id.values():
        if not span.external:
            continue
        assert span.peer is not None
        if new_ids is None or span.span_id in new_ids:
            if span.span_id not in remote_children:
                out.append(Contribution(span.start, service_node(span.service),
                                        _peer_key(span.peer), span.duration, span.error, 1))
        elif span.span_id in remote_children and span.span_id not in old_remote_children:
            out.append(Contribution(span.start, service_node(span.service),
                                    _peer_key(span.peer), span.duration, span.error, -1))
    return out
