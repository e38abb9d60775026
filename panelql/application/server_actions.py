"""Server lifecycle actions: power, suspension, reinstall, resize, create, delete.

Each checks the server's state before calling the upstream where the gateway knows better
(CONFLICT with ``currentStatus``), calls the adapter once, publishes the change, and hands the
rest to an Operation that follows the server until it settles.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from panelql.application import holds, ids, validation
from panelql.application.backup_actions import backup_step
from panelql.application.context import Context
from panelql.application.errors import NotFoundError, NotSupported
from panelql.application.execution import ActionResult
from panelql.application.operations import Probe, Step
from panelql.application.probes import ServerWatch, read_status, task_probe
from panelql.application.states import conflict
from panelql.application.targets import adapter_for, target
from panelql.domain.records import (
    PowerAction,
    Ref,
    Resources,
    ResourceType,
    ServerSpec,
    TaskHandle,
)
from panelql.domain.status import ServerStatus
from panelql.providers.contract import Capability, ComputeProvider
from panelql.providers.errors import NotFound

S = ServerStatus
ANY_STABLE = {S.RUNNING, S.STOPPED, S.ERROR, S.UNKNOWN, S.PAUSED}


@dataclass(frozen=True)
class PowerRule:
    allowed: frozenset[ServerStatus]
    settled: frozenset[ServerStatus]  # the operation succeeds when the server reaches one


POWER_RULES = {
    PowerAction.START: PowerRule(frozenset({S.STOPPED, S.ERROR, S.UNKNOWN}),
                                 frozenset({S.RUNNING})),
    PowerAction.STOP: PowerRule(frozenset({S.RUNNING, S.STARTING, S.PAUSED, S.UNKNOWN}),
                                frozenset({S.STOPPED})),
    PowerAction.RESTART: PowerRule(frozenset({S.RUNNING, S.UNKNOWN}), frozenset({S.RUNNING})),
    PowerAction.KILL: PowerRule(frozenset({S.RUNNING, S.STARTING, S.STOPPING, S.PAUSED,
                                           S.REBOOTING, S.UNKNOWN}), frozenset({S.STOPPED})),
}


async def _current(provider: ComputeProvider, ref: Ref, action: str) -> ServerStatus:
    status = await read_status(provider, ref.id)
    if status is None:
        raise NotFoundError("server not found")
    return status


def _follow_step(watch: ServerWatch, handle: TaskHandle | None, provider: ComputeProvider,
                 settled: frozenset[ServerStatus] | set[ServerStatus]) -> Step:
    async def run() -> Probe:
        if handle is not None:
            return task_probe(provider, handle)
        return watch.until(settled)
    return Step("wait", run)


async def power(ctx: Context, server_id: str, action: PowerAction) -> ActionResult:
    capability = Capability.SERVER_KILL if action is PowerAction.KILL else Capability.SERVER_POWER
    ref, provider = await target(ctx, server_id, ResourceType.SERVER, ComputeProvider, capability)
    rule = POWER_RULES[action]
    status = await _current(provider, ref, action.value)
    if status not in rule.allowed:
        raise conflict(action.value, status)
    handle = await provider.power(ref.id, action)
    watch = ServerWatch(ctx.gateway.bus, provider, ref.id, status)
    await watch.observe()  # publishes the transitional state (STARTING…) at once
    op = await ctx.gateway.tracker.start(f"{action.value}Server", ref.connection, ref.id,
                                         [_follow_step(watch, handle, provider, rule.settled)])
    return ActionResult(target=server_id, operation_id=op.id)


async def suspend(ctx: Context, server_id: str, reason: str | None,
                  stop_server: bool) -> ActionResult:
    ref, provider = await target(ctx, server_id, ResourceType.SERVER, ComputeProvider,
                           Capability.SERVER_SUSPEND)
    reason = validation.reason(reason)
    status = await _current(provider, ref, "suspend")
    if status is S.SUSPENDED:  # the goal already holds: a no-op, never an error
        await holds.suspended(ctx, ref, provider.kind, reason)  # by hand: payment never lifts
        return ActionResult(target=server_id, data={"reason": reason, "changed": False})
    if status in (S.DELETING, S.INSTALLING):
        raise conflict("suspend", status)
    # Panels stop the server as part of suspending it (Catalyst gets stopServer passed on);
    # on Proxmox the shutdown after marking the guest suspended is a task, followed here.
    handle = await provider.suspend_server(ref.id, reason, stop=stop_server)
    await holds.suspended(ctx, ref, provider.kind, reason)
    watch = ServerWatch(ctx.gateway.bus, provider, ref.id, status)
    await watch.observe()
    if handle is None:
        return ActionResult(target=server_id, data={"reason": reason})
    op = await ctx.gateway.tracker.start("suspendServer", ref.connection, ref.id, [
        Step("suspend", _returning(task_probe(provider, handle)))])
    return ActionResult(target=server_id, operation_id=op.id, data={"reason": reason})


async def unsuspend(ctx: Context, server_id: str) -> ActionResult:
    ref, provider = await target(ctx, server_id, ResourceType.SERVER, ComputeProvider,
                           Capability.SERVER_SUSPEND)
    status = await _current(provider, ref, "unsuspend")
    await holds.unsuspended(ctx, ref, provider.kind)
    if status is not S.SUSPENDED:  # not suspended is the goal: a no-op, never an error
        return ActionResult(target=server_id, data={"changed": False})
    handle = await provider.unsuspend_server(ref.id)
    watch = ServerWatch(ctx.gateway.bus, provider, ref.id, status)
    await watch.observe()
    if handle is None:
        return ActionResult(target=server_id)
    op = await ctx.gateway.tracker.start("unsuspendServer", ref.connection, ref.id, [
        Step("resume", _returning(task_probe(provider, handle)))])
    return ActionResult(target=server_id, operation_id=op.id)


async def reinstall(ctx: Context, server_id: str) -> ActionResult:
    ref, provider = await target(ctx, server_id, ResourceType.SERVER, ComputeProvider,
                           Capability.SERVER_REINSTALL)
    status = await _current(provider, ref, "reinstall")
    if status in (S.SUSPENDED, S.INSTALLING, S.RESTORING, S.DELETING, S.MIGRATING):
        raise conflict("reinstall", status)
    handle = await provider.reinstall_server(ref.id)
    watch = ServerWatch(ctx.gateway.bus, provider, ref.id, status)
    await watch.observe()
    op = await ctx.gateway.tracker.start("reinstallServer", ref.connection, ref.id, [
        _follow_step(watch, handle, provider, {S.STOPPED, S.RUNNING})])
    return ActionResult(target=server_id, operation_id=op.id)


async def resize(ctx: Context, server_id: str, resources: Resources,
                 restart: bool) -> ActionResult:
    """Change package: stop if running, resize, start again (each step followed)."""
    ref, provider = await target(ctx, server_id, ResourceType.SERVER, ComputeProvider,
                           Capability.SERVER_RESIZE)
    validation.resources(resources.memory_mb, resources.cpu_cores, resources.disk_mb)
    provider.check_resources(resources)  # before any call: never a silent change upstream
    status = await _current(provider, ref, "resize")
    if status in (S.SUSPENDED, S.INSTALLING, S.RESTORING, S.DELETING, S.MIGRATING):
        raise conflict("resize", status)
    watch = ServerWatch(ctx.gateway.bus, provider, ref.id, status)
    was_running = status in (S.RUNNING, S.STARTING)
    bounce = restart and was_running and provider.supports(Capability.SERVER_POWER)
    steps: list[Step] = []
    if bounce:
        steps.append(_power_step("stop", provider, ref.id, PowerAction.STOP, watch))
    steps.append(_resize_step(provider, ref.id, resources, watch))
    if bounce:
        steps.append(_power_step("start", provider, ref.id, PowerAction.START, watch))
    op = await ctx.gateway.tracker.start("updateServerResources", ref.connection, ref.id, steps)
    return ActionResult(target=server_id, operation_id=op.id)


def _power_step(name: str, provider: ComputeProvider, server_id: str, action: PowerAction,
                watch: ServerWatch) -> Step:
    async def run() -> Probe:
        handle = await provider.power(server_id, action)
        if handle is not None:
            return task_probe(provider, handle)
        return watch.until(POWER_RULES[action].settled)
    return Step(name, run)


def _resize_step(provider: ComputeProvider, server_id: str, resources: Resources,
                 watch: ServerWatch) -> Step:
    async def run() -> Probe | None:
        handle = await provider.resize_server(server_id, resources)
        return task_probe(provider, handle) if handle is not None else None
    return Step("resize", run)


def precheck(ctx: Context, connection: str, resources: Resources) -> None:
    """Sizes refused before anything reaches the panel (placement included): the gateway's
    ranges, then the panel's own rules (Catalyst: whole CPU cores)."""
    provider = adapter_for(ctx, connection, ComputeProvider, Capability.SERVER_CREATE)
    validation.resources(resources.memory_mb, resources.cpu_cores, resources.disk_mb)
    provider.check_resources(resources)


async def create(ctx: Context, spec: ServerSpec, connection: str) -> ActionResult:
    provider = adapter_for(ctx, connection, ComputeProvider, Capability.SERVER_CREATE)
    validation.name(spec.name)
    validation.resources(spec.resources.memory_mb, spec.resources.cpu_cores,
                         spec.resources.disk_mb)
    provider.check_resources(spec.resources)
    validation.ports(spec.ports)
    created = await provider.create_server(spec)
    if isinstance(created, TaskHandle):
        op = await ctx.gateway.tracker.start(
            "createServer", connection, created.resource_id or created.id,
            [Step("install", _returning(task_probe(provider, created)))])
        target_id = (ids.encode(Ref(connection, ResourceType.SERVER, created.resource_id))
                     if created.resource_id else None)
        return ActionResult(target=target_id, operation_id=op.id, data={"task": created.id})
    global_id = ids.encode(Ref(connection, ResourceType.SERVER, created.id))
    watch = ServerWatch(ctx.gateway.bus, provider, created.id, None)
    op = await ctx.gateway.tracker.start("createServer", connection, created.id, [
        Step("install", _returning(watch.until({S.STOPPED, S.RUNNING})))])
    return ActionResult(target=global_id, operation_id=op.id)


def _returning(probe: Probe) -> Callable[[], Awaitable[Probe]]:
    async def run() -> Probe:
        return probe
    return run


async def delete(ctx: Context, server_id: str, final_backup: bool) -> ActionResult:
    """Terminate; with ``final_backup``: backup, wait, stop, wait, delete — each step audited
    in the operation, stopping at the first failure with the step named."""
    ref, provider = await target(ctx, server_id, ResourceType.SERVER, ComputeProvider,
                           Capability.SERVER_DELETE)
    status = await read_status(provider, ref.id)
    if status is None:  # already gone: the goal holds
        return ActionResult(target=server_id, data={"changed": False})
    if status in (S.DELETING,):
        raise conflict("delete", status)
    if final_backup and not provider.supports(Capability.BACKUP_CREATE):
        raise NotSupported(f"{provider.kind} cannot take the final backup", field="finalBackup")
    watch = ServerWatch(ctx.gateway.bus, provider, ref.id, status)
    steps: list[Step] = []
    if final_backup:
        steps.append(backup_step(ctx, provider, ref.id, "final backup before termination"))
    if status in (S.RUNNING, S.STARTING, S.PAUSED) and provider.supports(Capability.SERVER_POWER):
        steps.append(_power_step("stop", provider, ref.id, PowerAction.STOP, watch))

    async def remove() -> Probe:
        try:
            handle = await provider.delete_server(ref.id)
        except NotFound:  # gone meanwhile (another writer): what was asked holds
            handle = None
        if handle is not None:
            return task_probe(provider, handle)
        return watch.until({None}, failed=())
    steps.append(Step("delete", remove))
    op = await ctx.gateway.tracker.start("deleteServer", ref.connection, ref.id, steps)
    return ActionResult(target=server_id, operation_id=op.id)

