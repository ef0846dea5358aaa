"""The envelopes of an OTLP/JSON request: Resource*/Scope* levels around the items."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ..storage.model import Resource, Scope
from .json_anyvalue import attributes
from .json_fields import FieldError, JsonObject, index_of, objects, optional_object, string, uint32
from .rules import Tally


def resource(container: JsonObject) -> Resource:
    """The Resource of a ResourceSpans/Metrics/Logs object, with the container's schemaUrl."""
    schema_url = string(container, "schemaUrl")
    obj = optional_object(container, "resource")
    if obj is None:
        return Resource(schema_url=schema_url)
    try:
        # `entityRefs` (development status) has no place in the model yet and is not read.
        return Resource(attributes(obj), uint32(obj, "droppedAttributesCount"), schema_url)
    except FieldError as exc:
        raise exc.at("resource") from None


def scope(container: JsonObject) -> Scope:
    """The InstrumentationScope of a ScopeSpans/Metrics/Logs object, with its schemaUrl."""
    schema_url = string(container, "schemaUrl")
    obj = optional_object(container, "scope")
    if obj is None:
        return Scope(schema_url=schema_url)
    try:
        return Scope(
            string(obj, "name"),
            string(obj, "version"),
            attributes(obj),
            uint32(obj, "droppedAttributesCount"),
            schema_url,
        )
    except FieldError as exc:
        raise exc.at("scope") from None


T = TypeVar("T")
ItemConverter = Callable[[JsonObject, Resource, Scope, Tally, list[T]], None]


def walk(
    request: JsonObject, keys: tuple[str, str, str], convert: ItemConverter[T], tally: Tally
) -> list[T]:
    """Run `convert` on every innermost object (span, metric, log record) of a request,
    with its shared Resource and Scope; `keys` names the three levels, outermost first."""
    resource_key, scope_key, item_key = keys
    out: list[T] = []
    resource_list = objects(request, resource_key)
    for resource_obj in resource_list:
        try:
            res = resource(resource_obj)
            scope_list = objects(resource_obj, scope_key)
            for scope_obj in scope_list:
                try:
                    scp = scope(scope_obj)
                    items = objects(scope_obj, item_key)
                    for item in items:
                        try:
                            convert(item, res, scp, tally, out)
                        except FieldError as exc:
                            raise exc.at(f"{item_key}[{index_of(items, item)}]") from None
                except FieldError as exc:
                    raise exc.at(f"{scope_key}[{index_of(scope_list, scope_obj)}]") from None
        except FieldError as exc:
            raise exc.at(f"{resource_key}[{index_of(resource_list, resource_obj)}]") from None
    return out
