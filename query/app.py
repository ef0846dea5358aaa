"""The API application on the `--api` address: GraphQL, health endpoints."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from strawberry.asgi import GraphQL

from ..storage.model import DEFAULT_TENANT
from .context import QueryContext
from .schema.root import schema
from .service import QueryService


class ArgusGraphQL(GraphQL[QueryContext, None]):
    def __init__(self, service: QueryService) -> None:
        super().__init__(schema)
        self._service = service

    async def get_context(self, request: Any, response: Any = None) -> QueryContext:
        return QueryContext(
            service=self._service, tenant=DEFAULT_TENANT, request=request, response=response
        )


def create_api_app(
    service: QueryService,
    is_ready: Callable[[], bool],
    indexing_status: Callable[[], dict[str, Any]],
) -> Starlette:
    graphql = ArgusGraphQL(service)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        ready = is_ready()
        return JSONResponse(
            {"status": "ready" if ready else "starting", "indexing": indexing_status()},
            status_code=200 if ready else 503,
        )

    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/graphql", graphql, methods=["GET", "POST"]),
    ]
    return Starlette(routes=routes)
