"""The simulated shop: services, their instances and the call graph of each user request.

Everything here is plain data. `traces.py` compiles it into protobuf templates once and then
only stamps ids, timestamps and a few per-request values onto copies.

Call graph (CLIENT span in the caller, SERVER span as its child in the callee):

    frontend ─┬─> currency                       GET /, GET /product/{id}
              ├─> cart ──> postgres              GET /cart, POST /cart/items
              └─> checkout ─┬─> cart ──> postgres
                            ├─> currency
                            ├─> payment ──> api.stripe.com
                            ├─> postgres (INSERT orders)
                            └─> kafka "orders" ~~> email ──> api.sendgrid.com
                                (email: a separate trace, linked to the PRODUCER span)
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from argus.loadgen.otlp import ERROR, INFO, WARN, AttrValue, resource

SERVER, CLIENT, INTERNAL, PRODUCER, CONSUMER = 2, 3, 1, 4, 5  # OTLP Span.SpanKind


@dataclass(frozen=True)
class ScopeInfo:
    name: str
    version: str


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    version: str
    language: str
    sdk_version: str
    runtime: tuple[str, str]  # process.runtime.name, process.runtime.version
    port: int
    replicas: int
    memory_mb: float  # resident baseline, for process.memory.usage
    cpu_ms_per_request: float  # for process.cpu.utilization
    scopes: dict[
        str, ScopeInfo
    ]  # role ("http.server", "http.client", "db", "messaging", "app") -> scope

    def scope_for(self, role: str) -> ScopeInfo:
        return self.scopes.get(role) or self.scopes["app"]


@dataclass
class Instance:
    index: int  # global, dense: used as a key by the metric state
    service: ServiceSpec
    host: str
    instance_id: str
    resource: Resource


@dataclass(frozen=True)
class LogSpec:
    """A log line; `body` and attribute values are str.format templates over the trace context."""

    severity: int
    body: str
    attrs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ExceptionSpec:
    type: str
    message: str
    stacktrace: str


class CounterSink(Protocol):
    def add_counter(
        self, name: str, inst: Instance, attrs: tuple[tuple[str, str], ...], value: int = 1
    ) -> None: ...


# Called when an op finishes: (metrics, instance, trace context, outcome) where outcome is
# None on success or the failure's `outcome` label ("declined", "error", ...).
FinishHook = Callable[[CounterSink, Instance, dict[str, str], "str | None"], None]


@dataclass
class Op:
    service: str
    kind: int
    name: str
    scope: str  # role looked up in ServiceSpec.scopes
    latency: tuple[float, float]  # (median ms, p99 ms) of the op's own time, log-normal
    attrs: dict[str, AttrValue] = field(default_factory=dict)
    dyn: tuple[tuple[str, str], ...] = ()  # (attribute, format over trace context)
    children: list[Op] = field(default_factory=list)
    key: str = ""  # label referenced by Failure.origin / exc_at
    http_code: int = 0  # success status code for HTTP spans (0 = not HTTP)
    slow: tuple[float, float, float] | None = None  # (probability, min factor, max factor)
    slow_log: LogSpec | None = None
    logs: tuple[LogSpec, ...] = ()  # emitted on success
    access_log: bool = False  # frontend-style "METHOD path status duration" line
    on_finish: FinishHook | None = None
    link_to_producer: bool = False  # consumer root of an async job


@dataclass(frozen=True)
class Failure:
    weight: float
    origin: str  # key of the op where the failure starts
    exception: ExceptionSpec | None = None
    exc_at: str = ""  # key of the op that records the exception event; default: origin
    origin_code: int | None = (
        None  # HTTP status at the origin; None: no response (timeout, db error)
    )
    codes: dict[str, int] = field(default_factory=dict)  # service -> status its SERVER span returns
    duration_ms: float | None = None  # forced own-time of the origin (timeouts)
    outcome: str = "error"
    log: LogSpec | None = None  # logged on the exc_at span


@dataclass
class TraceType:
    name: str
    weight: float
    root: Op
    failures: list[Failure]
    checkout: bool = False  # needs order/payment values in the context
    followup: TraceType | None = (
        None  # async job started by a successful request, linked to its PRODUCER span
    )


@dataclass
class Topology:
    services: dict[str, ServiceSpec]
    instances: dict[str, list[Instance]]
    trace_types: list[TraceType]

    @property
    def all_instances(self) -> list[Instance]:
        return [i for insts in self.instances.values() for i in insts]


# --------------------------------------------------------------------------- services


def _svc(
    name: str,
    version: str,
    language: str,
    sdk: str,
    runtime: tuple[str, str],
    port: int,
    replicas: int,
    memory_mb: float,
    cpu_ms: float,
    scopes: dict[str, tuple[str, str]],
) -> ServiceSpec:
    return ServiceSpec(
        name,
        version,
        language,
        sdk,
        runtime,
        port,
        replicas,
        memory_mb,
        cpu_ms,
        {role: ScopeInfo(n, v) for role, (n, v) in scopes.items()},
    )


SERVICES: dict[str, ServiceSpec] = {
    s.name: s
    for s in [
        _svc(
            "frontend",
            "2.3.1",
            "nodejs",
            "1.30.1",
            ("nodejs", "20.18.1"),
            8080,
            2,
            180,
            1.2,
            {
                "http.server": ("@opentelemetry/instrumentation-http", "0.57.1"),
                "http.client": ("@opentelemetry/instrumentation-undici", "0.10.0"),
                "app": ("frontend", "2.3.1"),
            },
        ),
        _svc(
            "checkout",
            "1.8.0",
            "go",
            "1.34.0",
            ("go", "go1.23.4"),
            5050,
            1,
            48,
            0.6,
            {
                "http.server": (
                    "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
                    "0.59.0",
                ),
                "http.client": (
                    "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
                    "0.59.0",
                ),
                "db": ("github.com/exaring/otelpgx", "0.8.0"),
                "messaging": (
                    "go.opentelemetry.io/contrib/instrumentation/github.com/IBM/sarama/otelsarama",
                    "0.43.0",
                ),
                "app": ("checkout", "1.8.0"),
            },
        ),
        _svc(
            "cart",
            "0.14.2",
            "python",
            "1.29.0",
            ("cpython", "3.12.8"),
            7070,
            2,
            95,
            0.9,
            {
                "http.server": ("opentelemetry.instrumentation.fastapi", "0.50b0"),
                "db": ("opentelemetry.instrumentation.psycopg", "0.50b0"),
                "app": ("cart.service", "0.14.2"),
            },
        ),
        _svc(
            "payment",
            "3.1.4",
            "java",
            "1.46.0",
            ("OpenJDK Runtime Environment", "21.0.5+11-LTS"),
            8443,
            1,
            410,
            1.8,
            {
                "http.server": ("io.opentelemetry.tomcat-10.0", "2.11.0-alpha"),
                "http.client": ("io.opentelemetry.java-http-client", "2.11.0-alpha"),
                "app": ("com.shop.payment", "3.1.4"),
            },
        ),
        _svc(
            "currency",
            "1.2.0",
            "cpp",
            "1.18.0",
            ("cpp", "gcc-13.2"),
            7001,
            1,
            22,
            0.2,
            {
                "http.server": ("opentelemetry-cpp/http_server", "1.18.0"),
                "app": ("currency", "1.2.0"),
            },
        ),
        _svc(
            "email",
            "0.9.3",
            "ruby",
            "1.4.0",
            ("ruby", "3.3.6"),
            6060,
            1,
            140,
            2.5,
            {
                "messaging": ("OpenTelemetry::Instrumentation::RubyKafka", "0.21.2"),
                "http.client": ("OpenTelemetry::Instrumentation::Net::HTTP", "0.22.7"),
                "app": ("email", "0.9.3"),
            },
        ),
    ]
}


def _hex(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"


def build_instances(
    rng: random.Random,
    services: dict[str, ServiceSpec] = SERVICES,
    environment: str = "production",
    replica_scale: int = 1,
) -> dict[str, list[Instance]]:
    out: dict[str, list[Instance]] = {}
    index = 0
    for svc in services.values():
        insts = []
        rs = f"{rng.getrandbits(36):x}"  # ReplicaSet hash shared by the service's pods
        for _ in range(svc.replicas * replica_scale):
            suffix = "".join(rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
            pod = f"{svc.name}-{rs[:9]}-{suffix}"
            iid = f"{_hex(rng, 8)}-{_hex(rng, 4)}-4{_hex(rng, 3)}-a{_hex(rng, 3)}-{_hex(rng, 12)}"
            attrs: dict[str, AttrValue] = {
                "service.name": svc.name,
                "service.namespace": "shop",
                "service.version": svc.version,
                "service.instance.id": iid,
                "deployment.environment.name": environment,
                "host.name": pod,
                "host.arch": "amd64",
                "os.type": "linux",
                "k8s.namespace.name": "shop",
                "k8s.deployment.name": svc.name,
                "k8s.pod.name": pod,
                "process.runtime.name": svc.runtime[0],
                "process.runtime.version": svc.runtime[1],
                "telemetry.sdk.name": "opentelemetry",
                "telemetry.sdk.language": svc.language,
                "telemetry.sdk.version": svc.sdk_version,
            }
            insts.append(Instance(index, svc, pod, iid, resource(attrs)))
            index += 1
        out[svc.name] = insts
    return out


# --------------------------------------------------------------------------- op builders


def http_server(
    svc: str,
    method: str,
    route: str,
    *,
    path: str | None = None,
    latency: tuple[float, float] = (1.5, 15),
    children: list[Op] | None = None,
    key: str = "",
    code: int = 200,
    logs: tuple[LogSpec, ...] = (),
    dyn: tuple[tuple[str, str], ...] = (),
    access_log: bool = False,
    on_finish: FinishHook | None = None,
    user_agent: str | None = None,
) -> Op:
    spec = SERVICES[svc]
    path = path or route
    attrs: dict[str, AttrValue] = {
        "http.request.method": method,
        "http.route": route,
        "url.scheme": "http",
        "server.address": svc,
        "server.port": spec.port,
        "network.protocol.version": "1.1",
    }
    if user_agent:
        attrs["user_agent.original"] = user_agent
    dyn_attrs = dyn
    if "{" in path:
        dyn_attrs = (("url.path", path),) + dyn_attrs
    else:
        attrs["url.path"] = path
    return Op(
        svc,
        SERVER,
        f"{method} {route}",
        "http.server",
        latency,
        attrs,
        dyn_attrs,
        children or [],
        key,
        code,
        logs=logs,
        access_log=access_log,
        on_finish=on_finish,
    )


def http_call(
    caller: str, server: Op, *, key: str = "", latency: tuple[float, float] = (0.35, 2.5)
) -> Op:
    """CLIENT span in `caller` whose only child is the callee's SERVER span.

    `latency` is the network's share of the client duration.
    """
    callee = SERVICES[server.service]
    method = str(server.attrs["http.request.method"])
    attrs: dict[str, AttrValue] = {
        "http.request.method": method,
        "server.address": server.service,
        "server.port": callee.port,
        "network.protocol.version": "1.1",
    }
    dyn: tuple[tuple[str, str], ...] = ()
    path = next((fmt for k, fmt in server.dyn if k == "url.path"), None)
    if path is not None:
        dyn = (("url.full", f"http://{server.service}:{callee.port}{path}"),)
    else:
        attrs["url.full"] = f"http://{server.service}:{callee.port}{server.attrs['url.path']}"
    return Op(
        caller, CLIENT, method, "http.client", latency, attrs, dyn, [server], key, server.http_code
    )


def external_call(
    caller: str,
    method: str,
    url: str,
    *,
    latency: tuple[float, float],
    key: str = "",
    code: int = 200,
    slow: tuple[float, float, float] | None = None,
    slow_log: LogSpec | None = None,
) -> Op:
    """CLIENT span to a third-party API that sends no telemetry of its own."""
    host = url.split("/")[2]
    attrs: dict[str, AttrValue] = {
        "http.request.method": method,
        "server.address": host,
        "server.port": 443,
        "url.full": url,
        "network.protocol.version": "1.1",
    }
    return Op(
        caller, CLIENT, method, "http.client", latency, attrs, (), [], key, code, slow, slow_log
    )


def db_query(
    svc: str,
    operation: str,
    table: str,
    statement: str,
    *,
    latency: tuple[float, float],
    key: str = "",
) -> Op:
    attrs: dict[str, AttrValue] = {
        "db.system": "postgresql",
        "db.name": "shop",
        "db.user": svc,
        "db.operation": operation,
        "db.sql.table": table,
        "db.statement": statement,
        "server.address": "postgres",
        "server.port": 5432,
        "network.peer.address": "10.0.3.12",
    }
    return Op(svc, CLIENT, f"{operation} shop.{table}", "db", latency, attrs, key=key)


def internal(
    svc: str,
    name: str,
    *,
    latency: tuple[float, float],
    children: list[Op] | None = None,
    attrs: dict[str, AttrValue] | None = None,
    key: str = "",
    dyn: tuple[tuple[str, str], ...] = (),
    logs: tuple[LogSpec, ...] = (),
    on_finish: FinishHook | None = None,
) -> Op:
    return Op(
        svc,
        INTERNAL,
        name,
        "app",
        latency,
        attrs or {},
        dyn,
        children or [],
        key,
        logs=logs,
        on_finish=on_finish,
    )


def producer(svc: str, topic: str, *, key: str = "") -> Op:
    attrs: dict[str, AttrValue] = {
        "messaging.system": "kafka",
        "messaging.destination.name": topic,
        "messaging.operation.type": "send",
        "server.address": "kafka",
        "server.port": 9092,
    }
    return Op(
        svc,
        PRODUCER,
        f"send {topic}",
        "messaging",
        (0.6, 6),
        attrs,
        (("messaging.kafka.message.key", "{order_id}"),),
        key=key,
    )


def consumer(
    svc: str,
    topic: str,
    group: str,
    *,
    children: list[Op],
    key: str = "",
    on_finish: FinishHook | None = None,
    logs: tuple[LogSpec, ...] = (),
) -> Op:
    attrs: dict[str, AttrValue] = {
        "messaging.system": "kafka",
        "messaging.destination.name": topic,
        "messaging.operation.type": "process",
        "messaging.consumer.group.name": group,
        "messaging.destination.partition.id": "0",
    }
    op = Op(
        svc,
        CONSUMER,
        f"process {topic}",
        "messaging",
        (0.8, 8),
        attrs,
        (("messaging.kafka.message.key", "{order_id}"),),
        children,
        key,
        logs=logs,
        on_finish=on_finish,
        link_to_producer=True,
    )
    return op


# --------------------------------------------------------------------------- metrics hooks


def _orders_placed(
    m: CounterSink, inst: Instance, ctx: dict[str, str], outcome: str | None
) -> None:
    if outcome is None:
        m.add_counter("app.orders.placed", inst, (("app.currency", ctx["currency"]),))


def _payment_done(m: CounterSink, inst: Instance, ctx: dict[str, str], outcome: str | None) -> None:
    m.add_counter(
        "app.payment.transactions",
        inst,
        (("app.payment.outcome", outcome or "approved"), ("app.card.brand", ctx["card_brand"])),
    )


def _email_done(m: CounterSink, inst: Instance, ctx: dict[str, str], outcome: str | None) -> None:
    m.add_counter(
        "app.emails.sent",
        inst,
        (("app.email.template", "order-confirmation"), ("app.email.outcome", outcome or "sent")),
    )


def _cart_item(m: CounterSink, inst: Instance, ctx: dict[str, str], outcome: str | None) -> None:
    if outcome is None:
        m.add_counter("app.cart.items_added", inst, (("app.product.id", ctx["product_id"]),))


# --------------------------------------------------------------------------- exceptions

NODE_CURRENCY_TIMEOUT = ExceptionSpec(
    "TimeoutError",
    "request to http://currency:7001/convert timed out after 1000ms",
    "TimeoutError: request to http://currency:7001/convert timed out after 1000ms\n"
    "    at Timeout._onTimeout (/app/node_modules/undici/lib/core/request.js:231:19)\n"
    "    at listOnTimeout (node:internal/timers:594:17)\n"
    "    at process.processTimers (node:internal/timers:529:7)\n"
    "    at async convertPrice (/app/src/lib/currency.ts:41:17)\n"
    "    at async ProductPage.getServerSideProps (/app/src/pages/product/[id].tsx:58:22)",
)
NODE_RENDER_ERROR = ExceptionSpec(
    "TypeError",
    "Cannot read properties of undefined (reading 'priceUsd')",
    "TypeError: Cannot read properties of undefined (reading 'priceUsd')\n"
    "    at formatPrice (/app/src/components/ProductCard.tsx:27:31)\n"
    "    at renderWithHooks (/app/node_modules/react-dom/cjs/react-dom-server.node.production.js:3728:18)\n"
    "    at renderElement (/app/node_modules/react-dom/cjs/react-dom-server.node.production.js:3866:14)\n"
    "    at async renderHome (/app/src/pages/index.tsx:44:5)",
)
CPP_RATES_ERROR = ExceptionSpec(
    "std::runtime_error",
    "exchange rates feed unavailable: upstream returned 503",
    "std::runtime_error: exchange rates feed unavailable: upstream returned 503\n"
    "  #0 currency::RatesCache::refresh() at /src/rates_cache.cc:88\n"
    "  #1 currency::RatesCache::get(std::string const&) at /src/rates_cache.cc:51\n"
    "  #2 currency::Handler::Convert(http::Request const&) at /src/handler.cc:112\n"
    "  #3 http::Server::Dispatch(http::Connection&) at /src/server.cc:203",
)
PY_STATEMENT_TIMEOUT = ExceptionSpec(
    "psycopg.errors.QueryCanceled",
    "canceling statement due to statement timeout",
    "Traceback (most recent call last):\n"
    '  File "/app/cart/repository.py", line 64, in get_items\n'
    "    rows = await cur.execute(SELECT_CART, (user_id,))\n"
    '  File "/usr/local/lib/python3.12/site-packages/psycopg/cursor_async.py", line 97, in execute\n'
    "    raise ex.with_traceback(None)\n"
    "psycopg.errors.QueryCanceled: canceling statement due to statement timeout",
)
PY_TOO_MANY_CLIENTS = ExceptionSpec(
    "psycopg.OperationalError",
    'connection to server at "postgres" (10.0.3.12), port 5432 failed: FATAL:  sorry, too many clients already',
    "Traceback (most recent call last):\n"
    '  File "/app/cart/repository.py", line 88, in add_item\n'
    "    async with self.pool.connection() as conn:\n"
    '  File "/usr/local/lib/python3.12/site-packages/psycopg_pool/pool_async.py", line 198, in connection\n'
    "    conn = await self.getconn(timeout=timeout)\n"
    'psycopg.OperationalError: connection to server at "postgres" (10.0.3.12), port 5432 failed: '
    "FATAL:  sorry, too many clients already",
)
PY_POOL_TIMEOUT = ExceptionSpec(
    "psycopg_pool.PoolTimeout",
    "couldn't get a connection after 5.00 sec",
    "Traceback (most recent call last):\n"
    '  File "/app/cart/api.py", line 41, in get_cart\n'
    "    items = await repo.get_items(user_id)\n"
    '  File "/app/cart/repository.py", line 62, in get_items\n'
    "    async with self.pool.connection() as conn:\n"
    "psycopg_pool.PoolTimeout: couldn't get a connection after 5.00 sec",
)


def _java_declined(reason: str) -> ExceptionSpec:
    return ExceptionSpec(
        "com.shop.payment.CardDeclinedException",
        f"card declined: {reason}",
        f"com.shop.payment.CardDeclinedException: card declined: {reason}\n"
        "\tat com.shop.payment.StripeGateway.charge(StripeGateway.java:142)\n"
        "\tat com.shop.payment.PaymentService.charge(PaymentService.java:77)\n"
        "\tat com.shop.payment.PaymentController.charge(PaymentController.java:39)\n"
        "\tat java.base/jdk.internal.reflect.DirectMethodHandleAccessor.invoke(DirectMethodHandleAccessor.java:103)\n"
        "\tat org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:885)",
    )


JAVA_READ_TIMEOUT = ExceptionSpec(
    "java.net.http.HttpTimeoutException",
    "request timed out",
    "java.net.http.HttpTimeoutException: request timed out\n"
    "\tat java.net.http/jdk.internal.net.http.HttpClientImpl.send(HttpClientImpl.java:951)\n"
    "\tat java.net.http/jdk.internal.net.http.HttpClientFacade.send(HttpClientFacade.java:133)\n"
    "\tat com.shop.payment.StripeGateway.charge(StripeGateway.java:118)\n"
    "\tat com.shop.payment.PaymentService.charge(PaymentService.java:77)",
)
GO_DEADLOCK = ExceptionSpec(
    "*pgconn.PgError",
    "ERROR: deadlock detected (SQLSTATE 40P01)",
    "goroutine 4172 [running]:\n"
    "github.com/shop/checkout/internal/store.(*Orders).Insert(0xc0001a2000, {0x1c3e0a8, 0xc000b4e1e0}, 0xc0004d2c00)\n"
    "\t/src/internal/store/orders.go:57 +0x2d4\n"
    "github.com/shop/checkout/internal/service.(*Checkout).PlaceOrder(0xc000132480, {0x1c3e0a8, 0xc000b4e1e0}, 0xc0003f6a80)\n"
    "\t/src/internal/service/checkout.go:133 +0x6a5",
)
RUBY_RATE_LIMITED = ExceptionSpec(
    "SendGrid::RateLimitError",
    "rate limit exceeded (429)",
    "/app/lib/mailer.rb:48:in `deliver': rate limit exceeded (429) (SendGrid::RateLimitError)\n"
    "\tfrom /app/lib/order_confirmation_job.rb:21:in `perform'\n"
    "\tfrom /usr/local/bundle/gems/racecar-2.10.0/lib/racecar/runner.rb:204:in `process'",
)


# --------------------------------------------------------------------------- request types

UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0 Safari/537.36"
)
USER = (("app.user.id", "{user_id}"),)


def _cart_get(caller: str, key: str) -> Op:
    return http_call(
        caller,
        http_server(
            "cart",
            "GET",
            "/cart",
            latency=(0.9, 8),
            key=key + ".server",
            children=[
                internal(
                    "cart",
                    "CartService.get_cart",
                    latency=(0.3, 3),
                    attrs={"app.cart.backend": "postgres"},
                    children=[
                        db_query(
                            "cart",
                            "SELECT",
                            "cart_items",
                            "SELECT product_id, quantity FROM cart_items WHERE user_id = %s",
                            latency=(1.8, 25),
                            key=key + ".db",
                        )
                    ],
                )
            ],
        ),
        key=key + ".client",
    )


def default_trace_types() -> list[TraceType]:
    currency_list = http_server("currency", "GET", "/currencies", latency=(0.25, 2), key="currency")
    home = TraceType(
        "home",
        25,
        http_server(
            "frontend",
            "GET",
            "/",
            latency=(4, 40),
            access_log=True,
            dyn=USER,
            user_agent=UA,
            children=[
                http_call("frontend", currency_list),
                internal("frontend", "render home", latency=(6, 60), key="render"),
            ],
        ),
        [
            Failure(
                1,
                "currency",
                CPP_RATES_ERROR,
                origin_code=503,
                log=LogSpec(ERROR, "currency list failed: exchange rates feed unavailable"),
            ),
            Failure(
                1,
                "render",
                NODE_RENDER_ERROR,
                log=LogSpec(
                    ERROR,
                    "render failed: Cannot read properties of undefined (reading 'priceUsd')",
                    USER,
                ),
            ),
        ],
    )

    convert = http_server("currency", "POST", "/convert", latency=(0.3, 3), key="convert.server")
    product = TraceType(
        "product",
        30,
        http_server(
            "frontend",
            "GET",
            "/product/{id}",
            path="/product/{product_id}",
            latency=(3, 30),
            access_log=True,
            dyn=USER,
            user_agent=UA,
            children=[
                http_call("frontend", convert, key="convert.client"),
                internal(
                    "frontend",
                    "render product",
                    latency=(5, 45),
                    attrs={"app.template": "product"},
                    dyn=(("app.product.id", "{product_id}"),),
                ),
            ],
        ),
        [
            Failure(
                1,
                "convert.client",
                NODE_CURRENCY_TIMEOUT,
                duration_ms=1000,
                log=LogSpec(
                    ERROR,
                    "price conversion timed out for product {product_id} after 1000ms",
                    (("app.product.id", "{product_id}"),),
                ),
            ),
        ],
    )

    view_cart = TraceType(
        "view-cart",
        15,
        http_server(
            "frontend",
            "GET",
            "/cart",
            latency=(2.5, 25),
            access_log=True,
            dyn=USER,
            user_agent=UA,
            children=[_cart_get("frontend", "cart")],
        ),
        [
            Failure(
                2,
                "cart.db",
                PY_STATEMENT_TIMEOUT,
                duration_ms=2000,
                log=LogSpec(
                    ERROR,
                    "failed to load cart for {user_id}: canceling statement due to statement timeout",
                    USER,
                ),
            ),
            Failure(
                1,
                "cart.server",
                PY_POOL_TIMEOUT,
                origin_code=503,
                duration_ms=5000,
                codes={"frontend": 502},
                log=LogSpec(
                    ERROR,
                    "failed to load cart for {user_id}: couldn't get a connection after 5.00 sec",
                    USER,
                ),
            ),
        ],
    )

    add_item = TraceType(
        "add-to-cart",
        15,
        http_server(
            "frontend",
            "POST",
            "/cart/items",
            latency=(2.5, 25),
            access_log=True,
            dyn=USER,
            user_agent=UA,
            children=[
                http_call(
                    "frontend",
                    http_server(
                        "cart",
                        "POST",
                        "/cart/items",
                        latency=(1.0, 9),
                        code=201,
                        on_finish=_cart_item,
                        dyn=(("app.product.id", "{product_id}"),),
                        logs=(
                            LogSpec(
                                INFO,
                                "added {product_id} x{qty} to cart of {user_id}",
                                USER + (("app.product.id", "{product_id}"),),
                            ),
                        ),
                        children=[
                            db_query(
                                "cart",
                                "INSERT",
                                "cart_items",
                                "INSERT INTO cart_items (user_id, product_id, quantity) VALUES (%s, %s, %s) "
                                "ON CONFLICT (user_id, product_id) DO UPDATE SET quantity = cart_items.quantity + "
                                "EXCLUDED.quantity",
                                latency=(2.5, 30),
                                key="add.db",
                            )
                        ],
                    ),
                ),
            ],
        ),
        [
            Failure(
                1,
                "add.db",
                PY_TOO_MANY_CLIENTS,
                duration_ms=3,
                log=LogSpec(
                    ERROR,
                    "could not add {product_id} to cart of {user_id}: too many clients already",
                    USER,
                ),
            ),
        ],
    )

    slow_log = LogSpec(
        WARN,
        "payment provider responded slowly: {duration_ms} ms for order {order_id}",
        (("app.order.id", "{order_id}"),),
    )
    payment = http_server(
        "payment",
        "POST",
        "/charge",
        latency=(1.2, 10),
        key="payment.server",
        on_finish=_payment_done,
        dyn=(("app.order.id", "{order_id}"),),
        logs=(
            LogSpec(
                INFO,
                "charged card ending {card_last4} amount={amount} {currency}",
                (("app.order.id", "{order_id}"), ("app.payment.amount", "{amount}")),
            ),
        ),
        children=[
            internal(
                "payment",
                "FraudService.score",
                latency=(2, 12),
                attrs={"app.fraud.model": "gbm-2024-11"},
            ),
            external_call(
                "payment",
                "POST",
                "https://api.stripe.com/v1/payment_intents",
                latency=(160, 700),
                key="stripe",
                slow=(0.03, 4, 15),
                slow_log=slow_log,
            ),
        ],
    )
    order_ctx = (("app.order.id", "{order_id}"),) + USER
    checkout_server = http_server(
        "checkout",
        "POST",
        "/checkout",
        latency=(0.8, 6),
        dyn=(("app.order.id", "{order_id}"),),
        on_finish=_orders_placed,
        logs=(
            LogSpec(
                INFO,
                "order {order_id} placed for {user_id}: {items} items, total={amount} {currency}",
                order_ctx,
            ),
        ),
        children=[
            internal(
                "checkout",
                "PlaceOrder",
                latency=(0.5, 4),
                dyn=order_ctx,
                children=[
                    _cart_get("checkout", "checkout.cart"),
                    http_call(
                        "checkout", http_server("currency", "POST", "/convert", latency=(0.3, 3))
                    ),
                    http_call("checkout", payment),
                    db_query(
                        "checkout",
                        "INSERT",
                        "orders",
                        "INSERT INTO orders (id, user_id, total_units, currency, status) VALUES ($1, $2, $3, $4, 'placed')",
                        latency=(3, 40),
                        key="orders.db",
                    ),
                    http_call(
                        "checkout",
                        http_server(
                            "cart",
                            "DELETE",
                            "/cart",
                            latency=(0.8, 7),
                            children=[
                                db_query(
                                    "cart",
                                    "DELETE",
                                    "cart_items",
                                    "DELETE FROM cart_items WHERE user_id = %s",
                                    latency=(1.5, 20),
                                )
                            ],
                        ),
                    ),
                    producer("checkout", "orders"),
                ],
            )
        ],
    )

    email_job = TraceType(
        "email",
        0,
        consumer(
            "email",
            "orders",
            "email",
            key="email.consumer",
            on_finish=_email_done,
            logs=(
                LogSpec(
                    INFO,
                    "sent order confirmation for {order_id} to {email}",
                    (("app.order.id", "{order_id}"),),
                ),
            ),
            children=[
                internal("email", "render order-confirmation", latency=(4, 30)),
                external_call(
                    "email",
                    "POST",
                    "https://api.sendgrid.com/v3/mail/send",
                    latency=(90, 400),
                    code=202,
                    key="sendgrid",
                ),
            ],
        ),
        [
            Failure(
                1,
                "sendgrid",
                RUBY_RATE_LIMITED,
                exc_at="email.consumer",
                origin_code=429,
                log=LogSpec(
                    ERROR,
                    "failed to send order confirmation for {order_id}: rate limit exceeded (429)",
                    (("app.order.id", "{order_id}"),),
                ),
            ),
        ],
        checkout=True,
    )

    pay_log = (("app.order.id", "{order_id}"), ("app.card.brand", "{card_brand}"))
    checkout = TraceType(
        "checkout",
        15,
        http_server(
            "frontend",
            "POST",
            "/checkout",
            latency=(2, 20),
            access_log=True,
            dyn=USER,
            user_agent=UA,
            children=[http_call("frontend", checkout_server)],
        ),
        [
            Failure(
                4,
                "stripe",
                _java_declined("insufficient funds"),
                exc_at="payment.server",
                origin_code=402,
                codes={"payment": 402, "checkout": 402, "frontend": 402},
                outcome="declined",
                log=LogSpec(
                    WARN,
                    "payment declined: insufficient funds (card ending {card_last4}, "
                    "amount={amount} {currency})",
                    pay_log,
                ),
            ),
            Failure(
                1,
                "stripe",
                _java_declined("expired card"),
                exc_at="payment.server",
                origin_code=402,
                codes={"payment": 402, "checkout": 402, "frontend": 402},
                outcome="declined",
                log=LogSpec(
                    WARN, "payment declined: expired card (card ending {card_last4})", pay_log
                ),
            ),
            Failure(
                2,
                "stripe",
                JAVA_READ_TIMEOUT,
                duration_ms=10000,
                codes={"payment": 504, "checkout": 502},
                log=LogSpec(
                    ERROR, "payment gateway timeout after 10000 ms for order {order_id}", pay_log
                ),
            ),
            Failure(
                1,
                "orders.db",
                GO_DEADLOCK,
                log=LogSpec(
                    ERROR,
                    "failed to persist order {order_id}: ERROR: deadlock detected (SQLSTATE 40P01)",
                    order_ctx,
                ),
            ),
            Failure(
                1,
                "checkout.cart.db",
                PY_STATEMENT_TIMEOUT,
                duration_ms=2000,
                log=LogSpec(
                    ERROR,
                    "failed to load cart for {user_id}: canceling statement due to statement timeout",
                    USER,
                ),
            ),
        ],
        checkout=True,
        followup=email_job,
    )

    return [home, product, view_cart, add_item, checkout]


def build_topology(rng: random.Random, *, replica_scale: int = 1) -> Topology:
    return Topology(
        SERVICES, build_instances(rng, replica_scale=replica_scale), default_trace_types()
    )


def lognormal_params(median_ms: float, p99_ms: float) -> tuple[float, float]:
    """(mu, sigma) of a log-normal in nanoseconds with the given median and 99th percentile."""
    return math.log(median_ms * 1e6), math.log(p99_ms / median_ms) / 2.326
