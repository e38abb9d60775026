"""Simulated Proxmox VE cluster, spoken to by the real ``proxmoxer``.

What makes it Proxmox-shaped rather than generic JSON:

- only HTTPS (see :meth:`ProxmoxSim.serve_options`), everything under ``/api2/json``, bodies
  ``{"data": …}``, POST/PUT bodies form-encoded, auth ``PVEAPIToken=USER@REALM!TOKENID=UUID``;
- errors put the message in the HTTP reason phrase (``500 VM 100 not running``) with body
  ``{"data":null}``, parameter errors are 400 with ``{"data":null,"errors":{param: msg}}``, a
  dead node answers 595 (pveproxy's "No route to host");
- every state change is a task with a UPID that finishes after ``transition_seconds`` and holds
  the guest's ``lock`` (create, backup, rollback, suspending, snapshot…) while it runs;
- ``/cluster/resources`` reports a running VM's ``qmpstatus`` as its ``status`` (``paused``),
  as pvestatd writes ``qmpstatus || status`` into the RRD that endpoint reads; guests on the
  offline node report ``unknown`` and carry no usage figures.
"""

from __future__ import annotations

import re
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from panelql_sim import proxmox_schema as schema
from panelql_sim.framework import Knobs, SimPanel
from panelql_sim.proxmox_state import Archive, Guest, Task
from panelql_sim.tls import REASON_HEADER, ReasonPhraseProtocol, TlsFiles, self_signed_certificate

API = "/api2/json"
GUEST = API + "/nodes/{node}/{kind}/{vmid:int}"
_SIZE = re.compile(r"^(\+)?(\d+(?:\.\d+)?)([KMGT])?$")
_UNITS = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, None: 1}


def ok(data: Any) -> Response:
    return JSONResponse({"data": data})


def fail(status: int, message: str, errors: dict[str, str] | None = None) -> Response:
    """Proxmox's error shape: message in the reason phrase, ``{"data":null[,"errors"]}``."""
    body: dict[str, Any] = {"data": None}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers={REASON_HEADER: message})


def generate_notes(template: str, guest: Guest, node: str) -> str:
    """pve-manager PVE/VZDump.pm @14a22df3 ``$generate_notes``: ``\\\\`` and ``\\n`` are
    escapes, four variables expand; a template it cannot read gives no notes (a warning in the
    task log)."""
    if "\n" in template or any(c not in "n\\" for c in re.findall(r"\\(.)", template)):
        return ""
    values = {"cluster": "sim-cluster", "guestname": guest.name, "node": node,
              "vmid": str(guest.vmid)}
    if any(v not in values for v in re.findall(r"\{\{([^\s{}]+)\}\}", template)):
        return ""
    text = re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), template)
    return re.sub(r"\{\{(cluster|guestname|node|vmid)\}\}", lambda m: values[m.group(1)], text)


def unique_tags(value: str) -> str:
    """``PVE::GuestHelpers::get_unique_tags`` with default tag-style: lower-case, sorted,
    de-duplicated, joined with ``;``."""
    return ";".join(sorted({t.lower() for t in schema.split_list(value)}))


def bad_params(errors: dict[str, str]) -> Response:
    return fail(400, "Parameter verification failed.", errors)


async def form(request: Request) -> dict[str, str]:
    """Form-encoded body (what proxmoxer sends via requests ``data=``)."""
    raw = (await request.body()).decode("utf-8", "replace")
    return dict(urllib.parse.parse_qsl(raw, keep_blank_values=True))


@dataclass
class Storage:
    name: str
    plugintype: str
    content: list[str]
    shared: bool


@dataclass
class Node:
    name: str
    online: bool
    maxcpu: int = 32
    maxmem: int = 128 * 1024**3
    maxdisk: int = 100 * 1024**3
    started: float = field(default_factory=lambda: time.time() - 86400 * 12)


# Templates and ISO images on every node's ``local`` storage, listed as pve-storage's
# Plugin.pm ``$get_subdir_files`` @0c56bad8 lists them: volid "<storage>:vztmpl/<file>" with
# format "t<ext>" (tzst, tgz…) or "tar", "<storage>:iso/<file>" with format "iso"; plus size and
# ctime, and the content type added by list_volumes.
TEMPLATE_FILES: list[tuple[str, str, str, int]] = [
    ("vztmpl", "debian-12-standard_12.7-1_amd64.tar.zst", "tzst", 126_000_000),
    ("vztmpl", "ubuntu-24.04-standard_24.04-2_amd64.tar.zst", "tzst", 141_000_000),
    ("iso", "debian-12.8.0-amd64-netinst.iso", "iso", 661_651_456),
]


class ProxmoxSim(SimPanel):
    name = "proxmox"

    def __init__(
        self, *, seed: int = 1, knobs: Knobs | None = None, servers: int = 24,
        token_id: str = "root@pam!panelql",
        token_secret: str = "d2a6d4a0-5c8e-4c1b-9f35-6f1f3f0c7e11",
    ) -> None:
        super().__init__(seed=seed, knobs=knobs)
        self.token_id = token_id
        self.token_secret = token_secret
        self.nodes = {n.name: n for n in (Node("pve1", True), Node("pve2", True),
                                          Node("pve3", False))}
        self.storages = {s.name: s for s in (
            Storage("local", "dir", ["backup", "iso", "vztmpl"], shared=False),
            Storage("local-lvm", "lvmthin", ["images", "rootdir"], shared=False),
            Storage("nfs-backup", "nfs", ["backup"], shared=True),
        )}
        self.guests: dict[int, Guest] = {}
        self.archives: dict[str, Archive] = {}
        self.tasks: dict[str, Task] = {}
        self._pid = 0x1000
        self._tls: TlsFiles | None = None
        self._seed(servers)

    # -- serving ------------------------------------------------------------------------------
    @property
    def tls(self) -> TlsFiles:
        """Certificate, key and CA of this simulator (generated on first use)."""
        if self._tls is None:
            self._tls = self_signed_certificate()
        return self._tls

    def serve_options(self) -> dict[str, Any]:
        """Keyword arguments for ``BackgroundServers.serve``: TLS plus custom reason phrases."""
        return {"ssl_certfile": self.tls.certfile, "ssl_keyfile": self.tls.keyfile,
                "http": ReasonPhraseProtocol}

    # -- data ---------------------------------------------------------------------------------
    def _seed(self, servers: int) -> None:
        # (type, running, qmpstatus, lock, hastate): one of each state a dashboard can show.
        patterns: list[tuple[str, bool, str, str | None, str | None]] = [
            ("qemu", True, "running", None, None), ("qemu", True, "running", None, None),
            ("qemu", False, "stopped", None, None), ("lxc", True, "running", None, None),
            ("qemu", True, "paused", None, None), ("qemu", False, "stopped", "suspended", None),
            ("lxc", False, "stopped", None, None), ("qemu", False, "stopped", "create", None),
            ("qemu", True, "running", "backup", None), ("qemu", True, "running", "migrate", None),
            ("qemu", False, "stopped", "rollback", None), ("qemu", True, "running", None, "error"),
        ]
        names = list(self.nodes)
        base = time.time() - 86400 * 20
        for i in range(servers):
            kind, running, qmp, lock, hastate = patterns[i % len(patterns)]
            guest = Guest(
                vmid=100 + i, type=kind, node=names[(i + i // len(patterns)) % len(names)],
                name=f"{'vm' if kind == 'qemu' else 'ct'}-{i + 1:04d}", running=running,
                qmpstatus=qmp, lock=lock, hastate=hastate, memory_mb=1024 * (1 + i % 4),
                cores=1 + i % 4, disk_bytes=(16 + 16 * (i % 3)) * 1024**3,
                tags=f"customer-{1 + i % 7:03d}",
            )
            self.guests[guest.vmid] = guest
            if kind == "qemu" and i % 4 == 0:
                guest.add_snapshot("initial", "state after provisioning", base)
                guest.add_snapshot("BAK01012025-1", "nightly", base + 3600)
        template = Guest(vmid=9000, type="qemu", node="pve1", name="debian-12-template",
                         running=False, qmpstatus="stopped", memory_mb=2048, cores=2,
                         disk_bytes=10 * 1024**3, template=True)
        self.guests[template.vmid] = template
        for guest in list(self.guests.values())[: max(1, servers // 3)]:
            self._add_archive(guest, "local", base + 7200, notes="weekly")
            self._add_archive(guest, "nfs-backup", base + 10800, notes="nightly",
                              protected=guest.vmid % 2 == 0)

    def _add_archive(self, guest: Guest, storage: str, ctime: float, *, notes: str = "",
                     protected: bool = False) -> Archive:
        stamp = time.strftime("%Y_%m_%d-%H_%M_%S", time.gmtime(ctime))
        ext = "vma.zst" if guest.type == "qemu" else "tar.zst"
        volid = f"{storage}:backup/vzdump-{guest.type}-{guest.vmid}-{stamp}.{ext}"
        archive = Archive(
            volid=volid, storage=storage, vmid=guest.vmid, subtype=guest.type, format=ext,
            size=guest.disk_bytes // 5, ctime=int(ctime), notes=notes, protected=protected,
            node=None if self.storages[storage].shared else guest.node,
            memory_mb=guest.memory_mb, cores=guest.cores, disk_bytes=guest.disk_bytes,
        )
        self.archives[volid] = archive
        return archive

    def _task(self, node: str, kind: str, ident: str, finish: Any = None, *,
              guest: Guest | None = None, lock: str | None = None, error: str | None = None,
              delay: float | None = None) -> str:
        """Start a task; ``finish`` runs when it ends (after the lock it held is released)."""
        self._pid += 1
        started = int(time.time())
        upid = (f"UPID:{node}:{self._pid:08X}:{self._pid * 7:08X}:{started:08X}:{kind}:"
                f"{ident}:{self.token_id}:")
        task = Task(upid=upid, node=node, type=kind, id=ident, user=self.token_id,
                    pid=self._pid, pstart=self._pid * 7, starttime=started)
        self.tasks[upid] = task
        if guest is not None and lock is not None:
            guest.lock = lock

        def done() -> None:
            if guest is not None and lock is not None and guest.lock == lock:
                guest.lock = None
            if finish is not None and error is None:
                finish()
            task.status, task.exitstatus = "stopped", error or "OK"

        self.later(done, delay)
        return upid

    # -- HTTP ---------------------------------------------------------------------------------
    def authorize(self, request: Request) -> Response | None:
        header = request.headers.get("authorization")
        if header is None:
            return fail(401, "No ticket")
        if header != f"PVEAPIToken={self.token_id}={self.token_secret}":
            return fail(401, "authentication failure")
        return None

    def rate_limited(self, retry_after: int) -> Response:
        # Proxmox has no rate limit; this is what a reverse proxy in front of it answers.
        return fail(429, "Too Many Requests")

    def server_error(self) -> Response:
        return fail(500, "Internal Server Error")

    def routes(self) -> list[BaseRoute]:
        return [
            Route(API + "/version", self.version, methods=["GET"]),
            Route(API + "/cluster/resources", self.cluster_resources, methods=["GET"]),
            Route(API + "/cluster/nextid", self.nextid, methods=["GET"]),
            Route(API + "/nodes", self.list_nodes, methods=["GET"]),
            Route(API + "/nodes/{node}/tasks/{upid}/status", self.task_status, methods=["GET"]),
            Route(API + "/nodes/{node}/vzdump", self.vzdump, methods=["POST"]),
            Route(API + "/nodes/{node}/storage", self.storage_index, methods=["GET"]),
            Route(API + "/nodes/{node}/storage/{storage}/content", self.storage_content,
                  methods=["GET"]),
            Route(API + "/nodes/{node}/storage/{storage}/content/{volume:path}",
                  self.delete_volume, methods=["DELETE"]),
            Route(API + "/nodes/{node}/{kind}", self.create_guest, methods=["POST"]),
            Route(GUEST, self.delete_guest, methods=["DELETE"]),
            Route(GUEST + "/status/current", self.status_current, methods=["GET"]),
            Route(GUEST + "/status/{action}", self.status_action, methods=["POST"]),
            Route(GUEST + "/config", self.get_config, methods=["GET"]),
            Route(GUEST + "/config", self.put_config, methods=["PUT"]),
            Route(GUEST + "/resize", self.resize, methods=["PUT"]),
            Route(GUEST + "/snapshot", self.list_snapshots, methods=["GET"]),
            Route(GUEST + "/snapshot", self.create_snapshot, methods=["POST"]),
            Route(GUEST + "/snapshot/{snap}/rollback", self.rollback, methods=["POST"]),
            Route(GUEST + "/snapshot/{snap}", self.delete_snapshot, methods=["DELETE"]),
        ]

    # -- lookups ------------------------------------------------------------------------------
    def _node(self, request: Request) -> Node | Response:
        node = self.nodes.get(request.path_params["node"])
        if node is None:
            name = request.path_params["node"]
            return fail(500, f"hostname lookup '{name}' failed - failed to get address info "
                             f"for: {name}: Name or service not known")
        if not node.online:
            return fail(595, "No route to host")
        return node

    def _guest(self, request: Request) -> Guest | Response:
        node = self._node(request)
        if isinstance(node, Response):
            return node
        kind, vmid = request.path_params["kind"], request.path_params["vmid"]
        if kind not in ("qemu", "lxc"):
            return fail(501, f"Method '{request.method} {request.url.path}' not implemented")
        guest = self.guests.get(vmid)
        if guest is None or guest.node != node.name or guest.type != kind:
            folder = "qemu-server" if kind == "qemu" else "lxc"
            return fail(500, f"Configuration file 'nodes/{node.name}/{folder}/{vmid}.conf' "
                             "does not exist")
        return guest

    def _locked(self, guest: Guest, allowed: tuple[str, ...] = ()) -> Response | None:
        if guest.lock and guest.lock not in allowed:
            return fail(500, f"{guest.label} is locked ({guest.lock})")
        return None

    # -- cluster ------------------------------------------------------------------------------
    async def version(self, request: Request) -> Response:
        return ok({"version": "8.2.4", "release": "8.2", "repoid": "faa83925c9641325"})

    async def cluster_resources(self, request: Request) -> Response:
        wanted = request.query_params.get("type")
        if wanted not in (None, "vm", "node", "storage", "sdn"):
            return bad_params({"type": f"value '{wanted}' does not have a value in the "
                                       "enumeration 'vm, storage, node, sdn'"})
        items: list[dict[str, Any]] = []
        if wanted in (None, "node"):
            items += [self._node_entry(node) for node in self.nodes.values()]
        if wanted in (None, "vm"):
            items += [g.resource(self.nodes[g.node].online) for g in self.guests.values()]
        if wanted in (None, "storage"):
            items += [self._storage_entry(node, storage) for node in self.nodes.values()
                      for storage in self.storages.values()]
        return ok(items)

    def _node_entry(self, node: Node) -> dict[str, Any]:
        entry: dict[str, Any] = {"id": f"node/{node.name}", "type": "node", "node": node.name,
                                 "status": "online" if node.online else "offline",
                                 "maxcpu": node.maxcpu, "maxmem": node.maxmem,
                                 "maxdisk": node.maxdisk, "level": ""}
        if node.online:
            used = sum(g.memory_mb for g in self.guests.values()
                       if g.node == node.name and g.running) * 1024**2
            entry.update(cpu=0.07, mem=used + 2 * 1024**3, disk=12 * 1024**3,
                         uptime=int(time.time() - node.started))
        return entry

    def _storage_entry(self, node: Node, storage: Storage) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "id": f"storage/{node.name}/{storage.name}", "storage": storage.name,
            "node": node.name, "type": "storage", "plugintype": storage.plugintype,
            "status": "available" if node.online else "unknown",
            "shared": int(storage.shared), "content": ",".join(storage.content),
        }
        if node.online:
            entry.update(maxdisk=2 * 1024**4, disk=400 * 1024**3)
        return entry

    async def nextid(self, request: Request) -> Response:
        vmid = 100
        while vmid in self.guests:
            vmid += 1
        return ok(str(vmid))

    async def list_nodes(self, request: Request) -> Response:
        return ok([{**self._node_entry(n), "ssl_fingerprint": "AB:CD:EF"}
                   for n in self.nodes.values()])

    async def task_status(self, request: Request) -> Response:
        node = self._node(request)
        if isinstance(node, Response):
            return node
        upid = request.path_params["upid"]
        if not upid.startswith("UPID:") or upid.count(":") != 8:
            return bad_params({"upid": "unable to parse worker upid"})
        task = self.tasks.get(upid)
        if task is None or task.node != node.name:
            return fail(500, "no such task")
        return ok(task.to_json())

    # -- guests -------------------------------------------------------------------------------
    async def status_current(self, request: Request) -> Response:
        guest = self._guest(request)
        return guest if isinstance(guest, Response) else ok(guest.current())

    async def status_action(self, request: Request) -> Response:
        guest = self._guest(request)
        if isinstance(guest, Response):
            return guest
        action, params = request.path_params["action"], await form(request)
        actions = {"start", "stop", "shutdown", "reboot", "suspend", "resume"}
        if guest.type == "qemu":
            actions.add("reset")
        else:
            actions -= {"suspend", "resume"}  # CT suspend is experimental; not offered here
        if action not in actions:
            return fail(501, f"Method 'POST {request.url.path}' not implemented")
        errors = schema.verify(params, schema.STATUS_ACTIONS[guest.type][action])
        if errors:
            return bad_params(errors)
        if action == "resume" and guest.lock == "suspended":
            return self._resume_hibernated(guest)
        locked = self._locked(guest)
        if locked:
            return locked
        if action == "start":
            if guest.running:
                return fail(500, f"{guest.label} {guest.vmid} already running")
            return ok(self._power_task(guest, "start", lambda: guest.power_on()))
        if not guest.running:
            return fail(500, f"{guest.label} {guest.vmid} not running")
        if action == "suspend":
            return self._suspend(guest, params.get("todisk") in ("1", "true"))
        if action == "resume":
            return ok(self._power_task(guest, "resume", guest.unpause))
        if action == "shutdown" and guest.qmpstatus == "paused" and params.get("forceStop") != "1":
            return fail(500, "VM is paused - cannot shutdown")
        finish = {"stop": guest.power_off, "shutdown": guest.power_off,
                  "reboot": guest.power_on, "reset": guest.power_on}[action]
        return ok(self._power_task(guest, action, finish))

    def _power_task(self, guest: Guest, action: str, finish: Any) -> str:
        prefix = "qm" if guest.type == "qemu" else "vz"
        return self._task(guest.node, prefix + action, str(guest.vmid), finish)

    def _suspend(self, guest: Guest, todisk: bool) -> Response:
        if not todisk:
            return ok(self._task(guest.node, "qmsuspend", str(guest.vmid), guest.pause,
                                 delay=min(self.knobs.transition_seconds, 0.05)))

        def hibernated() -> None:
            guest.power_off()
            guest.lock = "suspended"
        return ok(self._task(guest.node, "qmsuspend", str(guest.vmid), hibernated,
                             guest=guest, lock="suspending"))

    def _resume_hibernated(self, guest: Guest) -> Response:
        # Resuming a hibernated VM starts it from the saved state and drops the lock.
        def resumed() -> None:
            guest.lock = None
            guest.power_on()
        return ok(self._task(guest.node, "qmresume", str(guest.vmid), resumed))

    async def get_config(self, request: Request) -> Response:
        guest = self._guest(request)
        return guest if isinstance(guest, Response) else ok(guest.config())

    async def put_config(self, request: Request) -> Response:
        guest = self._guest(request)
        if isinstance(guest, Response):
            return guest
        params = await form(request)
        errors = schema.verify(params, schema.QEMU_CONFIG if guest.type == "qemu"
                               else schema.LXC_CONFIG)
        if errors:
            return bad_params(errors)
        deleted = schema.split_list(params.get("delete", ""))
        both = [k for k in deleted if k in params]
        if both:  # pve-container API2/LXC/Config.pm, qemu-server API2/Qemu.pm: same wording
            return bad_params({"delete": f"you can't use '-{both[0]}' and -delete {both[0]}' "
                                         "at the same time"})
        if params.get("digest") and params["digest"] != guest.digest:
            # qemu-server API2/Qemu.pm and pve-common PVE::Tools::assert_if_modified
            return fail(500, "checksum mismatch (file change by other user?)"
                        if guest.type == "qemu" else
                        "detected modified configuration - file changed by other user? "
                        "Try again.")
        locked = self._locked(guest)
        if locked:
            return locked
        guest.memory_mb = int(params.get("memory", guest.memory_mb))
        guest.cores = int(params.get("cores", guest.cores))
        guest.name = params.get("name" if guest.type == "qemu" else "hostname", guest.name)
        if "tags" in params:
            guest.tags = unique_tags(params["tags"])
        if "description" in params:
            guest.description = params["description"]
        for key in deleted:
            if key in ("tags", "description"):
                setattr(guest, key, "")
        return ok(None)

    async def resize(self, request: Request) -> Response:
        guest = self._guest(request)
        if isinstance(guest, Response):
            return guest
        params = await form(request)
        match = _SIZE.match(params.get("size", ""))
        if "disk" not in params or match is None:
            return bad_params({k: "property is missing or invalid" for k in ("disk", "size")
                               if k not in params or (k == "size" and match is None)})
        if params["disk"] != guest.disk_key:
            return fail(500, f"disk '{params['disk']}' does not exist")
        locked = self._locked(guest)
        if locked:
            return locked
        assert match is not None
        amount = int(float(match.group(2)) * _UNITS[match.group(3)])
        new = guest.disk_bytes + amount if match.group(1) else amount
        if new < guest.disk_bytes:
            return fail(500, "shrinking disks is not supported")
        return ok(self._task(guest.node, "resize", str(guest.vmid),
                             lambda: setattr(guest, "disk_bytes", new)))

    async def delete_guest(self, request: Request) -> Response:
        guest = self._guest(request)
        if isinstance(guest, Response):
            return guest
        locked = self._locked(guest)
        if locked:
            return locked
        if guest.running:
            return fail(500, f"{guest.label} {guest.vmid} is running - destroy failed")
        prefix = "qm" if guest.type == "qemu" else "vz"
        return ok(self._task(guest.node, prefix + "destroy", str(guest.vmid),
                             lambda: self.guests.pop(guest.vmid, None)))

    async def create_guest(self, request: Request) -> Response:
        node = self._node(request)
        if isinstance(node, Response):
            return node
        kind = request.path_params["kind"]
        if kind not in ("qemu", "lxc"):
            return fail(501, f"Method 'POST {request.url.path}' not implemented")
        params = await form(request)
        if not params.get("vmid", "").isdigit():
            return bad_params({"vmid": "property is missing and it is not optional"})
        vmid = int(params["vmid"])
        archive_ref = params.get("archive") if kind == "qemu" else (
            params.get("ostemplate") if params.get("restore") in ("1", "true") else None)
        if archive_ref is not None:
            return self._restore(node, kind, vmid, archive_ref, params)
        if vmid in self.guests:
            return fail(500, f"unable to create VM {vmid} - VM {vmid} already exists on node "
                             f"'{self.guests[vmid].node}'")
        if kind == "lxc" and "ostemplate" not in params:
            return bad_params({"ostemplate": "property is missing and it is not optional"})
        disk = params.get("scsi0" if kind == "qemu" else "rootfs", "local-lvm:8")
        size_gb = disk.rpartition(":")[2].split(",")[0]
        guest = Guest(
            vmid=vmid, type=kind, node=node.name,
            name=params.get("name" if kind == "qemu" else "hostname", f"{kind}-{vmid}"),
            running=False, qmpstatus="stopped", memory_mb=int(params.get("memory", "512")),
            cores=int(params.get("cores", "1")),
            disk_bytes=int(size_gb if size_gb.isdigit() else 8) * 1024**3,
        )
        self.guests[vmid] = guest
        start = params.get("start") in ("1", "true")
        prefix = "qm" if kind == "qemu" else "vz"
        return ok(self._task(node.name, prefix + "create", str(vmid),
                             guest.power_on if start else None, guest=guest, lock="create"))

    def _restore(self, node: Node, kind: str, vmid: int, ref: str,
                 params: dict[str, str]) -> Response:
        archive = self.archives.get(ref)
        if archive is None:
            return fail(500, f"volume '{ref}' does not exist")
        guest = self.guests.get(vmid)
        label = "VM" if kind == "qemu" else "CT"
        if guest is not None:
            if params.get("force") not in ("1", "true") or guest.node != node.name:
                return fail(500, f"unable to restore {label} {vmid} - {label} {vmid} already "
                                 f"exists on node '{guest.node}'")
            locked = self._locked(guest)
            if locked:
                return locked
            if guest.running:
                return fail(500, f"unable to restore {label} {vmid} - {label} is running")
        else:
            guest = Guest(vmid=vmid, type=kind, node=node.name, name=f"{kind}-{vmid}",
                          running=False, qmpstatus="stopped", memory_mb=archive.memory_mb,
                          cores=archive.cores, disk_bytes=archive.disk_bytes)
            self.guests[vmid] = guest
        restored = guest

        def finish() -> None:
            restored.memory_mb, restored.cores = archive.memory_mb, archive.cores
            restored.disk_bytes = archive.disk_bytes
        prefix = "qm" if kind == "qemu" else "vz"
        return ok(self._task(node.name, prefix + "restore", str(vmid), finish,
                             guest=guest, lock="create"))

    # -- snapshots ----------------------------------------------------------------------------
    async def list_snapshots(self, request: Request) -> Response:
        guest = self._guest(request)
        return guest if isinstance(guest, Response) else ok(guest.snapshot_list())

    async def create_snapshot(self, request: Request) -> Response:
        guest = self._guest(request)
        if isinstance(guest, Response):
            return guest
        params = await form(request)
        name = params.get("snapname", "")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_\-]+", name):
            return bad_params({"snapname": "invalid format - invalid configuration ID"})
        if name in guest.snapshots:
            return fail(500, f"snapshot name '{name}' already used")
        locked = self._locked(guest)
        if locked:
            return locked
        prefix = "qm" if guest.type == "qemu" else "vz"
        # The snapshot is listed at once, marked `snapstate: prepare` until the task ends.
        guest.add_snapshot(name, params.get("description", ""), time.time())
        guest.snapshots[name]["snapstate"] = "prepare"
        return ok(self._task(guest.node, prefix + "snapshot", str(guest.vmid),
                             lambda: guest.snapshots[name].pop("snapstate", None),
                             guest=guest, lock="snapshot"))

    def _snapshot(self, request: Request) -> tuple[Guest, str] | Response:
        guest = self._guest(request)
        if isinstance(guest, Response):
            return guest
        name = request.path_params["snap"]
        if name not in guest.snapshots:
            return fail(500, f"snapshot '{name}' does not exist")
        return self._locked(guest) or (guest, name)

    async def rollback(self, request: Request) -> Response:
        found = self._snapshot(request)
        if isinstance(found, Response):
            return found
        guest, _ = found
        prefix = "qm" if guest.type == "qemu" else "vz"
        guest.power_off()  # a rollback without saved RAM leaves the guest stopped
        return ok(self._task(guest.node, prefix + "rollback", str(guest.vmid), None,
                             guest=guest, lock="rollback"))

    async def delete_snapshot(self, request: Request) -> Response:
        found = self._snapshot(request)
        if isinstance(found, Response):
            return found
        guest, name = found
        prefix = "qm" if guest.type == "qemu" else "vz"
        guest.snapshots[name]["snapstate"] = "delete"
        return ok(self._task(guest.node, prefix + "delsnapshot", str(guest.vmid),
                             lambda: guest.snapshots.pop(name, None),
                             guest=guest, lock="snapshot-delete"))

    # -- backups ------------------------------------------------------------------------------
    async def vzdump(self, request: Request) -> Response:
        node = self._node(request)
        if isinstance(node, Response):
            return node
        params = await form(request)
        errors = schema.verify(params, schema.VZDUMP)
        if errors:
            return bad_params(errors)
        if not params.get("vmid", "").isdigit():
            return bad_params({"vmid": "property is missing and it is not optional"})
        guest = self.guests.get(int(params["vmid"]))
        if guest is None:
            return fail(500, f"guest {params['vmid']} does not exist")
        if guest.node != node.name:
            return ok("OK")  # vzdump skips guests living on other nodes
        # PVE::VZDump::get_storage_param: no storage (and no vzdump.conf default) means 'local'
        storage = self.storages.get(params.get("storage", "local"))
        if storage is None or "backup" not in storage.content:
            return fail(500, f"can't use storage '{params.get('storage', 'local')}' for "
                             "backups - wrong content type")
        notes = generate_notes(params.get("notes-template", ""), guest, node.name)
        if guest.lock:
            # A locked guest fails inside the worker, as vzdump does: the task ends in error.
            return ok(self._task(node.name, "vzdump", str(guest.vmid), error="job errors"))
        return ok(self._task(node.name, "vzdump", str(guest.vmid),
                             lambda: self._add_archive(guest, storage.name, time.time(),
                                                       notes=notes),
                             guest=guest, lock="backup"))

    async def storage_index(self, request: Request) -> Response:
        node = self._node(request)
        if isinstance(node, Response):
            return node
        params = dict(request.query_params)
        errors = schema.verify(params, schema.STORAGE_INDEX)
        if errors:
            return bad_params(errors)
        wanted = set(schema.split_list(params.get("content", "")))
        items = []
        for storage in self.storages.values():
            if wanted and not wanted & set(storage.content):
                continue
            if params.get("storage") not in (None, storage.name):
                continue
            items.append({"storage": storage.name, "type": storage.plugintype,
                          "content": ",".join(sorted(storage.content)), "enabled": 1,
                          "active": 1, "shared": int(storage.shared), "total": 2 * 1024**4,
                          "used": 400 * 1024**3, "avail": 2 * 1024**4 - 400 * 1024**3,
                          "used_fraction": 0.195})
        # PVE builds this list from a hash (RESTHandler::hash_to_array): no order promised.
        self.random.shuffle(items)
        return ok(items)

    def _storage(self, request: Request) -> tuple[Node, Storage] | Response:
        node = self._node(request)
        if isinstance(node, Response):
            return node
        storage = self.storages.get(request.path_params["storage"])
        if storage is None:
            return fail(500, f"storage '{request.path_params['storage']}' does not exist")
        return node, storage

    async def storage_content(self, request: Request) -> Response:
        found = self._storage(request)
        if isinstance(found, Response):
            return found
        node, storage = found
        content, vmid = request.query_params.get("content"), request.query_params.get("vmid")
        # Content.pm index: volume_list for the one content type asked for, or every type the
        # storage holds; templates and ISOs are never listed for a vmid (Plugin.pm list_volumes).
        wanted = [content] if content else list(storage.content)
        items: list[dict[str, Any]] = []
        for kind in wanted:
            if kind not in storage.content:
                continue
            if kind == "backup":
                items += [a.to_json() for a in self.archives.values()
                          if a.storage == storage.name and a.node in (None, node.name)
                          and (vmid is None or str(a.vmid) == vmid)]
            elif kind in ("vztmpl", "iso") and vmid is None:
                items += [{"volid": f"{storage.name}:{k}/{name}", "format": fmt, "size": size,
                           "ctime": int(node.started), "content": k}
                          for k, name, fmt, size in TEMPLATE_FILES if k == kind]
        return ok(items)

    async def delete_volume(self, request: Request) -> Response:
        found = self._storage(request)
        if isinstance(found, Response):
            return found
        node, storage = found
        volume = request.path_params["volume"]
        volid = volume if ":" in volume else f"{storage.name}:{volume}"
        archive = self.archives.get(volid)
        if archive is None or archive.node not in (None, node.name):
            return fail(500, f"volume '{volid}' does not exist")
        if archive.protected:
            return fail(500, f"volume '{volid}' is protected")
        del self.archives[volid]
        return ok(None)
