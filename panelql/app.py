"""The ASGI application: lifespan (database, HTTP clients, provider adapters), /graphql over
HTTP and WebSocket, /healthz, /readyz."""

from __future__ import annotations

import contextlib
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

from panelql.db.engine import create_engine, session_factory
from panelql.db.migrate import upgrade
from panelql.providers.contract import Provider
from panelql.providers.http import ClientFactory
from panelql.providers.registry import build_provider
from panelql.resolvers.gateway import Gateway
from panelql.schema.root import build_schema
from panelql.settings import Settings
from panelql.web.auth import AuthMiddleware
from panelql.web.graphql_http import GraphQLEndpoint

log = logging.getLogger("panelql.app")


def create_app(settings: Settings, *, providers: dict[str, Provider] | None = None,
               clients: ClientFactory | None = None) -> Starlette:
    """``providers`` and ``clients`` may be injected by tests; otherwise built from settings."""
    schema = build_schema(settings.limits, introspection=settings.introspection)
    graphql = GraphQLEndpoint(
        schema, graphql_ide="graphiql" if settings.graphiql else None,
        keep_alive=True, keep_alive_interval=settings.keep_alive_seconds,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL,
                                GRAPHQL_SSE_PROTOCOL),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if settings.auto_migrate:
            await upgrade(settings.database_url)
        engine = create_engine(settings.database_url)
        factory = clients or ClientFactory()
        adapters = providers if providers is not None else {
            c.name: build_provider(c, factory) for c in settings.connections()
        }
        gateway = Gateway(settings=settings, providers=adapters, sessions=session_factory(engine))
        app.state.gateway = gateway
        log.info("gateway ready", extra={"providers": sorted(adapters)})
        try:
            yield
        finally:
            await gateway.aclose()
            await factory.aclose()
            await engine.dispose()

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
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                            status_code=200 if ready else 503)

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
    ]
    return Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(AuthMiddleware)])
