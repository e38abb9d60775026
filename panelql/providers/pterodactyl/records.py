"""Attribute dicts (already unwrapped from their Fractal envelopes) → PanelQL records."""

from __future__ import annotations

from typing import Any

from panelql.domain.records import (
    AccountRecord,
    BackupRecord,
    LiveState,
    NodeRecord,
    Resources,
    ServerRecord,
    Usage,
)
from panelql.domain.status import (
    AccountStatus,
    BackupStatus,
    NodeStatus,
    ServerStatus,
    map_status,
)
from panelql.providers.http import expect
from panelql.providers.pterodactyl.mapping import (
    BACKUP_STATUS,
    NODE_STATUS,
    POWER_STATE,
    SERVER_STATUS,
    backup_raw_status,
    node_raw_status,
)
from panelql.providers.values import parse_time

MIB = 1024 * 1024
SOURCE = "pterodactyl"



def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def server_raw_status(attrs: dict[str, Any]) -> str | None:
    raw = attrs.get("status")
    if raw is None and attrs.get("suspended") is True:
        return "suspended"  # pre-1.0 panels only set the deprecated boolean
    return raw if isinstance(raw, str) else None


def server_resources(limits: Any) -> Resources:
    limits = limits if isinstance(limits, dict) else {}
    cpu = _int(limits.get("cpu"))
    # ``cpu`` is a percent of one core and 0 means "no limit", which is not "0 cores".
    return Resources(memory_mb=_int(limits.get("memory")), disk_mb=_int(limits.get("disk")),
                     cpu_cores=cpu / 100 if cpu else None)


def server(connection: str, attrs: dict[str, Any],
           allocations: list[dict[str, Any]] | None) -> ServerRecord:
    expect("id" in attrs and "identifier" in attrs, connection, "server object")
    raw = server_raw_status(attrs)
    # null status = installed and usable: the power state lives only in the Client API.
    status = None if raw is None else map_status(SERVER_STATUS, raw, ServerStatus.UNKNOWN,
                                                 source=SOURCE)
    return ServerRecord(
        connection=connection, id=str(attrs["id"]), name=str(attrs.get("name") or ""),
        status=status, raw_status=raw, suspended=raw == "suspended",
        node_id=_str(attrs.get("node")), owner_id=_str(attrs.get("user")),
        resources=server_resources(attrs.get("limits")),
        addresses=addresses(attrs.get("allocation"), allocations or []),
        created_at=parse_time(attrs.get("created_at")),
        external_ref=_str(attrs.get("external_id")),
    )


def addresses(primary: Any, allocations: list[dict[str, Any]]) -> list[str]:
    """``alias or ip``:port, the server's default allocation first."""
    ordered = sorted(allocations, key=lambda a: a.get("id") != primary)
    return [f"{a.get('alias') or a.get('ip')}:{a.get('port')}" for a in ordered if a.get("ip")]


def live_state(attrs: dict[str, Any]) -> LiveState:
    raw = attrs.get("current_state")
    raw = raw if isinstance(raw, str) else "stopped"  # what StatsTransformer substitutes
    status = map_status(POWER_STATE, raw, ServerStatus.UNKNOWN, source=SOURCE)
    if attrs.get("is_suspended") is True:
        status, raw = ServerStatus.SUSPENDED, "suspended"  # suspension outranks power state
    res = attrs.get("resources")
    res = res if isinstance(res, dict) else {}
    memory, disk, cpu = res.get("memory_bytes"), res.get("disk_bytes"), res.get("cpu_absolute")
    uptime = _int(res.get("uptime"))
    usage = Usage(
        memory_mb=memory / MIB if isinstance(memory, int | float) else None,
        cpu_percent=float(cpu) if isinstance(cpu, int | float) else None,
        disk_mb=disk / MIB if isinstance(disk, int | float) else None,
        uptime_seconds=uptime // 1000 if uptime is not None else None,  # Wings reports ms
        # StatsTransformer: the container's interface counters since it started.
        network_in_bytes=_num(res.get("network_rx_bytes")),
        network_out_bytes=_num(res.get("network_tx_bytes")),
    )
    return LiveState(status=status, raw_status=raw, usage=usage)


def overallocated(value: Any, percent: Any) -> int | None:
    """Capacity the panel will hand out: the node size plus its overallocation percent."""
    size = _int(value)
    pct = _int(percent)
    if size is None:
        return None
    # 0 = exactly the size; -1 = the check is disabled (no meaningful ceiling, keep the size).
    return int(size * (1 + pct / 100)) if pct and pct > 0 else size


def node(connection: str, attrs: dict[str, Any],
         location: dict[str, Any] | None) -> NodeRecord:
    expect("id" in attrs, connection, "node object")
    raw = node_raw_status(attrs)
    used = attrs.get("allocated_resources")
    used = used if isinstance(used, dict) else {}
    region = None
    if location:
        region = _str(location.get("short") or location.get("long"))
    return NodeRecord(
        connection=connection, id=str(attrs["id"]), name=str(attrs.get("name") or ""),
        status=map_status(NODE_STATUS, raw, NodeStatus.UNKNOWN, source=SOURCE),
        raw_status=raw, region=region,
        capacity=Resources(
            memory_mb=overallocated(attrs.get("memory"), attrs.get("memory_overallocate")),
            disk_mb=overallocated(attrs.get("disk"), attrs.get("disk_overallocate")),
        ),
        allocated=Resources(memory_mb=_int(used.get("memory")), disk_mb=_int(used.get("disk"))),
    )


def account(connection: str, attrs: dict[str, Any]) -> AccountRecord:
    expect("id" in attrs, connection, "user object")
    # Panel users have no suspension of their own; suspension lives on servers.
    return AccountRecord(
        connection=connection, id=str(attrs["id"]), username=str(attrs.get("username") or ""),
        email=_str(attrs.get("email")), status=AccountStatus.ACTIVE, raw_status=None,
        external_ref=_str(attrs.get("external_id")),
        created_at=parse_time(attrs.get("created_at")),
    )


def backup(connection: str, server_id: str, attrs: dict[str, Any]) -> BackupRecord:
    expect("uuid" in attrs, connection, "backup object")
    raw = backup_raw_status(attrs)
    return BackupRecord(
        connection=connection, id=str(attrs["uuid"]), server_id=server_id,
        name=str(attrs.get("name") or ""),
        status=map_status(BACKUP_STATUS, raw, BackupStatus.UNKNOWN, source=SOURCE),
        raw_status=raw, size_bytes=_int(attrs.get("bytes")),
        locked=bool(attrs.get("is_locked")),
        created_at=parse_time(attrs.get("created_at")),
        completed_at=parse_time(attrs.get("completed_at")),
    )


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None
