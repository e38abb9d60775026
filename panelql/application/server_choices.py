"""Changes chosen from a connection's catalogue: reinstall with another image, move to a named
package. (A signed-in link to a VirtFusion server's panel is createLoginUrl's.)

The choice is checked against the catalogue (cached briefly) before anything reaches the panel,
so a typo is BAD_USER_INPUT naming the choices, never a half-done change upstream.
"""

from __future__ import annotations

from panelql.application import catalogues
from panelql.application.context import Context
from panelql.application.errors import BadUserInput, Forbidden
from panelql.application.execution import ActionResult
from panelql.application.operations import Probe, Step
from panelql.application.probes import ServerWatch, read_status, task_probe
from panelql.application.server_actions import _power_step
from panelql.application.states import conflict
from panelql.application.targets import target
from panelql.domain.catalogue import EntryKind
from panelql.domain.records import PowerAction, ResourceType
from panelql.domain.status import ServerStatus
from panelql.providers.catalogue import REINSTALL_IMAGE, RESIZE_PACKAGE
from panelql.providers.contract import Capability, ComputeProvider, Provider

S = ServerStatus
BUSY = {S.SUSPENDED, S.INSTALLING, S.RESTORING, S.DELETING, S.MIGRATING}


async def _choice(provider: Provider, wanted: str, kind: EntryKind, usable: str,
                  field: str) -> str:
    """``wanted`` as the catalogue's id (a plan may also be named by its name)."""
    entries = [e for e in await catalogues.read(provider)
               if e.kind is kind and usable in e.usable_as]
    for entry in entries:
        if wanted in (entry.id, entry.name) or wanted.lower() == entry.name.lower():
            return entry.id
    choices = ", ".join(f"{e.id} ({e.name})" for e in entries[:20]) or "none"
    raise BadUserInput(f"{wanted!r} is not in {provider.name}'s catalogue; choose one of "
                       f"{choices}", field=field)


async def _status(provider: ComputeProvider, server_id: str, action: str) -> ServerStatus:
    status = await read_status(provider, server_id)
    if status is None or status in BUSY:
        raise conflict(action, status)
    return status


async def reinstall(ctx: Context, server_id: str, image: str) -> ActionResult:
    ref, provider = await target(ctx, server_id, ResourceType.SERVER, ComputeProvider,
                                 Capability.SERVER_REINSTALL_IMAGE)
    chosen = await _choice(provider, image.strip(), EntryKind.IMAGE, REINSTALL_IMAGE, "image")
    status = await _status(provider, ref.id, "reinstall")
    handle = await provider.reinstall_with_image(ref.id, chosen)
    watch = ServerWatch(ctx.gateway.bus, provider, ref.id, status)
    await watch.observe()

    async def follow() -> Probe:
        if handle is not None:
            return task_probe(provider, handle)
        return watch.until({S.STOPPED, S.RUNNING})
    op = await ctx.gateway.tracker.start("reinstallServer", ref.connection, ref.id,
                                         [Step("reinstall", follow)])
    return ActionResult(target=server_id, operation_id=op.id, data={"image": chosen})


async def resize(ctx: Context, server_id: str, package: str, restart: bool) -> ActionResult:
    """Like updateServerResources with resources: stop if running, change, start again."""
    ref, provider = await target(ctx, server_id, ResourceType.SERVER, ComputeProvider,
                                 Capability.SERVER_PACKAGE)
    if ctx.viewer.customer_ref is not None:  # as changeServerPlan (auth.NOT_FOR_CUSTOMERS)
        raise Forbidden("customer-bound keys cannot change a server's package: the billing "
                        "system sells upgrades")
    chosen = await _choice(provider, package.strip(), EntryKind.PLAN, RESIZE_PACKAGE,
                           "package")
    status = await _status(provider, ref.id, "resize")
    watch = ServerWatch(ctx.gateway.bus, provider, ref.id, status)
    bounce = restart and status in (S.RUNNING, S.STARTING) and \
        provider.supports(Capability.SERVER_POWER)

    async def change() -> Probe | None:
        handle = await provider.resize_to_package(ref.id, chosen)
        return task_probe(provider, handle) if handle is not None else None
    steps = [Step("resize", change)]
    if bounce:
        steps = [_power_step("stop", provider, ref.id, PowerAction.STOP, watch), *steps,
                 _power_step("start", provider, ref.id, PowerAction.START, watch)]
    op = await ctx.gateway.tracker.start("updateServerResources", ref.connection, ref.id, steps)
    return ActionResult(target=server_id, operation_id=op.id, data={"package": chosen})
