"""How errors reach clients: one machine-readable ``extensions.code`` on every error.

- ProviderError → its code plus ``provider``, ``retryable``, ``retryAfter``, ``currentStatus``;
- GatewayError (bad input, not found, forbidden…) → its code and extensions;
- parse and validation errors → BAD_USER_INPUT;
- anything else → INTERNAL with a generic message and an ``errorId`` that is also logged with
  the traceback, so support can find it without the client ever seeing internals.
Partial failures collected during list queries are appended as one error per failed provider.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import InvalidOperationTypeError

from panelql.application.errors import GatewayError
from panelql.providers.errors import ProviderError

log = logging.getLogger("panelql.errors")


def shape(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    # graphql-core wraps resolver exceptions; strawberry may wrap once more.
    while isinstance(original, GraphQLError) and original.original_error is not None:
        original = original.original_error
    if isinstance(original, ProviderError):
        log.info("provider error", extra={"provider": original.provider, "code": original.code,
                                          "debug": original.debug})
        return _rebuild(error, original.message, original.extensions)
    if isinstance(original, GatewayError):
        return _rebuild(error, original.message, original.extensions)
    if isinstance(original, InvalidOperationTypeError):
        return _rebuild(error, _wrong_transport(original), {"code": "BAD_USER_INPUT"})
    # No cause, or a GraphQLError graphql-core raised itself (a variable failing coercion wraps
    # the scalar's GraphQLError): a problem with the request, not with the gateway.
    if original is None or isinstance(original, GraphQLError):
        code = (error.extensions or {}).get("code") or "BAD_USER_INPUT"
        return _rebuild(error, error.message, {**(error.extensions or {}), "code": code})
    error_id = uuid.uuid4().hex[:12]
    log.error("unexpected error %s", error_id, exc_info=original)
    return _rebuild(error, f"Internal error (id {error_id})",
                    {"code": "INTERNAL", "errorId": error_id})


def _wrong_transport(error: InvalidOperationTypeError) -> str:
    # Over HTTP the view answers these itself; what reaches here is a query or mutation sent
    # over the legacy graphql-ws protocol, which strawberry runs for subscriptions only.
    kind = error.operation_type.value
    return (f"a {kind} cannot run over the legacy graphql-ws protocol, which carries "
            "subscriptions only; send it over HTTP or graphql-transport-ws")


def is_unexpected(error: GraphQLError) -> bool:
    """A bug or an unknown failure: not a parse/validation error, not one of ours."""
    original = error.original_error
    while isinstance(original, GraphQLError) and original.original_error is not None:
        original = original.original_error
    return original is not None and not isinstance(
        original, GraphQLError | ProviderError | GatewayError | InvalidOperationTypeError)


def _rebuild(error: GraphQLError, message: str, extensions: dict[str, Any]) -> GraphQLError:
    return GraphQLError(message, nodes=error.nodes, source=error.source,
                        positions=error.positions, path=error.path, extensions=extensions)


def partial_error(error: ProviderError) -> GraphQLError:
    return GraphQLError(f"{error.provider}: {error.message}",
                        extensions=error.extensions)


def _coded_syntax_error(error: GraphQLSyntaxError) -> GraphQLError:
    """Keeps its class: graphql-transport-ws answers a syntax error by closing with 4400."""
    error.extensions = {**(error.extensions or {}), "code": "BAD_USER_INPUT"}
    return error


class ErrorShaping(SchemaExtension):
    """Codes every error and appends the per-panel partial errors, on every transport.

    Over HTTP the result is shaped when the operation ends. Over WebSocket and SSE
    (``Schema.stream``) each result is sent as soon as it is yielded, before the operation
    ends, so it is shaped in ``on_stream_result``, just before it goes out: otherwise partial
    errors were dropped (a partial answer looked complete) and internal errors left unmasked.
    """

    streamed = False

    def on_stream_result(self, result: Any) -> Iterator[None]:
        self.streamed = True
        if hasattr(result, "errors"):  # incremental-delivery frames carry none of their own
            self._shape(result)
        yield

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and not self.streamed:
            self._shape(result)

    def _shape(self, result: Any) -> None:
        shaped = [_coded_syntax_error(e) if isinstance(e, GraphQLSyntaxError) else shape(e)
                  for e in (result.errors or [])]
        context = self.execution_context.context
        partial = getattr(context, "partial_errors", None)
        if partial:
            shaped.extend(partial_error(e) for e in partial)
            partial.clear()  # a subscription's next event reports its own
        result.errors = shaped or None
