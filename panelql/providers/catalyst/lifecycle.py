"""Catalyst lifecycle calls (seed 000 flows), mixed into the adapter.

Start/stop/restart/kill/install answer at once and the node agent finishes later, so they
return None and the gateway follows the server's status.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from panelql.domain.records import (
    BackupRecord,
    PowerAction,
    Resources,
    ServerRecord,
    ServerSpec,
)
from panelql.domain.status import BackupStatus
from panelql.providers.http import Upstream, expect


class CatalystLifecycle:
    """Lifecycle calls, mixed into the adapter below (kept apart to keep each part short)."""

    api: Upstream
    if TYPE_CHECKING:  # provided by the adapter class this is mixed into
        name: str

        def _server(self, raw: dict[str, Any]) -> ServerRecord: ...

    async def _post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return await self.api.json("POST", path, json=body or {})

    async def create_server(self, spec: ServerSpec) -> ServerRecord:
        port = spec.ports[0] if spec.ports else 25565
        body = {
            "name": spec.name, "templateId": spec.template or "minecraft-paper",
            "nodeId": spec.node_id, "locationId": spec.options.get("locationId"),
            "allocatedMemoryMb": spec.resources.memory_mb,
            "allocatedCpuCores": spec.resources.cpu_cores,
            "allocatedDiskMb": spec.resources.disk_mb, "primaryPort": port,
            "environment": spec.options.get("environment", {}),
        }
        created = await self._post("/api/servers", {k: v for k, v in body.items() if v is not None})
        expect(isinstance(created, dict) and isinstance(created.get("data"), dict), self.name,
               "created server")
        return self._server(created["data"])

    async def power(self, server_id: str, action: PowerAction) -> None:
        await self._post(f"/api/servers/{server_id}/{action.value}")

    async def suspend_server(self, server_id: str, reason: str | None, *,
                             stop: bool = True) -> None:
        await self._post(f"/api/servers/{server_id}/suspend",
                         {"reason": reason, "stopServer": stop})

    async def unsuspend_server(self, server_id: str) -> None:
        await self._post(f"/api/servers/{server_id}/unsuspend")

    async def reinstall_server(self, server_id: str) -> None:
        await self._post(f"/api/servers/{server_id}/install")

    async def resize_server(self, server_id: str, resources: Resources) -> None:
        body = {"allocatedMemoryMb": resources.memory_mb,
                "allocatedCpuCores": resources.cpu_cores, "allocatedDiskMb": resources.disk_mb}
        await self.api.json("PUT", f"/api/servers/{server_id}",
                            json={k: v for k, v in body.items() if v is not None})

    async def delete_server(self, server_id: str) -> None:
        await self.api.json("DELETE", f"/api/servers/{server_id}")

    async def create_backup(self, server_id: str, name: str | None) -> BackupRecord:
        body = await self._post(f"/api/servers/{server_id}/backups", {"name": name} if name else {})
        expect(isinstance(body, dict) and "backupId" in body, self.name, "backup answer")
        return BackupRecord(connection=self.name, id=str(body["backupId"]), server_id=server_id,
                            name=str(body.get("backupName") or name or ""),
                            status=BackupStatus.IN_PROGRESS, raw_status="in_progress")

    async def restore_backup(self, server_id: str, backup_id: str) -> None:
        await self._post(f"/api/servers/{server_id}/backups/{backup_id}/restore")

    async def delete_backup(self, server_id: str, backup_id: str) -> None:
        await self.api.json("DELETE", f"/api/servers/{server_id}/backups/{backup_id}")

    async def grant_access(self, server_id: str, account_id: str,
                           permissions: Sequence[str]) -> None:
        await self._post(f"/api/servers/{server_id}/access",
                         {"userId": account_id, "permissions": list(permissions)})

    async def revoke_access(self, server_id: str, account_id: str) -> None:
        await self.api.json("DELETE", f"/api/servers/{server_id}/access/{account_id}")
