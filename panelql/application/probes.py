"""Fresh upstream reads that tell the operation tracker whether a step is done, publishing
every status change they observe on the way (so dashboards see STARTING, then RUNNING)."""

from __future__ import annotations

from collections.abc import Callable

from panelql.application.operations import Probe, ProbeResult
from panelql.domain.records import TaskHandle
from panelql.domain.status import BackupStatus, ServerStatus
from panelql.events.bus import EventBus
from panelql.events.model import Source, StatusEvent, Topic
from panelql.providers.contract import ComputeProvider


async def read_status(provider: ComputeProvider, server_id: str) -> ServerStatus | None:
    """The server's status now, bypassing every cache; None when it no longer exists."""
    found = (await provider.get_servers([server_id])).get(server_id)
    if found is None:
        return None
    if found.status is not None:
        return found.status
    state = (await provider.get_live_states([server_id])).get(server_id)
    return state.status if state else ServerStatus.UNKNOWN


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

    def until(self, done: Callable[[ServerStatus | None], bool],
              failed: Callable[[ServerStatus | None], bool] = lambda s: s is ServerStatus.ERROR
              ) -> Probe:
        async def probe() -> ProbeResult:
            status = await self.observe()
            if failed(status) and not done(status):
                return ProbeResult(done=True, ok=False,
                                   error=f"server went {status.value if status else 'missing'}")
            return ProbeResult(done=done(status))
        return probe


def task_probe(provider: ComputeProvider, handle: TaskHandle) -> Probe:
    async def probe() -> ProbeResult:
        progress = await provider.poll_task(handle)
        return ProbeResult(done=progress.done, ok=progress.ok, progress=progress.progress,
                           error=progress.error)
    return probe


def backup_probe(provider: ComputeProvider, server_id: str, backup_id: str, bus: EventBus) -> Probe:
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
    return probe
