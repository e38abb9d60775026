"""The order flow as one convergent action (a billing system's "provision game server"): make sure
the customer's panel user exists, create the server owned by that user, hand back the
Operation to follow and the login details.

Every step first looks for what an earlier, interrupted attempt made, so a retry with the same
idempotency key finishes the job without a second user or server:

1. the user: the customer's Account link on this connection (written right after the panel
   created the user), else the user the panel keeps under the order's external reference
   (Pterodactyl ``external_id``, VirtFusion ``extRelationId``), linked then; else created and
   linked;
2. the server: one owned by that user carrying the service reference (``externalRef``, kept
   upstream by Catalyst, Pterodactyl, ProxmoxWP) or, without one, the requested name; else
   created (placed on the least loaded node when none is given);
3. the login link: minted where the panel offers one; elsewhere the reason it does not. A
   failure here never fails the order: the server exists and the reason is in the payload.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from panelql.application import ids, placement, server_actions, validation
from panelql.application.context import Context
from panelql.application.customers import link, valid_customer_ref
from panelql.application.errors import (
    BadUserInput,
    NotFoundError,
    NotSupported,
    StateConflict,
)
from panelql.application.execution import ActionResult
from panelql.application.login_actions import link_data, mint
from panelql.application.operations import Probe, Step
from panelql.application.probes import ServerWatch
from panelql.application.targets import adapter_for
from panelql.domain.records import (
    AccountRecord,
    AccountSpec,
    Ref,
    Resources,
    ResourceType,
    ServerRecord,
    ServerSpec,
)
from panelql.domain.state import Link
from panelql.domain.status import ServerStatus
from panelql.providers.contract import Capability, ComputeProvider, HostingProvider
from panelql.providers.errors import ProviderError

SETTLED = {ServerStatus.STOPPED, ServerStatus.RUNNING}
TRANSITIONAL = {ServerStatus.INSTALLING, ServerStatus.STARTING, ServerStatus.STOPPING}


@dataclass
class NewUser:
    username: str
    email: str
    name: str | None = None
    password: str | None = None
    external_ref: str | None = None  # default: the customerRef


@dataclass
class NewServer:
    name: str
    resources: Resources
    node: str | None = None
    region: str | None = None
    template: str | None = None
    ports: list[int] = field(default_factory=list)
    external_ref: str | None = None  # the billing system's service id
    options: dict[str, object] = field(default_factory=dict)


@dataclass
class Order:
    customer_ref: str
    connection: str
    user: NewUser
    server: NewServer


def _check(ctx: Context, order: Order) -> ComputeProvider:
    """Everything refused before the first upstream write."""
    valid_customer_ref(order.customer_ref)
    found = ctx.gateway.providers.get(order.connection)
    if found is None:
        raise NotFoundError(f"no provider connection named {order.connection!r}",
                            field="provider")
    if not isinstance(found, ComputeProvider):
        raise NotSupported(f"{found.kind} has no servers: an order needs a compute panel "
                           "(for a hosting account use createAccount)", provider=found.name,
                           field="provider")
    compute = adapter_for(ctx, order.connection, ComputeProvider, Capability.SERVER_CREATE)
    if not isinstance(compute, HostingProvider) or not compute.supports(
            Capability.ACCOUNT_CREATE):
        raise NotSupported(f"{compute.kind} cannot create panel users, so it cannot take a "
                           "whole order; use createServer with an existing owner",
                           provider=compute.name, field="provider")
    validation.username(order.user.username)
    validation.email(order.user.email)
    if order.user.password is not None:
        validation.password(order.user.password)
    validation.name(order.server.name)
    validation.ports(order.server.ports)
    server_actions.precheck(ctx, order.connection, order.server.resources)
    if order.server.node is not None and \
            ids.decode(order.server.node, ResourceType.NODE).connection != order.connection:
        raise BadUserInput("the node must belong to the provider", field="server.node")
    return compute


async def provision(ctx: Context, order: Order) -> ActionResult:
    compute = _check(ctx, order)
    assert isinstance(compute, HostingProvider)
    account, user_created, password = await _ensure_user(ctx, compute, order)
    server, op_id, server_created = await _ensure_server(ctx, compute, account, order.server)
    data: dict[str, object] = {
        "account": ids.encode(Ref(compute.name, ResourceType.ACCOUNT, account.id)),
        "accountCreated": user_created, "serverCreated": server_created}
    secret: dict[str, object] = {}
    if password is not None:
        secret["initialPassword"] = password
    data["login"], url = await _login(compute, account, server)
    if url is not None:
        secret["loginUrl"] = url
    target = ids.encode(Ref(compute.name, ResourceType.SERVER, server)) if server else None
    return ActionResult(target=target, operation_id=op_id, data=data, secrets=secret)


# -- 1. the user ---------------------------------------------------------------------------
async def _ensure_user(ctx: Context, provider: HostingProvider, order: Order
                       ) -> tuple[AccountRecord, bool, str | None]:
    linked = [x for x in await ctx.gateway.customer_links.of_customer(order.customer_ref)
              if x.connection == provider.name and x.resource_type == ResourceType.ACCOUNT.value]
    if linked:
        found = await provider.get_accounts([x.resource_id for x in linked])
        for entry in linked:
            if entry.resource_id in found:
                return found[entry.resource_id], False, None
    ref = order.user.external_ref or order.customer_ref
    existing = await provider.find_account_by_external_ref(ref)
    if existing is not None:  # made by an attempt that died before linking it
        await _link_account(ctx, order.customer_ref, provider.name, existing.id)
        return existing, False, None
    password = order.user.password
    generated = None
    if password is None and provider.account_password_required:
        password = generated = secrets.token_urlsafe(18)
    created = await provider.create_account(AccountSpec(
        username=order.user.username, email=order.user.email, password=password,
        name=order.user.name, external_ref=ref))
    await _link_account(ctx, order.customer_ref, provider.name, created.id)
    return created, True, generated


async def _link_account(ctx: Context, customer_ref: str, connection: str,
                        account_id: str) -> None:
    await link(ctx, customer_ref, Link(customer_ref, connection, ResourceType.ACCOUNT.value,
                                       account_id))


# -- 2. the server -------------------------------------------------------------------------
def _same_order(server: ServerRecord, account: AccountRecord, wanted: NewServer) -> bool:
    if server.owner_id != account.id:
        return False
    if wanted.external_ref:
        return server.external_ref == wanted.external_ref
    return server.name == wanted.name


async def _ensure_server(ctx: Context, provider: ComputeProvider, account: AccountRecord,
                         wanted: NewServer) -> tuple[str | None, str | None, bool]:
    mine = [s for s in await provider.list_servers() if _same_order(s, account, wanted)]
    if mine:
        return mine[0].id, await _follow(ctx, provider, mine[0]), False
    node = ids.decode(wanted.node, ResourceType.NODE).id if wanted.node else \
        await _place(ctx, provider.name, wanted)
    spec = ServerSpec(name=wanted.name, node_id=node, resources=wanted.resources,
                      owner_id=account.id, template=wanted.template, ports=wanted.ports,
                      external_ref=wanted.external_ref, options=dict(wanted.options))
    result = await server_actions.create(ctx, spec, provider.name)
    server_id = ids.decode(result.target, ResourceType.SERVER).id if result.target else None
    return server_id, result.operation_id, True


async def _follow(ctx: Context, provider: ComputeProvider, server: ServerRecord
                  ) -> str | None:
    """A server an earlier attempt created may still be installing: follow it again."""
    if server.status not in TRANSITIONAL and server.status is not None:
        return None
    watch = ServerWatch(ctx.gateway.bus, provider, server.id, server.status)

    async def run() -> Probe:
        return watch.until(SETTLED)
    op = await ctx.gateway.tracker.start("provisionService", provider.name, server.id,
                                         [Step("install", run)])
    return op.id


async def _place(ctx: Context, connection: str, wanted: NewServer) -> str:
    res = wanted.resources
    found = await placement.candidates(ctx, placement.PlacementRequest(
        memory_mb=res.memory_mb, cpu_cores=res.cpu_cores, disk_mb=res.disk_mb,
        region=wanted.region, providers=[connection]))
    failed = [e for e in ctx.partial_errors if e.provider == connection]
    if not found and failed:
        raise failed[0]  # the panel could not list its nodes: say so, not "no room"
    if not found:
        where = f" in region {wanted.region}" if wanted.region else ""
        raise StateConflict(f"no online node{where} on {connection} has room for this server",
                            currentStatus="NO_CAPACITY")
    return found[0].node.id


# -- 3. the login link ---------------------------------------------------------------------
async def _login(provider: ComputeProvider, account: AccountRecord, server: str | None
                 ) -> tuple[dict[str, object], str | None]:
    """(what may be stored, the URL or None). Never raises: the order stands without it."""
    if not provider.supports(Capability.LOGIN_URL):
        return {"supported": False, "reason": provider.login_url_missing}, None
    kind = ResourceType(provider.login_url_for)
    resource = server if kind is ResourceType.SERVER else account.id
    if resource is None:
        return {"supported": True, "reason": "the server has no id yet; ask createLoginUrl "
                                             "once the operation has finished"}, None
    try:
        made = await mint(provider, Ref(provider.name, kind, resource))
    except ProviderError as exc:
        return {"supported": True, "reason": f"no login link this time: {exc.message}",
                "code": exc.code}, None
    return {"supported": True, **link_data(made)}, made.url


__all__ = ["NewServer", "NewUser", "Order", "provision"]
