"""Simulated Catalyst game panel (Fastify backend) as catalystctl/catalyst @747660b5 speaks.

What it follows, by upstream file (catalyst-backend/src/…):
- index.ts ``authenticate``: API keys only as ``Authorization: Bearer catalyst…``; a wrong key
  is 401 ``{"error":"Invalid API key"}``, anything else (no header, ``x-api-key``, a token
  without the prefix) is a session lookup that fails with 401 ``{"error":"Unauthorized"}``.
  The global rate limit answers 429 ``{"error":"Too many requests. Please try again later."}``.
- lib/validation.ts ``serverCreateSchema`` + ``validateRequestBody``: 400 ``{"error":"Invalid
  request body","details":[{field,message}]}`` with zod's messages.
- routes/servers/core.ts: create (owner, template, node, location, capacity), list/get with
  ``connection`` (``_helpers.ts buildConnectionInfo``), PUT without a schema (so 1.5 cores are
  truncated, as Prisma's Int column does), delete rules.
- routes/servers/power.ts: power actions, suspend/unsuspend and their 409s.
- routes/servers/invites.ts: ``GET /:id/permissions``, ``POST /:id/access {targetUserId,
  permissions}`` (owner only: 403 ``Forbidden``), ``DELETE /:id/access/:targetUserId`` (a
  missing entry is Prisma P2025: 500 ``Internal Server Error``).
- routes/backups.ts: 403 "Backup allocation disabled…" without an allocation, 400 restore
  unless stopped, the backup list without an envelope.
- routes/nodes.ts: nodes with ``location {id, name}``; routes/admin.ts: users, paged, and
  ``POST /api/admin/users`` (201, the user without an envelope).
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from panelql_sim.framework import FastJSONResponse, Knobs, SimPanel, iso, json_body

# Which actions each state allows (ServerStateMachine.TRANSITIONS, simplified to what we use).
ALLOWED = {
    "start": {"stopped", "crashed"},
    "stop": {"running", "starting"},
    "restart": {"running"},
    "kill": {"running", "starting", "stopping"},
    "install": {"stopped", "error", "crashed"},
}
# What the create route gives the owner (routes/servers/core.ts @747660b5).
OWNER_PERMISSIONS = [
    "server.start", "server.stop", "server.read", "server.install", "alert.read",
    "alert.create", "alert.update", "alert.delete", "file.read", "file.write", "console.read",
    "console.write", "server.delete",
]
NETWORK_MODES = ("bridge", "macvlan", "host", "mc-lan-static", "mc-lan-dynamic")
SERVER_NAME = re.compile(r"^[a-zA-Z0-9-_ ]+$")
DEFAULT_TEMPLATE = "cmtpl0minecraftpaper"


def error(message: str, status: int, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


@dataclass
class CatalystServer:
    id: str
    name: str
    node_id: str
    location_id: str
    owner_id: str
    status: str
    memory_mb: int
    cpu_cores: int
    disk_mb: int
    port: int
    created: float
    template_id: str = DEFAULT_TEMPLATE
    network_mode: str = "bridge"
    backup_allocation_mb: int = 0
    primary_ip: str | None = None
    node_address: str = "203.0.113.10"
    suspended_at: float | None = None
    suspension_reason: str | None = None
    access: dict[str, dict[str, Any]] = field(default_factory=dict)
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    description: str | None = None

    def to_json(self, metrics: bool) -> dict[str, Any]:
        host = self.primary_ip or self.node_address
        # Every scalar of model Server (prisma/schema.prisma), as withConnectionInfo sends it.
        body: dict[str, Any] = {
            "id": self.id, "uuid": self.uuid, "name": self.name, "description": self.description,
            "templateId": self.template_id, "nodeId": self.node_id,
            "locationId": self.location_id, "ownerId": self.owner_id, "status": self.status,
            "suspendedAt": iso(self.suspended_at) if self.suspended_at else None,
            "suspendedByUserId": None, "suspensionReason": self.suspension_reason,
            "allocatedMemoryMb": self.memory_mb, "allocatedCpuCores": self.cpu_cores,
            "allocatedDiskMb": self.disk_mb, "allocatedSwapMb": 0, "ioWeight": 500,
            "containerId": None, "containerName": None,
            "networkMode": self.network_mode, "primaryPort": self.port,
            "primaryIp": self.primary_ip, "subdomain": None,
            "portBindings": {str(self.port): self.port},
            "environment": {"TEMPLATE_IMAGE": "itzg/minecraft-server"},
            "startupCommand": None, "backupStorageMode": "local", "backupRetentionCount": 0,
            "backupRetentionDays": 0, "backupAllocationMb": self.backup_allocation_mb,
            "databaseAllocation": 0, "backupS3Config": None, "backupSftpConfig": None,
            "restartPolicy": "on-failure", "crashCount": 0, "maxCrashCount": 5,
            "lastCrashAt": None, "lastExitCode": None,
            "createdAt": iso(self.created), "updatedAt": iso(self.created),
            "connection": {"assignedIp": self.primary_ip, "nodeIp": self.node_address,
                           "hostNetworkIp": None, "host": host, "port": self.port,
                           "subdomain": None},
        }
        if metrics:
            running = self.status == "running"
            body.update(
                cpuPercent=round(12.5 + (hash(self.id) % 40), 1) if running else 0,
                memoryUsageMb=self.memory_mb // 2 if running else 0,
                diskUsageMb=self.disk_mb // 4, diskTotalMb=self.disk_mb,
            )
        return body


# Templates as routes/templates.ts GET / @747660b5 sends them: every scalar of model
# ServerTemplate (prisma/schema.prisma) plus nest {id, name, icon}. Only the first exists unless
# ``templates`` asks for more (createServer without a template picks the only one).
TEMPLATES: list[dict[str, Any]] = [
    {"id": DEFAULT_TEMPLATE, "name": "Minecraft Paper", "image": "itzg/minecraft-server",
     "memory": 2048, "cpu": 2, "port": 25565, "nest": "Minecraft"},
    {"id": "cmtpl1minecraftforge", "name": "Minecraft Forge", "image": "itzg/minecraft-server",
     "memory": 4096, "cpu": 2, "port": 25565, "nest": "Minecraft"},
    {"id": "cmtpl2valheimplus00", "name": "Valheim", "image": "lloesche/valheim-server",
     "memory": 4096, "cpu": 2, "port": 2456, "nest": "Survival"},
]


def _template(*, id: str, name: str, image: str, memory: int, cpu: int, port: int,
              nest: str) -> dict[str, Any]:
    created = iso(time.time() - 86400 * 60)
    return {
        "id": id, "name": name, "description": f"{name} server", "author": "catalyst",
        "version": "1.0.0", "image": image, "images": [], "defaultImage": None,
        "installImage": None, "startup": "./start.sh", "stopCommand": "stop",
        "sendSignalTo": "SIGTERM", "variables": [], "installScript": None,
        "supportedPorts": [port], "allocatedMemoryMb": memory, "allocatedCpuCores": cpu,
        "features": {}, "nestId": f"cmnest{nest.lower()}", "srvService": None,
        "srvProtocol": "tcp", "createdAt": created, "updatedAt": created,
        "nest": {"id": f"cmnest{nest.lower()}", "name": nest, "icon": None},
    }


class CatalystSim(SimPanel):
    name = "catalyst"

    def __init__(
        self, *, api_key: str = "catalyst_demo_key", servers: int = 24, nodes: int = 3,
        users: int = 8, templates: int = 1, seed: int = 1, knobs: Knobs | None = None,
    ) -> None:
        super().__init__(seed=seed, knobs=knobs)
        self.api_key = api_key
        self.locations: dict[str, dict[str, Any]] = {}
        self.nodes: dict[str, dict[str, Any]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.templates: dict[str, dict[str, Any]] = {}
        self.servers: dict[str, CatalystServer] = {}
        self.backups: dict[str, dict[str, Any]] = {}
        # The API key belongs to this admin user (index.ts: request.user is the key's owner).
        self.key_user = "cadmin00000000000000001"
        self.default_template = DEFAULT_TEMPLATE
        self._seed(servers, nodes, users)
        for extra in TEMPLATES[1:templates]:
            self.templates[extra["id"]] = _template(**extra)

    # -- data ---------------------------------------------------------------------------------
    def _seed(self, servers: int, nodes: int, users: int) -> None:
        regions = ["us-east", "eu-west", "ap-south"]
        now = time.time() - 86400 * 30
        for i, region in enumerate(regions):
            loc_id = f"cmloc{i + 1:04d}{self.random.randrange(16**8):08x}"
            self.locations[loc_id] = {"id": loc_id, "name": region, "description": None,
                                      "createdAt": iso(now)}
        location_ids = list(self.locations)
        self.templates[DEFAULT_TEMPLATE] = _template(**TEMPLATES[0])
        for i in range(nodes):
            node_id = f"cnode{i + 1:04d}"
            loc = self.locations[location_ids[i % len(location_ids)]]
            self.nodes[node_id] = {
                "id": node_id, "name": f"game-node-{i + 1}", "description": None,
                "locationId": loc["id"], "hostname": f"node{i + 1}.catalyst.test",
                "publicAddress": f"203.0.113.{10 + i}", "maxMemoryMb": 65536, "maxCpuCores": 16,
                # Game panels overcommit CPU: 16 cores may be handed out twice over.
                "memoryOverallocatePercent": 0, "cpuOverallocatePercent": 100,
                "isOnline": i != nodes - 1 or nodes < 3, "lastSeenAt": iso(now),
                "serverDataDir": "/var/lib/catalyst/servers", "createdAt": iso(now),
                "updatedAt": iso(now),
            }
        self.users[self.key_user] = {
            "id": self.key_user, "email": "admin@example.com", "username": "admin",
            "createdAt": iso(now), "updatedAt": iso(now),
            "roles": [{"id": "role-admin", "name": "Administrator"}],
        }
        for i in range(users):
            user_id = f"cuser{i + 1:04d}"
            self.users[user_id] = {
                "id": user_id, "email": f"player{i + 1}@example.com",
                "username": f"player{i + 1}", "createdAt": iso(now), "updatedAt": iso(now),
                "roles": [{"id": "role-user", "name": "User"}],
            }
        states = ["running", "running", "stopped", "running", "suspended", "installing",
                  "crashed", "stopped"]
        node_ids = list(self.nodes)
        # Every fourth server belongs to the key's user: only those accept access grants.
        owners = [self.key_user, *[u for u in self.users if u != self.key_user]]
        for i in range(servers):
            self.add_server(
                name=f"mc-{i + 1:03d}", node_id=node_ids[i % len(node_ids)],
                owner_id=owners[i % len(owners)] if i % 4 else self.key_user,
                status=states[i % len(states)],
                memory_mb=2048 * (1 + i % 4), cpu_cores=1 + i % 4, disk_mb=10240,
                backup_allocation_mb=10240,
            )
        for server in list(self.servers.values())[: max(1, servers // 3)]:
            for n in range(2):
                self.add_backup(server.id, f"nightly-{n + 1}", done=True)

    def region_of(self, node_id: str) -> str:
        return str(self.locations[self.nodes[node_id]["locationId"]]["name"])

    def add_server(self, *, name: str, node_id: str, owner_id: str, status: str,
                   memory_mb: int, cpu_cores: int, disk_mb: int, backup_allocation_mb: int = 0,
                   template_id: str = DEFAULT_TEMPLATE, network_mode: str = "bridge",
                   port: int | None = None) -> CatalystServer:
        sid = f"csrv{len(self.servers) + 1:05d}{self.random.randrange(16**6):06x}"
        node = self.nodes[node_id]
        server = CatalystServer(
            id=sid, name=name, node_id=node_id, location_id=node["locationId"],
            owner_id=owner_id, status=status, memory_mb=memory_mb, cpu_cores=cpu_cores,
            disk_mb=disk_mb, port=port or 25565 + len(self.servers),
            created=time.time() - 86400, template_id=template_id, network_mode=network_mode,
            backup_allocation_mb=backup_allocation_mb, node_address=node["publicAddress"],
        )
        if status == "suspended":
            server.suspended_at = time.time() - 3600
            server.suspension_reason = "Payment overdue - Invoice #1001"
        server.access[owner_id] = self._access_row(sid, owner_id, list(OWNER_PERMISSIONS))
        self.servers[sid] = server
        return server

    def _access_row(self, server_id: str, user_id: str, permissions: list[str]
                    ) -> dict[str, Any]:
        now = iso(time.time())
        return {"id": f"cacc{self.random.randrange(16**10):010x}", "userId": user_id,
                "serverId": server_id, "permissions": permissions, "createdAt": now,
                "updatedAt": now}

    def add_backup(self, server_id: str, name: str, *, done: bool) -> dict[str, Any]:
        bid = f"cbak{len(self.backups) + 1:05d}{self.random.randrange(16**6):06x}"
        backup: dict[str, Any] = {
            "id": bid, "serverId": server_id, "name": name,
            "path": f"/backups/{server_id}/{bid}.tar.gz", "storageMode": "local",
            "sizeMb": 512 if done else None, "compressed": True,
            "checksum": f"sha256:{bid}" if done else None, "metadata": {},
            "createdAt": iso(time.time()), "restoredAt": None,
        }
        self.backups[bid] = backup
        return backup

    # -- HTTP ---------------------------------------------------------------------------------
    def authorize(self, request: Request) -> Response | None:
        auth = request.headers.get("authorization", "")
        if auth.startswith("Bearer ") and auth[len("Bearer "):].startswith("catalyst"):
            if auth[len("Bearer "):] != self.api_key:
                return error("Invalid API key", 401)
            return None
        return error("Unauthorized", 401)  # the session lookup finds nothing

    def rate_limited(self, retry_after: int) -> Response:
        return JSONResponse({"error": "Too many requests. Please try again later."},
                            status_code=429, headers={"retry-after": str(retry_after)})

    def routes(self) -> list[BaseRoute]:
        s = "/api/servers/{sid}"
        return [
            Route("/api/servers", self.list_servers, methods=["GET"]),
            Route("/api/servers", self.create_server, methods=["POST"]),
            Route(s, self.get_server, methods=["GET"]),
            Route(s, self.update_server, methods=["PUT"]),
            Route(s, self.delete_server, methods=["DELETE"]),
            Route(s + "/permissions", self.list_access, methods=["GET"]),
            Route(s + "/access", self.grant_access, methods=["POST"]),
            Route(s + "/access/{uid}", self.revoke_access, methods=["DELETE"]),
            Route(s + "/backups", self.list_backups, methods=["GET"]),
            Route(s + "/backups", self.create_backup, methods=["POST"]),
            Route(s + "/backups/{bid}", self.get_backup, methods=["GET"]),
            Route(s + "/backups/{bid}", self.delete_backup, methods=["DELETE"]),
            Route(s + "/backups/{bid}/restore", self.restore_backup, methods=["POST"]),
            Route(s + "/{action:str}", self.power, methods=["POST"]),
            Route("/api/nodes", self.list_nodes, methods=["GET"]),
            Route("/api/nodes/{nid}", self.get_node, methods=["GET"]),
            Route("/api/locations", self.list_locations, methods=["GET"]),
            Route("/api/templates", self.list_templates, methods=["GET"]),
            Route("/api/admin/users", self.list_users, methods=["GET"]),
            Route("/api/admin/users", self.create_user, methods=["POST"]),
        ]

    def _server(self, request: Request) -> CatalystServer | Response:
        server = self.servers.get(request.path_params["sid"])
        if server is None:
            return error("Server not found", 404)
        return server

    def _with_relations(self, server: CatalystServer, metrics: bool) -> dict[str, Any]:
        body = server.to_json(metrics=metrics)
        body["template"] = self.templates.get(server.template_id)
        body["node"] = self.nodes[server.node_id]
        body["location"] = self.locations.get(server.location_id)
        # The key's user is an admin: core.ts gives admins every server permission.
        body["effectivePermissions"] = ["server.read", "server.start", "server.stop",
                                        "server.install", "server.delete"]
        return body

    async def list_servers(self, request: Request) -> Response:
        data = [self._with_relations(s, metrics=True) for s in self.servers.values()]
        return FastJSONResponse({"success": True, "data": data})

    async def get_server(self, request: Request) -> Response:
        server = self._server(request)
        if isinstance(server, Response):
            return server
        return JSONResponse({"success": True,
                             "data": self._with_relations(server, metrics=False)})

    async def create_server(self, request: Request) -> Response:
        body = await json_body(request)
        details = _validate_create(body)
        if details:
            return error("Invalid request body", 400, details=details)
        owner = str(body.get("ownerId") or self.key_user)
        if owner not in self.users:
            return error("Specified owner does not exist", 400)
        if body["templateId"] not in self.templates:
            return error("Template not found", 404)
        node = self.nodes.get(body["nodeId"])
        if node is None:
            return error("Node not found", 404)
        on_node = [s for s in self.servers.values() if s.node_id == node["id"]]
        max_memory = _effective(node["maxMemoryMb"], node["memoryOverallocatePercent"])
        free_memory = max_memory - sum(s.memory_mb for s in on_node)
        if body["allocatedMemoryMb"] > free_memory:
            return error(f"Insufficient memory. Available: {free_memory:g}MB, Required: "
                         f"{body['allocatedMemoryMb']}MB", 400)
        max_cpu = _effective(node["maxCpuCores"], node["cpuOverallocatePercent"])
        free_cpu = max_cpu - sum(s.cpu_cores for s in on_node)
        if body["allocatedCpuCores"] > free_cpu:
            return error(f"Insufficient CPU. Available: {free_cpu:g}, Required: "
                         f"{body['allocatedCpuCores']} cores", 400)
        if body.get("networkMode", "mc-lan-static") in ("mc-lan-static", "mc-lan-dynamic"):
            return error("No IP pool configured for this network", 400)
        # core.ts stores the server as "stopped"; installing is a separate /install call.
        server = self.add_server(
            name=str(body["name"]), node_id=node["id"], owner_id=owner, status="stopped",
            memory_mb=body["allocatedMemoryMb"], cpu_cores=body["allocatedCpuCores"],
            disk_mb=body["allocatedDiskMb"],
            backup_allocation_mb=int(body.get("backupAllocationMb") or 0),
            template_id=str(body["templateId"]), network_mode=str(body["networkMode"]),
            port=int(body["primaryPort"]),
        )
        # core.ts stores an optional description with the server (and returns it).
        if isinstance(body.get("description"), str):
            server.description = body["description"]
        # The route stores locationId as given (core.ts does not check it against the node).
        server.location_id = str(body["locationId"])
        return JSONResponse({"success": True, "data": server.to_json(metrics=False)},
                            status_code=201)

    def _settle(self, server: CatalystServer, expected: str, new: str) -> None:
        if server.status == expected:
            server.status = new

    async def update_server(self, request: Request) -> Response:
        server = self._server(request)
        if isinstance(server, Response):
            return server
        if server.suspended_at:
            return error("Server is suspended", 423, suspendedAt=iso(server.suspended_at),
                         suspensionReason=server.suspension_reason)
        body = await json_body(request)
        sizes = ("allocatedMemoryMb", "allocatedCpuCores", "allocatedDiskMb")
        if any(k in body for k in sizes) and server.status != "stopped":
            return error("Server must be stopped to update resource allocation", 409)
        if any(k in body and (not isinstance(body[k], int | float) or body[k] <= 0)
               for k in sizes):
            return error("Resource values must be positive numbers", 400)
        # No schema on PUT: the Int columns keep the whole part of 1.5 (the upstream quirk).
        for key, attr in (("allocatedMemoryMb", "memory_mb"), ("allocatedCpuCores", "cpu_cores"),
                          ("allocatedDiskMb", "disk_mb")):
            if key in body:
                setattr(server, attr, int(body[key]))
        if "name" in body:
            server.name = str(body["name"])
        return JSONResponse({"success": True, "data": server.to_json(metrics=False)})

    async def delete_server(self, request: Request) -> Response:
        server = self._server(request)
        if isinstance(server, Response):
            return server
        if server.status not in ("stopped", "error", "crashed", "installing"):
            return error("Server must be stopped before deletion (current state: "
                         f"{server.status})", 409)
        del self.servers[server.id]
        return JSONResponse({"success": True})

    async def power(self, request: Request) -> Response:
        server = self._server(request)
        if isinstance(server, Response):
            return server
        action = request.path_params["action"]
        if action == "suspend":
            return await self._suspend(server, request)
        if action == "unsuspend":
            return self._unsuspend(server)
        if action not in ALLOWED:
            return JSONResponse({"message": f"Route POST:{request.url.path} not found",
                                 "error": "Not Found", "statusCode": 404}, status_code=404)
        if server.suspended_at:
            return error("Server is suspended", 423, suspendedAt=iso(server.suspended_at),
                         suspensionReason=server.suspension_reason)
        if server.status not in ALLOWED[action]:
            return error(f"Cannot {action} server in {server.status} state", 409)
        if not self.nodes[server.node_id]["isOnline"]:
            return error("Node is offline", 503)
        transient, final = {
            "start": ("starting", "running"), "stop": ("stopping", "stopped"),
            "restart": ("stopping", "running"), "kill": ("stopped", "stopped"),
            "install": ("installing", "stopped"),
        }[action]
        server.status = transient
        if transient != final:
            self.later(lambda: self._settle(server, transient, final))
        verb = action.capitalize()
        return JSONResponse({"success": True, "message": f"{verb} command sent to agent"})

    async def _suspend(self, server: CatalystServer, request: Request) -> Response:
        if server.suspended_at:
            return error("Server is already suspended", 409)
        body = await json_body(request)
        reason = body.get("reason")
        server.status = "suspended"
        server.suspended_at = time.time()
        server.suspension_reason = reason.strip() or None if isinstance(reason, str) else None
        return JSONResponse({"success": True, "data": server.to_json(metrics=False)})

    def _unsuspend(self, server: CatalystServer) -> Response:
        if not server.suspended_at:
            return error("Server is not suspended", 409)
        server.status, server.suspended_at, server.suspension_reason = "stopped", None, None
        return JSONResponse({"success": True, "data": server.to_json(metrics=False)})

    # -- access (routes/servers/invites.ts) ---------------------------------------------------
    async def list_access(self, request: Request) -> Response:
        server = self._server(request)
        if isinstance(server, Response):
            return server
        data = []
        for row in server.access.values():
            user = self.users.get(row["userId"], {})
            data.append({**row, "user": {"id": row["userId"], "email": user.get("email"),
                                         "username": user.get("username")}})
        return JSONResponse({"success": True, "data": data, "presets": {}})

    async def grant_access(self, request: Request) -> Response:
        body = await json_body(request)
        target, permissions = body.get("targetUserId"), body.get("permissions")
        if not target or not permissions:
            return error("targetUserId and permissions are required", 400)
        server = self._server(request)
        if isinstance(server, Response):
            return server
        if server.owner_id != self.key_user:
            return error("Forbidden", 403)
        if target == server.owner_id:
            return error("Owner permissions cannot be edited", 409)
        if target not in self.users:
            return error("User not found", 404)
        cleaned = [str(p).strip() for p in permissions if str(p).strip()]
        if not cleaned:
            return error("Permissions cannot be empty", 400)
        row = server.access.get(target)
        if row is None:
            row = server.access[target] = self._access_row(server.id, target, cleaned)
        else:
            row.update(permissions=cleaned, updatedAt=iso(time.time()))
        return JSONResponse({"success": True, "data": row})

    async def revoke_access(self, request: Request) -> Response:
        server = self._server(request)
        if isinstance(server, Response):
            return server
        if server.owner_id != self.key_user:
            return error("Forbidden", 403)
        target = request.path_params["uid"]
        if target == server.owner_id:
            return error("Owner access cannot be removed", 409)
        if server.access.pop(target, None) is None:
            return error("Internal Server Error", 500)  # prisma.delete: record not found
        return JSONResponse({"success": True})

    # -- backups (routes/backups.ts) ----------------------------------------------------------
    async def list_backups(self, request: Request) -> Response:
        server = self._server(request)
        if isinstance(server, Response):
            return server
        page = max(1, int(request.query_params.get("page", 1)))
        limit = min(100, max(1, int(request.query_params.get("limit", 20))))
        items = [b for b in self.backups.values() if b["serverId"] == server.id]
        chunk = items[(page - 1) * limit: page * limit]
        return JSONResponse({"backups": chunk, "total": len(items), "page": page,
                             "pageSize": limit, "totalPages": -(-len(items) // limit)})

    async def create_backup(self, request: Request) -> Response:
        server = self._server(request)
        if isinstance(server, Response):
            return server
        if server.suspended_at:
            return error("Server is suspended", 423, suspendedAt=iso(server.suspended_at),
                         suspensionReason=server.suspension_reason)
        if not self.nodes[server.node_id]["isOnline"]:
            return error("Node is offline", 503)
        if server.backup_allocation_mb <= 0:
            return error("Backup allocation disabled. Configure S3 or SFTP to enable backups.",
                         403)
        body = await json_body(request)
        name = str(body.get("name") or f"backup-{iso(time.time())}")
        backup = self.add_backup(server.id, name, done=False)

        def finish() -> None:
            backup.update(sizeMb=640, checksum=f"sha256:{backup['id']}")
        self.later(finish)
        return JSONResponse({"success": True, "message": "Backup creation started",
                             "backupName": backup["name"], "backupId": backup["id"]})

    def _backup(self, request: Request) -> dict[str, Any] | Response:
        backup = self.backups.get(request.path_params["bid"])
        if backup is None or backup["serverId"] != request.path_params["sid"]:
            return error("Backup not found", 404)
        return backup

    async def get_backup(self, request: Request) -> Response:
        backup = self._backup(request)
        return backup if isinstance(backup, Response) else JSONResponse(backup)

    async def delete_backup(self, request: Request) -> Response:
        backup = self._backup(request)
        if isinstance(backup, Response):
            return backup
        del self.backups[backup["id"]]
        return JSONResponse({"success": True, "message": "Backup deleted"})

    async def restore_backup(self, request: Request) -> Response:
        server = self._server(request)
        if isinstance(server, Response):
            return server
        if server.suspended_at:
            return error("Server is suspended", 423, suspendedAt=iso(server.suspended_at),
                         suspensionReason=server.suspension_reason)
        backup = self._backup(request)
        if isinstance(backup, Response):
            return backup
        if server.status != "stopped":
            return error("Server must be stopped before restoring", 400)
        backup["restoredAt"] = iso(time.time())
        return JSONResponse({"success": True, "message": "Backup restoration started"})

    # -- nodes, locations, users --------------------------------------------------------------
    def _node_json(self, node: dict[str, Any]) -> dict[str, Any]:
        location = self.locations[node["locationId"]]
        count = sum(1 for s in self.servers.values() if s.node_id == node["id"])
        return {**node, "_count": {"servers": count},
                "location": {"id": location["id"], "name": location["name"]}}

    async def list_nodes(self, request: Request) -> Response:
        return JSONResponse({"success": True,
                             "data": [self._node_json(n) for n in self.nodes.values()]})

    async def get_node(self, request: Request) -> Response:
        node = self.nodes.get(request.path_params["nid"])
        if node is None:
            return error("Node not found", 404)
        servers = [{"id": s.id, "uuid": s.uuid, "name": s.name, "status": s.status}
                   for s in self.servers.values() if s.node_id == node["id"]]
        return JSONResponse({"success": True, "data": {**node, "servers": servers}})

    async def list_templates(self, request: Request) -> Response:
        return JSONResponse({"success": True, "data": list(self.templates.values())})

    async def list_locations(self, request: Request) -> Response:
        # routes/locations.ts GET / @747660b5: ordered by name, with _count.nodes spread in
        # and repeated as nodeCount.
        data = []
        for loc in sorted(self.locations.values(), key=lambda x: x["name"]):
            count = sum(1 for n in self.nodes.values() if n["locationId"] == loc["id"])
            data.append({**loc, "_count": {"nodes": count}, "nodeCount": count})
        return JSONResponse({"success": True, "data": data})

    async def list_users(self, request: Request) -> Response:
        page = max(1, int(request.query_params.get("page", 1)))
        limit = max(1, int(request.query_params.get("limit", 20)))
        users = list(self.users.values())
        # routes/admin.ts @747660b5: ?search= matches email OR username, contains, insensitive
        search = request.query_params.get("search", "").strip().lower()
        if search:
            users = [u for u in users if search in u["email"].lower()
                     or search in u["username"].lower()]
        return JSONResponse({
            "users": users[(page - 1) * limit: page * limit],
            "pagination": {"page": page, "limit": limit, "total": len(users),
                           "totalPages": -(-len(users) // limit)},
        })

    async def create_user(self, request: Request) -> Response:
        body = await json_body(request)
        email, username, password = body.get("email"), body.get("username"), body.get("password")
        if not email or not username or not password:
            return error("email, username, and password are required", 400)
        if len(str(password)) < 8:
            return error("Password must be at least 8 characters", 400)
        if any(u["email"] == email or u["username"] == username for u in self.users.values()):
            return error("Email or username already in use", 409)
        now = iso(time.time())
        user_id = f"cuser{len(self.users) + 1:04d}{self.random.randrange(16**6):06x}"
        user = {"id": user_id, "email": str(email).lower(), "username": str(username),
                "createdAt": now, "updatedAt": now, "roles": []}
        self.users[user_id] = user
        return JSONResponse({**user, "warning": None}, status_code=201)


def _validate_create(body: dict[str, Any]) -> list[dict[str, str]]:
    """serverCreateSchema's checks with zod 4's messages, in the schema's field order."""
    issues: list[dict[str, str]] = []

    def add(field_name: str, message: str) -> None:
        issues.append({"field": field_name, "message": message})

    def string(name: str, required: bool = True) -> None:
        value = body.get(name)
        if value is None:
            if required:
                add(name, f"Invalid input: expected string, received "
                          f"{'undefined' if name not in body else 'null'}")
        elif not isinstance(value, str):
            add(name, f"Invalid input: expected string, received {_zod_type(value)}")
        elif not value:
            add(name, {"templateId": "Template ID is required", "nodeId": "Node ID is required",
                       "locationId": "Location ID is required",
                       "name": "Server name is required"}.get(name, "Too small"))

    def integer(name: str, low: int, high: int, required: bool = True) -> None:
        value = body.get(name)
        if value is None:
            if required:
                add(name, "Invalid input: expected number, received undefined")
        elif isinstance(value, bool) or not isinstance(value, int | float):
            add(name, f"Invalid input: expected number, received {_zod_type(value)}")
        elif value != int(value):
            add(name, "Invalid input: expected int, received number")
        elif value < low:
            add(name, f"Too small: expected number to be >={low}")
        elif value > high:
            add(name, f"Too big: expected number to be <={high}")

    string("name")
    if isinstance(body.get("name"), str) and body["name"]:
        if len(body["name"]) > 100:
            add("name", "Server name must be at most 100 characters")
        elif not SERVER_NAME.match(body["name"]):
            add("name", "Server name can only contain letters, numbers, spaces, hyphens, "
                        "and underscores")
    string("templateId")
    string("nodeId")
    string("locationId")
    string("ownerId", required=False)
    integer("primaryPort", 1, 65535)
    integer("allocatedMemoryMb", 512, 131072)
    integer("allocatedCpuCores", 1, 128)
    integer("allocatedDiskMb", 1024, 1048576)
    integer("backupAllocationMb", 0, 1048576, required=False)
    mode = body.get("networkMode")
    if mode is not None and mode not in NETWORK_MODES:
        add("networkMode", "Invalid option: expected one of " +
            "|".join(f'"{m}"' for m in NETWORK_MODES))
    body.setdefault("networkMode", "mc-lan-static")
    return issues


def _effective(maximum: int, overallocate_percent: int) -> float:
    """core.ts: -1 disables the check, else max * (1 + percent/100)."""
    if overallocate_percent == -1:
        return float("inf")
    return maximum * (1 + overallocate_percent / 100)


def _zod_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "null"
