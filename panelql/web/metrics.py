"""Prometheus metrics: GraphQL operations, upstream calls, subscriptions, events, breakers.

Where each figure comes from:
- operations and root-resolver latency: :class:`MetricsExtension`, a strawberry extension;
- upstream calls: httpx event hooks that the shared ``ClientFactory`` puts on every client
  (:func:`upstream_event_hooks`); latency is time to response headers;
- dataloader batch sizes: ``panelql.observability.observe_batch`` (called by the loaders);
- open subscriptions, events delivered, circuit breakers: read from the running gateway at
  scrape time (:class:`GatewayCollector`), so nothing is double-booked.

Operation names come from clients, so they are a label only when they look like names and
only for the first ``MAX_OPERATION_NAMES`` seen; the rest count as ``other``.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from inspect import isawaitable
from typing import Any
from urllib.parse import urlsplit

import httpx
from graphql import GraphQLFieldResolver, GraphQLResolveInfo
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from strawberry.extensions import SchemaExtension

from panelql.events.model import Topic

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_OPERATION_NAMES = 200
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_seen_names: set[str] = set()

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

REQUESTS = Counter("panelql_graphql_requests_total", "GraphQL operations by name, type and "
                   "outcome (ok, partial, error)", ["operation", "type", "outcome"])
REQUEST_SECONDS = Histogram("panelql_graphql_request_seconds", "GraphQL operation latency",
                            ["operation", "type"], buckets=LATENCY_BUCKETS)
RESOLVER_SECONDS = Histogram("panelql_graphql_resolver_seconds", "Root field resolver latency",
                             ["field"], buckets=LATENCY_BUCKETS)
UPSTREAM_STARTED = Counter("panelql_upstream_requests_started_total", "Upstream HTTP requests "
                           "sent; started minus completed = transport failures", ["provider"])
UPSTREAM_REQUESTS = Counter("panelql_upstream_requests_total", "Upstream HTTP responses by "
                            "status", ["provider", "method", "status"])
UPSTREAM_SECONDS = Histogram("panelql_upstream_request_seconds", "Upstream time to response "
                             "headers", ["provider"], buckets=LATENCY_BUCKETS)


def operation_label(name: str | None) -> str:
    if not name:
        return "anonymous"
    if not _NAME.match(name):
        return "other"
    if name not in _seen_names:
        if len(_seen_names) >= MAX_OPERATION_NAMES:
            return "other"
        _seen_names.add(name)
    return name


class MetricsExtension(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        ctx = self.execution_context
        try:
            kind = ctx.operation_type.value
        except Exception:  # the document did not parse: no operation type to speak of
            kind = "unknown"
        name = operation_label(ctx.operation_name)
        REQUESTS.labels(name, kind, _outcome(ctx.result, ctx.context)).inc()
        REQUEST_SECONDS.labels(name, kind).observe(time.perf_counter() - started)



def timed_root_field(parent: str, field: str,
                     resolve: GraphQLFieldResolver) -> GraphQLFieldResolver:
    """Root-resolver latency (a RootWrapper for build_schema): root fields hold the upstream
    work; timing every nested field would cost more than it tells."""
    seconds = RESOLVER_SECONDS.labels(field)

    def timed(root: Any, info: GraphQLResolveInfo[Any], **kwargs: Any) -> Any:
        started = time.perf_counter()
        result = resolve(root, info, **kwargs)
        if isawaitable(result):
            return _timed(result, seconds, started)
        seconds.observe(time.perf_counter() - started)
        return result
    return timed


async def _timed(result: Awaitable[Any], seconds: Histogram, started: float) -> Any:
    try:
        return await result
    finally:
        seconds.observe(time.perf_counter() - started)


def _outcome(result: Any, context: Any) -> str:
    errors = bool(getattr(result, "errors", None)) or bool(getattr(context, "partial_errors", None))
    if not errors:
        return "ok"
    return "partial" if getattr(result, "data", None) else "error"


# -- upstream calls ---------------------------------------------------------------------------

def upstream_event_hooks(connection: str) -> dict[str, list[Callable[..., Any]]]:
    """httpx event hooks for one connection's clients: ``ClientFactory(event_hooks=this)``.
    A client built outside a connection view gets its base URL here; its host is the label."""
    name = (urlsplit(connection).netloc or connection) if "://" in connection else connection

    async def on_request(request: httpx.Request) -> None:
        request.extensions["panelql_started"] = time.perf_counter()
        UPSTREAM_STARTED.labels(name).inc()

    async def on_response(response: httpx.Response) -> None:
        request = response.request
        UPSTREAM_REQUESTS.labels(name, request.method, str(response.status_code)).inc()
        started = request.extensions.get("panelql_started")
        if isinstance(started, float):
            UPSTREAM_SECONDS.labels(name).observe(time.perf_counter() - started)

    return {"request": [on_request], "response": [on_response]}


# -- state read from the running gateway at scrape time ---------------------------------------

class GatewayCollector(Collector):
    def __init__(self, gateway: Any) -> None:
        self.gateway = gateway

    def collect(self) -> Iterator[Metric]:
        bus = self.gateway.bus
        local = getattr(bus, "local", bus)  # RedisBus keeps its subscribers in a local bus
        open_total = GaugeMetricFamily("panelql_subscriptions_open", "Open subscriptions "
                                       "(event streams) on this replica")
        open_total.add_metric([], len(getattr(local, "subscribers", ())))
        yield open_total
        per_topic = GaugeMetricFamily("panelql_subscriptions_by_topic", "Open subscriptions "
                                      "on this replica per topic", labels=["topic"])
        for topic in Topic:
            per_topic.add_metric([topic.value], local.subscriber_count(topic))
        yield per_topic
        delivered = CounterMetricFamily("panelql_events_delivered", "Status events handed to "
                                        "this replica's subscribers (published here or relayed)")
        delivered.add_metric([], getattr(local, "published", 0))
        yield delivered
        yield from _redis_figures(bus)
        providers = GaugeMetricFamily("panelql_provider_connections", "Provider connections "
                                      "loaded", labels=["kind"])
        kinds: dict[str, int] = {}
        for adapter in self.gateway.providers.values():
            kinds[adapter.config.kind] = kinds.get(adapter.config.kind, 0) + 1
        for kind, count in sorted(kinds.items()):
            providers.add_metric([kind], count)
        yield providers
        breakers = GaugeMetricFamily("panelql_circuit_breaker_state", "1 for the current state "
                                     "of each connection's circuit breaker",
                                     labels=["provider", "state"])
        for name, state in sorted(self.gateway.breaker_states().items()):
            for candidate in ("closed", "open", "half_open"):
                breakers.add_metric([name, candidate], 1.0 if state == candidate else 0.0)
        yield breakers


def _redis_figures(bus: Any) -> Iterator[Metric]:
    if not hasattr(bus, "relayed"):
        return
    relayed = CounterMetricFamily("panelql_bus_relayed", "Events received from Redis")
    relayed.add_metric([], bus.relayed)
    yield relayed
    reconnects = CounterMetricFamily("panelql_bus_reconnects", "Redis subscription reconnects")
    reconnects.add_metric([], bus.reconnects)
    yield reconnects


async def metrics_endpoint(request: Request) -> Response:
    """Process-wide metrics plus this app's gateway figures (a per-scrape registry, so several
    apps in one process, as in tests, never register twice)."""
    local = CollectorRegistry(auto_describe=False)
    gateway = getattr(request.app.state, "gateway", None)
    if gateway is not None:
        local.register(GatewayCollector(gateway))
    body = generate_latest(REGISTRY) + generate_latest(local)
    return Response(body, media_type=CONTENT_TYPE)


async def bus_check(bus: Any, timeout: float = 2.0) -> str:
    """Readiness of the event bus: Redis must answer PING; the in-process bus is always up."""
    client = getattr(bus, "client", None)
    if client is None:
        return "ok"
    try:
        await asyncio.wait_for(client.ping(), timeout)
    except Exception as exc:  # readiness must answer, whatever broke
        return f"error: {type(exc).__name__}"
    return "ok"
