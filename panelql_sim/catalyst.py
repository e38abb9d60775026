"""Simulated Catalyst game panel (Fastify backend), per upstream-apis.md §7 and seed 000.

Speaks the real envelopes: ``{"success":true,"data":…}`` for most routes, bare ``{"error":…}``
for failures, ``{"success":false,"error":…}`` for API-key failures, and the backup list without
any envelope. ``GET /api/servers`` returns every server with its latest metrics and no paging.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from panelql_sim.framework import Knobs, SimPanel, iso, json_body

# Which actions each state allows (ServerStateMachine.TRANSITIONS, simplified to what we use).
ALLOWED = {
    "start": {"stopped", "crashed"},
    "stop": {"running", "starting"},
    "restart": {"running"},
    "kill": {"running", "starting", "stopping"},
    "install": {"stopped", "error", "crashed"},
}


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
    suspended_at: float | None = None
    suspension_reason: str | None = None
    access: dict[str, list[str]] = field(default_factory=dict)
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))

    def to_json(self, metrics: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id, "uuid": self.uuid, "name": self.name, "description": None,
            "templateId": "minecraft-paper", "nodeId": self.node_id,
            "locationId": self.location_id, "ownerId": self.owner_id, "status": self.status,
            "suspendedAt": iso(self.suspended_at) if self.suspended_at else None,
            "suspensionReason": self.suspension_reason,
            "allocatedMemoryMb": self.memory_mb, "allocatedCpuCores": self.cpu_cores,
            "allocatedDiskMb": self.disk_mb, "networkMode": "bridge",
            "primaryPort": self.port, "primaryIp": "10.0.0.10",
            "createdAt": iso(self.created), "updatedAt": iso(self.created),
        }
        if metrics:
            running = self.status == "running"
            body.update(
                cpuPercent=round(12.5 + (hash(self.id) % 40), 1) if running else 0,
                memoryUsageMb=self.memory_mb // 2 if running else 0,
                diskUsageMb=self.disk_mb // 4, diskTotalMb=self.disk_mb,
            )
        return body


class CatalystSim(SimPanel):
    name = "catalyst"

    def __init__(
        self, *, api_key: str = "catalyst_demo_key", servers: int = 24, nodes: int = 3,
        users: int = 8, seed: int = 1, knobs: Knobs | None = None,
    ) -> None:
        super().__init__(seed=seed, knobs=knobs)
        self.api_key = api_key
        self.nodes: dict[str, dict[str, Any]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.servers: dict[str, CatalystServer] = {}
        self.backups: dict[str, dict[str, Any]] = {}
        self._seed(servers, nodes, users)

    # -- data ---------------------------------------------------------------------------------
    def _seed(self, servers: int, nodes: int, users: int) -> None:
        regions = ["us-east", "eu-west", "ap-south"]
        now = time.time() - 86400 * 30
        for i in range(nodes):
            node_id = f"cnode{i + 1:04d}"
            self.nodes[node_id] = {
                "id": node_id, "name": f"game-node-{i + 1}", "description": None,
                "locationId": regions[i % len(regions)], "hostname": f"node{i + 1}.catalyst.test",
                "publicAddress": f"203.0.113.{10 + i}", "maxMemoryMb": 65536, "maxCpuCores": 16,
                "isOnline": i != nodes - 1 or nodes < 3, "lastSeenAt": iso(now),
                "serverDataDir": "/var/lib/catalyst/servers",
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
        node_ids, user_ids = list(self.nodes), list(self.users)
        for i in range(servers):
            self.add_server(
                name=f"mc-{i + 1:03d}", node_id=node_ids[i % len(node_ids)],
                owner_id=user_ids[i % len(user_ids)], status=states[i % len(states)],
                memory_mb=2048 * (1 + i % 4), cpu_cores=1 + i % 4, disk_mb=10240,
            )
        for server in list(self.servers.values())[: max(1, servers // 3)]:
            for n in range(2):
                self.add_backup(server.id, f"nightly-{n + 1}", done=True)

    def add_server(self, *, name: str, node_id: str, owner_id: str, status: str,
                   memory_mb: int, cpu_cores: int, disk_mb: int) -> CatalystServer:
        sid = f"csrv{len(self.servers) + 1:05d}{self.random.randrange(16**6):06x}"
        server = CatalystServer(
            id=sid, name=name, node_id=node_id, location_id=self.nodes[node_id]["locationId"],
            owner_id=owner_id, status=status, memory_mb=memory_mb, cpu_cores=cpu_cores,
            disk_mb=disk_mb, port=25565 + len(self.servers), created=time.time() - 86400,
        )
        if status == "suspended":
            server.suspended_at = time.time() - 3600
            server.suspension_reason = "Payment overdue - Invoice #1001"
        self.servers[sid] = server
        return server

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
        key = request.headers.get("x-api-key")
        auth = request.headers.get("authorization", "")
        if key is None and auth.startswith("Bearer "):
            key = auth[len("Bearer "):]
        if key != self.api_key:
            return JSONResponse({"success": False, "error": "Invalid API key"}, status_code=401)
        return None

    def rate_limited(self, retry_after: int) -> Response:
        return JSONResponse(
            {"success": False, "error": "Rate limit exceeded for API key",
             "retryAfter": retry_after},
            status_code=429, headers={"retry-after": str(retry_after)},
        )

    def routes(self) -> list[BaseRoute]:
        s = "/api/servers/{sid}"
        return [
            Route("/api/servers", self.list_servers, methods=["GET"]),
            Route("/api/servers", self.create_server, methods=["POST"]),
            Route(s, self.get_server, methods=["GET"]),
            Route(s, self.update_server, methods=["PUT", "PATCH"]),
            Route(s, self.delete_server, methods=["DELETE"]),
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
            Route("/api/admin/users", self.list_users, methods=["GET"]),
        ]

    def _server(self, request: Request) -> CatalystServer | Response:
        server = self.servers.get(request.path_params["sid"])
        if server is None:
            return JSONResponse({"error": "Server not found"}, status_code=404)
        return server

    async def list_servers(self, request: Request) -> Response:
        user_id = request.query_params.get("userId")
        data = [s.to_json(metrics=True) for s in self.servers.values()
                if user_id is None or s.owner_id == user_id]
        return JSONResponse({"success": True, "data": data})

    async def get_server(self, request: Request) -> Response:
        server = self._server(request)
        if isinstance(server, Response):
            return server
        body = server.to_json(metrics=True)
        body["node"] = self.nodes[server.node_id]
        return JSONResponse({"success": True, "data": body})

    async def create_server(self, request: Request) -> Response:
        body = await json_body(request)
        missing = [k for k in ("name", "templateId", "nodeId", "allocatedMemoryMb",
                               "allocatedCpuCores", "allocatedDiskMb", "primaryPort")
                   if k not in body]
        if missing:
            return JSONResponse({"error": f"Missing required fields: {', '.join(missing)}"},
                                status_code=400)
        if body["nodeId"] not in self.nodes:
            return JSONResponse({"error": "Node not found"}, status_code=404)
        owner = next(iter(self.users))  # the route uses the caller as owner
        server = self.add_server(
            name=str(body["name"]), node_id=body["nodeId"], owner_id=owner, status="installing",
            memory_mb=int(body["allocatedMemoryMb"]), cpu_cores=int(body["allocatedCpuCores"]),
            disk_mb=int(body["allocatedDiskMb"]),
        )
        self.later(lambda: self._settle(server, "installing", "stopped"))
        return JSONResponse({"success": True, "data": server.to_json(metrics=False)},
                            status_code=201)

    def _settle(self, server: CatalystServer, expected: str, new: str) -> None:
        if server.status == expected:
            server.status = new

    async def update_server(self, request: Request) -> Response:
        server = self._server(request)
        if isinstance(server, Response):
            return server
        body = await json_body(request)
        for key, attr in (("allocatedMemoryMb", "memory_mb"), ("allocatedCpuCores", "cpu_cores"),
                          ("allocatedDiskMb", "disk_mb"), ("name", "name")):
            if key in body:
                setattr(server, attr, body[key])
        return JSONResponse({"success": True, "data": server.to_json(metrics=False)})

    async def delete_server(self, request: Request) -> Response:
        server = self._server(request)
        if isinstance(server, Response):
            return server
        if server.status in ("running", "starting", "stopping"):
            return JSONResponse({"error": "Server must be stopped before deletion"},
                                status_code=409)
        del self.servers[server.id]
        return JSONResponse({"success": True, "message": "Server deleted"})

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
            return JSONResponse({"error": "Not Found"}, status_code=404)
        if server.status == "suspended":
            return JSONResponse({"error": "Server is suspended"}, status_code=423)
        if server.status not in ALLOWED[action]:
            return JSONResponse({"error": f"Cannot {action} server in {server.status} state"},
                                status_code=409)
        if not self.nodes[server.node_id]["isOnline"]:
            return JSONResponse({"error": "Node is offline"}, status_code=503)
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
        if server.status == "suspended":
            return JSONResponse({"error": "Server is already suspended"}, status_code=409)
        body = await json_body(request)
        server.status = "suspended"
        server.suspended_at = time.time()
        server.suspension_reason = body.get("reason")
        return JSONResponse({"success": True, "data": server.to_json(metrics=False)})

    def _unsuspend(self, server: CatalystServer) -> Response:
        if server.status != "suspended":
            return JSONResponse({"error": "Server is not suspended"}, status_code=409)
        server.status, server.suspended_at, server.suspension_reason = "stopped", None, None
        return JSONResponse({"success": True, "data": server.to_json(metrics=False)})

    async def grant_access(self, request: Request) -> Response:
        server = self._server(request)
        if isinstance(server, Response):
            return server
        body = await json_body(request)
        if body.get("userId") not in self.users:
            return JSONResponse({"error": "User not found"}, status_code=404)
        server.access[body["userId"]] = list(body.get("permissions") or [])
        granted = {"userId": body["userId"], "permissions": server.access[body["userId"]]}
        return JSONResponse({"success": True, "data": granted})

    async def revoke_access(self, request: Request) -> Response:
        server = self._server(request)
        if isinstance(server, Response):
            return server
        if server.access.pop(request.path_params["uid"], None) is None:
            return JSONResponse({"error": "Access entry not found"}, status_code=404)
        return JSONResponse({"success": True, "message": "Access revoked"})

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
        if server.status == "suspended":
            return JSONResponse({"error": "Server is suspended"}, status_code=423)
        body = await json_body(request)
        backup = self.add_backup(server.id, str(body.get("name") or "backup"), done=False)

        def finish() -> None:
            backup.update(sizeMb=640, checksum=f"sha256:{backup['id']}")
        self.later(finish)
        return JSONResponse({"success": True, "message": "Backup creation started",
                             "backupName": backup["name"], "backupId": backup["id"]})

    def _backup(self, request: Request) -> dict[str, Any] | Response:
        backup = self.backups.get(request.path_params["bid"])
        if backup is None or backup["serverId"] != request.path_params["sid"]:
            return JSONResponse({"error": "Backup not found"}, status_code=404)
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
        backup = self._backup(request)
        if isinstance(server, Response):
            return server
        if isinstance(backup, Response):
            return backup
        if server.status == "suspended":
            return JSONResponse({"error": "Server is suspended"}, status_code=423)
        if server.status not in ("stopped", "crashed"):
            return JSONResponse({"error": "Server must be stopped to restore"}, status_code=409)
        backup["restoredAt"] = iso(time.time())
        return JSONResponse({"success": True, "message": "Backup restoration started"})

    async def list_nodes(self, request: Request) -> Response:
        return JSONResponse({"success": True, "data": list(self.nodes.values())})

    async def get_node(self, request: Request) -> Response:
        node = self.nodes.get(request.path_params["nid"])
        if node is None:
            return JSONResponse({"error": "Node not found"}, status_code=404)
        return JSONResponse({"success": True, "data": node})

    async def list_users(self, request: Request) -> Response:
        page = max(1, int(request.query_params.get("page", 1)))
        limit = max(1, int(request.query_params.get("limit", 20)))
        users = list(self.users.values())
        return JSONResponse({
            "users": users[(page - 1) * limit: page * limit],
            "pagination": {"page": page, "limit": limit, "total": len(users),
                           "totalPages": -(-len(users) // limit)},
        })
