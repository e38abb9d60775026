"""State of the simulated Proxmox cluster: guests, tasks and vzdump archives, and their JSON.

Field names and shapes follow what PVE returns: ``/cluster/resources``
entries from ``PVE::API2Tools::extract_vm_stats``, ``status/current`` from qemu-server's
``vmstatus``, task status from ``PVE::API2::Tasks``, storage content from pve-storage.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

MIB = 1024**2


@dataclass
class Guest:
    vmid: int
    type: str  # "qemu" | "lxc"
    node: str
    name: str
    running: bool
    qmpstatus: str  # QEMU run state while running: "running" | "paused"
    memory_mb: int
    cores: int
    disk_bytes: int
    lock: str | None = None
    hastate: str | None = None
    tags: str = ""  # as PVE stores them: lower-case, sorted, joined with ";"
    description: str = ""
    template: bool = False
    started: float = field(default_factory=lambda: time.time() - 3600 * 5)
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return "VM" if self.type == "qemu" else "CT"

    @property
    def disk_key(self) -> str:
        return "scsi0" if self.type == "qemu" else "rootfs"

    # -- transitions (run when a task finishes) -----------------------------------------------
    def power_on(self) -> None:
        self.running, self.qmpstatus, self.started = True, "running", time.time()

    def power_off(self) -> None:
        self.running, self.qmpstatus = False, "stopped"

    def pause(self) -> None:
        self.qmpstatus = "paused"

    def unpause(self) -> None:
        self.qmpstatus = "running"

    def add_snapshot(self, name: str, description: str, when: float) -> None:
        parent = next(reversed(self.snapshots), None) if self.snapshots else None
        entry: dict[str, Any] = {"name": name, "description": description,
                                 "snaptime": int(when), "vmstate": 0}
        if parent:
            entry["parent"] = parent
        self.snapshots[name] = entry

    # -- JSON ---------------------------------------------------------------------------------
    @property
    def _rrd_status(self) -> str:
        # pvestatd stores `qmpstatus || status` in the RRD that /cluster/resources reads.
        if not self.running:
            return "stopped"
        return self.qmpstatus if self.type == "qemu" else "running"

    def _usage(self) -> dict[str, Any]:
        up = self.running
        return {
            "maxmem": self.memory_mb * MIB, "mem": (self.memory_mb * MIB) // 3 if up else 0,
            "maxcpu": self.cores, "cpu": round(0.02 + (self.vmid % 7) / 20, 4) if up else 0,
            "maxdisk": self.disk_bytes, "disk": self.disk_bytes // 4 if self.type == "lxc" else 0,
            "uptime": int(time.time() - self.started) if up else 0,
            "netin": 1024 * self.vmid if up else 0, "netout": 512 * self.vmid if up else 0,
            "diskread": 0, "diskwrite": 0,
        }

    def resource(self, node_online: bool) -> dict[str, Any]:
        """One ``/cluster/resources`` entry; without RRD data (node down) status is unknown."""
        entry: dict[str, Any] = {"id": f"{self.type}/{self.vmid}", "type": self.type,
                                 "vmid": self.vmid, "node": self.node, "name": self.name,
                                 "template": int(self.template)}
        if node_online:
            entry.update(status=self._rrd_status, **self._usage())
        else:
            entry["status"] = "unknown"
        if self.lock:
            entry["lock"] = self.lock
        if self.hastate:
            entry["hastate"] = self.hastate
        if self.tags:
            entry["tags"] = self.tags
        return entry

    def current(self) -> dict[str, Any]:
        body: dict[str, Any] = {"vmid": self.vmid, "name": self.name,
                                "status": "running" if self.running else "stopped",
                                **self._usage()}
        if self.tags:  # vmstatus of both qemu-server and pve-container copies the tags
            body["tags"] = self.tags
        if self.type == "qemu":
            body["qmpstatus"] = self.qmpstatus if self.running else "stopped"
            body["ha"] = {"managed": 1 if self.hastate else 0}
            body["cpus"] = self.cores
        else:
            body["type"] = "lxc"
        if self.lock:
            body["lock"] = self.lock
        if self.running:
            body["pid"] = 10000 + self.vmid
        return body

    def config(self) -> dict[str, Any]:
        size = f"{self.disk_bytes // 1024**3}G"
        body: dict[str, Any] = {"memory": self.memory_mb, "cores": self.cores,
                                "digest": self.digest}
        if self.type == "qemu":
            body.update(name=self.name, sockets=1, ostype="l26",
                        scsi0=f"local-lvm:vm-{self.vmid}-disk-0,size={size}",
                        net0="virtio=BC:24:11:00:00:01,bridge=vmbr0")
        else:
            body.update(hostname=self.name, ostype="debian",
                        rootfs=f"local-lvm:subvol-{self.vmid}-disk-0,size={size}")
        if self.lock:
            body["lock"] = self.lock
        if self.tags:
            body["tags"] = self.tags
        if self.description:
            body["description"] = self.description
        if self.snapshots:
            body["parent"] = next(reversed(self.snapshots))
        return body

    @property
    def digest(self) -> str:
        """SHA1 of the config as PVE computes it over the file; any change changes it."""
        text = repr((self.memory_mb, self.cores, self.name, self.tags, self.description,
                     self.lock, self.disk_bytes))
        return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()

    def snapshot_list(self) -> list[dict[str, Any]]:
        items = list(self.snapshots.values())
        current: dict[str, Any] = {"name": "current", "description": "You are here!",
                                   "running": int(self.running)}
        if items:
            current["parent"] = items[-1]["name"]
        return [*items, current]


@dataclass
class Task:
    upid: str
    node: str
    type: str
    id: str
    user: str
    pid: int
    pstart: int
    starttime: int
    status: str = "running"
    exitstatus: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"upid": self.upid, "node": self.node, "pid": self.pid,
                                "pstart": self.pstart, "starttime": self.starttime,
                                "type": self.type, "id": self.id, "user": self.user,
                                "status": self.status}
        if self.exitstatus is not None:
            body["exitstatus"] = self.exitstatus
        return body


@dataclass
class Archive:
    """A vzdump archive in a storage; ``node`` is None on shared storage."""

    volid: str
    storage: str
    vmid: int
    subtype: str
    format: str
    size: int
    ctime: int
    node: str | None
    memory_mb: int
    cores: int
    disk_bytes: int
    notes: str = ""
    protected: bool = False

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"volid": self.volid, "content": "backup", "format": self.format,
                                "size": self.size, "ctime": self.ctime, "vmid": self.vmid,
                                "subtype": self.subtype}
        if self.notes:
            body["notes"] = self.notes
        if self.protected:
            body["protected"] = 1
        return body
