"""GraphQL types shared by every signal: resource and instrumentation scope."""

from __future__ import annotations

import strawberry

from ...storage import model
from .scalars import JSON, to_json


@strawberry.type(description="The entity that produced telemetry (service, host, ...).")
class Resource:
    attributes: JSON
    dropped_attributes_count: int
    schema_url: str

    @classmethod
    def of(cls, resource: model.Resource) -> Resource:
        return cls(
            attributes=to_json(resource.attributes),
            dropped_attributes_count=resource.dropped_attributes_count,
            schema_url=resource.schema_url,
        )


@strawberry.type(description="The instrumentation library that produced telemetry.")
class Scope:
    name: str
    version: str
    attributes: JSON
    dropped_attributes_count: int
    schema_url: str

    @classmethod
    def of(cls, scope: model.Scope) -> Scope:
        return cls(
            name=scope.name,
            version=scope.version,
            attributes=to_json(scope.attributes),
            dropped_attributes_count=scope.dropped_attributes_count,
            schema_url=scope.schema_url,
        )


@strawberry.input(description="Equality on the string form of an attribute.")
class AttributeFilter:
    key: str
    value: str


def attribute_map(filters: list[AttributeFilter] | None) -> dict[str, str]:
    return {item.key: item.value for item in filters or []}
