"""Real OpenTelemetry SDK apps (three services) export spans over OTLP/HTTP; the service
map, RED metrics and top errors derived from them read back through GraphQL."""

from __future__ import annotations

import re
import uuid
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from tests.harness import ArgusProcess, eventually

REQUESTS = 6
FAILING = {1, 4}  # requests whose payment is declined


class CardDeclined(Exception):
    pass


def _provider(argus: ArgusProcess, service: str) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(  # one export per span: pairs arrive in separate requests
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{argus.otlp_url}/v1/traces"))
    )
    return provider


def _send_checkouts(argus: ArgusProcess, names: dict[str, str]) -> None:
    providers = {role: _provider(argus, name) for role, name in names.items()}
    frontend = providers["frontend"].get_tracer("shop")
    checkout = providers["checkout"].get_tracer("shop")
    payment = providers["payment"].get_tracer("shop")
    for n in range(REQUESTS):
        with frontend.start_as_current_span("GET /checkout", kind=SpanKind.SERVER), \
                frontend.start_as_current_span("POST", kind=SpanKind.CLIENT,
                                               attributes={"server.address": "checkout"}) as call:
            remote = trace_api.set_span_in_context(call)  # what propagation would carry
            with checkout.start_as_current_span("POST /checkout", context=remote,
                                                kind=SpanKind.SERVER):
                with checkout.start_as_current_span(
                    "INSERT shop.orders", kind=SpanKind.CLIENT,
                    attributes={"db.system": "postgresql", "db.name": "shop",
                                "server.address": "postgres"},
                ):
                    pass
                with checkout.start_as_current_span(
                    "POST", kind=SpanKind.CLIENT, attributes={"server.address": "payment"}
                ) as pay:
                    charge = trace_api.set_span_in_context(pay)
                    with payment.start_as_current_span(
                        "POST /charge", context=charge, kind=SpanKind.SERVER,
                        record_exception=False, set_status_on_exception=False,
                    ) as server:
                        if n in FAILING:
                            server.record_exception(CardDeclined("card declined"))
                            server.set_status(Status(StatusCode.ERROR, "card declined"))
    for provider in providers.values():
        provider.shutdown()


MAP = """query($start: Time) { serviceMap(start: $start) {
  start end
  nodes { id type system name stats { count errors errorRate p50 p95 p99 } }
  edges { source target stats { count errors rate p95 } } } }"""


def test_service_map_red_metrics_and_top_errors(argus: ArgusProcess) -> None:
    suffix = uuid.uuid4().hex[:8]
    names = {role: f"{role}-{suffix}" for role in ("frontend", "checkout", "payment")}
    _send_checkouts(argus, names)
    ids = {role: f"service:{name}" for role, name in names.items()}
    database = "database:postgresql/shop"

    def complete_map() -> dict[str, Any] | None:
        found = argus.graphql(MAP, {"start": "-15m"})["serviceMap"]
        edges = {(e["source"], e["target"]): e for e in found["edges"]
                 if e["source"] in ids.values()}  # fmt: skip
        expected = [(ids["frontend"], ids["checkout"]), (ids["checkout"], ids["payment"]),
                    (ids["checkout"], database)]  # fmt: skip
        if all(key in edges and edges[key]["stats"]["count"] == str(REQUESTS)
               for key in expected):  # fmt: skip
            return {"map": found, "edges": edges}
        return None

    found = eventually(complete_map, timeout=30)
    edges = found["edges"]
    # Only the three edges of these services: every CLIENT span found its SERVER span,
    # so none is left as an external call.
    assert sorted(edges) == sorted([
        (ids["frontend"], ids["checkout"]), (ids["checkout"], ids["payment"]),
        (ids["checkout"], database),
    ])  # fmt: skip
    assert edges[(ids["checkout"], ids["payment"])]["stats"]["errors"] == str(len(FAILING))
    assert edges[(ids["frontend"], ids["checkout"])]["stats"]["errors"] == "0"
    assert int(edges[(ids["checkout"], database)]["stats"]["p95"]) > 0
    nodes = {n["id"]: n for n in found["map"]["nodes"]}
    assert nodes[ids["payment"]]["type"] == "SERVICE"
    assert nodes[ids["payment"]]["stats"]["count"] == str(REQUESTS)
    assert nodes[ids["payment"]]["stats"]["errors"] == str(len(FAILING))
    assert nodes[ids["frontend"]]["stats"]["count"] == str(REQUESTS)
    assert (nodes[database]["type"], nodes[database]["system"]) == ("DATABASE", "postgresql")

    red = argus.graphql(
        """query($service: String!) { redMetrics(service: $service, start: "-15m", step: "1m")
           { timeUnixNano count errors rate errorRate p50 p95 p99 } }""",
        {"service": names["payment"]},
    )["redMetrics"]
    assert len(red) >= 15
    assert sum(int(p["count"]) for p in red) == REQUESTS
    assert sum(int(p["errors"]) for p in red) == len(FAILING)
    busy = [p for p in red if p["count"] != "0"]
    assert all(p["p50"] is not None and float(p["rate"]) > 0 for p in busy)

    clients = argus.graphql(
        """{ topOperations(start: "-15m", by: COUNT, limit: 1000, kinds: [CLIENT])
           { service operation stats { count p95 } } }"""
    )["topOperations"]
    mine = [(o["service"], o["operation"], o["stats"]["count"]) for o in clients
            if o["service"] in names.values()]  # fmt: skip
    assert sorted(mine) == sorted([
        (names["checkout"], "INSERT shop.orders", str(REQUESTS)),
        (names["checkout"], "POST", str(REQUESTS)), (names["frontend"], "POST", str(REQUESTS)),
    ])  # fmt: skip
    histogram = argus.graphql(
        """query($service: String!) { latencyHistogram(service: $service, start: "-15m")
           { upperBound count } }""",
        {"service": names["payment"]},
    )["latencyHistogram"]
    assert sum(int(b["count"]) for b in histogram) == REQUESTS
    bounds = [int(b["upperBound"]) for b in histogram]
    assert bounds == [bounds[0] << i for i in range(len(bounds))]  # powers of two

    errors = argus.graphql(
        """query($service: String) { topErrors(start: "-15m", service: $service)
           { exceptionType message count services sampleTraceId lastSeen } }""",
        {"service": names["payment"]},
    )["topErrors"]
    assert [(e["exceptionType"], e["message"], e["count"], e["services"]) for e in errors] == [
        (f"{__name__}.CardDeclined", "card declined", str(len(FAILING)), [names["payment"]])
    ]
    trace = argus.graphql(
        "query($id: String!) { trace(traceId: $id) { services } }",
        {"id": errors[0]["sampleTraceId"]},
    )["trace"]
    assert sorted(trace["services"]) == sorted(names.values())


def test_analytics_refuse_queries_over_the_limits(argus: ArgusProcess) -> None:
    too_long = argus.graphql_raw('{ serviceMap(start: "-400d") { start } }')
    assert "time range is longer than the limit" in too_long["errors"][0]["message"]
    bad_step = argus.graphql_raw('{ redMetrics(service: "x", step: "30s") { count } }')
    assert "whole number of minutes" in bad_step["errors"][0]["message"]
    backwards = argus.graphql_raw('{ topErrors(start: "now", end: "-1h") { count } }')
    assert "end of the time range must be after" in backwards["errors"][0]["message"]


def test_configured_query_limits_give_clear_errors(fresh_argus: ArgusProcess) -> None:
    config = fresh_argus.data_dir.parent / "query.toml"
    config.write_text("[query]\nmax_points = 30\nmax_series = 2\n")
    fresh_argus.extra_args = ["--config", str(config)]
    argus = fresh_argus.start()
    suffix = uuid.uuid4().hex[:8]
    _send_checkouts(argus, {role: f"{role}-{suffix}" for role in ("frontend", "checkout",
                                                                   "payment")})  # fmt: skip

    def refused() -> str | None:
        body = argus.graphql_raw('{ serviceMap(start: "-15m") { start } }')
        return body["errors"][0]["message"] if body.get("errors") else None

    assert "more than the limit of 2; use a shorter time range" in eventually(refused)
    steps = argus.graphql_raw('{ redMetrics(service: "x", start: "-1h", step: "1m") { count } }')
    message = steps["errors"][0]["message"]  # 60 or 61 whole minutes
    assert re.search(r"asks for 6[01] steps, more than the limit of 30; use a larger step", message)
    fine = argus.graphql_raw('{ redMetrics(service: "x", start: "-1h", step: "5m") { count } }')
    assert fine.get("errors") is None and len(fine["data"]["redMetrics"]) in (12, 13)
