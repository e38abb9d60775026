"""ProxmoxWP raw values → normalised enums, plus the plan table the backend sizes sites by.

The backend is known only from the seeds; raw values here are the ones documented in
docs/providers/proxmoxwp.md (the seeds name ``running``/``stopped``; the rest are the choices
the simulator and this adapter share).
"""

from __future__ import annotations

from dataclasses import dataclass

from panelql.domain.records import Resources
from panelql.domain.status import BackupStatus, NodeStatus, ServerStatus

# The site's ``status`` field: the container's power state, or what the backend is doing to it.
SERVER_STATUS: dict[str, ServerStatus] = {
    "running": ServerStatus.RUNNING,
    "stopped": ServerStatus.STOPPED,
    "starting": ServerStatus.STARTING,
    "stopping": ServerStatus.STOPPING,
    "restarting": ServerStatus.REBOOTING,
    "installing": ServerStatus.INSTALLING,  # create-site still provisioning (3-5 min)
    "resetting": ServerStatus.RESTORING,  # rollback to the `initial` snapshot
    "restoring": ServerStatus.RESTORING,  # rollback to a BAK… snapshot
    "deleting": ServerStatus.DELETING,
    "error": ServerStatus.ERROR,  # provisioning failed
    "unknown": ServerStatus.UNKNOWN,  # Proxmox node unreachable
}

# Raw values that win over ``suspended: true`` (the status precedence: lifecycle > suspended).
LIFECYCLE_STATUSES = frozenset({"installing", "resetting", "restoring", "deleting", "error"})

NODE_STATUS: dict[str, NodeStatus] = {
    "online": NodeStatus.ONLINE,
    "offline": NodeStatus.OFFLINE,
    "unknown": NodeStatus.UNKNOWN,
}

# A BAK… snapshot's ``state``: mkbak answers at once and the snapshot is taken in the background.
BACKUP_STATUS: dict[str, BackupStatus] = {
    "creating": BackupStatus.IN_PROGRESS,
    "ready": BackupStatus.COMPLETED,
    "restoring": BackupStatus.RESTORING,
    "failed": BackupStatus.FAILED,
}


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    memory_mb: int
    disk_gb: int
    backups: int
    domains: int

    @property
    def resources(self) -> Resources:
        return Resources(memory_mb=self.memory_mb, disk_mb=self.disk_gb * 1024)


# Seed 004 "Plan-Based Features", smallest first (resize picks the first that fits).
PLANS: dict[str, Plan] = {
    "basic": Plan("basic", 2048, 20, 2, 3),
    "standard": Plan("standard", 4096, 40, 3, 5),
    "premium": Plan("premium", 8192, 80, 5, 10),
}


def plan_for(resources: Resources) -> Plan | None:
    """The smallest plan with at least the memory and disk asked for (CPU is not a plan axis)."""
    for plan in PLANS.values():
        if (resources.memory_mb or 0) <= plan.memory_mb and \
                (resources.disk_mb or 0) <= plan.disk_gb * 1024:
            return plan
    return None


def parse_quota(value: object) -> tuple[int, int] | None:
    """``"2/3"`` → (used, limit); anything else → None."""
    if not isinstance(value, str):
        return None
    used, sep, limit = value.partition("/")
    if not sep or not used.strip().isdigit() or not limit.strip().isdigit():
        return None
    return int(used), int(limit)


# Backups are snapshots named per site (BAK11122025-1 exists on many sites), so the gateway's
# backup id carries the service id too: "<service_id>:<name>".
BACKUP_ID_SEPARATOR = ":"


def backup_id(service_id: str, name: str) -> str:
    return f"{service_id}{BACKUP_ID_SEPARATOR}{name}"


def backup_name(service_id: str, backup: str) -> str:
    """The snapshot name for a gateway backup id (a bare name is accepted as well)."""
    prefix = f"{service_id}{BACKUP_ID_SEPARATOR}"
    return backup[len(prefix):] if backup.startswith(prefix) else backup
