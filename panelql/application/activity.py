"""What the gateway did, as the API reads it: the operations it follows and the audit log."""

from __future__ import annotations

from panelql.application import queries
from panelql.application.context import Context
from panelql.application.errors import BadUserInput, NotFoundError
from panelql.domain.state import AuditRow, OperationRow


async def operation(ctx: Context, operation_id: str) -> OperationRow:
    """The operation, if the viewer may see its target; NOT_FOUND otherwise."""
    row = await ctx.gateway.operations.get(operation_id)
    if row is None or not await queries.operation_visible(ctx, row):
        raise NotFoundError("operation not found")
    return row


async def operation_of_result(ctx: Context, operation_id: str) -> OperationRow | None:
    """The operation a mutation just started (its payload; the caller ran the mutation)."""
    return await ctx.gateway.operations.get(operation_id)


async def audit_entries(ctx: Context, *, action: str | None, target: str | None,
                        actor: str | None, outcome: str | None, first: int,
                        before: str | None) -> list[AuditRow]:
    """Newest first, at most 1000, before the entry ``before`` names."""
    return await ctx.gateway.audit.search(
        action=action, target=target, actor=actor, outcome=outcome,
        limit=max(1, min(first, 1000)), before_id=_audit_cursor(before))


def _audit_cursor(before: str | None) -> int | None:
    # An entry id is a small positive integer; anything else (found by fuzzing) used to reach
    # int() or the database and come back as INTERNAL.
    if not before:
        return None
    if not (before.isascii() and before.isdigit() and len(before) <= 18):
        raise BadUserInput("before must be the id of an audit entry", field="before")
    return int(before)
