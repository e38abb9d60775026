"""Proxmox VE adapter through the real ``proxmoxer`` library.

Batching: one ``GET /cluster/resources`` returns every VM, container, node and storage of the
cluster, so servers and nodes cost one call whatever their number. Backups cost that call plus
one ``…/storage/{s}/content?content=backup`` per backup storage (a shared storage is read once,
through one node, not once per node or per server), plus one ``…/snapshot`` per requested guest
(PVE has no cluster-wide snapshot list; ``include_snapshots=false`` turns this off).

Server ids are the bare VMID: it is unique in a cluster and survives migration, which a
``node/type/vmid`` id would not. Actions look the guest's node and type up with the same one
``/cluster/resources`` call. Every action that PVE runs as a task returns a
``TaskHandle`` whose id is the UPID; :meth:`ProxmoxProvider.poll_task` follows it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import urlsplit

import requests
from proxmoxer import ProxmoxAPI

from panelql.domain.catalogue import CatalogueEntry
from panelql.domain.records import (
    BackupRecord,
    LiveState,
    NodeRecord,
    PowerAction,
    Resources,
    ServerRecord,
    ServerSpec,
    TaskHandle,
    TaskProgress,
)
from panelql.providers import read_memo
from panelql.providers.config import ConnectionConfig
from panelql.providers.contract import Capability, ComputeProvider, Family
from panelql.providers.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    Unavailable,
    UnexpectedResponse,
)
from panelql.providers.http import ClientFactory, expect
from panelql.providers.proxmox import catalogue, mapping, suspension
from panelql.providers.proxmox.boundary import Call, ProxmoxClient
from panelql.providers.proxmox.tasks import decode_upid, progress

GUEST_TYPES = ("qemu", "lxc")
POWER_PATHS = {PowerAction.START: "start", PowerAction.STOP: "shutdown",
               PowerAction.RESTART: "reboot", PowerAction.KILL: "stop"}
QEMU_DISKS = ("scsi0", "virtio0", "sata0", "ide0")


@dataclass(frozen=True)
class Guest:
    """Where a guest lives, as ``/cluster/resources`` says right now."""

    vmid: str
    node: str
    type: str
    entry: dict[str, Any]


def build_api(config: ConnectionConfig,
              transport: requests.adapters.BaseAdapter | None = None) -> Any:
    """A token-authenticated ``ProxmoxAPI`` for the connection (no network call is made)."""
    user, _, token = config.credential("token_id").rpartition("!")
    if not user or "@" not in user or not token:
        raise InvalidRequest("token_id must look like USER@REALM!TOKENID", provider=config.name)
    url = urlsplit(config.base_url if "//" in config.base_url else f"https://{config.base_url}")
    if url.scheme != "https" or not url.hostname:
        raise InvalidRequest("Proxmox base_url must be https://host[:port]", provider=config.name)
    prefix = url.path.strip("/").removesuffix("api2/json").strip("/") or None
    verify: bool | str = config.options.get("ca_bundle") or bool(
        config.options.get("verify_ssl", True))
    api = ProxmoxAPI(url.hostname, port=url.port or 8006, path_prefix=prefix,
                     user=user, token_name=token, token_value=config.credential("token_secret"),
                     verify_ssl=verify, timeout=config.timeout_seconds)
    if transport is not None:
        # proxmoxer keeps its requests session in `_store`; tests mount a fake transport on it.
        api._store["session"].mount("https://", transport)
    return api


class ProxmoxProvider(ComputeProvider):
    kind = "proxmox"
    families = frozenset({Family.COMPUTE})
    # PVE's /access/ticket needs the user's password (or an API token, which is no browser
    # login): there is no link a customer could open.
    login_url_missing = ("Proxmox VE has no one-time login link: a browser session needs the "
                         "user's password (POST /access/ticket); API tokens cannot log in to "
                         "the web UI")
    capabilities = frozenset({
        Capability.SERVER_READ, Capability.SERVER_LIVE_STATE, Capability.NODE_READ,
        Capability.BACKUP_READ, Capability.SERVER_CREATE, Capability.SERVER_POWER,
        Capability.SERVER_KILL, Capability.SERVER_SUSPEND, Capability.SERVER_RESIZE,
        Capability.SERVER_DELETE, Capability.BACKUP_CREATE, Capability.BACKUP_RESTORE,
        Capability.BACKUP_DELETE, Capability.CATALOGUE_READ,
    })
    unsupported_reasons = {
        Capability.SERVER_REINSTALL_IMAGE: "Proxmox VE rebuilds a guest from a template only "
                                           "by destroying and recreating it (deleteServer, "
                                           "then createServer with the template)",
        Capability.SERVER_PACKAGE: "Proxmox VE has no packages; give resources",
    }

    def __init__(self, config: ConnectionConfig, client: ProxmoxClient) -> None:
        super().__init__(config)
        self.client = client
        self.options = config.options

    @classmethod
    def from_config(cls, config: ConnectionConfig, clients: ClientFactory) -> Self:
        # The shared httpx factory is not used: proxmoxer builds its own requests session
        # (https only), so timeouts and TLS settings are passed to proxmoxer instead.
        api = build_api(config)
        return cls(config, ProxmoxClient(api, config.name,
                                         max_workers=int(config.options.get("max_workers", 8)),
                                         session=api._store.get("session"),
                                         guard=clients.guard()))

    async def aclose(self) -> None:
        self.client.close()

    async def _call(self, fn: Call, what: str) -> Any:
        return await self.client.call(fn, what)

    async def check_health(self) -> None:
        version = await self._call(lambda api: api.version.get(), "version")
        expect(isinstance(version, dict) and "version" in version, self.name, "version")

    # -- cluster/resources --------------------------------------------------------------------
    async def _resources(self) -> list[dict[str, Any]]:
        # Servers, nodes and backups all read the unfiltered list: pve-manager
        # PVE/API2/Cluster.pm @14a22df3 ``resources`` makes ``type`` optional and then answers
        # guests, nodes and storages together (storages with ``content`` and ``shared``).
        # Within a query they share one call, and the backup storages are known in the same
        # round as the servers, so a page with backups takes two rounds, not three (a
        # ``type=vm`` read for servers and then a full one for backups made three).
        data = await read_memo.shared(
            (self.name, "cluster/resources"),
            lambda: self._call(lambda api: api.cluster.resources.get(), "cluster/resources"))
        expect(isinstance(data, list) and all(isinstance(e, dict) for e in data),
               self.name, "resource list")
        return list(data)

    @staticmethod
    def _guests(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # Templates cannot run; they are clone sources, not servers.
        return [e for e in entries if e.get("type") in GUEST_TYPES and "vmid" in e
                and not e.get("template")]

    async def _locate(self, server_id: str) -> Guest:
        for entry in self._guests(await self._resources()):
            if str(entry["vmid"]) == server_id:
                return Guest(server_id, str(entry.get("node")), str(entry["type"]), entry)
        raise NotFound(f"no guest with VMID {server_id}", provider=self.name)

    # -- servers and nodes --------------------------------------------------------------------
    async def list_servers(self) -> list[ServerRecord]:
        guests = self._guests(await self._resources())
        records = [mapping.server_record(self.name, e) for e in guests]
        # The reason is in the notes, which /cluster/resources does not carry: one config read
        # per guest suspended by PanelQL (suspended guests only, concurrently).
        marked = [(r, e) for r, e in zip(records, guests, strict=True)
                  if suspension.is_marked(e) and e.get("status") != "unknown"]
        notes = await asyncio.gather(*(self._note(e) for _, e in marked))
        for (record, _), note in zip(marked, notes, strict=True):
            record.suspension_reason = note.reason if note else None
        return records

    async def _note(self, entry: dict[str, Any]) -> suspension.Note | None:
        guest = Guest(str(entry["vmid"]), str(entry["node"]), str(entry["type"]), entry)
        try:
            config = await self._config(guest)
        except (NotFound, Unavailable):  # gone or node unreachable since the list: no reason
            return None
        return suspension.read_note(config.get("description"))

    async def list_nodes(self) -> list[NodeRecord]:
        entries = await self._resources()
        by_node: dict[str, list[ServerRecord]] = defaultdict(list)
        for entry in self._guests(entries):
            server = mapping.server_record(self.name, entry)
            by_node[server.node_id or ""].append(server)
        nodes = [e for e in entries if e.get("type") == "node" and e.get("node")]
        return [mapping.node_record(self.name, e, by_node[str(e["node"])], self.config.region)
                for e in nodes]

    async def get_live_states(self, ids: Sequence[str]) -> Mapping[str, LiveState]:
        """``status/current`` per guest: the live ``qmpstatus`` instead of the RRD's copy."""
        wanted = set(ids)
        guests = [e for e in self._guests(await self._resources())
                  if str(e["vmid"]) in wanted]
        states = await asyncio.gather(*(self._live(e) for e in guests))
        return {str(e["vmid"]): state for e, state in zip(guests, states, strict=True)}

    async def _live(self, entry: dict[str, Any]) -> LiveState:
        if entry.get("status") == "unknown":  # node down: nobody to ask
            return LiveState(mapping.server_status(entry), mapping.raw_status(entry))
        node, kind, vmid = entry["node"], entry["type"], entry["vmid"]
        current = await self._call(
            lambda api: api.nodes(node)(kind)(vmid).status.current.get(), "status/current")
        expect(isinstance(current, dict) and "status" in current, self.name, "guest status")
        merged = {"tags": entry.get("tags"), **current, "hastate": entry.get("hastate")}
        return LiveState(mapping.server_status(merged), mapping.raw_status(merged))

    # -- backups ------------------------------------------------------------------------------
    async def list_backups(self, server_ids: Sequence[str]) -> Mapping[str, list[BackupRecord]]:
        entries = await self._resources()
        out: dict[str, list[BackupRecord]] = {sid: [] for sid in server_ids}
        guests = [e for e in self._guests(entries) if str(e["vmid"]) in out
                  and e.get("status") != "unknown"]
        if not self.options.get("include_snapshots", True):
            guests = []
        # Archive listings and snapshot lists do not depend on each other: one round, not two.
        archives, snapshots = await asyncio.gather(
            self._archives(entries, set(server_ids)),
            asyncio.gather(*(self._snapshots(e) for e in guests)))
        for record, _node in archives:
            out[record.server_id].append(record)
        for entry, snaps in zip(guests, snapshots, strict=True):
            out[str(entry["vmid"])].extend(snaps)
        for items in out.values():
            items.sort(key=lambda b: b.created_at.timestamp() if b.created_at else 0,
                       reverse=True)
        return out

    async def _archives(self, entries: list[dict[str, Any]],
                        vmids: set[str]) -> list[tuple[BackupRecord, str]]:
        """vzdump archives of ``vmids`` with the node each was listed through."""
        sources = self._backup_storages(entries)
        vmid = next(iter(vmids)) if len(vmids) == 1 else None
        listings = await asyncio.gather(*(self._content(node, storage, vmid)
                                          for node, storage in sources))
        found: dict[str, tuple[BackupRecord, str]] = {}
        for (node, _storage), items in zip(sources, listings, strict=True):
            for item in items:
                if str(item.get("vmid")) in vmids and item["volid"] not in found:
                    found[item["volid"]] = (mapping.archive_record(self.name, item), node)
        return list(found.values())

    @staticmethod
    def _backup_storages(entries: list[dict[str, Any]]) -> list[tuple[str, str]]:
        """(node, storage) pairs to list: every local backup storage, each shared one once."""
        pairs: list[tuple[str, str]] = []
        shared_seen: set[str] = set()
        for e in entries:
            if e.get("type") != "storage" or e.get("status") != "available":
                continue
            if "backup" not in str(e.get("content", "")).split(","):
                continue
            name = str(e.get("storage"))
            if e.get("shared"):
                if name in shared_seen:
                    continue
                shared_seen.add(name)
            pairs.append((str(e.get("node")), name))
        return pairs

    async def catalogue(self) -> list[CatalogueEntry]:
        return await catalogue.read(await self._resources(),
                                    lambda node, storage, kind: self._content(node, storage, None,
                                                                              kind))

    async def _content(self, node: str, storage: str, vmid: str | None,
                       content: str = "backup") -> list[dict[str, Any]]:
        items = await self._call(
            lambda api: api.nodes(node).storage(storage).content.get(content=content,
                                                                     vmid=vmid),
            "storage/content")
        expect(isinstance(items, list), self.name, "storage content")
        return [i for i in items if isinstance(i, dict) and "volid" in i]

    async def _snapshots(self, entry: dict[str, Any]) -> list[BackupRecord]:
        node, kind, vmid = entry["node"], entry["type"], entry["vmid"]
        items = await self._call(lambda api: api.nodes(node)(kind)(vmid).snapshot.get(),
                                 "snapshot list")
        expect(isinstance(items, list), self.name, "snapshot list")
        return [mapping.snapshot_record(self.name, str(vmid), i) for i in items
                if isinstance(i, dict) and i.get("name") not in (None, "current")]

    # -- tasks --------------------------------------------------------------------------------
    async def poll_task(self, handle: TaskHandle) -> TaskProgress:
        node = decode_upid(handle.id, self.name)["node"]
        status = await self._call(lambda api: api.nodes(node).tasks(handle.id).status.get(),
                                  "task status")
        expect(isinstance(status, dict) and "status" in status, self.name, "task status")
        return progress(status)

    def _task(self, result: Any, what: str) -> TaskHandle:
        if isinstance(result, str) and result.startswith("UPID:"):
            return TaskHandle(id=result, kind="proxmox-upid")
        if result == "OK":  # vzdump found the guest on another node: it just migrated
            raise Conflict("the guest moved to another node; try again", retryable=True,
                           provider=self.name)
        raise UnexpectedResponse(f"{self.name} did not return a task id for {what}",
                                 provider=self.name)

    async def _guest_call(self, guest: Guest, method: str, path: str, what: str,
                          **data: Any) -> Any:
        def run(api: Any) -> Any:
            resource = api.nodes(guest.node)(guest.type)(guest.vmid)
            return getattr(resource(path) if path else resource, method)(**data)
        return await self._call(run, what)

    # -- lifecycle ----------------------------------------------------------------------------
    async def power(self, server_id: str, action: PowerAction) -> TaskHandle | None:
        guest = await self._locate(server_id)
        path = f"status/{POWER_PATHS[action]}"
        return self._task(await self._guest_call(guest, "post", path, path), path)

    async def suspend_server(self, server_id: str, reason: str | None, *,
                             stop: bool = True) -> TaskHandle | None:
        """Mark the guest suspended in its config (suspension.py), then shut it down.

        The mark comes first: if the shutdown fails the guest is already refused by
        ``startServer``, and a retry of the suspension finds it marked (CONFLICT) rather than
        half done. The same for VMs and containers; `reason` and the power state to restore go
        into the guest's notes.
        """
        guest = await self._locate(server_id)
        config, current = await asyncio.gather(self._config(guest), self._current(guest))
        if suspension.is_marked(config):
            raise Conflict("the guest is already suspended", provider=self.name)
        running = current.get("status") == "running"
        changes = {"tags": suspension.tags_with_mark(config.get("tags"))}
        note = suspension.add_note(config.get("description"),
                                   "running" if running else "stopped", reason)
        if note is not None:
            changes["description"] = note
        await self._write_config(guest, config, changes)
        if not (stop and running):
            return None
        # forceStop: a guest that ignores the ACPI request (or a paused VM, which refuses a
        # plain shutdown) is stopped when the timeout ends (qemu-server/pve-container shutdown).
        return self._task(await self._guest_call(guest, "post", "status/shutdown", "shutdown",
                                                 forceStop=1), "shutdown")

    async def unsuspend_server(self, server_id: str) -> TaskHandle | None:
        guest = await self._locate(server_id)
        if guest.entry.get("lock") == "suspended" and not suspension.is_marked(guest.entry):
            # Hibernated in PVE (status/suspend todisk=1): resume starts it from the saved RAM.
            return self._task(await self._guest_call(guest, "post", "status/resume", "resume"),
                              "resume")
        config, current = await asyncio.gather(self._config(guest), self._current(guest))
        if not suspension.is_marked(config):
            raise Conflict("the guest is not suspended", provider=self.name)
        note = suspension.read_note(config.get("description"))
        changes = {"tags": suspension.tags_without_mark(config.get("tags"))}
        if note is not None:
            changes["description"] = suspension.remove_note(config.get("description"))
        await self._write_config(guest, config, changes)
        # Without our note (edited away in PVE) the guest is started: a paid-up customer
        # expects the service back.
        if (note is not None and note.previous == "stopped") or current.get("status") == "running":
            return None
        return self._task(await self._guest_call(guest, "post", "status/start", "start"),
                          "start")

    async def _config(self, guest: Guest) -> dict[str, Any]:
        config = await self._guest_call(guest, "get", "config", "config")
        expect(isinstance(config, dict), self.name, "guest config")
        return dict(config)

    async def _current(self, guest: Guest) -> dict[str, Any]:
        current = await self._guest_call(guest, "get", "status/current", "status/current")
        expect(isinstance(current, dict) and "status" in current, self.name, "guest status")
        return dict(current)

    async def _write_config(self, guest: Guest, config: dict[str, Any],
                            changes: dict[str, str]) -> None:
        """PUT config with the digest read, so a concurrent edit fails instead of being lost;
        empty values are deleted (PVE keeps no empty tags or notes)."""
        data: dict[str, Any] = {k: v for k, v in changes.items() if v}
        empty = [k for k, v in changes.items() if not v]
        if empty:
            data["delete"] = ",".join(empty)
        if config.get("digest"):
            data["digest"] = config["digest"]
        await self._guest_call(guest, "put", "config", "config", **data)

    async def create_server(self, spec: ServerSpec) -> ServerRecord | TaskHandle:
        kind = str(spec.options.get("type", "qemu"))
        if kind not in GUEST_TYPES:
            raise InvalidRequest("options.type must be qemu or lxc", provider=self.name)
        vmid = spec.options.get("vmid") or await self._call(
            lambda api: api.cluster.nextid.get(), "cluster/nextid")
        storage = spec.options.get("storage") or self.options.get("create_storage", "local-lvm")
        disk_gb = max(1, math.ceil((spec.resources.disk_mb or 8192) / 1024))
        data: dict[str, Any] = {"vmid": vmid, "memory": spec.resources.memory_mb or 1024,
                                "cores": max(1, int(spec.resources.cpu_cores or 1)),
                                "description": spec.external_ref}
        if kind == "qemu":
            data.update(name=spec.name, scsi0=f"{storage}:{disk_gb}", ostype="l26",
                        net0=spec.options.get("net0", "virtio,bridge=vmbr0"))
            if spec.template:
                data["ide2"] = f"{spec.template},media=cdrom"
        else:
            if not spec.template:
                raise InvalidRequest("a container needs a template (ostemplate volid)",
                                     provider=self.name)
            data.update(hostname=spec.name, ostemplate=spec.template,
                        rootfs=f"{storage}:{disk_gb}",
                        net0=spec.options.get("net0", "name=eth0,bridge=vmbr0,ip=dhcp"))
        node = spec.node_id
        result = await self._call(lambda api: api.nodes(node)(kind).post(**data), "create")
        return dataclasses.replace(self._task(result, "create"), resource_id=str(vmid))

    async def resize_server(self, server_id: str, resources: Resources) -> TaskHandle | None:
        guest = await self._locate(server_id)
        config: dict[str, Any] = {}
        if resources.memory_mb:
            config["memory"] = resources.memory_mb
        if resources.cpu_cores:
            config["cores"] = max(1, int(resources.cpu_cores))
        if config:  # PUT config is synchronous (returns null)
            await self._guest_call(guest, "put", "config", "config", **config)
        if not resources.disk_mb:
            return None
        disk = await self._disk_key(guest)
        result = await self._guest_call(guest, "put", "resize", "resize", disk=disk,
                                        size=f"{resources.disk_mb}M")
        return self._task(result, "resize") if result is not None else None

    async def _disk_key(self, guest: Guest) -> str:
        if self.options.get("disk"):
            return str(self.options["disk"])
        if guest.type == "lxc":
            return "rootfs"
        config = await self._guest_call(guest, "get", "config", "config")
        expect(isinstance(config, dict), self.name, "guest config")
        boot = str(config.get("boot", "")).removeprefix("order=").split(";")
        return next((d for d in (*boot, *QEMU_DISKS) if d in config), "scsi0")

    async def delete_server(self, server_id: str) -> TaskHandle | None:
        guest = await self._locate(server_id)
        result = await self._guest_call(guest, "delete", "", "destroy", purge=1,
                                        **{"destroy-unreferenced-disks": 1})
        return self._task(result, "destroy")

    async def create_backup(self, server_id: str, name: str | None) -> BackupRecord | TaskHandle:
        guest = await self._locate(server_id)
        if self.options.get("backup_kind") == "snapshot":
            snapname = _snapshot_name(name)
            return self._task(await self._guest_call(guest, "post", "snapshot", "snapshot",
                                                     snapname=snapname,
                                                     description=name or ""), "snapshot")
        data: dict[str, Any] = {"vmid": guest.vmid,
                                "mode": self.options.get("backup_mode", "snapshot"),
                                "compress": self.options.get("backup_compress", "zstd")}
        storage = await self._backup_target(guest.node)
        if storage is not None:
            # vzdump's schema: `notes-template` requires `storage` (pve-guest-common
            # src/PVE/VZDump/Common.pm @4a8f6cbf); without one the name cannot be kept.
            data.update(storage=storage, **{"notes-template": _notes_template(name)})
        result = await self._call(lambda api: api.nodes(guest.node).vzdump.post(**data),
                                  "vzdump")
        return self._task(result, "vzdump")

    async def _backup_target(self, node: str) -> str | None:
        """The ``backup_storage`` option, else one of the node's active backup storages:
        shared ones first (the archive outlives the node and restores anywhere), then by name
        (PVE lists storages in hash order). None: vzdump's own default (vzdump.conf / local)."""
        if self.options.get("backup_storage"):
            return str(self.options["backup_storage"])
        items = await self._call(lambda api: api.nodes(node).storage.get(content="backup",
                                                                         enabled=1),
                                 "storage list")
        expect(isinstance(items, list), self.name, "storage list")
        usable = [i for i in items if isinstance(i, dict) and i.get("storage")
                  and i.get("active", 1) and i.get("enabled", 1)
                  and "backup" in str(i.get("content", "")).split(",")]
        usable.sort(key=lambda i: (not i.get("shared"), str(i["storage"])))
        return str(usable[0]["storage"]) if usable else None

    async def restore_backup(self, server_id: str, backup_id: str) -> TaskHandle | None:
        guest = await self._locate(server_id)
        if ":" not in backup_id:
            snap = self._own_snapshot(guest, backup_id)
            path = f"snapshot/{snap}/rollback"
            return self._task(await self._guest_call(guest, "post", path, "rollback"),
                              "rollback")
        if guest.type == "qemu":
            data: dict[str, Any] = {"vmid": guest.vmid, "archive": backup_id, "force": 1}
        else:
            data = {"vmid": guest.vmid, "ostemplate": backup_id, "restore": 1, "force": 1}
        result = await self._call(lambda api: api.nodes(guest.node)(guest.type).post(**data),
                                  "restore")
        return self._task(result, "restore")

    async def delete_backup(self, server_id: str, backup_id: str) -> None:
        guest = await self._locate(server_id)
        if ":" not in backup_id:
            snap = self._own_snapshot(guest, backup_id)
            await self._guest_call(guest, "delete", f"snapshot/{snap}", "delete snapshot")
            return
        # Local storages exist per node: find which node lists this archive, then delete there.
        found = {r.id: node for r, node in await self._archives(await self._resources(),
                                                                 {guest.vmid})}
        if backup_id not in found:
            raise NotFound(f"no backup {backup_id} of guest {guest.vmid}", provider=self.name)
        storage = backup_id.partition(":")[0]
        node = found[backup_id]
        await self._call(lambda api: api.nodes(node).storage(storage).content(backup_id)
                         .delete(), "delete archive")

    def _own_snapshot(self, guest: Guest, backup_id: str) -> str:
        vmid, _, snap = backup_id.partition("@")
        if vmid != guest.vmid or not snap:
            raise NotFound(f"no snapshot {backup_id} of guest {guest.vmid}", provider=self.name)
        return snap


def _notes_template(name: str | None) -> str:
    """vzdump reads the template as one line in which ``\\`` and ``\\n`` are escapes and
    ``{{guestname}}``, ``{{vmid}}``, ``{{node}}``, ``{{cluster}}`` are expanded (pve-manager
    PVE/VZDump.pm @14a22df3 ``$generate_notes``): escape a given name so it comes back as
    typed; at most 1024 characters (Common.pm)."""
    if not name:
        return "{{guestname}}"
    return name.replace("\\", "\\\\").replace("\n", "\\n")[:1024]


def _snapshot_name(name: str | None) -> str:
    """PVE snapshot names are ``[A-Za-z][A-Za-z0-9_-]+``; anything else is replaced."""
    cleaned = "".join(c if c.isalnum() or c in "-_" else "-" for c in (name or ""))
    if not cleaned or not cleaned[0].isalpha():
        cleaned = "backup-" + (cleaned or time.strftime("%Y%m%d%H%M%S"))
    return cleaned[:40]
