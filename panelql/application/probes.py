"""Fresh upstream reads that tell the operation tracker whether a step is done, publishing
every status change they observe on the way (so dashboards see STARTING, then RUNNING).

Each probe carries a small JSON spec of what it waits for, which the tracker stores with the
operation: if the replica following it dies, another rebuilds the probe from the spec
(:func:`probe_from_spec`) and follows the operation to its end."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from panelql.application.operations import Probe, ProbeResult, Resumable, Resumer
from panelql.domain.records import TaskHandle
from panelql.domain.state import OperationRow
from panelql.domain.status import BackupStatus, ServerStatus
from panelql.events.bus import EventBus
from panelql.events.model import Source, StatusEvent, Topic
from panelql.providers.contract import ComputeProvider, Provider


async def read_status(provider: ComputeProvider, server_id: str) -> ServerStatus | None:
    """The server's status now, bypassing every cache; None when it no longer exists."""
    found = (await provider.get_servers([server_id])).get(server_id)
    if found is None:
        return None
    if found.status is not None:
        return found.status
    state = (await provider.get_live_states([server_id])).get(server_id)
    return state.status if state else ServerStatus.UNKNOWN


GONE = "DELETED"  # how "the server no longer exists" is written in a probe's spec
Outcome = ServerStatus | None  # None: the server is gone


def _name(status: Outcome) -> str:
    return status.value if status is not None else GONE


def _status(name: str | None) -> Outcome:
    return None if name in (None, GONE) else ServerStatus(name)


class ServerWatch:
    """Remembers the last status seen of one server and publishes changes."""

    def __init__(self, bus: EventBus, provider: ComputeProvider, server_id: str,
                 last: ServerStatus | None) -> None:
        self.bus, self.provider, self.server_id, self.last = bus, provider, server_id, last

    async def observe(self) -> ServerStatus | None:
        status = await read_status(self.provider, self.server_id)
        if status != self.last:
            await self.bus.publish(StatusEvent(
                topic=Topic.SERVER, connection=self.provider.name, resource_id=self.server_id,
                status=status.value if status else "DELETED",
                previous=self.last.value if self.last else None, source=Source.MUTATION))
            self.last = status
        return status

    def until(self, settled: Collection[Outcome],
              failed: Collection[Outcome] = (ServerStatus.ERROR,)) -> Resumable:
        """Done once the server reaches one of ``settled``; failed at one of ``failed``."""
        async def probe() -> ProbeResult:
            status = await self.observe()
            if status in failed and status not in settled:
                return ProbeResult(done=True, ok=False,
                                   error=f"server went {status.value if status else 'missing'}")
            return ProbeResult(done=status in settled)
        return Resumable(probe, {"kind": "server", "server_id": self.server_id,
                                 "last": self.last.value if self.last else None,
                                 "settled": sorted(_name(s) for s in settled),
                                 "failed": sorted(_name(s) for s in failed)})


def task_probe(provider: ComputeProvider, handle: TaskHandle) -> Resumable:
    async def probe() -> ProbeResult:
        progress = await provider.poll_task(handle)
        return ProbeResult(done=progress.done, ok=progress.ok, progress=progress.progress,
                           error=progress.error)
    return Resumable(probe, {"kind": "task", "id": handle.id, "task_kind": handle.kind,
                             "resource_id": handle.resource_id})


def backup_probe(provider: ComputeProvider, server_id: str, backup_id: str,
                 bus: EventBus) -> Resumable:
    last: list[BackupStatus | None] = [None]

    async def probe() -> ProbeResult:
        backups = (await provider.list_backups([server_id])).get(server_id, [])
        found = next((b for b in backups if b.id == backup_id), None)
        status = found.status if found else None
        if status != last[0] and status is not None:
            await bus.publish(StatusEvent(
                topic=Topic.BACKUP, connection=provider.name,
                resource_id=f"{server_id}/{backup_id}",
                status=status.value, previous=last[0].value if last[0] else None,
                source=Source.MUTATION))
            last[0] = status
        if status is BackupStatus.FAILED:
            return ProbeResult(done=True, ok=False, error="the backup failed upstream")
        return ProbeResult(done=status is BackupStatus.COMPLETED)
    return Resumable(probe, {"kind": "backup", "server_id": server_id, "backup_id": backup_id})


def probe_from_spec(bus: EventBus, provider: ComputeProvider,
                    spec: Mapping[str, Any]) -> Resumable | None:
    """Rebuild a probe another replica described (taking over its operation); None when the
    spec is not one this version knows."""
    try:
        kind = spec["kind"]
        if kind == "task":
            return task_probe(provider, TaskHandle(id=str(spec["id"]),
                                                   kind=str(spec["task_kind"]),
                                                   resource_id=spec.get("resource_id")))
        if kind == "backup":
            return backup_probe(provider, str(spec["server_id"]), str(spec["backup_id"]), bus)
        if kind == "server":
            watch = ServerWatch(bus, provider, str(spec["server_id"]), _status(spec["last"]))
            return watch.until({_status(n) for n in spec["settled"]},
                               {_status(n) for n in spec["failed"]})
    except (KeyError, TypeError, ValueError):
        return None
    return None


def resumer(bus: EventBus, providers: Mapping[str, Provider]) -> Resumer:
    """What the tracker calls to rebuild a dead replica's probe on this one."""
    def resume(op: OperationRow, spec: dict[str, Any]) -> Probe | None:
        provider = providers.get(op.connection)
        if not isinstance(provider, ComputeProvider):  # the connection is gone, or not compute
            return None
        return probe_from_spec(bus, provider, spec)
    return resume
