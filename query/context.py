"""What every GraphQL resolver gets: the query service, the caller and its tenant."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from strawberry.types import Info

from ..auth import Forbidden, Principal
from ..storage.keys import KeyStore
from .service import QueryService


@dataclass(slots=True)
class QueryContext:
    service: QueryService
    principal: Principal | None  # None only for the GraphiQL page, which reads nothing
    keys: KeyStore | None = None
    indexing_status: Callable[[], dict[str, Any]] | None = None
    request: Any = None
    response: Any = None

    @property
    def caller(self) -> Principal:
        if self.principal is None:
            raise Forbidden("an API key is required")
        return self.principal

    @property
    def tenant(self) -> str:
        return self.caller.tenant


def context_of(info: Info[QueryContext, Any]) -> QueryContext:
    return info.context
