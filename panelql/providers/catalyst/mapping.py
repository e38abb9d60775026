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
