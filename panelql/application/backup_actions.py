"""Backup actions: create (followed until the archive is complete), restore, delete."""

from __future__ import annotations

from panelql.application import ids, validation
from panelql.application.context import Context
from panelql.application.errors import NotFoundError, StateConflict
from panelql.application.execution import ActionResult
from panelql.application.operations import Probe, Step
from panelql.application.probes import ServerWatch, backup_probe, read_status, task_probe
from panelql.application.queries import backup_ref_id, get
from panelql.application.states import conflict
from panelql.application.targets import adapter_for, target
from panelql.domain.records import BackupRecord, Ref, ResourceType, TaskHandle
from panelql.domain.status import ServerStatus
from panelql.providers.contract import Capability, ComputeProvider
from panelql.providers.errors import NotFound

S = ServerStatus
NO_BACKUP_WHILE = {S.INSTALLING, S.RESTORING, S.DELETING, S.SUSPENDED, S.MIGRATING}
NO_RESTORE_WHILE = {S.INSTALLING, S.RESTORING, S.DELETING, S.SUSPENDED, S.MIGRATING}


def backup_step(ctx: Context, provider: ComputeProvider, server_id: str, name: str | None) -> Step:
    async def run() -> Probe:
        created = await provider.create_backup(server_id, name)
        if isinstance(created, TaskHandle):
            return task_probe(provider, created)
        return backup_probe(provider, server_id, created.id, ctx.gateway.bus)
    return Step("backup", run)


async def create(ctx: Context, server_id: str, name: str | None) -> ActionResult:
    ref, provider = await target(ctx, server_id, ResourceType.SERVER, ComputeProvider,
                           Capability.BACKUP_CREATE)
    if name is not None:
        name = validation.name(name)
    status = await read_status(provider, ref.id)
    if status is None:
        raise NotFoundError("server not found")
    if status in NO_BACKUP_WHILE:
        raise conflict("back up", status)
    created = await provider.create_backup(ref.id, name)
    if isinstance(created, TaskHandle):
        probe = task_probe(provider, created)
        backup_id = None
    else:
        probe = backup_probe(provider, ref.id, created.id, ctx.gateway.bus)
        backup_id = ids.encode(Ref(ref.connection, ResourceType.BACKUP,
                                   backup_ref_id(ref.id, created.id)))

    async def wait() -> Probe:
        return probe
    op = await ctx.gateway.tracker.start("createBackup", ref.connection, ref.id,
                                         [Step("backup", wait)])
    return ActionResult(target=server_id, operation_id=op.id,
                        data={"backup": backup_id} if backup_id else {})


async def _backup_target(ctx: Context, backup_id: str, capability: Capability
                         ) -> tuple[Ref, str, str, ComputeProvider]:
    ref = ids.decode(backup_id, ResourceType.BACKUP)
    if ctx.viewer.customer_ref is not None:
        await get(ctx, ref)  # NOT_FOUND unless the backup's server is the customer's
    server_id, _, upstream_backup = ref.id.rpartition("/")
    if not server_id:
        raise NotFoundError("backup not found")
    provider = adapter_for(ctx, ref.connection, ComputeProvider, capability)
    return ref, server_id, upstream_backup, provider


async def _existing(provider: ComputeProvider, server_id: str, backup_id: str) -> BackupRecord:
    backups = (await provider.list_backups([server_id])).get(server_id, [])
    for backup in backups:
        if backup.id == backup_id:
            return backup
    raise NotFoundError("backup not found")


async def restore(ctx: Context, backup_id: str) -> ActionResult:
    ref, server_id, upstream_backup, provider = await _backup_target(ctx, backup_id,
                                                               Capability.BACKUP_RESTORE)
    await _existing(provider, server_id, upstream_backup)
    status = await read_status(provider, server_id)
    if status is None:
        raise NotFoundError("server not found")
    if status in NO_RESTORE_WHILE:
        raise conflict("restore", status)
    handle = await provider.restore_backup(server_id, upstream_backup)
    watch = ServerWatch(ctx.gateway.bus, provider, server_id, status)
    await watch.observe()

    async def wait() -> Probe:
        if handle is not None:
            return task_probe(provider, handle)
        return watch.until(set(S) - {S.RESTORING})
    op = await ctx.gateway.tracker.start("restoreBackup", ref.connection, server_id,
                                         [Step("restore", wait)])
    server_gid = ids.encode(Ref(ref.connection, ResourceType.SERVER, server_id))
    return ActionResult(target=server_gid, operation_id=op.id, data={"backup": backup_id})


async def delete(ctx: Context, backup_id: str) -> ActionResult:
    ref, server_id, upstream_backup, provider = await _backup_target(ctx, backup_id,
                                                               Capability.BACKUP_DELETE)
    server_gid = ids.encode(Ref(ref.connection, ResourceType.SERVER, server_id))
    try:
        backup = await _existing(provider, server_id, upstream_backup)
    except NotFoundError:  # already gone: the goal holds
        return ActionResult(target=server_gid, data={"deleted": backup_id, "changed": False})
    if backup.locked:
        raise StateConflict("the backup is locked", currentStatus="LOCKED")
    try:
        await provider.delete_backup(server_id, upstream_backup)
    except NotFound:
        return ActionResult(target=server_gid, data={"deleted": backup_id, "changed": False})
    return ActionResult(target=server_gid, data={"deleted": backup_id})
