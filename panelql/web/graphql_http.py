"""Strawberry's ASGI view, wired to the gateway: typed context, viewer, WebSocket auth."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError

from panelql.resolvers.context import Context, Viewer
from panelql.resolvers.errors import GatewayError
from panelql.resolvers.gateway import Gateway
from panelql.web.auth import authenticate, key_from


class WSContext(Context):
    """Context of a WebSocket connection: strawberry stores the connection_init payload here."""

    connection_params: dict[str, Any] | None = None


class GraphQLEndpoint(GraphQL[Context, None]):
    async def get_context(self, request: Request | WebSocket, response: Any = None) -> Context:
        gateway: Gateway = request.app.state.gateway
        if isinstance(request, WebSocket):
            # The viewer is settled in on_ws_connect, once the connection_init payload is in.
            return WSContext.create(gateway, request, Viewer())
        viewer = request.scope.get("state", {}).get("viewer")
        return Context.create(gateway, request, viewer)

    async def on_ws_connect(self, context: Context) -> Any:
        params = getattr(context, "connection_params", None) or {}
        request = context.request
        headers = dict(request.headers) if request is not None else {}
        try:
            context.viewer = await authenticate(context.gateway, key_from(headers, params))
        except GatewayError as exc:
            raise ConnectionRejectionError({"message": exc.message,
                                            "extensions": exc.extensions}) from None
        return await super().on_ws_connect(context)
