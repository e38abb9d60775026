"""Pterodactyl raw values → normalised enums.

Server status comes from two places: the Application API ``status``
column (lifecycle and suspension, ``null`` when the server is installed and usable) and, only
when that is ``null``, the Wings power state from the Client API ``/resources`` call.
"""

from __future__ import annotations

from typing import Any

from panelql.domain.status import BackupStatus, NodeStatus, ServerStatus

# Application API ``server.status`` (``Server::STATUS_*``); ``null`` is absent on purpose: it
# means "ask Wings", which is what ServerRecord.status=None tells the gateway.
SERVER_STATUS: dict[str, ServerStatus] = {
    "installing": ServerStatus.INSTALLING,
    "install_failed": ServerStatus.ERROR,
    "reinstall_failed": ServerStatus.ERROR,
    "suspended": ServerStatus.SUSPENDED,
    "restoring_backup": ServerStatus.RESTORING,
}

# Client API ``/resources`` ``current_state`` (Wings process states; the panel's
# StatsTransformer substitutes "stopped" when Wings omits the state).
POWER_STATE: dict[str, ServerStatus] = {
    "offline": ServerStatus.STOPPED,
    "stopped": ServerStatus.STOPPED,
    "starting": ServerStatus.STARTING,
    "running": ServerStatus.RUNNING,
    "stopping": ServerStatus.STOPPING,
}

# The Application API has no liveness flag for nodes, only ``maintenance_mode``; "available"
# is our name for "not in maintenance" (it does not prove Wings is reachable).
NODE_STATUS: dict[str, NodeStatus] = {
    "maintenance": NodeStatus.MAINTENANCE,
    "available": NodeStatus.ONLINE,
}

BACKUP_STATUS: dict[str, BackupStatus] = {
    "in_progress": BackupStatus.IN_PROGRESS,
    "successful": BackupStatus.COMPLETED,
    "failed": BackupStatus.FAILED,
}


def backup_raw_status(attributes: dict[str, Any]) -> str:
    """Backups carry no status field: ``completed_at`` and ``is_successful`` together are one.

    A backup row exists from the moment it is requested, with ``completed_at`` null and
    ``is_successful`` false, so "not successful" only means "failed" once it has completed.
    """
    if attributes.get("completed_at") is None:
        return "in_progress"
    return "successful" if attributes.get("is_successful") else "failed"


def node_raw_status(attributes: dict[str, Any]) -> str:
    return "maintenance" if attributes.get("maintenance_mode") else "available"

# A Client API 409 (``ServerStateConflictException``) says in words why the server cannot be
# used right now; between the list call and the live-state call that reason is the freshest
# status there is, and "being transferred" is the only place the Application API-side
# adapter learns of a migration at all.
CONFLICT_HINTS: tuple[tuple[str, str, ServerStatus], ...] = (
    ("suspended", "suspended", ServerStatus.SUSPENDED),
    ("maintenance", "node_maintenance", ServerStatus.UNKNOWN),
    ("installation", "installing", ServerStatus.INSTALLING),
    ("restoring", "restoring_backup", ServerStatus.RESTORING),
    ("transferred", "transferring", ServerStatus.MIGRATING),
)


def conflict_state(detail: str) -> tuple[ServerStatus, str]:
    lowered = detail.lower()
    for phrase, raw, status in CONFLICT_HINTS:
        if phrase in lowered:
            return status, raw
    return ServerStatus.UNKNOWN, "conflict"


# Every subuser permission pterodactyl/panel @706db62c knows (app/Models/Permission.php,
# Permission::permissions(): prefix.key). SubuserController::getDefaultPermissions keeps only
# these (array_intersect: unknown names vanish without an error) and always adds
# websocket.connect.
PANEL_PERMISSIONS = frozenset({
    "websocket.connect",
    "control.console", "control.start", "control.stop", "control.restart",
    "user.create", "user.read", "user.update", "user.delete",
    "file.create", "file.read", "file.read-content", "file.update", "file.delete",
    "file.archive", "file.sftp",
    "backup.create", "backup.read", "backup.delete", "backup.download", "backup.restore",
    "allocation.read", "allocation.create", "allocation.update", "allocation.delete",
    "startup.read", "startup.update", "startup.docker-image",
    "database.create", "database.read", "database.update", "database.delete",
    "database.view_password",
    "schedule.create", "schedule.read", "schedule.update", "schedule.delete",
    "settings.rename", "settings.reinstall",
    "activity.read",
})

# The gateway's permission names (application/account_actions.py) → Pterodactyl's. Reading the
# console is the websocket (websocket.connect), writing to it control.console; "file.read"
# alone lists directories, reading a file is file.read-content; writing is create + update.
# An empty list: Pterodactyl has no equivalent (a subuser can never delete the server).
PERMISSIONS: dict[str, list[str]] = {
    "server.view": ["websocket.connect"],
    "server.read": ["websocket.connect"],
    "server.start": ["control.start"],
    "server.stop": ["control.stop"],
    "server.restart": ["control.restart"],
    "server.console": ["control.console"],
    "server.delete": [],
    "console.read": ["websocket.connect"],
    "console.write": ["control.console"],
    "file.read": ["file.read", "file.read-content"],
    "file.write": ["file.create", "file.update"],
    "file.delete": ["file.delete"],
    "backup.read": ["backup.read"],
    "backup.view": ["backup.read"],
    "backup.create": ["backup.create", "backup.read"],
    "backup.restore": ["backup.restore", "backup.read"],
    "backup.delete": ["backup.delete", "backup.read"],
    "database.read": ["database.read"],
    "database.write": ["database.create", "database.update", "database.delete"],
}


def subuser_permissions(requested: list[str]) -> tuple[list[str], list[str]]:
    """(Pterodactyl names to send, requested names it has no equivalent for)."""
    out: list[str] = ["websocket.connect"]  # the panel adds it anyway; every subuser has it
    unmapped: list[str] = []
    for name in requested:
        mapped = PERMISSIONS.get(name, [name] if name in PANEL_PERMISSIONS else [])
        if not mapped:
            unmapped.append(name)
        out.extend(p for p in mapped if p not in out)
    return out, unmapped
