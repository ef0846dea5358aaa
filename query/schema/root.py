"""The GraphQL schema: one root Query type over the per-signal resolvers."""

from __future__ import annotations

import strawberry
from strawberry.schema.config import StrawberryConfig

from . import analytics as analytics_schema
from . import correlate as correlate_schema
from . import keys as key_schema
from . import live as live_schema
from . import log_analytics
from . import logs as log_schema
from . import metrics as metric_schema
from . import sinks as sink_schema
from . import traces as trace_schema
from .scalars import SCALAR_MAP


@strawberry.type
class Query:
    services: list[trace_schema.Service] = strawberry.field(
        resolver=trace_schema.resolve_services,
        description="Services that sent spans, each with its operations (span names).",
    )
    trace: trace_schema.Trace | None = strawberry.field(
        resolver=trace_schema.resolve_trace, description="Every span of a trace; null if unknown."
    )
    traces: list[trace_schema.TraceSummary] = strawberry.field(
        resolver=trace_schema.resolve_traces, description="Trace search, newest first."
    )
    service_map: analytics_schema.ServiceMap = strawberry.field(
        resolver=analytics_schema.resolve_service_map,
        description="The service dependency graph from spans, with requests, errors and"
        " latency per node and edge (default range: the last hour).",
    )
    red_metrics: list[analytics_schema.RedPoint] = strawberry.field(
        resolver=analytics_schema.resolve_red_metrics,
        description="Rate, errors and duration percentiles of a service from its spans.",
    )
    latency_histogram: list[analytics_schema.LatencyBucket] = strawberry.field(
        resolver=analytics_schema.resolve_latency_histogram,
        description="Span duration histogram of a service (or one operation).",
    )
    top_operations: list[analytics_schema.OperationStats] = strawberry.field(
        resolver=analytics_schema.resolve_top_operations,
        description="The slowest, busiest or most failing operations.",
    )
    top_errors: list[analytics_schema.ErrorGroup] = strawberry.field(
        resolver=analytics_schema.resolve_top_errors,
        description="Error spans grouped by exception type and message, most frequent first.",
    )
    logs: log_schema.LogConnection = strawberry.field(
        resolver=log_schema.resolve_logs, description="Log search, newest first, paginated."
    )
    log_histogram: log_analytics.LogHistogram = strawberry.field(
        resolver=log_analytics.resolve_log_histogram,
        description="Records per time bucket and severity (default range: the last hour).",
    )
    log_top_values: list[log_analytics.LogValueCount] = strawberry.field(
        resolver=log_analytics.resolve_log_top_values,
        description="The most frequent values of a field among matching records.",
    )
    log_patterns: log_analytics.LogPatterns = strawberry.field(
        resolver=log_analytics.resolve_log_patterns,
        description="Matching records grouped by body template (Drain), largest first.",
    )
    metric_names: list[metric_schema.MetricInfo] = strawberry.field(
        resolver=metric_schema.resolve_metric_names
    )
    metrics_of_service: list[metric_schema.MetricInfo] = strawberry.field(
        resolver=correlate_schema.resolve_metrics_of_service,
        description="Metrics with a series of this service (its service.name label).",
    )
    traces_of_metric_point: correlate_schema.MetricPointTraces = strawberry.field(
        resolver=correlate_schema.resolve_traces_of_metric_point,
        description="The traces behind a metric point: from its exemplars, else the"
        " slowest traces of its service around that time.",
    )
    label_names: list[str] = strawberry.field(resolver=metric_schema.resolve_label_names)
    label_values: list[str] = strawberry.field(resolver=metric_schema.resolve_label_values)
    metric_series: list[metric_schema.Series] = strawberry.field(
        resolver=metric_schema.resolve_metric_series,
        description="Aggregated series over time (sum/avg/min/max/count, rate, quantile).",
    )
    metric_points: list[metric_schema.MetricPoint] = strawberry.field(
        resolver=metric_schema.resolve_metric_points,
        description="Stored points of a metric with every field, oldest first.",
    )
    sinks: list[sink_schema.Sink] = strawberry.field(
        resolver=sink_schema.resolve_sinks,
        description="Every store each signal is written to, with health and lag.",
    )
    api_keys: list[key_schema.ApiKey] = strawberry.field(
        resolver=key_schema.resolve_api_keys,
        description="The tenant's API keys, revoked ones included (admin role).",
    )


@strawberry.type
class Mutation:
    create_api_key: key_schema.NewApiKey = strawberry.mutation(
        resolver=key_schema.create_api_key,
        description="A new API key of the caller's tenant (admin role).",
    )
    revoke_api_key: key_schema.ApiKey = strawberry.mutation(
        resolver=key_schema.revoke_api_key,
        description="Revoke a key of the caller's tenant (admin role); takes effect within"
        " a second.",
    )


schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    subscription=live_schema.Subscription,
    config=StrawberryConfig(scalar_map=SCALAR_MAP),
)
