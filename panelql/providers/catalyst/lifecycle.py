"""Catalyst lifecycle calls, mixed into the adapter.

Start/stop/restart/kill/install answer at once and the node agent finishes later, so they
return None and the gateway follows the server's status.

Request bodies follow catalyst-backend @747660b5: ``serverCreateSchema`` in
src/lib/validation.ts (POST /api/servers), routes/servers/core.ts (PUT /api/servers/:id),
routes/servers/power.ts (suspend/unsuspend), routes/servers/invites.ts (access),
routes/backups.ts and routes/admin.ts (POST /api/admin/users).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from panelql.domain.records import (
    AccessGrant,
    AccountRecord,
    AccountSpec,
    BackupRecord,
    PowerAction,
    Resources,
    ServerRecord,
    ServerSpec,
)
from panelql.domain.status import BackupStatus, ServerStatus
from panelql.providers.catalyst.mapping import access_permissions
from panelql.providers.config import ConnectionConfig
from panelql.providers.errors import Conflict, Forbidden, InvalidRequest, ProviderError
from panelql.providers.http import Upstream, expect

log = logging.getLogger("panelql.upstream")

# serverCreateSchema / serverUpdateSchema bounds (validation.ts @747660b5).
MEMORY_MB = (512, 131072)
CPU_CORES = (1, 128)
DISK_MB = (1024, 1048576)
NETWORK_MODES = ("bridge", "macvlan", "host", "mc-lan-static", "mc-lan-dynamic")
DEFAULT_PORT = 25565
OWNER_ONLY = ("Catalyst lets only the server's owner change who can use it; the gateway's API "
              "key does not belong to the owner of this server (the panel answered: {})")


class CatalystLifecycle:
    """Lifecycle calls, mixed into the adapter below (kept apart to keep each part short)."""

    api: Upstream
    if TYPE_CHECKING:  # provided by the adapter class this is mixed into
        name: str
        config: ConnectionConfig

        def _server(self, raw: dict[str, Any]) -> ServerRecord: ...

        def _account(self, raw: dict[str, Any]) -> AccountRecord: ...

    async def _post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return await self.api.json("POST", path, json=body or {})

    def _invalid(self, field: str, message: str) -> InvalidRequest:
        return InvalidRequest(message, fields={field: message}, provider=self.name)

    def check_resources(self, resources: Resources) -> None:
        """Catalyst stores whole CPU cores (``z.number().int()``); on PUT there is no schema,
        so 1.5 would be truncated to 1 and answered 200. Refuse before any call instead."""
        cpu = resources.cpu_cores
        if cpu is not None:
            if float(cpu) != int(cpu):
                raise self._invalid("resources.cpuCores",
                                    f"Catalyst allocates whole CPU cores; {cpu} is not one "
                                    "(give 1, 2, 3, …)")
            _within(self, "resources.cpuCores", int(cpu), CPU_CORES, "CPU cores")
        if resources.memory_mb is not None:
            _within(self, "resources.memoryMb", resources.memory_mb, MEMORY_MB, "MB of memory")
        if resources.disk_mb is not None:
            _within(self, "resources.diskMb", resources.disk_mb, DISK_MB, "MB of disk")

    async def _location_of(self, node_id: str) -> str:
        body = await self.api.json("GET", f"/api/nodes/{node_id}")
        expect(isinstance(body, dict) and isinstance(body.get("data"), dict), self.name,
               "node answer")
        location = body["data"].get("locationId")
        expect(isinstance(location, str) and bool(location), self.name, "node location")
        return str(location)

    async def _only_template(self) -> str:
        """No template asked for and none configured: the panel's only template, else a
        BAD_USER_INPUT naming the ones to choose from (routes/templates.ts GET /)."""
        body = await self.api.json("GET", "/api/templates")
        expect(isinstance(body, dict) and isinstance(body.get("data"), list), self.name,
               "template list")
        found = [t for t in body["data"] if isinstance(t, dict) and t.get("id")]
        if len(found) == 1:
            return str(found[0]["id"])
        names = ", ".join(f"{t['id']} ({t.get('name')})" for t in found[:10]) or "none"
        raise self._invalid("template", f"give the Catalyst template id to install: {names}")

    async def create_server(self, spec: ServerSpec) -> ServerRecord:
        self.check_resources(spec.resources)
        res = spec.resources
        if res.memory_mb is None or res.cpu_cores is None or res.disk_mb is None:
            raise self._invalid("resources", "Catalyst needs memoryMb, cpuCores and diskMb")
        options = dict(spec.options)
        template = (spec.template or self.config.options.get("default_template")
                    or await self._only_template())
        network = str(options.pop("networkMode", None)
                      or self.config.options.get("network_mode") or "bridge")
        if network not in NETWORK_MODES:
            raise self._invalid("options.networkMode",
                                f"networkMode must be one of {', '.join(NETWORK_MODES)}")
        backup_mb = options.pop("backupAllocationMb", None)
        if backup_mb is None:
            backup_mb = self.config.options.get("backup_allocation_mb", res.disk_mb)
        environment = options.pop("environment", None) or {}
        if not isinstance(environment, dict):
            raise self._invalid("options.environment", "environment must be an object")
        body: dict[str, Any] = {
            "name": spec.name, "templateId": str(template), "nodeId": spec.node_id,
            # Required by serverCreateSchema; a node belongs to exactly one location.
            "locationId": str(options.pop("locationId", None)
                              or await self._location_of(spec.node_id)),
            "allocatedMemoryMb": int(res.memory_mb), "allocatedCpuCores": int(res.cpu_cores),
            "allocatedDiskMb": int(res.disk_mb), "backupAllocationMb": int(str(backup_mb)),
            "primaryPort": spec.ports[0] if spec.ports else DEFAULT_PORT,
            "networkMode": network,
            "environment": {str(k): str(v) for k, v in environment.items()},
        }
        if spec.owner_id:
            body["ownerId"] = spec.owner_id  # else the server belongs to the key's user
        if spec.external_ref:
            # Catalyst has no external-id field; the server's description (accepted by the
            # create route, catalyst-backend/src/routes/servers/core.ts @747660b5) keeps the
            # billing system's reference, and Server.externalRef reads it back.
            body["description"] = spec.external_ref
        # What else the caller passes in options goes as the panel names it (description,
        # portBindings, primaryIp, allocationId, subdomain, databaseAllocation).
        body.update({k: v for k, v in options.items() if k not in body})
        created = await self._post("/api/servers", body)
        expect(isinstance(created, dict) and isinstance(created.get("data"), dict), self.name,
               "created server")
        server = self._server(created["data"])
        # The create route only stores the server ("stopped", nothing on the node); the
        # panel's own UI then calls /install (catalyst-frontend CreateServerModal.tsx), which
        # sets "installing" and has the agent install it. Without it the server never runs.
        try:
            await self._post(f"/api/servers/{server.id}/install")
        except ProviderError as exc:
            # The server exists; reinstallServer installs it once the node answers again.
            log.warning("catalyst install after create failed",
                        extra={"provider": self.name, "server": server.id, "code": exc.code})
            return server
        return replace(server, status=ServerStatus.INSTALLING, raw_status="installing")

    async def power(self, server_id: str, action: PowerAction) -> None:
        await self._post(f"/api/servers/{server_id}/{action.value}")

    async def suspend_server(self, server_id: str, reason: str | None, *,
                             stop: bool = True) -> None:
        try:
            await self._post(f"/api/servers/{server_id}/suspend",
                             {"reason": reason, "stopServer": stop})
        except Conflict as exc:
            if "already suspended" not in exc.message:  # a race: the goal holds
                raise

    async def unsuspend_server(self, server_id: str) -> None:
        try:
            await self._post(f"/api/servers/{server_id}/unsuspend")
        except Conflict as exc:
            if "not suspended" not in exc.message:  # a race: the goal holds
                raise

    async def reinstall_server(self, server_id: str) -> None:
        await self._post(f"/api/servers/{server_id}/install")

    async def resize_server(self, server_id: str, resources: Resources) -> None:
        self.check_resources(resources)
        body = {"allocatedMemoryMb": resources.memory_mb,
                "allocatedCpuCores": (int(resources.cpu_cores)
                                      if resources.cpu_cores is not None else None),
                "allocatedDiskMb": resources.disk_mb}
        await self.api.json("PUT", f"/api/servers/{server_id}",
                            json={k: v for k, v in body.items() if v is not None})

    async def delete_server(self, server_id: str) -> None:
        try:
            await self.api.json("DELETE", f"/api/servers/{server_id}")
        except Conflict as exc:
            # core.ts deletes only stopped/error/crashed/installing servers, and a suspended
            # one has status "suspended": terminating after non-payment is the common case,
            # so lift the suspension (status becomes "stopped") and delete.
            if "current state: suspended" not in exc.message:
                raise
            await self.unsuspend_server(server_id)
            await self.api.json("DELETE", f"/api/servers/{server_id}")

    async def create_backup(self, server_id: str, name: str | None) -> BackupRecord:
        body = await self._post(f"/api/servers/{server_id}/backups", {"name": name} if name else {})
        expect(isinstance(body, dict) and "backupId" in body, self.name, "backup answer")
        return BackupRecord(connection=self.name, id=str(body["backupId"]), server_id=server_id,
                            name=str(body.get("backupName") or name or ""),
                            status=BackupStatus.IN_PROGRESS, raw_status="in_progress")

    async def restore_backup(self, server_id: str, backup_id: str) -> None:
        try:
            await self._post(f"/api/servers/{server_id}/backups/{backup_id}/restore")
        except InvalidRequest as exc:
            # routes/backups.ts answers 400 "Server must be stopped before restoring".
            if "must be stopped" in exc.message:
                raise Conflict(exc.message, provider=self.name,
                               upstream_status=exc.upstream_status) from exc
            raise

    async def delete_backup(self, server_id: str, backup_id: str) -> None:
        await self.api.json("DELETE", f"/api/servers/{server_id}/backups/{backup_id}")

    # -- access (routes/servers/invites.ts @747660b5) -----------------------------------------
    async def list_access(self, server_id: str) -> list[AccessGrant]:
        body = await self.api.json("GET", f"/api/servers/{server_id}/permissions")
        expect(isinstance(body, dict) and isinstance(body.get("data"), list), self.name,
               "server permissions")
        grants = []
        for entry in body["data"]:
            expect(isinstance(entry, dict) and "userId" in entry, self.name, "access entry")
            user = entry.get("user") if isinstance(entry.get("user"), dict) else {}
            grants.append(AccessGrant(
                account_id=str(entry["userId"]),
                permissions=[str(p) for p in entry.get("permissions") or []],
                username=user.get("username")))
        return grants

    async def grant_access(self, server_id: str, account_id: str,
                           permissions: Sequence[str]) -> AccessGrant:
        granted, unmapped = access_permissions(list(permissions))
        if not granted:
            raise self._invalid("permissions", "none of these permissions exists on Catalyst")
        try:
            body = await self._post(f"/api/servers/{server_id}/access",
                                    {"targetUserId": account_id, "permissions": granted})
        except Forbidden as exc:
            raise _owner_only(exc) from exc
        expect(isinstance(body, dict) and isinstance(body.get("data"), dict), self.name,
               "access answer")
        stored = body["data"].get("permissions")
        return AccessGrant(account_id=account_id,
                           permissions=[str(p) for p in stored] if isinstance(stored, list)
                           else granted, unmapped=unmapped)

    async def revoke_access(self, server_id: str, account_id: str) -> bool:
        # DELETE of an entry that does not exist is a Prisma P2025, i.e. HTTP 500 "Internal
        # Server Error": look first, so "not there" is the no-op it is, not a retryable outage.
        if not any(g.account_id == account_id for g in await self.list_access(server_id)):
            return False
        try:
            await self.api.json("DELETE", f"/api/servers/{server_id}/access/{account_id}")
        except Forbidden as exc:
            raise _owner_only(exc) from exc
        return True

    async def _taken(self, spec: AccountSpec, exc: Conflict) -> Conflict:
        try:
            field = await _which_taken(self, spec)
        except ProviderError:
            field = None
        return Conflict(exc.message, field=field, current_status="TAKEN", provider=self.name,
                        upstream_status=exc.upstream_status, debug=exc.debug)

    # -- panel users (routes/admin.ts POST /users @747660b5) ----------------------------------
    async def create_account(self, spec: AccountSpec) -> AccountRecord:
        if not spec.email:
            raise self._invalid("email", "Catalyst users need an email address")
        if not spec.password:
            raise self._invalid("password", "Catalyst users need a password (8+ characters)")
        try:
            body = await self._post("/api/admin/users", {
                "email": spec.email, "username": spec.username, "password": spec.password})
        except Conflict as exc:
            raise await self._taken(spec, exc) from exc
        # 201 with the user itself, no envelope: {id, email, username, createdAt, …, roles}.
        expect(isinstance(body, dict) and "id" in body, self.name, "created user")
        return self._account(body)


async def _which_taken(owner: CatalystLifecycle, spec: AccountSpec) -> str | None:
    """routes/admin.ts answers one 409 "Email or username already in use" for both
    (findFirst OR email, username @747660b5); the user list's search tells which it was."""
    body = await owner.api.json("GET", "/api/admin/users",
                                params={"search": spec.email, "limit": 100})
    users = body.get("users") if isinstance(body, dict) else None
    emails = {str(u.get("email", "")).lower() for u in users or [] if isinstance(u, dict)}
    return "email" if (spec.email or "").lower() in emails else "username"


def _within(owner: CatalystLifecycle, field: str, value: float, bounds: tuple[int, int],
            unit: str) -> None:
    low, high = bounds
    if not low <= value <= high:
        raise owner._invalid(field, f"Catalyst accepts {low} to {high} {unit}, not {value}")


def _owner_only(exc: Forbidden) -> Forbidden:
    said = exc.panel_message or "Forbidden"
    return Forbidden(OWNER_ONLY.format(said), panel_message=exc.panel_message,
                     provider=exc.provider, debug=exc.debug, upstream_status=exc.upstream_status)
