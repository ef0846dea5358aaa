"""The API application on the `--api` address: GraphQL (subscriptions over
graphql-transport-ws too), Socket.IO on /socket.io, health endpoints."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketClose
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

from ..auth import Authenticator, AuthError, Unauthenticated
from ..storage.keys import KeyStore
from .context import QueryContext
from .live import LiveHub
from .live_socketio import LiveSocketServer
from .rest import RestApi
from .schema.live import LiveContext
from .schema.root import schema
from .service import QueryService

_PRINCIPAL = "argus.principal"  # where RequireKey leaves the caller in the ASGI scope
_PLAIN_ACK: UnsetType = UNSET  # connection_ack without a payload


class ArgusGraphQL(GraphQL[QueryContext, None]):
    def __init__(
        self,
        service: QueryService,
        keys: KeyStore | None,
        indexing_status: Callable[[], dict[str, Any]] | None = None,
        live: LiveHub | None = None,
        authenticator: Authenticator | None = None,
    ) -> None:
        super().__init__(
            schema,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=10),
        )
        self._service = service
        self._keys = keys
        self._indexing_status = indexing_status
        self._live = live
        self._authenticator = authenticator

    async def get_context(self, request: Any, response: Any = None) -> QueryContext:
        principal = request.scope.get(_PRINCIPAL)
        return LiveContext(
            service=self._service,
            principal=principal,
            keys=self._keys,
            indexing_status=self._indexing_status,
            request=request,
            response=response,
            live=self._live,
            authenticator=self._authenticator,
            authorization=request.headers.get("authorization") if principal else None,
        )

    async def on_ws_connect(self, context: QueryContext) -> UnsetType | dict[str, object] | None:
        """graphql-transport-ws `connection_init`: a WebSocket opened without an
        Authorization header (browsers cannot set one) authenticates with the payload's
        `{"Authorization": "Bearer <key>"}`; the key must be allowed to read."""
        if not isinstance(context, LiveContext) or context.principal is not None:
            return _PLAIN_ACK
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        authorization = params.get("Authorization", params.get("authorization"))
        if authorization is not None and not isinstance(authorization, str):
            raise ConnectionRejectionError({"message": "Authorization must be a string"})
        if self._authenticator is None:
            raise ConnectionRejectionError({"message": "authentication is not available"})
        try:
            principal = self._authenticator.authenticate(authorization)
            principal.require(principal.role.may_read(), "query data")
        except AuthError as exc:
            raise ConnectionRejectionError({"message": str(exc)}) from None
        context.principal = principal
        context.authorization = authorization
        return _PLAIN_ACK


class RequireKey:
    """ASGI wrapper: lets through only callers whose API key may read (any caller while
    no keys exist) and hands the caller to the wrapped app in the scope. The GraphiQL
    page itself shows no data and is served to anyone, so a browser can open it and send
    the key from its headers editor.

    With `websocket_init_auth`, a WebSocket without an Authorization header is let
    through unauthenticated: the wrapped app must authenticate it from its first message
    (graphql-transport-ws `connection_init`, see ArgusGraphQL.on_ws_connect)."""

    def __init__(
        self, app: ASGIApp, authenticator: Authenticator, websocket_init_auth: bool = False
    ) -> None:
        self._app = app
        self._authenticator = authenticator
        self._websocket_init_auth = websocket_init_auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self._app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if _is_ide_page(scope, headers):
            await self._app(scope, receive, send)
            return
        if (
            self._websocket_init_auth
            and scope["type"] == "websocket"
            and headers.get("authorization") is None
        ):
            await self._app(scope, receive, send)
            return
        try:
            principal = self._authenticator.authenticate(headers.get("authorization"))
            principal.require(principal.role.may_read(), "query data")
        except AuthError as exc:
            await _refuse(exc, scope, receive, send)
            return
        scope[_PRINCIPAL] = principal
        await self._app(scope, receive, send)


def _is_ide_page(scope: Scope, headers: Headers) -> bool:
    return (
        scope["type"] == "http"
        and scope["method"] == "GET"
        and "text/html" in headers.get("accept", "")
        and b"query=" not in scope.get("query_string", b"")
    )


async def _refuse(exc: AuthError, scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        await WebSocketClose(code=4401 if isinstance(exc, Unauthenticated) else 4403)(
            scope, receive, send
        )
        return
    status, headers = (401, {"WWW-Authenticate": 'Bearer realm="argus"'}) if isinstance(
        exc, Unauthenticated
    ) else (403, {})
    response = JSONResponse({"errors": [{"message": str(exc)}]}, status, headers)
    await response(scope, receive, send)


def create_api_app(
    service: QueryService,
    authenticator: Authenticator,
    keys: KeyStore | None,
    is_ready: Callable[[], bool],
    indexing_status: Callable[[], dict[str, Any]],
    render_metrics: Callable[[], tuple[bytes, str]] | None = None,
    live: LiveHub | None = None,
) -> ASGIApp:
    """The API app; with `live`, GraphQL subscriptions and Socket.IO push its data."""
    graphql = RequireKey(
        ArgusGraphQL(service, keys, indexing_status, live, authenticator),
        authenticator,
        websocket_init_auth=True,
    )

    def rest_context(request: Request) -> QueryContext:
        return QueryContext(service=service, principal=request.scope[_PRINCIPAL], keys=keys,
                            indexing_status=indexing_status, request=request)

    rest = RestApi(schema, rest_context)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        ready = is_ready()
        return JSONResponse(
            {"status": "ready" if ready else "starting", "indexing": indexing_status()},
            status_code=200 if ready else 503,
        )

    async def metrics(request: Request) -> Response:
        if render_metrics is None:
            return Response("no metrics", status_code=404)
        body, content_type = await run_in_threadpool(render_metrics)
        return Response(body, media_type=content_type)

    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        # The API's description carries no data: open like the GraphiQL page.
        Route("/api/v1/openapi.json", lambda request: JSONResponse(rest.openapi())),
        Mount("/api/v1", app=RequireKey(rest.app(), authenticator)),
    ]
    app = Starlette(routes=routes)
    if live is None:
        return app
    return LiveSocketServer(live, service, authenticator).mount(app)
