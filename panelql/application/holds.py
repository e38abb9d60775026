"""Who suspended a service by hand: the ``manual`` hold that billing automation respects.

An admin (any key, not a policy) suspending a server or account puts a ``manual`` hold on it,
so a policy's unsuspend after payment leaves it suspended; unsuspending by hand lifts every
hold, policies' included (the admin decided). See application/automation/steps.py.
"""

from __future__ import annotations

from panelql.application.context import Context
from panelql.db.automation import AutomationStore
from panelql.domain.automation import ACTOR_PREFIX, MANUAL_HOLD, ServiceRef
from panelql.domain.records import Ref


def _by_hand(ctx: Context) -> bool:
    return not ctx.viewer.name.startswith(ACTOR_PREFIX)


def _service(ref: Ref, kind: str) -> ServiceRef:
    return ServiceRef(ref.connection, kind, ref.type.value, ref.id)


async def suspended(ctx: Context, ref: Ref, kind: str, reason: str | None) -> None:
    if _by_hand(ctx):
        await AutomationStore(ctx.gateway.sessions).hold(
            _service(ref, kind), MANUAL_HOLD, None, reason)


async def unsuspended(ctx: Context, ref: Ref, kind: str) -> None:
    if _by_hand(ctx):
        await AutomationStore(ctx.gateway.sessions).lift(_service(ref, kind))
