"""One-time secrets a panel hands out: a login link (single sign-on) and a new root password.

Both are returned to the caller once, in ``ActionResult.secrets``: never in the audit entry,
the idempotency record or a log line, so a replay with the same key answers without them (and
says so). Ownership is checked before anything else, so a customer-bound key asking about
another customer's resource gets NOT_FOUND, never a hint of what that panel could do.
"""

from __future__ import annotations

import re

from panelql.application import ids
from panelql.application.context import Context
from panelql.application.errors import BadUserInput, NotFoundError, NotSupported
from panelql.application.execution import ActionResult
from panelql.application.queries import get
from panelql.application.targets import adapter_for
from panelql.domain.records import LoginLink, Ref, ResourceType
from panelql.providers.contract import Capability, ComputeProvider, Provider

LOGIN_RESOURCES = (ResourceType.SERVER, ResourceType.ACCOUNT)
_SYSTEM_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")  # useradd's portable names
ONCE = ("a one-time secret is handed out once; ask again without the idempotencyKey (or with "
        "a new one) for a fresh one")


def login_provider(ctx: Context, ref: Ref) -> Provider:
    """The adapter that can mint a login link for ``ref``, or NOT_SUPPORTED saying why not."""
    provider = ctx.gateway.providers.get(ref.connection)
    if provider is None:
        raise NotFoundError("not found")
    if not provider.supports(Capability.LOGIN_URL):
        raise NotSupported(f"{provider.kind}: {provider.login_url_missing}",
                           provider=provider.name, field="resource")
    return provider


async def mint(provider: Provider, ref: Ref) -> LoginLink:
    return await provider.login_url(ref.type.value, ref.id)


async def login_url(ctx: Context, resource_id: str) -> ActionResult:
    ref = ids.decode(resource_id)
    if ref.type not in LOGIN_RESOURCES:
        raise BadUserInput("login links open a Server or an Account", field="resource")
    if ctx.viewer.customer_ref is not None:
        await get(ctx, ref)  # NOT_FOUND unless it is this customer's
    link = await mint(login_provider(ctx, ref), ref)
    return ActionResult(target=resource_id, data=link_data(link), secrets={"url": link.url})


def link_data(link: LoginLink) -> dict[str, object]:
    """What of a link may be stored and replayed: everything but the URL."""
    return {"expiresAt": link.expires_at.isoformat() if link.expires_at else None,
            "username": link.username}


async def reset_password(ctx: Context, server_id: str, user: str) -> ActionResult:
    if not _SYSTEM_USER.match(user):
        raise BadUserInput("user must be a system user name such as root", field="user")
    ref = ids.decode(server_id, ResourceType.SERVER)
    if ctx.viewer.customer_ref is not None:
        await get(ctx, ref)  # another customer's server: NOT_FOUND, before anything else
    provider = adapter_for(ctx, ref.connection, ComputeProvider, Capability.SERVER_PASSWORD)
    password = await provider.reset_server_password(ref.id, user)
    return ActionResult(target=server_id, data={"user": user},
                        secrets={"password": password})
