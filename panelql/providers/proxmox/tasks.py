"""Proxmox tasks: UPIDs and what a task's status says about its progress.

A UPID is ``UPID:{node}:{pid}:{pstart}:{starttime}:{type}:{id}:{user}:`` (nine fields when split
on ``:``, hex numbers); ``id`` is the VMID for guest tasks, so a create's handle also names the
new server. ``GET /nodes/{node}/tasks/{upid}/status`` answers ``status`` ``running|stopped``
and, once stopped, ``exitstatus``: ``OK``, ``WARNINGS: n`` (finished, with warnings) or the
error text.
"""

from __future__ import annotations

from typing import Any

from panelql.domain.records import TaskProgress
from panelql.providers.errors import InvalidRequest


def decode_upid(upid: str, provider: str) -> dict[str, str]:
    parts = upid.split(":")
    if len(parts) != 9 or parts[0] != "UPID" or not parts[1]:
        raise InvalidRequest("not a Proxmox task id (UPID)", provider=provider)
    return {"node": parts[1], "type": parts[5], "id": parts[6], "user": parts[7]}


def progress(status: dict[str, Any]) -> TaskProgress:
    if status.get("status") != "stopped":
        return TaskProgress(done=False)
    exit_status = str(status.get("exitstatus") or "")
    ok = exit_status == "OK" or exit_status.startswith("WARNINGS")
    return TaskProgress(done=True, ok=ok, progress=1.0, error=None if ok else exit_status)
