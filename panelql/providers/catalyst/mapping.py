"""Catalyst raw values → normalised enums (ServerStateMachine states, node isOnline)."""

from __future__ import annotations

from typing import Any

from panelql.domain.status import BackupStatus, ServerStatus

SERVER_STATUS: dict[str, ServerStatus] = {
    "stopped": ServerStatus.STOPPED,
    "installing": ServerStatus.INSTALLING,
    "starting": ServerStatus.STARTING,
    "running": ServerStatus.RUNNING,
    "stopping": ServerStatus.STOPPING,
    "crashed": ServerStatus.ERROR,
    "suspended": ServerStatus.SUSPENDED,
    "error": ServerStatus.ERROR,
}


def backup_status(raw: dict[str, Any]) -> tuple[BackupStatus, str]:
    """Catalyst backups carry no status field: the archive is done once it has a checksum.

    A row appears when creation starts (``sizeMb``/``checksum`` still null) and is completed by
    the node agent, so "has a checksum" is the only completion signal the API gives.
    """
    if raw.get("checksum"):
        return BackupStatus.COMPLETED, "completed"
    return BackupStatus.IN_PROGRESS, "in_progress"


# The seeds' permission names → Catalyst's server-access names. Catalyst's names come from
# catalyst-backend/src/lib/permissions-catalog.ts @747660b5 (server.read, server.start,
# server.stop, console.read/write, file.read/write, backup.*, database.*). It has no
# "server.view" (reading is server.read), no "server.restart" (routes/servers/power.ts
# checks server.start AND server.stop for /restart) and no "file.delete" (routes/servers/
# files.ts deletes with file.write). Anything not listed passes through unchanged.
PERMISSIONS: dict[str, list[str]] = {
    "server.view": ["server.read"],
    "server.restart": ["server.start", "server.stop"],
    "file.delete": ["file.write"],
    "database.write": ["database.create", "database.rotate", "database.delete"],
}

# Names Catalyst's server access knows (the routes check these; others are stored, unused).
KNOWN_PERMISSIONS = frozenset({
    "server.read", "server.start", "server.stop", "server.install", "server.reinstall",
    "server.rebuild", "server.transfer", "server.delete", "server.schedule",
    "console.read", "console.write", "file.read", "file.write",
    "backup.read", "backup.create", "backup.restore", "backup.delete",
    "database.read", "database.create", "database.rotate", "database.delete",
    "alert.read", "alert.create", "alert.update", "alert.delete",
})


def access_permissions(requested: list[str]) -> tuple[list[str], list[str]]:
    """(Catalyst names to send, requested names with no Catalyst equivalent)."""
    granted: list[str] = []
    unmapped: list[str] = []
    for name in requested:
        mapped = PERMISSIONS.get(name, [name])
        if not all(m in KNOWN_PERMISSIONS for m in mapped):
            unmapped.append(name)
            continue
        granted.extend(m for m in mapped if m not in granted)
    return granted, unmapped


# Upstream validation fields (catalyst-backend/src/lib/validation.ts serverCreateSchema
# @747660b5) → the GraphQL input field a client should fix.
INPUT_FIELDS: dict[str, str] = {
    "name": "name",
    "templateId": "template",
    "nodeId": "node",
    "locationId": "placement.region",
    "ownerId": "owner",
    "primaryPort": "ports",
    "allocatedMemoryMb": "resources.memoryMb",
    "allocatedCpuCores": "resources.cpuCores",
    "allocatedDiskMb": "resources.diskMb",
    "environment": "options.environment",
    "networkMode": "options.networkMode",
    "backupAllocationMb": "options.backupAllocationMb",
}
