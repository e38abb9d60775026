"""Simulated Pterodactyl Panel (Application + Client API), per pterodactyl/panel @706db62c.

Speaks the panel's Fractal envelopes (``{"object","attributes"}`` items, ``{"object":"list",
"data","meta":{"pagination"}}`` lists, includes under ``attributes.relationships``), its error
body ``{"errors":[{"code","status","detail","meta"?}]}`` with ``status`` as a string, 204s for
actions, 422 validation errors, 409 ``ServerStateConflictException`` on the Client API, 400 for
backup-state errors, and Laravel's throttle headers. Keys: ``ptla_`` keys only work on
``/api/application``, ``ptlc_`` keys only on ``/api/client`` (stricter than the real panel,
which lets a root admin's client key through to the Application API).

State machines (all delays = ``knobs.transition_seconds``): install ``installing → null``;
power ``starting → running``, ``stopping → offline``, restart ``stopping → starting →
running``; restore ``restoring_backup → null``; backups ``completed_at`` filled in later.
"""

from __future__ import annotations

import time
import uuid as uuidlib
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from panelql_sim.framework import Knobs, SimPanel, json_body
from panelql_sim.pterodactyl_users import external_user, store_user

APP_LIMIT, CLIENT_LIMIT = 240, 720
SIGNALS = ("start", "stop", "restart", "kill")
# app/Models/Permission.php @706db62c: every prefix.key Permission::permissions() lists.
PERMISSIONS = frozenset({
    "websocket.connect",
    "control.console", "control.start", "control.stop", "control.restart",
    "user.create", "user.read", "user.update", "user.delete",
    "file.create", "file.read", "file.read-content", "file.update", "file.delete",
    "file.archive", "file.sftp",
    "backup.create", "backup.read", "backup.delete", "backup.download", "backup.restore",
    "allocation.read", "allocation.create", "allocation.update", "allocation.delete",
    "startup.read", "startup.update", "startup.docker-image",
    "database.create", "database.read", "database.update", "database.delete",
    "database.view_password",
    "schedule.create", "schedule.read", "schedule.update", "schedule.delete",
    "settings.rename", "settings.reinstall",
    "activity.read",
})
CONFLICT_DETAIL = {
    "suspended": "This server is currently suspended and the functionality requested is "
                 "unavailable.",
    "maintenance": "The node of this server is currently under maintenance and the "
                   "functionality requested is unavailable.",
    "installing": "This server has not yet completed its installation process, please try "
                  "again later.",
    "restoring": "This server is currently restoring from a backup, please try again later.",
    "transfer": "This server is currently being transferred to a new machine, please try "
                "again later.",
}


def atom(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ts))


def error(status: int, code: str, detail: str, headers: dict[str, str] | None = None,
          meta: dict[str, str] | None = None) -> JSONResponse:
    entry: dict[str, Any] = {"code": code, "status": str(status), "detail": detail}
    if meta:
        entry["meta"] = meta
    return JSONResponse({"errors": [entry]}, status_code=status, headers=headers)


def invalid(*failures: tuple[str, str, str]) -> JSONResponse:
    """422 with one entry per (field, rule, detail), as ``Handler::invalidJson`` renders it."""
    return JSONResponse({"errors": [
        {"code": "ValidationException", "status": "422", "detail": detail,
         "meta": {"source_field": name, "rule": rule}} for name, rule, detail in failures
    ]}, status_code=422)


def not_found() -> JSONResponse:
    return error(404, "NotFoundHttpException",
                 "The requested resource could not be found on the server.")


def per_page_out_of_range(bound: int) -> JSONResponse:
    # QueryValueOutOfRangeHttpException (develop @64c78971): a 400 whose message is built in
    # single-quoted PHP, where \" is not an escape, so the backslashes reach the client.
    return error(400, "QueryValueOutOfRangeHttpException",
                 f'\\"per_page\\" query parameter must be between 1 and {bound}')


def item(obj: str, attributes: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse({"object": obj, "attributes": attributes}, status_code=status)


def no_content() -> Response:
    return Response(status_code=204)


@dataclass
class Server:
    id: int
    name: str
    node_id: int
    user_id: int
    allocation_id: int
    status: str | None
    power: str = "offline"  # Wings process state
    egg: int = 1
    external_id: str | None = None
    limits: dict[str, Any] = field(default_factory=dict)
    feature_limits: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    image: str = "ghcr.io/pterodactyl/yolks:java_17"
    startup: str = "java -Xms128M -Xmx{{SERVER_MEMORY}}M -jar {{SERVER_JARFILE}}"
    transferring: bool = False
    subusers: dict[str, list[str]] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    uuid: str = field(default_factory=lambda: str(uuidlib.uuid4()))
    started: float = field(default_factory=time.time)

    @property
    def identifier(self) -> str:
        return self.uuid[:8]


class PterodactylSim(SimPanel):
    name = "pterodactyl"

    def __init__(
        self, *, application_key: str = "ptla_demo_key", client_key: str = "ptlc_demo_key",
        servers: int = 36, nodes: int = 4, users: int = 10, seed: int = 1,
        knobs: Knobs | None = None,
    ) -> None:
        super().__init__(seed=seed, knobs=knobs)
        self.application_key = application_key
        self.client_key = client_key
        # The 1.x release line (1.0-develop @706db62c) takes any per_page on Application
        # lists; the develop branch (v2, @64c78971, e.g. Servers/ServerController::index)
        # refuses one outside 1..100. None here is 1.x; 100 plays develop.
        self.app_per_page_bound: int | None = None
        self.locations: dict[int, dict[str, Any]] = {}
        self.nodes: dict[int, dict[str, Any]] = {}
        self.allocations: dict[int, dict[str, Any]] = {}
        self.users: dict[int, dict[str, Any]] = {}
        self.eggs: dict[int, dict[str, Any]] = {}
        self.servers: dict[int, Server] = {}
        self.backups: dict[str, dict[str, Any]] = {}
        self._boot: list[Callable[[], None]] = []  # transitions to start on the first request
        self._seed(servers, nodes, users)

    # -- seeded data --------------------------------------------------------------------------
    def _seed(self, servers: int, nodes: int, users: int) -> None:
        now = time.time() - 86400 * 30
        self.seeded_at = now
        for i, (short, long) in enumerate([("us.nyc", "New York"), ("eu.ams", "Amsterdam"),
                                           ("ap.sgp", "Singapore")], start=1):
            self.locations[i] = {"id": i, "short": short, "long": long,
                                 "created_at": atom(now), "updated_at": atom(now)}
        overallocate = [0, 20, -1, 10]
        for n in range(1, nodes + 1):
            self.nodes[n] = {
                "id": n, "uuid": str(uuidlib.UUID(int=self.random.getrandbits(128))),
                "public": True, "name": f"wings-{n}", "description": None,
                "location_id": 1 + (n - 1) % len(self.locations), "fqdn": f"node{n}.ptero.test",
                "scheme": "https", "behind_proxy": False,
                "maintenance_mode": nodes >= 4 and n == nodes,
                "memory": 32768, "memory_overallocate": overallocate[(n - 1) % 4],
                "disk": 512000, "disk_overallocate": 0, "upload_size": 100,
                "daemon_listen": 8080, "daemon_sftp": 2022, "daemon_base": "/var/lib/pterodactyl",
                "created_at": atom(now), "updated_at": atom(now),
            }
            for port in range(25565, 25565 + max(24, servers)):
                aid = len(self.allocations) + 1
                self.allocations[aid] = {"id": aid, "node": n, "ip": f"203.0.113.{10 + n}",
                                         "alias": None, "port": port, "notes": None,
                                         "server": None}
        for u in range(1, users + 1):
            self.users[u] = {
                "id": u, "external_id": f"billing-{u}" if u > 1 else None,
                "uuid": str(uuidlib.UUID(int=self.random.getrandbits(128))),
                "username": "admin" if u == 1 else f"player{u}",
                "email": "admin@example.com" if u == 1 else f"player{u}@example.com",
                "first_name": "Ada" if u == 1 else "Player", "last_name": str(u),
                "language": "en", "root_admin": u == 1, "2fa": False,
                "created_at": atom(now), "updated_at": atom(now),
            }
        self.nests = {1: ("Minecraft", "Minecraft - the classic game from Mojang."),
                      2: ("Rust", "Rust - A game where you must fight to survive.")}
        self.eggs[1] = {"id": 1, "nest": 1, "name": "Paper", "docker_image": Server.image,
                        "startup": Server.startup, "description": "High performance Spigot fork",
                        "variables": [("SERVER_JARFILE", "server.jar"), ("BUILD_NUMBER", "latest")]}
        self.eggs[2] = {"id": 2, "nest": 1, "name": "Forge Minecraft",
                        "docker_image": "ghcr.io/pterodactyl/yolks:java_17",
                        "startup": "java -Xms128M -Xmx{{SERVER_MEMORY}}M -jar {{SERVER_JARFILE}}",
                        "description": "Minecraft Forge Server",
                        "variables": [("SERVER_JARFILE", "server.jar"), ("MC_VERSION", "latest")]}
        self.eggs[3] = {"id": 3, "nest": 2, "name": "Rust",
                        "docker_image": "ghcr.io/pterodactyl/games:rust",
                        "startup": "./RustDedicated -batchmode +server.port {{SERVER_PORT}}",
                        "description": "The only aim in Rust is to survive.",
                        "variables": [("HOSTNAME", "A Rust Server"), ("LEVEL", "Procedural Map")]}
        # (app status, Wings state): every raw state of §0.1, several times over.
        states: list[tuple[str | None, str]] = [
            (None, "running"), (None, "running"), (None, "offline"), ("installing", "offline"),
            ("suspended", "offline"), (None, "starting"), ("install_failed", "offline"),
            (None, "running"), ("restoring_backup", "offline"), (None, "stopping"),
            ("reinstall_failed", "offline"), (None, "offline"),
        ]
        live_nodes = [n for n, node in self.nodes.items() if not node["maintenance_mode"]]
        for i in range(servers):
            status, power = states[i % len(states)]
            node_id = live_nodes[i % len(live_nodes)] if i % 11 != 10 else nodes
            server = self.add_server(
                name=f"mc-{i + 1:03d}", node_id=node_id,
                user_id=2 + i % max(1, users - 1) if users > 1 else 1,
                status=status, power=power, memory=1024 * (1 + i % 4), disk=10240,
                cpu=100 * (1 + i % 3), external_id=f"svc-{1000 + i}" if i % 2 else None,
            )
            server.transferring = i == 13
            self._boot.append(partial(self._settle_seed, server))
        for server in list(self.servers.values())[: max(1, servers // 3)]:
            self._add_backup(server, "nightly-1", done=True)
            self._add_backup(server, "nightly-2", done=True, ok=server.id % 4 != 0)
        first = next(iter(self.servers.values()), None)
        if first is not None:
            pending = self._add_backup(first, "pre-update", done=False)
            self._boot.append(lambda: self._finish_backup(pending))

    def add_server(self, *, name: str, node_id: int, user_id: int, status: str | None,
                   power: str = "offline", memory: int = 1024, disk: int = 10240,
                   cpu: int = 100, external_id: str | None = None,
                   allocation_id: int | None = None) -> Server:
        if allocation_id is None:
            allocation_id = next(a["id"] for a in self.allocations.values()
                                 if a["node"] == node_id and a["server"] is None)
        sid = max(self.servers, default=0) + 1
        server = Server(
            id=sid, name=name, node_id=node_id, user_id=user_id, allocation_id=allocation_id,
            status=status, power=power, external_id=external_id,
            limits={"memory": memory, "swap": 0, "disk": disk, "io": 500, "cpu": cpu,
                    "threads": None, "oom_disabled": True},
            feature_limits={"databases": 1, "allocations": 1, "backups": 5},
            environment={"SERVER_JARFILE": "server.jar", "BUILD_NUMBER": "latest"},
            uuid=str(uuidlib.UUID(int=self.random.getrandbits(128))),
        )
        self.allocations[allocation_id]["server"] = sid
        self.servers[sid] = server
        return server

    def _settle_seed(self, server: Server) -> None:
        if server.status in ("installing", "restoring_backup"):
            self.later(lambda: self._set_status(server, server.status, None))
        if server.power in ("starting", "stopping"):
            self._power_settles(server)

    def _add_backup(self, server: Server, name: str, *, done: bool,
                    ok: bool = True) -> dict[str, Any]:
        bid = str(uuidlib.UUID(int=self.random.getrandbits(128)))
        created = time.time() - (3600 if done else 0)
        backup = {
            "uuid": bid, "server": server.id, "name": name, "ignored_files": [],
            "is_successful": done and ok, "is_locked": False,
            "checksum": f"sha1:{bid[:12]}" if done and ok else None,
            "bytes": 734003200 if done and ok else 0,
            "created_at": atom(created), "completed_at": atom(created + 60) if done else None,
        }
        self.backups[bid] = backup
        return backup

    def _finish_backup(self, backup: dict[str, Any]) -> None:
        def done() -> None:
            ok = "fail" not in backup["name"]
            backup.update(is_successful=ok, completed_at=atom(time.time()),
                          checksum=f"sha1:{backup['uuid'][:12]}" if ok else None,
                          bytes=681574400 if ok else 0)
        self.later(done)

    def _set_status(self, server: Server, expected: str | None, new: str | None) -> None:
        if server.status == expected:
            server.status = new

    def _power_settles(self, server: Server) -> None:
        target = {"starting": "running", "stopping": "offline"}

        def step() -> None:
            if server.power in target:
                server.power = target[server.power]
                if server.power == "running":
                    server.started = time.time()
        self.later(step)

    # -- HTTP plumbing ------------------------------------------------------------------------
    def authorize(self, request: Request) -> Response | None:
        if self._boot:  # seed transitions need the serving loop, which exists only now
            boot, self._boot = self._boot, []
            for fn in boot:
                fn()
        auth = request.headers.get("authorization", "")
        key = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
        client_route = request.url.path.startswith("/api/client")
        if key not in (self.application_key, self.client_key):
            return error(401, "AuthenticationException", "Unauthenticated.")
        if client_route and key == self.application_key:
            return error(403, "AccessDeniedHttpException", "You are attempting to use an "
                         "application API key on an endpoint that requires a client API key.")
        if not client_route and key == self.client_key:
            return error(403, "AccessDeniedHttpException", "This action is unauthorized.")
        return None

    def app(self) -> ASGIApp:
        """The framework's app, plus Laravel's throttle headers on every API answer."""
        inner = super().app()
        hits: dict[str, list[float]] = {"application": [], "client": []}

        async def throttled(scope: Scope, receive: Receive, send: Send) -> None:
            path = scope.get("path", "")
            if scope["type"] != "http" or not path.startswith("/api/"):
                await inner(scope, receive, send)
                return
            api = "client" if path.startswith("/api/client") else "application"
            now = time.monotonic()
            hits[api] = [t for t in hits[api] if now - t < 60.0] + [now]
            limit = self.knobs.rate_limit_per_minute or (
                CLIENT_LIMIT if api == "client" else APP_LIMIT)

            async def send_with_headers(message: Message) -> None:
                if message["type"] == "http.response.start" and message["status"] != 429:
                    headers = MutableHeaders(scope=message)
                    headers["X-RateLimit-Limit"] = str(limit)
                    headers["X-RateLimit-Remaining"] = str(max(0, limit - len(hits[api])))
                await send(message)
            await inner(scope, receive, send_with_headers)
        return throttled

    def rate_limited(self, retry_after: int) -> Response:
        limit = self.knobs.rate_limit_per_minute or APP_LIMIT
        return error(429, "ThrottleRequestsException", "Too Many Attempts.", headers={
            "Retry-After": str(retry_after), "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + retry_after),
        })

    def server_error(self) -> Response:
        return error(500, "HttpException", "An unexpected error was encountered while "
                     "processing this request, please try again.")

    def routes(self) -> list[BaseRoute]:
        s, c = "/servers/{sid:int}", "/servers/{ident}"
        app = [
            Route("/servers", self.list_servers, methods=["GET"]),
            Route("/servers", self.create_server, methods=["POST"]),
            Route(s, self.get_server, methods=["GET"]),
            Route(s, self.delete_server, methods=["DELETE"]),
            Route(s + "/force", self.delete_server, methods=["DELETE"]),
            Route(s + "/build", self.update_build, methods=["PATCH"]),
            Route(s + "/startup", self.update_startup, methods=["PATCH"]),
            Route(s + "/{action:str}", self.manage, methods=["POST"]),
            Route("/nodes", self.list_nodes, methods=["GET"]),
            Route("/nodes/{nid:int}", self.get_node, methods=["GET"]),
            Route("/nodes/{nid:int}/allocations", self.list_allocations, methods=["GET"]),
            Route("/locations", self.list_locations, methods=["GET"]),
            Route("/users", self.list_users, methods=["GET"]),
            Route("/users", self.create_user, methods=["POST"]),
            Route("/users/{uid:int}", self.get_user, methods=["GET"]),
            Route("/users/external/{external_id}", self.external_user, methods=["GET"]),
            Route("/nests", self.list_nests, methods=["GET"]),
            Route("/nests/{nest:int}/eggs", self.list_eggs, methods=["GET"]),
            Route("/nests/{nest:int}/eggs/{egg:int}", self.get_egg, methods=["GET"]),
        ]
        client = [
            Route("/account", self.account, methods=["GET"]),
            Route(c, self.client_view, methods=["GET"]),
            Route(c + "/resources", self.resources, methods=["GET"]),
            Route(c + "/power", self.power, methods=["POST"]),
            Route(c + "/backups", self.list_backups, methods=["GET"]),
            Route(c + "/backups", self.create_backup, methods=["POST"]),
            Route(c + "/backups/{bid}", self.get_backup, methods=["GET"]),
            Route(c + "/backups/{bid}", self.delete_backup, methods=["DELETE"]),
            Route(c + "/backups/{bid}/restore", self.restore_backup, methods=["POST"]),
            Route(c + "/users", self.list_subusers, methods=["GET"]),
            Route(c + "/users", self.create_subuser, methods=["POST"]),
            Route(c + "/users/{uuid}", self.update_subuser, methods=["POST"]),
            Route(c + "/users/{uuid}", self.delete_subuser, methods=["DELETE"]),
        ]
        return [Mount("/api/application", routes=app), Mount("/api/client", routes=client)]

    def paginate(self, request: Request, items: list[dict[str, Any]], *, default: int = 50,
                 cap: int | None = None, meta: dict[str, Any] | None = None) -> JSONResponse:
        bound = self.app_per_page_bound
        if bound is not None and request.url.path.startswith("/api/application"):
            asked = request.query_params.get("per_page") or "10"
            if not asked.lstrip("-").isdigit() or not 1 <= int(asked) <= bound:
                return per_page_out_of_range(bound)
        try:
            per_page = max(1, int(request.query_params.get("per_page") or default))
            page = max(1, int(request.query_params.get("page") or 1))
        except ValueError:
            per_page, page = default, 1
        if cap is not None:
            per_page = min(per_page, cap)
        total_pages = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page: page * per_page]
        links: dict[str, str] = {}
        base = str(request.url.remove_query_params("page"))
        sep = "&" if "?" in base else "?"
        if page < total_pages:
            links["next"] = f"{base}{sep}page={page + 1}"
        if page > 1:
            links["previous"] = f"{base}{sep}page={page - 1}"
        return JSONResponse({"object": "list", "data": chunk, "meta": {**(meta or {}),
            "pagination": {"total": len(items), "count": len(chunk), "per_page": per_page,
                           "current_page": page, "total_pages": total_pages,
                           "links": links}}})

    def includes(self, request: Request) -> set[str]:
        return {p.strip() for p in request.query_params.get("include", "").split(",") if p}

    # -- transformers -------------------------------------------------------------------------
    def server_json(self, server: Server,
                    include: AbstractSet[str] = frozenset()) -> dict[str, Any]:
        # ``include`` defaults to an immutable empty set: only membership is tested.
        node = self.nodes[server.node_id]
        attrs: dict[str, Any] = {
            "id": server.id, "external_id": server.external_id, "uuid": server.uuid,
            "identifier": server.identifier, "name": server.name, "description": "",
            "status": server.status, "suspended": server.status == "suspended",
            "limits": dict(server.limits), "feature_limits": dict(server.feature_limits),
            "user": server.user_id, "node": server.node_id, "allocation": server.allocation_id,
            "nest": self.eggs.get(server.egg, {"nest": 1})["nest"], "egg": server.egg,
            "container": {"startup_command": server.startup, "image": server.image,
                          "installed": 0 if server.status in ("installing", "install_failed")
                          else 1,
                          "environment": {**server.environment, "STARTUP": server.startup,
                                          "P_SERVER_LOCATION": self.locations[
                                              node["location_id"]]["short"],
                                          "P_SERVER_UUID": server.uuid}},
            "updated_at": atom(server.created), "created_at": atom(server.created),
        }
        rel: dict[str, Any] = {}
        if "allocations" in include:
            rel["allocations"] = self.list_of("allocation", [
                self.allocation_json(a) for a in self.allocations.values()
                if a["server"] == server.id])
        if "user" in include:
            rel["user"] = {"object": "user", "attributes": self.users[server.user_id]}
        if "node" in include:
            rel["node"] = {"object": "node", "attributes": self.node_json(node)}
        if "location" in include:
            rel["location"] = {"object": "location",
                               "attributes": self.locations[node["location_id"]]}
        if rel:
            attrs["relationships"] = rel
        return attrs

    @staticmethod
    def list_of(obj: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        return {"object": "list", "data": [{"object": obj, "attributes": a} for a in items]}

    def allocation_json(self, alloc: dict[str, Any]) -> dict[str, Any]:
        return {"id": alloc["id"], "ip": alloc["ip"], "alias": alloc["alias"],
                "port": alloc["port"], "notes": alloc["notes"],
                "assigned": alloc["server"] is not None}

    def node_json(self, node: dict[str, Any],
                  include: AbstractSet[str] = frozenset()) -> dict[str, Any]:
        mine = [s for s in self.servers.values() if s.node_id == node["id"]]
        attrs = {**node, "allocated_resources": {
            "memory": sum(s.limits["memory"] for s in mine),
            "disk": sum(s.limits["disk"] for s in mine)}}
        if "location" in include:
            attrs["relationships"] = {"location": {
                "object": "location", "attributes": self.locations[node["location_id"]]}}
        return attrs

    def backup_json(self, backup: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in backup.items() if k != "server"}

    # -- Application API: servers -------------------------------------------------------------
    def _app_server(self, request: Request) -> Server | Response:
        server = self.servers.get(request.path_params["sid"])
        return not_found() if server is None else server

    async def list_servers(self, request: Request) -> Response:
        include = self.includes(request)
        data = [{"object": "server", "attributes": self.server_json(s, include)}
                for s in self.servers.values()]
        return self.paginate(request, data)

    async def get_server(self, request: Request) -> Response:
        server = self._app_server(request)
        if isinstance(server, Response):
            return server
        return item("server", self.server_json(server, self.includes(request)))

    async def manage(self, request: Request) -> Response:
        server = self._app_server(request)
        if isinstance(server, Response):
            return server
        action = request.path_params["action"]
        if action not in ("suspend", "unsuspend", "reinstall"):
            return not_found()
        if action == "reinstall":
            server.status, server.power = "installing", "offline"
            self.later(lambda: self._set_status(server, "installing", None))
            return no_content()
        if (action == "suspend") == (server.status == "suspended"):
            return no_content()  # SuspensionService::toggle: already in that state
        if server.transferring:
            return error(409, "ConflictHttpException", "Cannot toggle suspension status on a "
                         "server that is currently being transferred.")
        server.status = "suspended" if action == "suspend" else None
        if action == "suspend":
            server.power = "offline"  # Wings stops a server it is told is suspended
        return no_content()

    async def update_build(self, request: Request) -> Response:
        server = self._app_server(request)
        if isinstance(server, Response):
            return server
        body = await json_body(request)
        # Legacy top-level memory/disk/… are accepted when ``limits`` is absent.
        raw_limits = body.get("limits")
        limits: dict[str, Any] = raw_limits if isinstance(raw_limits, dict) else body
        failures = [(f, "required", f"The {f} field is required.")
                    for f in ("allocation", "feature_limits") if f not in body]
        failures += [(f"limits.{k}", "numeric", f"The limits.{k} must be a number.")
                     for k in ("memory", "disk", "cpu") if k in limits
                     and not isinstance(limits[k], int | float)]
        if failures:
            return invalid(*failures)
        for key in ("memory", "swap", "disk", "io", "cpu", "threads", "oom_disabled"):
            if key in limits:
                server.limits[key] = limits[key]
        server.feature_limits.update(body["feature_limits"] or {})
        return item("server", self.server_json(server, self.includes(request)))

    async def update_startup(self, request: Request) -> Response:
        """``PATCH /servers/{id}/startup`` as UpdateServerStartupRequest @706db62c validates
        it (startup and image required, environment present as an array, egg must exist,
        skip_scripts present as a boolean); the server takes the egg and its nest."""
        server = self._app_server(request)
        if isinstance(server, Response):
            return server
        body = await json_body(request)
        failures = [(f, "required", f"The {f} field is required.")
                    for f in ("startup", "image") if not isinstance(body.get(f), str)
                    or not body[f]]
        if not isinstance(body.get("environment"), dict | list):
            failures.append(("environment", "present", "The environment field must be present."))
        if not isinstance(body.get("skip_scripts"), bool):
            failures.append(("skip_scripts", "boolean",
                             "The skip scripts field must be true or false."))
        if body.get("egg") is not None and body.get("egg") not in self.eggs:
            failures.append(("egg", "exists", "The selected egg is invalid."))
        if failures:
            return invalid(*failures)
        if body.get("egg") is not None:
            server.egg = int(body["egg"])
        server.startup, server.image = body["startup"], body["image"]
        server.environment = dict(body["environment"] or {})
        return item("server", self.server_json(server, self.includes(request)))

    async def delete_server(self, request: Request) -> Response:
        server = self._app_server(request)
        if isinstance(server, Response):
            return server
        del self.servers[server.id]
        for alloc in self.allocations.values():
            if alloc["server"] == server.id:
                alloc["server"] = None
        self.backups = {k: b for k, b in self.backups.items() if b["server"] != server.id}
        return no_content()

    async def create_server(self, request: Request) -> Response:
        body = await json_body(request)
        failures = [(f, "required", f"The {f} field is required.")
                    for f in ("name", "user", "egg", "docker_image", "startup", "limits",
                              "feature_limits") if not body.get(f) and body.get(f) != 0]
        if "environment" not in body:
            failures.append(("environment", "present", "The environment field must be present."))
        raw_limits = body.get("limits")
        limits: dict[str, Any] = raw_limits if isinstance(raw_limits, dict) else {}
        failures += [(f"limits.{k}", "required", f"The limits.{k} field is required.")
                     for k in ("memory", "swap", "disk", "io", "cpu") if "limits" in body
                     and not isinstance(limits.get(k), int | float)]
        if body.get("user") is not None and body.get("user") not in self.users:
            failures.append(("user", "exists", "The selected user is invalid."))
        if body.get("egg") is not None and body.get("egg") not in self.eggs:
            failures.append(("egg", "exists", "The selected egg is invalid."))
        allocation_id, why = self._placement(body)
        if why:
            failures.append(why)
        if failures:
            return invalid(*failures)
        assert allocation_id is not None
        server = self.add_server(
            name=str(body["name"]), node_id=self.allocations[allocation_id]["node"],
            user_id=body["user"], status="installing", memory=int(limits["memory"]),
            disk=int(limits["disk"]), cpu=int(limits["cpu"]), external_id=body.get("external_id"),
            allocation_id=allocation_id,
        )
        server.egg, server.image, server.startup = body["egg"], body["docker_image"], \
            body["startup"]
        server.environment = dict(body.get("environment") or {})
        server.feature_limits = {"databases": 0, "allocations": 1, "backups": 0,
                                 **body["feature_limits"]}
        for extra in (body.get("allocation") or {}).get("additional") or []:
            if extra in self.allocations and self.allocations[extra]["server"] is None:
                self.allocations[extra]["server"] = server.id

        def installed() -> None:
            if server.status == "installing":
                server.status = None
                if body.get("start_on_completion"):
                    server.power = "starting"
                    self._power_settles(server)
        self.later(installed)
        return item("server", self.server_json(server, self.includes(request)), status=201)

    def _placement(self, body: dict[str, Any]) -> tuple[int | None, tuple[str, str, str] | None]:
        """The allocation to use: ``allocation.default``, or one found by ``deploy``."""
        deploy = body.get("deploy")
        if isinstance(deploy, dict):
            locations = deploy.get("locations") or list(self.locations)
            for alloc in self.allocations.values():
                node = self.nodes[alloc["node"]]
                if (alloc["server"] is None and node["location_id"] in locations
                        and not node["maintenance_mode"]):
                    return alloc["id"], None
            return None, ("deploy", "deployable", "No nodes satisfying the requirements "
                                                  "specified were found.")
        default = (body.get("allocation") or {}).get("default")
        if default is None:
            return None, ("allocation.default", "required",
                          "The allocation.default field is required.")
        if default not in self.allocations:
            return None, ("allocation.default", "exists",
                          "The selected allocation.default is invalid.")
        if self.allocations[default]["server"] is not None:
            return None, ("allocation.default", "unique",
                          "The allocation.default has already been taken.")
        return default, None

    # -- Application API: nodes, users, eggs --------------------------------------------------
    async def list_nodes(self, request: Request) -> Response:
        include = self.includes(request)
        return self.paginate(request, [{"object": "node", "attributes": self.node_json(n, include)}
                                       for n in self.nodes.values()])

    async def get_node(self, request: Request) -> Response:
        node = self.nodes.get(request.path_params["nid"])
        if node is None:
            return not_found()
        return item("node", self.node_json(node, self.includes(request)))

    async def list_allocations(self, request: Request) -> Response:
        nid = request.path_params["nid"]
        if nid not in self.nodes:
            return not_found()
        return self.paginate(request, [
            {"object": "allocation", "attributes": self.allocation_json(a)}
            for a in self.allocations.values() if a["node"] == nid])

    async def list_locations(self, request: Request) -> Response:
        return self.paginate(request, [{"object": "location", "attributes": loc}
                                       for loc in self.locations.values()])

    async def list_users(self, request: Request) -> Response:
        return self.paginate(request, [{"object": "user", "attributes": u}
                                       for u in self.users.values()])

    async def get_user(self, request: Request) -> Response:
        user = self.users.get(request.path_params["uid"])
        return not_found() if user is None else item("user", user)

    async def create_user(self, request: Request) -> Response:
        return store_user(self.users, await json_body(request))

    async def external_user(self, request: Request) -> Response:
        return external_user(self.users, request.path_params["external_id"])
    def nest_json(self, nest_id: int, include: AbstractSet[str]) -> dict[str, Any]:
        # NestTransformer @706db62c: the model's toArray() (id, uuid, author, name,
        # description, timestamps); include=eggs nests an EggTransformer list.
        name, description = self.nests[nest_id]
        attrs: dict[str, Any] = {
            "id": nest_id, "uuid": str(uuidlib.UUID(int=nest_id)),
            "author": "support@pterodactyl.io", "name": name, "description": description,
            "created_at": atom(self.seeded_at), "updated_at": atom(self.seeded_at)}
        if "eggs" in include:
            attrs["relationships"] = {"eggs": self.list_of("egg", [
                self.egg_json(e) for e in self.eggs.values() if e["nest"] == nest_id])}
        return attrs

    def egg_json(self, egg: dict[str, Any]) -> dict[str, Any]:
        # EggTransformer::transform @706db62c (config and script trimmed to their keys).
        return {
            "id": egg["id"], "uuid": str(uuidlib.UUID(int=1000 + egg["id"])),
            "name": egg["name"], "nest": egg["nest"], "author": "support@pterodactyl.io",
            "description": egg.get("description"), "docker_image": egg["docker_image"],
            "docker_images": {egg["docker_image"].rsplit(":", 1)[-1]: egg["docker_image"]},
            "config": {"files": {}, "startup": {"done": ")! For help, type "}, "stop": "stop",
                       "logs": {}, "file_denylist": [], "extends": None},
            "startup": egg["startup"],
            "script": {"privileged": True, "install": "#!/bin/bash", "entry": "bash",
                       "container": "ghcr.io/pterodactyl/installers:alpine", "extends": None},
            "created_at": atom(self.seeded_at), "updated_at": atom(self.seeded_at)}

    async def list_nests(self, request: Request) -> Response:
        include = self.includes(request)
        return self.paginate(request, [{"object": "nest", "attributes": self.nest_json(n, include)}
                                       for n in self.nests])

    async def list_eggs(self, request: Request) -> Response:
        nest = request.path_params["nest"]
        if nest not in self.nests:
            return not_found()
        # EggController::index: a plain collection of the nest's eggs.
        return JSONResponse(self.list_of("egg", [
            self.egg_json(e) for e in self.eggs.values() if e["nest"] == nest]))

    async def get_egg(self, request: Request) -> Response:
        egg = self.eggs.get(request.path_params["egg"])
        if egg is None or egg["nest"] != request.path_params["nest"]:
            return not_found()
        attrs: dict[str, Any] = self.egg_json(egg)
        if "variables" in self.includes(request):
            attrs["relationships"] = {"variables": self.list_of("egg_variable", [
                {"env_variable": name, "default_value": value, "user_editable": True}
                for name, value in egg["variables"]])}
        return item("egg", attrs)

    # -- Client API ---------------------------------------------------------------------------
    async def account(self, request: Request) -> Response:
        admin = self.users[1]
        return item("user", {"id": 1, "admin": True, "username": admin["username"],
                             "email": admin["email"], "first_name": admin["first_name"],
                             "last_name": admin["last_name"], "language": "en"})

    def _client_server(self, request: Request, *, view: bool = False) -> Server | Response:
        ident = request.path_params["ident"]
        server = next((s for s in self.servers.values()
                       if ident in (s.identifier, s.uuid)), None)
        if server is None:
            return not_found()
        conflict = self._conflict(server)
        if conflict and not view:  # Server::validateCurrentState, skipped for the view route
            return error(409, "ServerStateConflictException", CONFLICT_DETAIL[conflict])
        return server

    def _conflict(self, server: Server) -> str | None:
        if server.status == "suspended":
            return "suspended"
        if self.nodes[server.node_id]["maintenance_mode"]:
            return "maintenance"
        if server.status in ("installing", "install_failed"):
            return "installing"
        if server.status == "restoring_backup":
            return "restoring"
        return "transfer" if server.transferring else None

    async def client_view(self, request: Request) -> Response:
        server = self._client_server(request, view=True)
        if isinstance(server, Response):
            return server
        return item("server", {
            "server_owner": server.user_id == 1, "identifier": server.identifier,
            "internal_id": server.id, "uuid": server.uuid, "name": server.name,
            "node": self.nodes[server.node_id]["name"],
            "is_node_under_maintenance": self.nodes[server.node_id]["maintenance_mode"],
            "status": server.status, "is_suspended": server.status == "suspended",
            "is_installing": server.status == "installing",
            "is_transferring": server.transferring, "limits": server.limits,
            "feature_limits": server.feature_limits})

    async def resources(self, request: Request) -> Response:
        server = self._client_server(request)
        if isinstance(server, Response):
            return server
        running = server.power == "running"
        return item("stats", {
            "current_state": server.power, "is_suspended": False,
            "resources": {
                "memory_bytes": server.limits["memory"] * 1024 * 1024 // 2 if running else 0,
                "cpu_absolute": round(5 + server.id * 7 % 60, 3) if running else 0,
                "disk_bytes": server.limits["disk"] * 1024 * 1024 // 4,
                "network_rx_bytes": 1024 * server.id if running else 0,
                "network_tx_bytes": 2048 * server.id if running else 0,
                "uptime": int((time.time() - server.started) * 1000) if running else 0,
            }})

    async def power(self, request: Request) -> Response:
        server = self._client_server(request)
        if isinstance(server, Response):
            return server
        signal = (await json_body(request)).get("signal")
        if signal not in SIGNALS:
            return invalid(("signal", "in", "The selected signal is invalid."))
        # Wings ignores signals that do not apply (start while running…), answering 204 anyway.
        if signal == "kill":
            server.power = "offline"
        elif signal == "start" and server.power == "offline":
            server.power = "starting"
            self._power_settles(server)
        elif signal in ("stop", "restart") and server.power in ("running", "starting"):
            server.power = "stopping"
            if signal == "restart":
                self.later(lambda: self._restart(server))
            else:
                self._power_settles(server)
        elif signal == "restart" and server.power == "offline":
            server.power = "starting"
            self._power_settles(server)
        return no_content()

    def _restart(self, server: Server) -> None:
        if server.power == "stopping":
            server.power = "starting"
            self._power_settles(server)

    async def list_backups(self, request: Request) -> Response:
        server = self._client_server(request)
        if isinstance(server, Response):
            return server
        mine = [b for b in self.backups.values() if b["server"] == server.id]
        data = [{"object": "backup", "attributes": self.backup_json(b)} for b in mine]
        kept = sum(1 for b in mine if b["is_successful"] or b["completed_at"] is None)
        return self.paginate(request, data, default=20, cap=50, meta={"backup_count": kept})

    async def create_backup(self, request: Request) -> Response:
        server = self._client_server(request)
        if isinstance(server, Response):
            return server
        limit = server.feature_limits.get("backups") or 0
        kept = sum(1 for b in self.backups.values() if b["server"] == server.id
                   and (b["is_successful"] or b["completed_at"] is None))
        if kept >= limit:
            return error(400, "TooManyBackupsException", "Cannot create a new backup, this "
                         f"server has reached its limit of {limit} backups.")
        body = await json_body(request)
        name = body.get("name") or f"Backup at {atom(time.time())}"
        backup = self._add_backup(server, str(name), done=False)
        backup["is_locked"] = bool(body.get("is_locked"))
        self._finish_backup(backup)
        return item("backup", self.backup_json(backup))

    def _backup(self, request: Request, server: Server) -> dict[str, Any] | Response:
        backup = self.backups.get(request.path_params["bid"])
        if backup is None or backup["server"] != server.id:
            return not_found()
        return backup

    async def get_backup(self, request: Request) -> Response:
        server = self._client_server(request)
        if isinstance(server, Response):
            return server
        backup = self._backup(request, server)
        return backup if isinstance(backup, Response) else item("backup",
                                                                 self.backup_json(backup))

    async def delete_backup(self, request: Request) -> Response:
        server = self._client_server(request)
        if isinstance(server, Response):
            return server
        backup = self._backup(request, server)
        if isinstance(backup, Response):
            return backup
        if backup["is_locked"] and backup["is_successful"]:
            return error(400, "BackupLockedException",
                         "Cannot delete a backup that is marked as locked.")
        del self.backups[backup["uuid"]]
        return no_content()

    async def restore_backup(self, request: Request) -> Response:
        server = self._client_server(request)
        if isinstance(server, Response):
            return server
        backup = self._backup(request, server)
        if isinstance(backup, Response):
            return backup
        if not isinstance((await json_body(request)).get("truncate"), bool):
            return invalid(("truncate", "required", "The truncate field is required."))
        if server.status is not None:
            return error(400, "BadRequestHttpException", "This server is not currently in a "
                         "state that allows for a backup to be restored.")
        if not backup["is_successful"]:
            return error(400, "BadRequestHttpException", "This backup cannot be restored at "
                         "this time: not completed or failed.")
        server.status, server.power = "restoring_backup", "offline"
        self.later(lambda: self._set_status(server, "restoring_backup", None))
        return no_content()

    # -- Client API: subusers -----------------------------------------------------------------
    def subuser_json(self, user: dict[str, Any], permissions: list[str]) -> dict[str, Any]:
        return {"uuid": user["uuid"], "username": user["username"], "email": user["email"],
                "image": "", "2fa_enabled": False, "created_at": user["created_at"],
                "permissions": permissions}

    def _user_by_uuid(self, user_uuid: str) -> dict[str, Any] | None:
        return next((u for u in self.users.values() if u["uuid"] == user_uuid), None)

    async def list_subusers(self, request: Request) -> Response:
        server = self._client_server(request)
        if isinstance(server, Response):
            return server
        rows = [(self._user_by_uuid(u), p) for u, p in server.subusers.items()]
        return JSONResponse(self.list_of("server_subuser", [self.subuser_json(u, p)
                                                            for u, p in rows if u]))

    def _permissions(self, body: dict[str, Any]) -> list[str] | Response:
        perms = body.get("permissions")
        if not isinstance(perms, list) or not perms:
            return invalid(("permissions", "required", "The permissions field is required."))
        if any(not isinstance(p, str) for p in perms):
            return invalid(("permissions.0", "string", "The permissions.0 must be a string."))
        # SubuserController::getDefaultPermissions @706db62c: array_intersect with the known
        # names (unknown ones vanish, no 422), then websocket.connect is always added.
        kept = [p for p in perms if p in PERMISSIONS]
        return list(dict.fromkeys([*kept, "websocket.connect"]))

    async def create_subuser(self, request: Request) -> Response:
        server = self._client_server(request)
        if isinstance(server, Response):
            return server
        body = await json_body(request)
        perms = self._permissions(body)
        if isinstance(perms, Response):
            return perms
        user = next((u for u in self.users.values() if u["email"] == body.get("email")), None)
        if user is None:
            return invalid(("email", "email", "The email must be a valid email address."))
        if user["id"] == server.user_id:
            return error(400, "UserIsServerOwnerException", "Cannot add the owner of a server "
                         "as a subuser for that server.")
        if user["uuid"] in server.subusers:
            return error(400, "ServerSubuserExistsException", "A user with that email address "
                         "is already assigned as a subuser for this server.")
        server.subusers[user["uuid"]] = perms
        return item("server_subuser", self.subuser_json(user, perms))

    async def update_subuser(self, request: Request) -> Response:
        server = self._client_server(request)
        if isinstance(server, Response):
            return server
        user = self._user_by_uuid(request.path_params["uuid"])
        if user is None or user["uuid"] not in server.subusers:
            return not_found()
        perms = self._permissions(await json_body(request))
        if isinstance(perms, Response):
            return perms
        server.subusers[user["uuid"]] = perms
        return item("server_subuser", self.subuser_json(user, perms))

    async def delete_subuser(self, request: Request) -> Response:
        server = self._client_server(request)
        if isinstance(server, Response):
            return server
        if server.subusers.pop(request.path_params["uuid"], None) is None:
            return not_found()
        return no_content()
