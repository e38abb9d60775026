"""Strawberry's ASGI view, wired to the gateway and held to the GraphQL-over-HTTP specification.

Strawberry 0.341 answers every result with ``200 application/json`` and ``"data": null``, refuses
malformed requests in plain text, answers a mutation over GET with 400 and a wrong Content-Type
with 400. This view overrides its hooks (never strawberry itself) so that:

- the response media type is negotiated from Accept: ``application/graphql-response+json`` (the
  default) or legacy ``application/json``; 406 when the client accepts neither;
- request errors (parse, validation, variable coercion, unknown operation) carry no ``data`` and,
  with graphql-response+json, a 4xx status; legacy JSON keeps 200 for well-formed requests;
- malformed requests (bad JSON, missing or mistyped parameters) are 400 with a JSON body, a POST
  that is not UTF-8 ``application/json`` is 415, a mutation over GET is 405 with ``Allow: POST``;
- every error body carries ``extensions.code``, including the refusals made before GraphQL runs.

SSE (Accept: text/event-stream) and WebSockets keep strawberry's own handling.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData, process_result
from strawberry.http.base import BaseRequestProtocol
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from panelql.application.connection_rights import ConnectionRights
from panelql.application.context import Context, Viewer
from panelql.application.errors import GatewayError
from panelql.application.gateway import Gateway
from panelql.domain import json_depth
from panelql.schema.errors import shape
from panelql.web.auth import authenticate, key_from
from panelql.web.graphiql import graphiql_page
from panelql.web.media_types import (
    JSON,
    UnsupportedBody,
    check_request_body_type,
    content_type,
    negotiate,
)

MEDIA_KEY = "panelql.media_type"  # the negotiated response type, kept in the ASGI scope
# A request error's code decides its status under graphql-response+json; anything else is 400.
STATUS_BY_CODE = {"INTERNAL": 500, "UNAUTHENTICATED": 401, "FORBIDDEN": 403, "RATE_LIMITED": 429}


class RequestError(HTTPException):
    """A request refused before GraphQL runs: status, message, ``extensions.code``, headers."""

    def __init__(self, status: int, message: str, *, code: str = "BAD_USER_INPUT",
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status, message)
        self.code = code
        self.headers = dict(headers or {})


class WSContext(Context):
    """Context of a WebSocket connection: strawberry stores the connection_init payload here."""

    connection_params: dict[str, Any] | None = None


# The close code for a socket whose key was revoked or expired while it was open (4403 is
# what graphql-transport-ws servers use for "forbidden"; the reason says why).
REVOKED_CLOSE_CODE = 4403


class GraphQLEndpoint(GraphQL[Context, None]):
    async def get_context(self, request: Request | WebSocket, response: Any = None) -> Context:
        gateway: Gateway = request.app.state.gateway
        interval = gateway.settings.connection_recheck_seconds
        if isinstance(request, WebSocket):
            # The viewer is settled in on_ws_connect, once the connection_init payload is in;
            # every operation then gets its own context (schema/connection_rights.py).
            context = WSContext.create(gateway, request, Viewer())
            context.rights = ConnectionRights(gateway, interval=interval, per_operation=True,
                                              on_revoked=_closer(request))
            return context
        viewer = request.scope.get("state", {}).get("viewer")
        context = Context.create(gateway, request, viewer)
        # A subscription over SSE outlives the middleware's check: it re-checks the key.
        context.rights = ConnectionRights(gateway, key=key_from(request.headers),
                                          interval=interval)
        return context

    async def on_ws_connect(self, context: Context) -> Any:
        params = getattr(context, "connection_params", None) or {}
        request = context.request
        headers = dict(request.headers) if request is not None else {}
        key = key_from(headers, params)
        try:
            context.viewer = await authenticate(context.gateway, key)
        except GatewayError as exc:
            raise ConnectionRejectionError({"message": exc.message,
                                            "extensions": exc.extensions}) from None
        if isinstance(context.rights, ConnectionRights):
            context.rights.key = key
        return await super().on_ws_connect(context)

    # --- HTTP: negotiation and refusals -----------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        try:
            response = await self._serve(request)
        except HTTPException as exc:  # ours (RequestError) and the few strawberry still raises
            response = self._refusal(request, exc)
        await response(scope, receive, send)

    async def _serve(self, request: Request) -> Response:
        if request.method not in ("GET", "POST"):
            raise RequestError(405, f"{request.method} is not supported on /graphql; "
                                    "use GET or POST", headers={"Allow": "GET, POST"})
        adapter = self.request_adapter_class(request)
        if self.should_render_graphql_ide(adapter):
            if not self.graphql_ide:
                raise RequestError(404, "GraphiQL is disabled on this gateway", code="NOT_FOUND")
            return await self.render_graphql_ide(request)
        # SSE requests (Accept: text/event-stream) are strawberry's stream transport.
        if self._stream_protocol(request.headers) is None:
            media = negotiate(request.headers.get("accept"))
            if media is None:
                raise RequestError(406, "Accept must allow application/graphql-response+json "
                                        "or application/json")
            request.scope[MEDIA_KEY] = media
        return await self.run(request)

    def _refusal(self, request: Request, exc: HTTPException) -> Response:
        media = request.scope.get(MEDIA_KEY) or negotiate(request.headers.get("accept")) or JSON
        if isinstance(exc, RequestError):
            code, headers = exc.code, exc.headers
        else:
            code, headers = ("NOT_FOUND" if exc.status_code == 404 else "BAD_USER_INPUT"), {}
        body = {"errors": [{"message": exc.reason, "extensions": {"code": code}}]}
        return Response(self.encode_body(body), status_code=exc.status_code,
                        headers={**headers, "Vary": "Accept"}, media_type=content_type(media))

    async def render_graphql_ide(self, request: Request) -> Response:
        # Our page with local assets instead of strawberry's, which loads GraphiQL from a CDN.
        return graphiql_page(request.url.path)

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        # Only a browser asking for HTML gets the page (strawberry also serves it for */*, which
        # would answer curl with HTML); the auth middleware lets exactly these through keyless.
        return (request.method == "GET" and request.query_params.get("query") is None
                and "text/html" in request.headers.get("accept", ""))

    def _stream_protocol(self, headers: Mapping[str, str]) -> str | None:
        """The streaming protocol (``sse``, ``multipart-subscription``) the Accept header asks
        for among those this view serves, else None: strawberry's own rule, through its public
        ``protocols`` and ``stream_transport_classes_by_protocol`` and each transport's
        ``accepts`` (strawberry/http/base.py, 0.341)."""
        accept = next((v for k, v in headers.items() if k.lower() == "accept"), "")
        for protocol in self.protocols:
            transport = self.stream_transport_classes_by_protocol.get(protocol)
            if transport is not None and transport().accepts(accept):
                return transport.protocol
        return None

    def decode_json(self, data: str | bytes) -> object:
        # WebSocket messages (and whatever else strawberry decodes): TooDeep is a
        # JSONDecodeError, which strawberry answers as a message that is not JSON.
        return json_depth.loads(data)

    # --- request parameters -----------------------------------------------------------------

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> GraphQLRequestData:
        protocol = self._stream_protocol(request.headers)
        if request.method == "GET":
            params: dict[str, Any] = dict(request.query_params)
            for name in ("variables", "extensions"):
                raw = params.get(name)
                params[name] = _decode_json(raw, f"`{name}`") if raw else None
        else:
            try:
                check_request_body_type(request.content_type)
            except UnsupportedBody as exc:
                raise RequestError(415, str(exc), headers={"Accept-Post": JSON}) from None
            params = _request_object(await request.get_body())
        return _request_data(params, protocol or "http")

    # --- execution --------------------------------------------------------------------------

    async def execute_single(
        self, request: Request, request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response, context: Context, root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        method = request_adapter.method
        # Plain HTTP runs queries, and mutations over POST; subscriptions use SSE or WebSocket.
        allowed = {OperationType.QUERY}
        if method == "POST":
            allowed.add(OperationType.MUTATION)
        try:
            return await self.schema.execute(
                request_data.query, root_value=root_value, variable_values=request_data.variables,
                context_value=context, operation_name=request_data.operation_name,
                allowed_operation_types=allowed, operation_extensions=request_data.extensions)
        except MissingQueryError:
            raise RequestError(400, "No GraphQL query found in the request") from None
        except CannotGetOperationTypeError as exc:
            return request_error(exc.as_http_error_reason())
        except InvalidOperationTypeError as exc:
            kind = exc.operation_type.value
            if method == "GET" and exc.operation_type is OperationType.MUTATION:
                raise RequestError(405, "mutations cannot run over GET; use POST",
                                   headers={"Allow": "POST"}) from None
            return request_error(f"a {kind} cannot run over plain HTTP {method}; "
                                 "use Accept: text/event-stream or a WebSocket")

    async def process_result(self, request: Request, result: ExecutionResult
                             ) -> GraphQLHTTPResponse:
        if result.errors:
            # ErrorShaping codes every error that passed through the operation; this catches the
            # rest (an extension failing outside it), so no body ever lacks a code.
            result.errors = [e if (e.extensions or {}).get("code") else shape(e)
                             for e in result.errors]
        body = process_result(result)
        if is_request_error(result):
            body.pop("data", None)  # the spec: a request error's response has no data entry
        return body

    # --- response ---------------------------------------------------------------------------

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        # create_response only sees the sub-response, so the negotiated type travels on it.
        sub_response.media_type = request.scope.get(MEDIA_KEY) or JSON
        return sub_response

    def encode_body(self, data: object) -> str | bytes:
        """An HTTP body in orjson (UTF-8 bytes, compact): a 1,000-server answer cost the stdlib
        encoder a tenth of the query's CPU. Whatever orjson cannot encode (integers past 64 bits,
        keys that are not strings) goes to strawberry's stdlib encoder, as before."""
        try:
            return orjson.dumps(data)
        except orjson.JSONEncodeError:
            return super().encode_json(data)

    def encode_json(self, data: object) -> str:
        """Text, always: strawberry sends bytes from this as binary WebSocket frames, which a
        browser's graphql-ws client hands to JSON.parse as a Blob and drops the connection
        (the dashboard stayed "disconnected"). HTTP bodies take :meth:`encode_body`."""
        encoded = self.encode_body(data)
        return encoded.decode() if isinstance(encoded, bytes) else encoded

    def create_response(self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
                        sub_response: Response) -> Response:
        media = sub_response.media_type or JSON
        status = sub_response.status_code or status_for(response_data, media)
        response = Response(self.encode_body(response_data), status_code=status,
                            media_type=content_type(media), headers={"Vary": "Accept"})
        response.headers.raw.extend(sub_response.headers.raw)
        if sub_response.background:
            response.background = sub_response.background
        return response


def _closer(websocket: WebSocket) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        await websocket.close(code=REVOKED_CLOSE_CODE, reason="API key revoked or expired")
    return close


def request_error(message: str) -> ExecutionResult:
    return ExecutionResult(data=None,
                           errors=[GraphQLError(message, extensions={"code": "BAD_USER_INPUT"})])


def is_request_error(result: ExecutionResult) -> bool:
    """Raised before execution began (parse, validation, variables, operation): no error has a
    path. A field error nulling the whole response still has its field's path."""
    return result.data is None and bool(result.errors) and all(
        e.path is None for e in result.errors or [])


def status_for(body: GraphQLHTTPResponse | list[GraphQLHTTPResponse], media: str) -> int:
    # Legacy JSON: 200 for every well-formed request. graphql-response+json: 200 whenever data
    # is present (even null), 4xx/5xx when it is absent.
    if media == JSON or isinstance(body, list) or "data" in body:
        return 200
    codes = [(e.get("extensions") or {}).get("code") for e in body.get("errors") or []
             if isinstance(e, dict)]
    return next((STATUS_BY_CODE[c] for c in codes if c in STATUS_BY_CODE), 400)


def _decode_json(raw: str | bytes, what: str) -> Any:
    try:
        text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise RequestError(400, f"{what} is not valid UTF-8") from None
    try:
        return json_depth.loads(text)
    except json_depth.TooDeep as exc:
        raise RequestError(400, f"{what} is {exc.msg}") from None
    except ValueError:
        raise RequestError(400, f"{what} is not valid JSON") from None


def _request_object(body: bytes) -> dict[str, Any]:
    value = _decode_json(body, "The request body")
    if isinstance(value, list):
        raise RequestError(400, "Batched requests are not supported; send one operation "
                                "per request")
    if not isinstance(value, dict):
        raise RequestError(400, "The request body must be a JSON object")
    return value


def _request_data(params: Mapping[str, Any], protocol: Any) -> GraphQLRequestData:
    query = params.get("query")
    if query is None or query == "":
        raise RequestError(400, "No GraphQL query found in the request")
    if not isinstance(query, str):
        raise RequestError(400, "`query` must be a string")
    operation_name = params.get("operationName")
    if operation_name == "":
        operation_name = None  # an empty GET parameter means "not given"
    if not isinstance(operation_name, str | None):
        raise RequestError(400, "`operationName` must be a string or null")
    for name in ("variables", "extensions"):
        if not isinstance(params.get(name), dict | None):
            raise RequestError(400, f"`{name}` must be an object or null")
    return GraphQLRequestData(query=query, variables=params.get("variables"),
                              operation_name=operation_name, extensions=params.get("extensions"),
                              protocol=protocol)
