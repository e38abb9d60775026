"""Pterodactyl raw values → normalised enums.

Server status comes from two places (upstream-apis.md §0.1): the Application API ``status``
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


# The gateway's scope names (DESIGN.md, Security) → Pterodactyl subuser permissions.
# Anything else containing a dot is passed through as a native Pterodactyl permission.
PERMISSIONS: dict[str, list[str]] = {
    "server.view": ["websocket.connect"],
    "server.start": ["control.start"],
    "server.stop": ["control.stop"],
    "server.restart": ["control.restart"],
    "server.console": ["control.console"],
    "backup.create": ["backup.create", "backup.read"],
    "backup.restore": ["backup.restore", "backup.read"],
    "backup.view": ["backup.read"],
}


def subuser_permissions(requested: list[str]) -> list[str]:
    out: list[str] = []
    for name in requested:
        for perm in PERMISSIONS.get(name, [name]):
            if perm not in out:
                out.append(perm)
    # Every subuser needs the websocket to see the console at all.
    if "websocket.connect" not in out:
        out.insert(0, "websocket.connect")
    return out
