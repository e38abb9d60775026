"""How a mutation field is declared: its action name is the field's own GraphQL name.

Every mutation runs through ``application.execution.execute`` (idempotency key, audit entry,
stored result). The action name that keys the idempotency record and the audit log is the name
the client called, read from ``info.field_name`` — never typed by hand, so a field and its audit
entries cannot drift apart. A new mutation therefore looks like::

    @strawberry.mutation
    async def suspend_server(self, info: Info, id: strawberry.ID, reason: str | None = None,
                             idempotency_key: Key = None) -> ServerPayload:
        result = await run_action(info, id, idempotency_key, values(id=id, reason=reason),
                                  lambda: server_actions.suspend(info.context, id, reason))
        return ServerPayload(result=result)

``target`` is the global ID acted on (None when the action creates it), ``values`` the input as
stored for the idempotency fingerprint and the audit entry, ``run`` the use case itself.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import strawberry

from panelql.application.errors import BadUserInput
from panelql.application.execution import ActionResult, execute
from panelql.schema.types.common import Info

Key = Annotated[str | None, strawberry.argument(
    description="Retries with the same key and input return the first result.")]


def values(**given: Any) -> dict[str, Any]:
    """Input as stored for idempotency and audit: plain JSON-able values."""
    def plain(v: Any) -> Any:
        if isinstance(v, enum.Enum):
            return v.value
        if hasattr(v, "__dict__") and not isinstance(v, type):
            return {k: plain(x) for k, x in vars(v).items() if not k.startswith("_")}
        if isinstance(v, list):
            return [plain(x) for x in v]
        return v
    return {k: plain(v) for k, v in given.items()}


def json_object(raw: object, field: str) -> dict[str, object]:
    """A ``JSON`` argument that must be an object (panel-specific ``options``): a string or a
    list is BAD_USER_INPUT, not a crash or a silently reshaped dict."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BadUserInput(f"{field} must be a JSON object", field=field)
    return {str(k): v for k, v in raw.items()}


async def run_action(info: Info, target: str | None, key: str | None,
                     input_values: dict[str, Any],
                     run: Callable[[], Awaitable[ActionResult]], *,
                     convergent: bool = False) -> ActionResult:
    """Run the mutation field being resolved as one idempotent, audited action.
    ``convergent``: see ``execute`` (a failure releases the key; the retry finishes the job)."""
    return await execute(info.context, info.field_name, target, input_values, key, run,
                         convergent=convergent)
