"""Proxmox VE payloads → records, with the one status table.

A guest's state is spread over several fields: ``status`` (``running|stopped|unknown``; on
``/cluster/resources`` a running VM's QEMU run state such as ``paused``, because pvestatd
stores ``qmpstatus || status`` in the RRD that endpoint reads), ``qmpstatus`` (only in
``status/current``), ``lock``, ``hastate`` and PanelQL's suspension tag (``tags``). They are
reduced to one key by precedence — HA error > lifecycle lock > suspension tag > power state —
and that key is looked up in ``SERVER_STATUS``.
Locks that do not change what the guest is doing (``backup``, ``snapshot``, ``mounted``…) fall
through to the power state; they stay visible in ``raw_status``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from panelql.domain.records import (
    BackupRecord,
    NodeRecord,
    Resources,
    ServerRecord,
    Usage,
    UsageLimits,
)
from panelql.domain.status import (
    BackupStatus,
    NodeStatus,
    ServerStatus,
    map_status,
)
from panelql.providers.proxmox import suspension

SOURCE = "proxmox"
MIB = 1024 * 1024

SERVER_STATUS: dict[str, ServerStatus] = {
    # power state (`status`, or a running VM's QEMU run state)
    "running": ServerStatus.RUNNING,
    "stopped": ServerStatus.STOPPED,
    "unknown": ServerStatus.UNKNOWN,  # node offline: no RRD data
    "paused": ServerStatus.PAUSED,  # status/suspend without todisk
    "suspended": ServerStatus.PAUSED,  # QEMU run state after a guest-initiated S3 sleep
    "debug": ServerStatus.PAUSED,
    "save-vm": ServerStatus.PAUSED,  # RAM being written out (hibernate, snapshot with vmstate)
    "prelaunch": ServerStatus.STARTING,
    "shutdown": ServerStatus.STOPPING,
    "inmigrate": ServerStatus.MIGRATING,
    "postmigrate": ServerStatus.MIGRATING,
    "finish-migrate": ServerStatus.MIGRATING,
    "restore-vm": ServerStatus.RESTORING,
    "io-error": ServerStatus.ERROR,
    "internal-error": ServerStatus.ERROR,
    "guest-panicked": ServerStatus.ERROR,
    "watchdog": ServerStatus.ERROR,
    # lifecycle locks (qemu-server and pve-container `lock` enums)
    "lock:create": ServerStatus.INSTALLING,  # also held by a vzdump restore
    "lock:clone": ServerStatus.INSTALLING,
    "lock:rollback": ServerStatus.RESTORING,
    "lock:migrate": ServerStatus.MIGRATING,
    "lock:suspending": ServerStatus.SUSPENDED,  # status/suspend todisk=1 in progress
    "lock:suspended": ServerStatus.SUSPENDED,  # hibernated
    "lock:destroyed": ServerStatus.DELETING,  # pve-container, while a CT is removed
    # suspended by PanelQL (suspension.py): stopped and tagged, whatever the power state says
    f"tag:{suspension.TAG}": ServerStatus.SUSPENDED,
    # HA manager gave up on the guest
    "hastate:error": ServerStatus.ERROR,
}

LIFECYCLE_LOCKS = frozenset(k[len("lock:"):] for k in SERVER_STATUS if k.startswith("lock:"))
SUSPENSION_LOCKS = frozenset({"suspended", "suspending"})

NODE_STATUS: dict[str, NodeStatus] = {
    "online": NodeStatus.ONLINE,
    "offline": NodeStatus.OFFLINE,
    "unknown": NodeStatus.UNKNOWN,
}

# Archives in storage are finished by definition (vzdump writes to a temporary name first);
# a failed verification (PBS) marks one unusable. Snapshots carry `snapstate` while PVE is
# still creating or removing them.
BACKUP_STATUS: dict[str, BackupStatus] = {
    "archive": BackupStatus.COMPLETED,
    "archive verification=ok": BackupStatus.COMPLETED,
    "archive verification=failed": BackupStatus.FAILED,
    "snapshot": BackupStatus.COMPLETED,
    "snapshot snapstate=prepare": BackupStatus.IN_PROGRESS,
    "snapshot snapstate=delete": BackupStatus.IN_PROGRESS,
}


def status_key(entry: dict[str, Any]) -> str:
    """The highest-precedence state field of a guest, as a key of ``SERVER_STATUS``."""
    if entry.get("hastate") == "error":
        return "hastate:error"
    lock = entry.get("lock")
    if lock in LIFECYCLE_LOCKS:
        return f"lock:{lock}"
    if suspension.is_marked(entry):
        return f"tag:{suspension.TAG}"
    power = entry.get("status")
    if power == "running" and entry.get("qmpstatus"):
        power = entry["qmpstatus"]
    return str(power) if power is not None else "unknown"


def raw_status(entry: dict[str, Any]) -> str:
    """Every state field the upstream gave, e.g. ``"running lock=backup"``."""
    parts = [str(entry.get("status", "unknown"))]
    if entry.get("qmpstatus") and entry.get("qmpstatus") != entry.get("status"):
        parts.append(f"qmpstatus={entry['qmpstatus']}")
    if entry.get("lock"):
        parts.append(f"lock={entry['lock']}")
    if suspension.is_marked(entry):
        parts.append(f"tag={suspension.TAG}")
    if entry.get("hastate") == "error":
        parts.append("hastate=error")
    return " ".join(parts)


def server_status(entry: dict[str, Any]) -> ServerStatus:
    return map_status(SERVER_STATUS, status_key(entry), ServerStatus.UNKNOWN, source=SOURCE)


def server_record(connection: str, entry: dict[str, Any]) -> ServerRecord:
    """A ``/cluster/resources`` guest entry (``type`` qemu or lxc)."""
    vmid = str(entry["vmid"])
    running = entry.get("status") not in ("stopped", "unknown", None)
    usage = None
    if "mem" in entry or "cpu" in entry:
        usage = Usage(memory_mb=_mib(entry.get("mem")), cpu_percent=_percent(entry.get("cpu")),
                      disk_mb=_mib(entry.get("disk")),
                      uptime_seconds=int(entry.get("uptime") or 0) if running else 0,
                      # /cluster/resources netin/netout: bytes through the guest's interfaces
                      # since it started; maxmem/maxdisk: what it was given.
                      network_in_bytes=_count(entry.get("netin")),
                      network_out_bytes=_count(entry.get("netout")),
                      limits=UsageLimits(memory_mb=_mib(entry.get("maxmem")),
                                         disk_mb=_mib(entry.get("maxdisk"))))
    label = "VM" if entry.get("type") == "qemu" else "CT"
    return ServerRecord(
        connection=connection, id=vmid, name=str(entry.get("name") or f"{label} {vmid}"),
        status=server_status(entry), raw_status=raw_status(entry),
        suspended=entry.get("lock") in SUSPENSION_LOCKS or suspension.is_marked(entry),
        node_id=_str(entry.get("node")),
        resources=Resources(memory_mb=_int_mib(entry.get("maxmem")),
                            cpu_cores=_num(entry.get("maxcpu")),
                            disk_mb=_int_mib(entry.get("maxdisk"))),
        usage=usage, external_ref=_str(entry.get("id")),
    )


def node_record(connection: str, entry: dict[str, Any], guests: list[ServerRecord],
                region: str | None) -> NodeRecord:
    raw = str(entry.get("status") or "unknown")
    return NodeRecord(
        connection=connection, id=str(entry["node"]), name=str(entry["node"]),
        status=map_status(NODE_STATUS, raw, NodeStatus.UNKNOWN, source=SOURCE),
        raw_status=raw, region=region,
        capacity=Resources(memory_mb=_int_mib(entry.get("maxmem")),
                           cpu_cores=_num(entry.get("maxcpu")),
                           disk_mb=_int_mib(entry.get("maxdisk"))),
        allocated=Resources(
            memory_mb=sum(g.resources.memory_mb or 0 for g in guests),
            cpu_cores=sum(g.resources.cpu_cores or 0 for g in guests),
            disk_mb=sum(g.resources.disk_mb or 0 for g in guests),
        ),
        server_ids=[g.id for g in guests],
    )


def archive_record(connection: str, entry: dict[str, Any]) -> BackupRecord:
    """One vzdump archive from ``/nodes/{n}/storage/{s}/content?content=backup``."""
    volid = str(entry["volid"])
    verification = entry.get("verification")
    raw = "archive"
    if isinstance(verification, dict) and verification.get("state"):
        raw = f"archive verification={verification['state']}"
    created = _time(entry.get("ctime"))
    status = map_status(BACKUP_STATUS, raw, BackupStatus.UNKNOWN, source=SOURCE)
    return BackupRecord(
        connection=connection, id=volid, server_id=str(entry.get("vmid")),
        name=str(entry.get("notes") or volid.rpartition("/")[2]),
        status=status, raw_status=raw,
        size_bytes=int(entry["size"]) if isinstance(entry.get("size"), int) else None,
        locked=bool(entry.get("protected")), created_at=created,
        completed_at=created if status is BackupStatus.COMPLETED else None,
    )


def snapshot_record(connection: str, vmid: str, entry: dict[str, Any]) -> BackupRecord:
    """One snapshot; its id ``<vmid>@<name>`` cannot collide with a volid (always has ':')."""
    raw = "snapshot"
    if entry.get("snapstate"):
        raw = f"snapshot snapstate={entry['snapstate']}"
    created = _time(entry.get("snaptime"))
    status = map_status(BACKUP_STATUS, raw, BackupStatus.UNKNOWN, source=SOURCE)
    return BackupRecord(
        connection=connection, id=f"{vmid}@{entry['name']}", server_id=vmid,
        name=str(entry["name"]), status=status, raw_status=raw, created_at=created,
        completed_at=created if status is BackupStatus.COMPLETED else None,
    )


def _time(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int | float) else None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _int_mib(value: Any) -> int | None:
    return int(value) // MIB if isinstance(value, int | float) else None


def _mib(value: Any) -> float | None:
    return round(value / MIB, 1) if isinstance(value, int | float) else None


def _percent(value: Any) -> float | None:
    # `cpu` is the share of the guest's own cores in use (0..1).
    return round(value * 100, 2) if isinstance(value, int | float) else None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _count(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None
