"""The API application on the `--api` address: GraphQL, health endpoints."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketClose
from strawberry.asgi import GraphQL

from ..auth import Authenticator, AuthError, Unauthenticated
from ..storage.keys import KeyStore
from .context import QueryContext
from .rest import RestApi
from .schema.root import schema
from .service import QueryService

_PRINCIPAL = "argus.principal"  # where RequireKey leaves the caller in the ASGI scope


class ArgusGraphQL(GraphQL[QueryContext, None]):
    def __init__(
        self,
        service: QueryService,
        keys: KeyStore | None,
        indexing_status: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(schema)
        self._service = service
        self._keys = keys
        self._indexing_status = indexing_status

    async def get_context(self, request: Any, response: Any = None) -> QueryContext:
        return QueryContext(
            service=self._service,
            principal=request.scope.get(_PRINCIPAL),
            keys=self._keys,
            indexing_status=self._indexing_status,
            request=request,
            response=response,
        )


class RequireKey:
    """ASGI wrapper: lets through only callers whose API key may read (any caller while
    no keys exist) and hands the caller to the wrapped app in the scope. The GraphiQL
    page itself shows no data and is served to anyone, so a browser can open it and send
    the key from its headers editor."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self._app = app
        self._authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self._app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if _is_ide_page(scope, headers):
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
) -> Starlette:
    graphql = RequireKey(ArgusGraphQL(service, keys, indexing_status), authenticator)

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
        # The API's description carries no data: open like the GraphiQL page.
        Route("/api/v1/openapi.json", lambda request: JSONResponse(rest.openapi())),
        Mount("/api/v1", app=RequireKey(rest.app(), authenticator)),
    ]
    return Starlette(routes=routes)
