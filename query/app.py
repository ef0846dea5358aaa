"""The API application on the `--api` address: GraphQL, health endpoints."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
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
    render_metrics: Callable[[], tuple[bytes, str]] | None = None,
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
    ]
    return Starlette(routes=routes)
