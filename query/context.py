"""What every GraphQL resolver gets: the query service and the caller's tenant."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strawberry.types import Info

from .service import QueryService


@dataclass(slots=True)
class QueryContext:
    service: QueryService
    tenant: str
    request: Any = None
    response: Any = None


def context_of(info: Info[QueryContext, Any]) -> QueryContext:
    return info.context
