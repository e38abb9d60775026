"""Each operation on a WebSocket runs with rights checked at that moment, in its own context.

Strawberry hands every operation of a connection the one context made at connect. This
extension, first in the list, swaps in a per-operation context from
:meth:`ConnectionRights.begin_operation` (key looked up again, rate limit charged, fresh
customer scope and loaders) before anything else runs. A refusal becomes the operation's
request error; a revoked key's socket is closed once that error has been sent (when the
transport's task for the operation is done).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from panelql.application.connection_rights import ConnectionRights
from panelql.application.errors import GatewayError


class OperationRights(SchemaExtension):
    refused: GatewayError | None = None

    async def on_operation(self) -> AsyncIterator[None]:  # type: ignore[override]
        ec = self.execution_context
        rights = getattr(ec.context, "rights", None)
        if not isinstance(rights, ConnectionRights):
            yield
            return
        if rights.per_operation:
            # Once this operation's messages are out, a key found revoked (now, or later by
            # its subscription) closes the socket.
            rights.close_if_revoked_after(asyncio.current_task())
            try:
                ec.context = await rights.begin_operation(ec.context)
            except GatewayError as exc:
                self.refused = exc
        yield

    def on_validate(self) -> Iterator[None]:
        if self.refused is not None:
            # Set before strawberry validates: it then answers with this error, unexecuted.
            self.execution_context.pre_execution_errors = [
                GraphQLError(self.refused.message, extensions=self.refused.extensions)]
        yield
