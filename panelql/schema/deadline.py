"""The overall deadline of a query (``PANELQL_REQUEST_TIMEOUT_SECONDS``).

Upstream calls made while a query executes share one deadline (providers/resilience.py): a
panel still busy when it passes yields its per-panel error, the others their data. Mutations
are not cut short: an interrupted write could have applied, so they keep their per-call
timeouts (and their idempotency rules).
"""

from __future__ import annotations

from collections.abc import Iterator

from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from panelql.providers.resilience import request_deadline


class RequestDeadline(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        gateway = getattr(ctx.context, "gateway", None)
        seconds = gateway.settings.request_timeout_seconds if gateway is not None else None
        if ctx.operation_type is not OperationType.QUERY or not seconds:
            yield
            return
        with request_deadline(seconds):
            yield
