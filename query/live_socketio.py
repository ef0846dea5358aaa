"""Socket.IO on `/socket.io` of the API address: live log tails and live series.

Protocol (default namespace):

* connect with `auth={"token": "argus_..."}` (or an `Authorization: Bearer` header); a
  missing, invalid or revoked key, or one that may not read, is refused
  (`connect_error`). The socket's tenant is its key's. A key revoked later disconnects
  the socket within about two seconds (an `error` event first).
* `subscribe` `{"kind": "logs", "filter": {...}, "after": cursor?}`; the filter takes the
  GraphQL LogFilter's fields (start, end, contains, minSeverity, service, traceId, spanId,
  attributes: [{key, value}]). The acknowledgement is `{"id": ..., "cursor": ...}`:
  everything indexed after that cursor will be pushed. Pushes are `logs` events
  `{"id", "records": [...], "cursor", "replay", "gap"}`, records oldest first, shaped
  like GraphQL's LogRecord (64-bit integers as decimal strings). The first push after a
  subscribe is the replay (`replay: true`): what was missed since `after` (nothing
  without it). A subscription whose filter matches nothing while other records of the
  tenant arrive gets an empty push with its advancing cursor about once a second. To resume after a reconnect, subscribe again with the last cursor
  received: exactly the missed records follow, then the live ones, none twice (see
  `query/live.py`; `gap: true` marks a replay from the store when the live buffer no
  longer reaches back that far).
* `subscribe` `{"kind": "metricSeries", "query": {...}}` with the GraphQL MetricQuery's
  fields (metric, matchers: [{label, op, value}], start, end, step, aggregation, groupBy,
  rate, quantile): `series` events `{"id", "series": [{labels, points: [{timeUnixNano,
  value}]}]}`, one at once, then whenever new points of the metric arrive (at most every
  500 ms); without `end` the window slides.
* `unsubscribe` `{"id": ...}`. Errors come back in the acknowledgement as `{"error":
  message}`, or later as an `error` event `{"id", "message"}` (the subscription ended).

Clients subscribing to the same thing in one tenant share a room: one hub subscription,
one evaluation, one encoding per push. A client whose socket has more than
`MAX_QUEUED_PACKETS` pushes waiting is disconnected (it resumes with its cursor) rather
than left to grow the server's memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import socketio
from starlette.types import ASGIApp

from ..auth import Authenticator, AuthError, Principal
from ..storage.errors import QueryError
from ..storage.metrics import Aggregation, ResultSeries
from ..storage.model import LogRecord
from ..storage.model import Resource as ModelResource
from ..storage.model import Scope as ModelScope
from .live import (
    Cursor,
    LiveBatch,
    LiveHub,
    SubscriberDropped,
    Subscription,
    log_partition,
    log_predicate,
    metric_partition,
    metric_predicate,
    resume_logs,
)
from .schema.common import AttributeFilter
from .schema.live import (
    PROGRESS_SECONDS,
    RECHECK_SECONDS,
    SERIES_INTERVAL_SECONDS,
    SeriesWindow,
    log_query,
)
from .schema.logs import LogFilter, body_text
from .schema.metrics import LabelMatcherInput, MetricQuery
from .schema.scalars import Duration, Time, to_json
from .service import QueryService
from .timeparse import TimeFormatError, parse_duration, parse_time

log = logging.getLogger("argus.live")

CHUNK_RECORDS = 500  # records per `logs` event
MAX_QUEUED_PACKETS = 1_000  # pushes waiting on one socket before it is disconnected
MAX_SUBSCRIPTIONS_PER_SOCKET = 50

_LOG_FILTER_FIELDS = {
    "start": "start", "end": "end", "contains": "contains", "minSeverity": "min_severity",
    "service": "service", "traceId": "trace_id", "spanId": "span_id",
    "attributes": "attributes",
}
_METRIC_QUERY_FIELDS = {
    "metric", "matchers", "start", "end", "step", "aggregation", "groupBy", "rate", "quantile",
}


# ---------------------------------------------------------------------------- JSON shapes


def _resource_json(resource: ModelResource) -> dict[str, Any]:
    return {
        "attributes": to_json(resource.attributes),
        "droppedAttributesCount": resource.dropped_attributes_count,
        "schemaUrl": resource.schema_url,
    }


def _scope_json(scope: ModelScope) -> dict[str, Any]:
    return {
        "name": scope.name, "version": scope.version, "attributes": to_json(scope.attributes),
        "droppedAttributesCount": scope.dropped_attributes_count, "schemaUrl": scope.schema_url,
    }


def log_json(record: LogRecord) -> dict[str, Any]:
    """A record as GraphQL's LogRecord would show it."""
    return {
        "timeUnixNano": str(record.time_unix_nano),
        "observedTimeUnixNano": str(record.observed_time_unix_nano),
        "timestamp": str(record.timestamp),
        "severityNumber": record.severity_number,
        "severityText": record.severity_text,
        "body": to_json(record.body),
        "bodyText": body_text(record.body),
        "attributes": to_json(record.attributes),
        "droppedAttributesCount": record.dropped_attributes_count,
        "flags": str(record.flags),
        "traceId": record.trace_id,
        "spanId": record.span_id,
        "eventName": record.event_name,
        "service": record.service_name,
        "resource": _resource_json(record.resource),
        "scope": _scope_json(record.scope),
    }


def series_json(result: list[ResultSeries]) -> list[dict[str, Any]]:
    return [
        {
            "labels": series.labels,
            "points": [{"timeUnixNano": str(ts), "value": value}
                       for ts, value in zip(series.timestamps, series.values)],
        }
        for series in result
    ]


# ---------------------------------------------------------------------------- requests


def _object(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise QueryError(f"{what} must be an object")
    return value


def _unknown(given: dict[str, Any], known: Any, what: str) -> None:
    extra = sorted(set(given) - set(known))
    if extra:
        raise QueryError(f"unknown {what} field(s): {', '.join(extra)}")


def _time(value: Any) -> Time | None:
    if value is None:
        return None
    return Time(parse_time(value if isinstance(value, int) else str(value)))


def parse_log_filter(value: Any) -> LogFilter:
    given = _object(value, "filter")
    _unknown(given, _LOG_FILTER_FIELDS, "filter")
    args = {_LOG_FILTER_FIELDS[key]: item for key, item in given.items()}
    attributes = args.get("attributes")
    if isinstance(attributes, dict):
        attributes = [{"key": key, "value": item} for key, item in attributes.items()]
    if attributes is not None:
        if not isinstance(attributes, list) or not all(
            isinstance(item, dict) and isinstance(item.get("key"), str)
            and isinstance(item.get("value"), str) for item in attributes
        ):
            raise QueryError("filter.attributes must be a list of {key, value} strings")
        args["attributes"] = [AttributeFilter(key=item["key"], value=item["value"])
                              for item in attributes]
    for key in ("contains", "min_severity", "service", "trace_id", "span_id"):
        if args.get(key) is not None and not isinstance(args[key], (str, int)):
            raise QueryError(f"filter field {key} must be a string")
        if args.get(key) is not None:
            args[key] = str(args[key])
    args["start"], args["end"] = _time(args.get("start")), _time(args.get("end"))
    return LogFilter(**args)


def parse_metric_query(value: Any) -> MetricQuery:
    given = _object(value, "query")
    _unknown(given, _METRIC_QUERY_FIELDS, "query")
    metric = given.get("metric")
    if not isinstance(metric, str) or not metric:
        raise QueryError("query.metric is required")
    matchers = given.get("matchers") or []
    if not isinstance(matchers, list) or not all(isinstance(item, dict) for item in matchers):
        raise QueryError("query.matchers must be a list of {label, op, value}")
    aggregation = str(given.get("aggregation") or "avg").lower()
    try:
        parsed_aggregation = Aggregation(aggregation)
    except ValueError:
        raise QueryError(f"invalid aggregation {aggregation!r}") from None
    group_by = given.get("groupBy")
    if group_by is not None and (
        not isinstance(group_by, list) or not all(isinstance(item, str) for item in group_by)
    ):
        raise QueryError("query.groupBy must be a list of label names")
    quantile = given.get("quantile")
    step = given.get("step")
    return MetricQuery(
        metric=metric,
        matchers=[LabelMatcherInput(label=str(item.get("label", "")), op=str(item.get("op", "=")),
                                    value=str(item.get("value", ""))) for item in matchers],
        start=_time(given.get("start")),
        end=_time(given.get("end")),
        step=None if step is None else Duration(
            parse_duration(step if isinstance(step, int) else str(step))
        ),
        aggregation=parsed_aggregation,
        group_by=group_by,
        rate=bool(given.get("rate", False)),
        quantile=None if quantile is None else float(quantile),
    )


def _subscription_id(tenant: str, kind: str, spec: Any) -> str:
    canonical = json.dumps([tenant, kind, spec], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


# ---------------------------------------------------------------------------- rooms


@dataclass(slots=True)
class _Join:
    """Injected into a room's stream: from here on, `sid` gets the room's pushes."""

    sid: str
    replay: LiveBatch | None = None  # logs: what it missed
    after: str | None = None
    series: list[ResultSeries] | None = None  # metricSeries: its first evaluation
    matched: int = 0  # metricSeries: how many matching publishes that evaluation saw


@dataclass(slots=True)
class _Room:
    id: str
    name: str
    kind: str
    tenant: str
    subscription: Subscription
    window: SeriesWindow | None = None
    members: set[str] = field(default_factory=set)  # subscribed (joined or joining)
    joined: set[str] = field(default_factory=set)  # in the Socket.IO room
    task: asyncio.Task[None] | None = None


@dataclass(slots=True)
class _Session:
    principal: Principal
    authorization: str | None
    rooms: dict[str, str] = field(default_factory=dict)  # subscription id -> room name


class LiveSocketServer:
    def __init__(self, hub: LiveHub, service: QueryService, authenticator: Authenticator) -> None:
        self._hub = hub
        self._service = service
        self._authenticator = authenticator
        self.sio = socketio.AsyncServer(async_mode="asgi", logger=False, engineio_logger=False)
        self.sio.on("connect", self._connect)
        self.sio.on("disconnect", self._disconnect)
        self.sio.on("subscribe", self._subscribe)
        self.sio.on("unsubscribe", self._unsubscribe)
        self._sessions: dict[str, _Session] = {}
        self._rooms: dict[str, _Room] = {}
        self._watcher: asyncio.Task[None] | None = None

    def mount(self, app: ASGIApp) -> ASGIApp:
        """`app` with Socket.IO answering on /socket.io."""
        mounted: ASGIApp = socketio.ASGIApp(self.sio, other_asgi_app=app, socketio_path="socket.io")
        return mounted

    # -------------------------------------------------------------- connections

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        authorization = f"Bearer {token}" if isinstance(token, str) and token else (
            environ.get("HTTP_AUTHORIZATION")
        )
        try:
            principal = self._authenticator.authenticate(authorization)
            principal.require(principal.role.may_read(), "query data")
        except AuthError as exc:
            raise socketio.exceptions.ConnectionRefusedError(str(exc)) from None
        self._sessions[sid] = _Session(principal, authorization)
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch_keys(), name="socket.io key check")

    async def _disconnect(self, sid: str, reason: Any = None) -> None:
        session = self._sessions.pop(sid, None)
        if session is not None:
            for room_name in list(session.rooms.values()):
                self._left(sid, room_name)

    async def _watch_keys(self) -> None:
        """Disconnect sockets whose key was revoked since they connected."""
        while self._sessions:
            await asyncio.sleep(RECHECK_SECONDS)
            for sid, session in list(self._sessions.items()):
                try:
                    principal = self._authenticator.authenticate(session.authorization)
                    principal.require(principal.role.may_read(), "query data")
                except AuthError as exc:
                    await self._drop(sid, f"{exc}: disconnected")

    async def _drop(self, sid: str, message: str) -> None:
        await self.sio.emit("error", {"id": None, "message": message}, to=sid)
        await self._disconnect(sid)
        await self.sio.disconnect(sid)

    # -------------------------------------------------------------- requests

    async def _subscribe(self, sid: str, data: Any = None) -> dict[str, Any]:
        session = self._sessions.get(sid)
        if session is None:
            return {"error": "not connected"}
        if len(session.rooms) >= MAX_SUBSCRIPTIONS_PER_SOCKET:
            return {"error": f"at most {MAX_SUBSCRIPTIONS_PER_SOCKET} subscriptions per socket"}
        try:
            request = _object(data, "subscribe")
            kind = request.get("kind")
            if kind == "logs":
                _unknown(request, ("kind", "filter", "after"), "subscribe")
                return await self._subscribe_logs(sid, session, request)
            if kind == "metricSeries":
                _unknown(request, ("kind", "query"), "subscribe")
                return await self._subscribe_series(sid, session, request)
            return {"error": "kind must be 'logs' or 'metricSeries'"}
        except (QueryError, TimeFormatError, ValueError, TypeError) as exc:
            return {"error": str(exc)}

    async def _unsubscribe(self, sid: str, data: Any = None) -> dict[str, Any]:
        session = self._sessions.get(sid)
        given = data.get("id") if isinstance(data, dict) else None
        if session is None or not isinstance(given, str) or given not in session.rooms:
            return {"error": "no such subscription"}
        room_name = session.rooms[given]
        self._left(sid, room_name)
        await self.sio.leave_room(sid, room_name)
        return {"id": given}

    async def _subscribe_logs(
        self, sid: str, session: _Session, request: dict[str, Any]
    ) -> dict[str, Any]:
        tenant = session.principal.tenant
        query = log_query(tenant, parse_log_filter(request.get("filter")))
        after = request.get("after")
        if after is not None and not isinstance(after, str):
            raise QueryError("after must be a cursor string")
        spec = asdict(query)
        subscription_id = _subscription_id(tenant, "logs", spec)
        if subscription_id in session.rooms:
            return {"error": "already subscribed", "id": subscription_id}
        replay = await resume_logs(self._hub, query, after, self._service.logs)
        # Nothing is awaited from here to the join: the live part starts after `replay`.
        if self._sessions.get(sid) is not session:
            return {"error": "disconnected"}
        room = self._rooms.get(f"live:{subscription_id}")
        if room is None:
            subscription = self._hub.subscribe(
                tenant, "logs", log_predicate(query), partition=log_partition(query)
            )
            room = self._open_room(subscription_id, "logs", tenant, subscription, self._pump_logs)
        self._enter(sid, session, room, _Join(sid, replay=replay, after=after))
        cursor = Cursor(self._hub.epoch, replay.end_seq, replay.wall_ns).encode()
        return {"id": subscription_id, "cursor": cursor}

    async def _subscribe_series(
        self, sid: str, session: _Session, request: dict[str, Any]
    ) -> dict[str, Any]:
        tenant = session.principal.tenant
        given = parse_metric_query(request.get("query"))
        matchers = [item.to_matcher() for item in given.matchers or []]
        predicate = metric_predicate(given.metric, matchers)
        subscription_id = _subscription_id(tenant, "metricSeries", request.get("query"))
        if subscription_id in session.rooms:
            return {"error": "already subscribed", "id": subscription_id}
        room = self._rooms.get(f"live:{subscription_id}")
        window = room.window if room is not None and room.window else SeriesWindow(given)
        if room is None:
            subscription = self._hub.subscribe(
                tenant, "metrics", predicate, notify_only=True,
                partition=metric_partition(given.metric),
            )
            room = self._open_room(
                subscription_id, "metricSeries", tenant, subscription, self._pump_series
            )
            room.window = window
        room.members.add(sid)  # keeps the room open while its first evaluation runs
        try:
            matched = room.subscription.seen_seq
            series = await self._service.metric_series(window.query_at(tenant))
        except BaseException:
            self._left(sid, room.name)
            raise
        if self._sessions.get(sid) is not session or room.name not in self._rooms:
            self._left(sid, room.name)
            return {"error": "disconnected"}
        self._enter(sid, session, room, _Join(sid, series=series, matched=matched))
        return {"id": subscription_id}

    # -------------------------------------------------------------- rooms

    def _open_room(
        self,
        subscription_id: str,
        kind: str,
        tenant: str,
        subscription: Subscription,
        pump: Callable[[_Room], Any],
    ) -> _Room:
        room = _Room(subscription_id, f"live:{subscription_id}", kind, tenant, subscription)
        self._rooms[room.name] = room
        room.task = asyncio.create_task(pump(room), name=f"socket.io {kind} room")
        return room

    def _enter(self, sid: str, session: _Session, room: _Room, join: _Join) -> None:
        room.members.add(sid)
        session.rooms[room.id] = room.name
        room.subscription.inject(join)

    def _left(self, sid: str, room_name: str) -> None:
        """Bookkeeping when `sid` leaves a room (the Socket.IO room is left by the caller,
        or by Socket.IO itself on disconnect); the last one out closes the room."""
        room = self._rooms.get(room_name)
        session = self._sessions.get(sid)
        if session is not None and room is not None:
            session.rooms.pop(room.id, None)
        if room is None:
            return
        room.members.discard(sid)
        room.joined.discard(sid)
        if not room.members:
            self._close_room(room)

    def _close_room(self, room: _Room) -> None:
        if self._rooms.get(room.name) is room:
            del self._rooms[room.name]
        room.subscription.close()
        if room.task is not None and room.task is not asyncio.current_task():
            room.task.cancel()

    async def _end_room(self, room: _Room, message: str) -> None:
        await self.sio.emit("error", {"id": room.id, "message": message}, to=room.name)
        for sid in list(room.members):
            session = self._sessions.get(sid)
            if session is not None:
                session.rooms.pop(room.id, None)
            await self.sio.leave_room(sid, room.name)
        room.members.clear()
        self._close_room(room)

    async def _shed_slow(self, room: _Room) -> None:
        """Disconnect joined sockets with more than MAX_QUEUED_PACKETS pushes waiting."""
        for sid in list(room.joined):
            try:
                eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
                queued = self.sio.eio.sockets[eio_sid].queue.qsize()
            except (KeyError, AttributeError):
                continue
            if queued > MAX_QUEUED_PACKETS:
                log.warning("socket.io client %s fell behind (%d pushes queued); disconnected",
                            sid, queued)
                await self._drop(sid, f"too slow: more than {MAX_QUEUED_PACKETS} pushes waiting;"
                                      " reconnect and resubscribe with the last cursor")

    async def _pump_logs(self, room: _Room) -> None:
        try:
            while True:
                try:
                    entry = await room.subscription.next(PROGRESS_SECONDS, CHUNK_RECORDS)
                except SubscriberDropped as exc:
                    await self._end_room(room, str(exc))
                    return
                if entry is None:
                    continue
                if isinstance(entry, _Join):
                    if entry.sid in room.members and entry.replay is not None:
                        await self._push_logs(room, entry.replay, entry.sid, entry.after)
                        await self.sio.enter_room(entry.sid, room.name)
                        room.joined.add(entry.sid)
                    continue
                if room.joined:
                    await self._shed_slow(room)
                    await self._push_logs(room, entry, room.name, None)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("socket.io logs room failed")
            await self._end_room(room, "internal error in the live tail")

    async def _push_logs(self, room: _Room, batch: LiveBatch, to: str, previous: str | None) -> None:
        for records, cursor in batch.chunks(self._hub.epoch, CHUNK_RECORDS, previous):
            await self.sio.emit("logs", {
                "id": room.id, "records": [log_json(record) for record in records],
                "cursor": cursor, "replay": batch.replay, "gap": batch.gap,
            }, to=to)

    async def _pump_series(self, room: _Room) -> None:
        assert room.window is not None
        last = 0.0
        try:
            while True:
                try:
                    entry = await room.subscription.next()
                except SubscriberDropped as exc:
                    await self._end_room(room, str(exc))
                    return
                if isinstance(entry, _Join):
                    if entry.sid not in room.members:
                        continue
                    series = entry.series
                    if room.subscription.seen_seq != entry.matched:  # newer data meanwhile
                        series = await self._service.metric_series(room.window.query_at(room.tenant))
                    await self.sio.emit("series", {"id": room.id, "series": series_json(series or [])},
                                        to=entry.sid)
                    await self.sio.enter_room(entry.sid, room.name)
                    room.joined.add(entry.sid)
                    continue
                wait = last + SERIES_INTERVAL_SECONDS - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                last = time.monotonic()
                if not room.joined:
                    continue
                try:
                    result = await self._service.metric_series(room.window.query_at(room.tenant))
                except QueryError as exc:
                    await self.sio.emit("error", {"id": room.id, "message": str(exc)}, to=room.name)
                    continue
                await self.sio.emit("series", {"id": room.id, "series": series_json(result)},
                                    to=room.name)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("socket.io series room failed")
            await self._end_room(room, "internal error in the live series")
