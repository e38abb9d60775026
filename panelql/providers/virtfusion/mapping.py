"""VirtFusion raw values → normalised enums.

A VirtFusion server has no single status field. The list call carries lifecycle fields
(``deleteLevel``, ``buildFailed``, ``state``/``built``, ``rebuild``, ``migrateLevel``,
``suspended``); live power only comes from ``remoteState.state`` on a single GET. So the status
is decided in two steps (lifecycle first, then power):

1. :func:`lifecycle_key` names the lifecycle field that decides the status, if any;
2. otherwise the libvirt domain state in ``remoteState.state`` does.

Both kinds of key live in the one ``SERVER_STATUS`` table. Lifecycle keys are the upstream field
names (``deleteLevel``, ``buildFailed`` …), so ``rawStatus`` still says which field decided.
"""

from __future__ import annotations

from typing import Any

from panelql.domain.status import BackupStatus, NodeStatus, ServerStatus

SERVER_STATUS: dict[str, ServerStatus] = {
    # lifecycle keys (from the list record), in precedence order
    "deleteLevel": ServerStatus.DELETING,  # deleteLevel > 0: a (delayed) delete is queued
    "buildFailed": ServerStatus.ERROR,  # buildFailed == true
    "notBuilt": ServerStatus.INSTALLING,  # state != "complete" or built == null
    "rebuild": ServerStatus.INSTALLING,  # rebuild == true: an OS reinstall is running
    "migrateLevel": ServerStatus.MIGRATING,  # migrateLevel > 0
    "suspended": ServerStatus.SUSPENDED,  # suspended == true (also a libvirt-ish word)
    # remoteState.state: libvirt domain states (virDomainState names) plus the short forms
    # some hypervisor agents report ("off"); values are [unverified] upstream.
    "running": ServerStatus.RUNNING,
    "blocked": ServerStatus.RUNNING,  # running, waiting on I/O
    "idle": ServerStatus.RUNNING,
    "paused": ServerStatus.PAUSED,
    "pmsuspended": ServerStatus.PAUSED,  # guest-initiated power-management sleep
    "shutdown": ServerStatus.STOPPING,  # libvirt: "being shut down"
    "shutoff": ServerStatus.STOPPED,
    "off": ServerStatus.STOPPED,
    "stopped": ServerStatus.STOPPED,
    "crashed": ServerStatus.ERROR,
    "nostate": ServerStatus.UNKNOWN,
}

NODE_STATUS: dict[str, NodeStatus] = {
    "maintenance": NodeStatus.MAINTENANCE,
    "disabled": NodeStatus.OFFLINE,
    "enabled": NodeStatus.ONLINE,
}

# Legacy server backups (``GET /backups/server/{id}``); the values are a documented choice, see
# docs/providers/virtfusion.md.
BACKUP_STATUS: dict[str, BackupStatus] = {
    "queued": BackupStatus.PENDING,
    "pending": BackupStatus.PENDING,
    "running": BackupStatus.IN_PROGRESS,
    "in_progress": BackupStatus.IN_PROGRESS,
    "complete": BackupStatus.COMPLETED,
    "completed": BackupStatus.COMPLETED,
    "failed": BackupStatus.FAILED,
    "error": BackupStatus.FAILED,
    "restoring": BackupStatus.RESTORING,
}


def _level(raw: dict[str, Any], key: str) -> int:
    value = raw.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def lifecycle_key(raw: dict[str, Any]) -> str | None:
    """The lifecycle field that decides this server's status, or None (ask remoteState).

    Precedence: a queued delete wins over everything (the server is going away), a failed build
    over "not built", then reinstall and migration, then suspension; power state comes last.
    """
    if _level(raw, "deleteLevel") > 0:
        return "deleteLevel"
    if raw.get("buildFailed") is True:
        return "buildFailed"
    if raw.get("state") != "complete" or raw.get("built") is None:
        return "notBuilt"
    if raw.get("rebuild") is True:
        return "rebuild"
    if _level(raw, "migrateLevel") > 0:
        return "migrateLevel"
    if raw.get("suspended") is True:
        return "suspended"
    return None


def node_key(raw: dict[str, Any]) -> str:
    if raw.get("maintenance") is True:
        return "maintenance"
    if raw.get("enabled") is False:
        return "disabled"
    return "enabled"
