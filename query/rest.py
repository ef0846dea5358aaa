"""REST under `/api/v1`: a thin door onto the GraphQL schema, so that the same query gives
the same answer through either.

Each endpoint names one root field of the GraphQL schema. A request is turned into that
field's arguments (path parameters, then query parameters; the fields of an input-object
argument such as `filter` or `query` are taken flat from the query string), executed
against the schema with the caller's context, and the field's value is the JSON body.
The selection set asks for every field that needs no arguments, recursively, except the
correlation links in `_LINKS` (which would run a query per item). The OpenAPI document at
`/api/v1/openapi.json` is generated from the same table and the schema's types, so it
cannot drift from what is served.

Parameters are named as the GraphQL arguments and input fields (`service`, `minDuration`,
`start`, `step`, ...). Lists: `groupBy=a,b` (or repeated); label matchers as repeated
`matchers=service.name="checkout"`, `matchers=route=~"/api/.*"` (`=`, `!=`, `=~`, `!~`);
attribute filters as `attributes=http.route=/pay`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    Undefined,
)
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, Router

from .context import QueryContext

# Fields left out of REST answers, as (type, field): each would run another query per
# item. Follow them with their own endpoint (e.g. /traces/{traceId}).
_LINKS = frozenset({
    ("Trace", "logs"), ("Span", "logs"), ("LogRecord", "trace"), ("Service", "metrics"),
})
_MAX_DEPTH = 6
_MATCHER = re.compile(r'^\s*([^=!~\s]+)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$')


@dataclass(frozen=True, slots=True)
class Endpoint:
    path: str
    field: str  # root Query field
    summary: str
    not_found_when_null: bool = False


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("/services", "services", "Services that sent spans, with their operations."),
    Endpoint("/traces", "traces", "Trace search, newest first (filter fields as query parameters)."),
    Endpoint("/traces/{traceId}", "trace", "Every span of one trace.", not_found_when_null=True),
    Endpoint("/logs", "logs", "Log search, newest first, with a cursor for the next page."),
    Endpoint("/logs/histogram", "logHistogram", "Log counts over time by severity."),
    Endpoint("/logs/top-values", "logTopValues", "Most frequent values of a log field."),
    Endpoint("/logs/patterns", "logPatterns", "Similar log messages grouped by template."),
    Endpoint("/metrics", "metricNames", "Metric names with kind, unit and description."),
    Endpoint("/metrics/{metric}/labels", "labelNames", "Label names of a metric."),
    Endpoint("/metrics/{metric}/labels/{label}/values", "labelValues", "Values of a label."),
    Endpoint("/metrics/{metric}/series", "metricSeries",
             "Aggregated series (query fields as query parameters)."),
    Endpoint("/metrics/{metric}/points", "metricPoints", "Stored points with every field."),
    Endpoint("/metrics/{metric}/traces", "tracesOfMetricPoint",
             "Traces behind a metric point: its exemplars, else its service's slowest traces."),
    Endpoint("/services/{service}/metrics", "metricsOfService", "Metrics a service sends."),
    Endpoint("/service-map", "serviceMap", "The service dependency graph with RED per edge."),
    Endpoint("/services/{service}/red", "redMetrics", "Rate, errors, duration from spans."),
    Endpoint("/latency-histogram", "latencyHistogram", "Span latency histogram."),
    Endpoint("/top-operations", "topOperations", "Slowest or busiest operations."),
    Endpoint("/top-errors", "topErrors", "Errors grouped by exception type and message."),
    Endpoint("/sinks", "sinks", "Every store each signal is written to, with health and lag."),
)


class RestApi:
    def __init__(
        self, schema: Any, context_for: Callable[[Request], QueryContext], prefix: str = "/api/v1"
    ) -> None:
        self._schema = schema
        self._graphql: GraphQLSchema = schema._schema
        self._context_for = context_for
        self.prefix = prefix
        query_type = self._graphql.query_type
        assert query_type is not None
        self._root = query_type
        self._endpoints = [e for e in ENDPOINTS if e.field in query_type.fields]
        self._documents: dict[tuple[str, frozenset[str]], str] = {}

    def app(self) -> Router:
        routes = [
            Route(endpoint.path, self._handler(endpoint), methods=["GET"])
            for endpoint in self._endpoints
        ]
        routes.append(Route("/openapi.json", self._openapi, methods=["GET"]))
        return Router(routes=routes)

    # ------------------------------------------------------------------ requests

    def _handler(self, endpoint: Endpoint) -> Callable[[Request], Any]:
        async def handle(request: Request) -> Response:
            try:
                variables = self._variables(endpoint.field, request)
            except ValueError as exc:
                return _error(400, str(exc))
            result = await self._schema.execute(
                self._document(endpoint.field, frozenset(variables)),
                variable_values=variables,
                context_value=self._context_for(request),
            )
            if result.errors:
                return _error(400, "; ".join(error.message for error in result.errors))
            value = (result.data or {}).get(endpoint.field)
            if value is None and endpoint.not_found_when_null:
                return _error(404, f"no {endpoint.field} {request.path_params}")
            return JSONResponse(value)

        return handle

    def _variables(self, field_name: str, request: Request) -> dict[str, Any]:
        field = self._root.fields[field_name]
        given: dict[str, list[str]] = {}
        for key, value in request.query_params.multi_items():
            given.setdefault(key, []).append(value)
        for key, value in request.path_params.items():
            given[key] = [value]
        variables: dict[str, Any] = {}
        used: set[str] = set()
        for name, argument in field.args.items():
            kind = _named(argument.type)
            if isinstance(kind, GraphQLInputObjectType) and not _is_list(argument.type):
                nested = {}
                for sub_name, sub_field in kind.fields.items():
                    if sub_name in given:
                        nested[sub_name] = _coerce(sub_name, sub_field.type, given[sub_name])
                        used.add(sub_name)
                if nested or isinstance(argument.type, GraphQLNonNull):
                    variables[name] = nested
            elif name in given:
                variables[name] = _coerce(name, argument.type, given[name])
                used.add(name)
        unknown = set(given) - used
        if unknown:
            raise ValueError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
        return variables

    # ------------------------------------------------------------------ documents

    def _document(self, field_name: str, given: frozenset[str]) -> str:
        """The query for `field_name` passing only the arguments given (the others keep
        their defaults), cached per combination."""
        key = (field_name, given)
        document = self._documents.get(key)
        if document is None:
            field = self._root.fields[field_name]
            names = [name for name in field.args if name in given]
            declarations = ", ".join(f"${name}: {field.args[name].type}" for name in names)
            arguments = ", ".join(f"{name}: ${name}" for name in names)
            head = f"query({declarations})" if declarations else "query"
            call = f"{field_name}({arguments})" if arguments else field_name
            document = f"{head} {{ {call}{_selection(field.type, set(), 0)} }}"
            self._documents[key] = document
        return document

    # ------------------------------------------------------------------ OpenAPI

    async def _openapi(self, request: Request) -> Response:
        return JSONResponse(self.openapi())

    def openapi(self) -> dict[str, Any]:
        paths: dict[str, Any] = {}
        for endpoint in self._endpoints:
            field = self._root.fields[endpoint.field]
            paths[f"{self.prefix}{endpoint.path}"] = {"get": {
                "summary": endpoint.summary,
                "description": field.description or endpoint.summary,
                "operationId": endpoint.field,
                "parameters": self._parameters(endpoint, field),
                "responses": {
                    "200": {"description": "OK", "content": {"application/json": {
                        "schema": _json_schema(field.type, set())}}},
                    "400": {"description": "Invalid parameters or a query limit exceeded",
                            "content": {"application/json": {"schema": _ERROR_SCHEMA}}},
                    "401": {"description": "Missing, unknown or revoked API key"},
                    "403": {"description": "The key's role may not read"},
                    **({"404": {"description": "Not found"}}
                       if endpoint.not_found_when_null else {}),
                },
            }}
        return {
            "openapi": "3.1.0",
            "info": {"title": "Argus query API", "version": "1",
                     "description": "The GraphQL queries of /graphql as REST; same answers."},
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}],
            "paths": paths,
        }

    def _parameters(self, endpoint: Endpoint, field: GraphQLField) -> list[dict[str, Any]]:
        in_path = set(re.findall(r"{(\w+)}", endpoint.path))
        parameters = []
        for name, argument in field.args.items():
            kind = _named(argument.type)
            if isinstance(kind, GraphQLInputObjectType) and not _is_list(argument.type):
                for sub_name, sub_field in kind.fields.items():
                    parameters.append(_parameter(
                        sub_name, sub_field.type, sub_field.description, sub_name in in_path,
                        sub_field.default_value is Undefined,
                    ))
            else:
                parameters.append(_parameter(name, argument.type, argument.description,
                                             name in in_path, argument.default_value is Undefined))
        return parameters


_ERROR_SCHEMA = {"type": "object", "properties": {"error": {"type": "string"}}}


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)


def _named(kind: Any) -> GraphQLNamedType:
    while isinstance(kind, (GraphQLNonNull, GraphQLList)):
        kind = kind.of_type
    return kind  # type: ignore[no-any-return]


def _is_list(kind: Any) -> bool:
    if isinstance(kind, GraphQLNonNull):
        kind = kind.of_type
    return isinstance(kind, GraphQLList)


def _selection(kind: GraphQLOutputType, seen: set[str], depth: int) -> str:
    named = _named(kind)
    if not isinstance(named, GraphQLObjectType):
        return ""
    if named.name in seen or depth >= _MAX_DEPTH:
        return " { __typename }"
    parts = []
    for name, field in named.fields.items():
        if (named.name, name) in _LINKS or any(
            isinstance(a.type, GraphQLNonNull) for a in field.args.values()
        ):
            continue
        parts.append(name + _selection(field.type, seen | {named.name}, depth + 1))
    return " { " + " ".join(parts) + " }"


def _coerce(name: str, kind: GraphQLInputType, raw: list[str]) -> Any:
    named = _named(kind)
    if _is_list(kind):
        if isinstance(named, GraphQLInputObjectType):
            return [_input_object(name, named, value) for value in raw]
        items = [part for value in raw for part in value.split(",") if part]
        return [_scalar(name, named, item) for item in items]
    if len(raw) > 1:
        raise ValueError(f"parameter {name!r} given more than once")
    return _scalar(name, named, raw[0])


def _input_object(name: str, kind: GraphQLInputObjectType, text: str) -> dict[str, Any]:
    """`label op value` for matchers (`label`/`op`/`value` fields), `key=value` for
    attribute filters (`key`/`value`)."""
    match = _MATCHER.match(text)
    if match is None:
        raise ValueError(f"parameter {name!r}: expected name=value, got {text!r}")
    left, op, value = match.groups()
    fields = set(kind.fields)
    if {"label", "op", "value"} <= fields:
        return {"label": left, "op": op, "value": value}
    if {"key", "value"} <= fields and op == "=":
        return {"key": left, "value": value}
    raise ValueError(f"parameter {name!r}: cannot use {text!r}")


def _scalar(name: str, kind: GraphQLNamedType, text: str) -> Any:
    try:
        if isinstance(kind, GraphQLScalarType):
            if kind.name == "Int":
                return int(text)
            if kind.name == "Float":
                return float(text)
            if kind.name == "Boolean":
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError("expected true or false")
                return text.lower() in ("true", "1")
        if isinstance(kind, GraphQLEnumType):
            return text.upper()
    except ValueError as exc:
        raise ValueError(f"parameter {name!r}: {exc}") from None
    return text  # String, ID and Argus's scalars (Time, Duration, Int64) parse strings


_SCALARS: Mapping[str, dict[str, Any]] = {
    "Int": {"type": "integer"},
    "Float": {"type": "number"},
    "Boolean": {"type": "boolean"},
    "String": {"type": "string"},
    "ID": {"type": "string"},
    "Int64": {"type": "string", "description": "64-bit integer as a decimal string"},
    "Time": {"type": "string", "description": "RFC 3339, Unix nanoseconds or now-1h"},
    "Duration": {"type": "string", "description": "e.g. 250ms, 1.5s, 1h30m"},
    "JSON": {},
}


def _parameter(
    name: str, kind: Any, description: str | None, in_path: bool, no_default: bool
) -> dict[str, Any]:
    named = _named(kind)
    if isinstance(named, GraphQLInputObjectType):
        schema: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
        description = (description or "") + " Repeat: name=value (matchers also !=, =~, !~)."
    elif _is_list(kind):
        schema = {"type": "array", "items": _scalar_schema(named)}
    else:
        schema = _scalar_schema(named)
    parameter = {"name": name, "in": "path" if in_path else "query",
                 "required": in_path or (isinstance(kind, GraphQLNonNull) and no_default),
                 "schema": schema}
    if description:
        parameter["description"] = description.strip()
    return parameter


def _scalar_schema(kind: GraphQLNamedType) -> dict[str, Any]:
    if isinstance(kind, GraphQLEnumType):
        return {"type": "string", "enum": list(kind.values)}
    return dict(_SCALARS.get(kind.name, {"type": "string"}))


def _json_schema(kind: Any, seen: set[str]) -> dict[str, Any]:
    nullable = not isinstance(kind, GraphQLNonNull)
    inner = kind.of_type if isinstance(kind, GraphQLNonNull) else kind
    if isinstance(inner, GraphQLList):
        schema: dict[str, Any] = {"type": "array", "items": _json_schema(inner.of_type, seen)}
    elif isinstance(inner, GraphQLObjectType):
        if inner.name in seen:
            return {"type": "object"}
        schema = {"type": "object", "properties": {
            name: _json_schema(field.type, seen | {inner.name})
            for name, field in inner.fields.items()
            if (inner.name, name) not in _LINKS and not any(
                isinstance(a.type, GraphQLNonNull) for a in field.args.values())
        }}
    else:
        schema = _scalar_schema(inner)
    if nullable and "type" in schema:
        schema = {**schema, "type": [schema["type"], "null"]}
    return schema
