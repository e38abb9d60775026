"""The ASGI application: lifespan (database, HTTP clients, provider adapters), /graphql over
HTTP and WebSocket, /healthz, /readyz."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from strawberry.subscriptions import (
    GRAPHQL_SSE_PROTOCOL,
    GRAPHQL_TRANSPORT_WS_PROTOCOL,
    GRAPHQL_WS_PROTOCOL,
)

from panelql.application.automation.engine import Automation
from panelql.application.gateway import Gateway
from panelql.application.housekeeping import Housekeeping
from panelql.application.rate_limit import RedisRateLimiter
from panelql.application.write_locks import RedisWriteLocks
from panelql.db.connections import load_connections
from panelql.db.engine import create_engine, session_factory
from panelql.db.migrate import upgrade
from panelql.events.bus import EventBus, InProcessBus
from panelql.events.watcher import Watcher
from panelql.observability import RequestIdMiddleware, tracing_extension
from panelql.providers.contract import Provider
from panelql.providers.http import ClientFactory
from panelql.providers.registry import build_provider
from panelql.schema.root import build_schema
from panelql.settings import Settings
from panelql.web.auth import AuthMiddleware
from panelql.web.graphiql import ASSET_PATH, graphiql_asset
from panelql.web.graphql_http import GraphQLEndpoint
from panelql.web.metrics import (
    MetricsExtension,
    bus_check,
    metrics_endpoint,
    timed_root_field,
    upstream_event_hooks,
)
from panelql.web.webhooks import webhook_routes

log = logging.getLogger("panelql.app")


def create_app(settings: Settings, *, providers: dict[str, Provider] | None = None,
               clients: ClientFactory | None = None) -> Starlette:
    """``providers`` and ``clients`` may be injected by tests; otherwise built from settings."""
    schema = build_schema(settings.limits, introspection=settings.introspection,
                          root_wrappers=[timed_root_field] if settings.metrics else [],
                          lean=settings.lean_execution)
    schema.extensions = (*schema.extensions, *_observers(settings))
    graphql = GraphQLEndpoint(
        schema, graphql_ide="graphiql" if settings.graphiql else None,
        keep_alive=True, keep_alive_interval=settings.keep_alive_seconds,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL,
                                GRAPHQL_SSE_PROTOCOL),
        allowed_origins=settings.ws_allowed_origins,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Each part is registered for closing as soon as it is open, so a start that fails
        # halfway (the bus's Redis unreachable, a watcher that cannot start) closes what it
        # had opened, in reverse order, instead of leaking the engine and the HTTP pools.
        async with contextlib.AsyncExitStack() as opened:
            app.state.gateway = await _start(settings, opened, providers, clients)
            yield

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        gateway: Gateway = request.app.state.gateway
        checks: dict[str, str] = {}
        try:
            assert gateway.sessions is not None
            async with gateway.sessions() as session:
                await session.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # readiness must answer, whatever broke
            checks["database"] = f"error: {type(exc).__name__}"
        checks["bus"] = await bus_check(gateway.bus)
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                            status_code=200 if ready else 503)

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        # Every method reaches the view, so a PUT gets a JSON 405 with Allow, like the rest.
        Route("/graphql", graphql),
        Route(f"{ASSET_PATH}/{{name}}", graphiql_asset, methods=["GET"]),
        WebSocketRoute("/graphql", graphql),
        *webhook_routes(lambda request: request.app.state.gateway),
    ]
    if settings.metrics:
        routes.append(Route("/metrics", metrics_endpoint, methods=["GET"]))
    return Starlette(routes=routes, lifespan=lifespan,
                     middleware=[Middleware(RequestIdMiddleware), Middleware(AuthMiddleware)])


async def _start(settings: Settings, opened: contextlib.AsyncExitStack,
                 providers: dict[str, Provider] | None, clients: ClientFactory | None
                 ) -> Gateway:
    """Open the gateway's parts in order; ``opened`` closes them in reverse (at shutdown, or as
    soon as a later part fails to open): automation, housekeeping, watcher, gateway (its operations
    tracker, bus and adapters), Redis, HTTP clients, engine."""
    if settings.auto_migrate:
        await upgrade(settings.database_url)
    engine = create_engine(settings.database_url)
    opened.push_async_callback(engine.dispose)
    configs = settings.connections()
    if providers is None:  # plus connections added with `panelql providers add`
        secret = settings.secret_key.get_secret_value() if settings.secret_key else None
        configs += await load_connections(session_factory(engine), secret,
                                          {c.name for c in configs})
    factory = clients or ClientFactory(policy=settings.resilience.policy(),
                                       event_hooks=upstream_event_hooks,
                                       lean=settings.upstream_transport == "lean")
    opened.push_async_callback(factory.aclose)
    adapters = providers if providers is not None else {
        c.name: build_provider(c, factory.for_connection(c.name))
        for c in configs
    }
    redis, bus = await _open_redis(settings, opened)
    gateway = Gateway(settings=settings, providers=adapters, sessions=session_factory(engine),
                      bus=bus, clients=factory)
    opened.push_async_callback(gateway.aclose)
    if redis is not None:  # every replica draws from the same per-key budget
        gateway.rate_limiter = RedisRateLimiter(redis, settings.redis_prefix)
        gateway.write_locks = RedisWriteLocks(redis, prefix=settings.redis_prefix + "write-lock:")
    watcher = Watcher.for_gateway(gateway)
    opened.push_async_callback(watcher.aclose)  # before the bus and clients it uses go away
    await watcher.start()  # no-op when settings.watcher.enabled is false
    housekeeping = Housekeeping(gateway)
    opened.push_async_callback(housekeeping.aclose)
    await housekeeping.start()
    gateway.tracker.start_heartbeat()  # keeps our operations, adopts dead replicas'
    automation = Automation.for_gateway(gateway)
    gateway.automation = automation
    opened.push_async_callback(automation.aclose)
    await automation.start()  # no-op when settings.automation.enabled is false
    if settings.freeze_heap:
        gc.collect()  # garbage from startup is freed, not frozen
        gc.freeze()
    log.info("gateway ready", extra={"providers": sorted(adapters),
                                     "deployment": settings.deployment_name,
                                     "replica": gateway.tracker.owner})
    return gateway


def _observers(settings: Settings) -> list[Any]:
    """Schema extensions for metrics and (when asked for and installed) tracing."""
    observers: list[Any] = [MetricsExtension] if settings.metrics else []
    if settings.tracing:
        extension = tracing_extension()
        if extension is None:
            log.warning("PANELQL_TRACING is on but OpenTelemetry is not installed "
                        "(pip install 'panelql[otel]'); tracing stays off")
        else:
            observers.append(extension)
    return observers


async def _open_redis(settings: Settings, opened: contextlib.AsyncExitStack
                      ) -> tuple[Any, EventBus]:
    """The Redis client and the event bus: Redis pub/sub on this deployment's own channel when
    a URL is configured, in-process otherwise. The redis package is imported only then, so a
    single-process gateway never loads it (about 9 MB of memory)."""
    if not settings.redis_url:
        return None, InProcessBus()
    from redis.asyncio import Redis

    from panelql.events.redis_bus import open_bus

    redis = Redis.from_url(settings.redis_url)
    opened.push_async_callback(redis.aclose)
    return redis, await open_bus(settings.redis_url, settings.redis_prefix)
