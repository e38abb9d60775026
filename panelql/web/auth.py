"""Authentication and rate limiting for HTTP requests to /graphql, before GraphQL runs.

Keys come in ``x-api-key`` or ``Authorization: Bearer``. GraphiQL's static page (a browser GET
asking for HTML) is served without a key when GraphiQL is enabled; the queries it sends need
one. WebSocket connections authenticate in ``connection_init`` (see graphql_http).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from panelql.application.auth import viewer_for_key
from panelql.application.connection_rights import charge
from panelql.application.context import Viewer
from panelql.application.errors import GatewayError, RateLimited
from panelql.application.gateway import Gateway
from panelql.web.media_types import JSON, negotiate


def key_from(headers: Mapping[str, str], params: Mapping[str, object] | None = None) -> str | None:
    """The API key from headers or a connection_init payload (browsers cannot set WS headers)."""
    for source in (params or {}, headers):
        for name in ("x-api-key", "apiKey", "api_key"):
            value = source.get(name)
            if isinstance(value, str) and value:
                return value
        auth = source.get("authorization") or source.get("Authorization")
        if isinstance(auth, str) and auth.lower().startswith("bearer "):
            return auth[7:].strip()
    return None


async def authenticate(gateway: Gateway, key: str | None) -> Viewer:
    if gateway.settings.auth_required is False:
        return Viewer(name="anonymous", scopes=frozenset({"admin"}))
    return await viewer_for_key(gateway.keys, key)


def error_response(request: HTTPConnection, status: int, error: GatewayError,
                   headers: dict[str, str] | None = None) -> Response:
    media = negotiate(request.headers.get("accept")) or JSON
    body = {"errors": [{"message": error.message, "extensions": error.extensions}]}
    return Response(json.dumps(body), status_code=status, media_type=f"{media}; charset=utf-8",
                    headers=headers)


class AuthMiddleware:
    """Resolves the Viewer for /graphql HTTP requests and enforces per-key rate limits."""

    def __init__(self, app: ASGIApp, path: str = "/graphql") -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        request = HTTPConnection(scope)
        gateway: Gateway = request.app.state.gateway
        if _is_graphiql_page(request) and gateway.settings.graphiql:
            await self.app(scope, receive, send)
            return
        try:
            viewer = await authenticate(gateway, key_from(request.headers))
        except GatewayError as exc:
            await error_response(request, 401, exc,
                                 {"WWW-Authenticate": 'Bearer realm="panelql"'})(
                scope, receive, send)
            return
        try:
            await charge(gateway, viewer)
        except RateLimited as limited:
            retry = limited.details["retryAfter"]
            await error_response(request, 429, limited, {"Retry-After": str(retry)})(
                scope, receive, send)
            return
        scope.setdefault("state", {})["viewer"] = viewer
        await self.app(scope, receive, send)



def _is_graphiql_page(request: HTTPConnection) -> bool:
    return (request.scope["method"] == "GET" and "text/html" in request.headers.get("accept", "")
            and "query" not in request.query_params)
