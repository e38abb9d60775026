"""Simulated VirtFusion API v1.

Speaks the real envelopes: single objects wrapped in ``data``, lists as a Laravel paginator
(``current_page``, ``last_page``, ``per_page``, ``total``, next/prev URLs) moved through with
``results`` (1-200) and ``page``; errors as ``{"errors": [...]}``, ``{"msg": "..."}`` on the older
endpoints (suspend, unsuspend, power) and Laravel's 422 form on validation; 401 with no body; 423
while another action on the server is still queued. Live power state appears only on
``GET /servers/{id}?remoteState=true``, as libvirt domain states.

Where VirtFusion's behaviour is undocumented (state values other than ``complete``, the legacy
backup fields, hypervisor storage fields), the choices are those in docs/providers/virtfusion.md.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from panelql_sim import virtfusion_users as vf_users
from panelql_sim.framework import Knobs, SimPanel, json_body

API = "/api/v1"
DEFAULT_DELETE_DELAY_S = 300.0  # VirtFusion's grace period when ``delay`` is not given
NO_CONTENT = 204

GROUPS = [(1, "Amsterdam"), (2, "New York"), (3, "Singapore")]
TEMPLATES = {1: "Debian 12", 2: "Ubuntu 24.04", 3: "AlmaLinux 9", 13: "Broken Image 0"}
FAILING_TEMPLATE = 13  # building with this template ends in buildFailed, for ERROR demos
PACKAGES: list[dict[str, Any]] = [
    {"id": 1, "name": "Legacy 512", "enabled": False, "memory": 512, "cpuCores": 1,
     "primaryStorage": 10, "traffic": 500},
    {"id": 2, "name": "VPS 1G", "enabled": True, "memory": 1024, "cpuCores": 1,
     "primaryStorage": 25, "traffic": 1000},
    {"id": 3, "name": "VPS 2G", "enabled": True, "memory": 2048, "cpuCores": 1,
     "primaryStorage": 50, "traffic": 2000},
    {"id": 4, "name": "VPS 4G", "enabled": True, "memory": 4096, "cpuCores": 2,
     "primaryStorage": 80, "traffic": 3000},
    {"id": 5, "name": "VPS 8G", "enabled": True, "memory": 8192, "cpuCores": 4,
     "primaryStorage": 160, "traffic": 4000},
    {"id": 6, "name": "VPS 16G", "enabled": True, "memory": 16384, "cpuCores": 6,
     "primaryStorage": 320, "traffic": 5000},
]


def stamp(ts: float) -> str:
    """VirtFusion's timestamps: ISO 8601 with an explicit UTC offset."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ts))


@dataclass
class VFServer:
    id: int
    owner_id: int
    hypervisor_id: int
    package_id: int
    name: str
    memory: int  # MB
    cpu_cores: int
    storage: int  # GB
    os_template_id: int
    ipv4: str
    created: float
    state: str = "complete"
    built: float | None = None
    build_failed: bool = False
    suspended: bool = False
    delete_level: int = 0
    migrate_level: int = 0
    config_level: int = 0
    backup_level: int = 0
    rebuild: bool = False
    power: str = "running"  # libvirt domain state, what remoteState reports
    busy: str | None = None  # a queued action: every other action answers 423
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))

    def to_json(self, sim: VirtFusionSim, *, remote: bool) -> dict[str, Any]:
        hv = sim.hypervisors[self.hypervisor_id]
        owner = sim.users[self.owner_id]
        body: dict[str, Any] = {
            "id": self.id, "ownerId": self.owner_id, "hypervisorId": self.hypervisor_id,
            "name": self.name, "hostname": f"{self.name}.vps.test", "commissionStatus": 3,
            "uuid": self.uuid, "state": self.state, "migrateLevel": self.migrate_level,
            "deleteLevel": self.delete_level, "configLevel": self.config_level,
            "backupLevel": self.backup_level, "rebuild": self.rebuild,
            "suspended": self.suspended, "protected": False, "buildFailed": self.build_failed,
            "built": stamp(self.built) if self.built else None,
            "created": stamp(self.created), "updated": stamp(self.created),
            "traffic": {"public": {"currentPeriod": {"limit": 1000}}},
            "settings": {
                "osTemplateInstall": True, "osTemplateInstallId": self.os_template_id,
                "backupPlan": 1,
                "resources": {"memory": self.memory, "cpuCores": self.cpu_cores,
                              "storage": self.storage, "traffic": 1000},
            },
            "network": {"interfaces": [{
                "mac": f"52:54:00:{self.id // 65536 % 256:02x}:{self.id // 256 % 256:02x}:"
                       f"{self.id % 256:02x}",
                "ipv4": [{"address": self.ipv4, "gateway": "198.51.100.1"}],
                "ipv6": [{"subnet": f"2001:db8:{self.id:x}::", "cidr": 64}],
            }]},
            "hypervisor": {"name": hv["name"], "group": hv["group"],
                           "maintenance": hv["maintenance"]},
            # The docs' example abridges the owner to id and email; name and extRelationId are
            # in the user object (virtfusion_users) and assumed here, unverified.
            "owner": {"id": owner["id"], "email": owner["email"], "name": owner["name"],
                      "extRelationId": owner.get("extRelationId")},
            "os": {"templateName": TEMPLATES.get(self.os_template_id, "Unknown")},
        }
        if remote and self.built is not None:
            body["remoteState"] = self._remote_state()
        return body

    def _remote_state(self) -> dict[str, Any]:
        on = self.power in ("running", "paused", "shutdown")
        total_kb = self.memory * 1024
        return {
            "state": self.power,
            "cpu": round(3.5 + self.id % 37, 1) if self.power == "running" else 0,
            "memory": {"actual": total_kb, "unused": total_kb // 2 if on else total_kb,
                       "available": total_kb, "rss": total_kb // 2 if on else 0},
            "disk": {"vda": {"rd.bytes": 1024 * self.id, "wr.bytes": 2048 * self.id}},
            "agent": {"fsinfo": []},
        }


def _profile(**changes: Any) -> Callable[[VFServer], None]:
    def apply(server: VFServer) -> None:
        for key, value in changes.items():
            setattr(server, key, value)
    return apply


# Seeded servers cycle through these, so every status the adapter maps shows up. The seeded
# "building", "deleting", "migrating" and "backup" servers stay that way (they are never settled).
PROFILES: list[Callable[[VFServer], None]] = [
    _profile(),
    _profile(),
    _profile(power="shutoff"),
    _profile(suspended=True, power="shutoff"),
    _profile(state="building", built=None, power="shutoff", busy="build"),
    _profile(),
    _profile(build_failed=True, state="failed", built=None, power="shutoff"),
    _profile(delete_level=1, power="shutoff"),
    _profile(migrate_level=1),
    _profile(power="paused"),
    _profile(power="crashed"),
    _profile(backup_level=1, busy="backup"),
]


class VirtFusionSim(SimPanel):
    name = "virtfusion"

    def __init__(
        self, *, api_token: str = "vf_demo_token", servers: int = 36, hypervisors: int = 4,
        users: int = 12, seed: int = 1, knobs: Knobs | None = None,
    ) -> None:
        super().__init__(seed=seed, knobs=knobs)
        self.api_token = api_token
        self.hypervisors: dict[int, dict[str, Any]] = {}
        self.packages: dict[int, dict[str, Any]] = {p["id"]: dict(p) for p in PACKAGES}
        self.users: dict[int, dict[str, Any]] = {}
        self.servers: dict[int, VFServer] = {}
        self.backups: dict[int, list[dict[str, Any]]] = {}
        self.sso_tokens: dict[str, tuple[int, int, float]] = {}  # token → user, server, until
        self.sso_logins: list[tuple[int, int]] = []
        self.root_passwords: dict[int, str] = {}
        self._next_id = 100
        self._seed(servers, hypervisors, users)

    # -- data ---------------------------------------------------------------------------------
    def _seed(self, servers: int, hypervisors: int, users: int) -> None:
        for i in range(1, hypervisors + 1):
            gid, gname = GROUPS[(i - 1) % len(GROUPS)]
            self.hypervisors[i] = {
                "id": i, "name": f"hv{i}-{gname.lower().replace(' ', '-')}",
                "ip": f"203.0.113.{10 + i}", "hostname": f"hv{i}.vf.test", "port": 8892,
                # the last of three or more is in maintenance, so dashboards see one
                "maintenance": hypervisors >= 3 and i == hypervisors, "enabled": True,
                "prohibit": False, "maxServers": 0, "maxCpu": 64, "maxMemory": 262144,
                "group": {"id": gid, "name": gname, "icon": None},
                "networks": [{"id": i, "bridge": "br0", "primary": True}],
                "storage": [{"id": i, "name": "Local", "type": "local", "enabled": True,
                             "primary": True, "path": "/home/vf-data/disk", "capacity": 4000}],
                "created": stamp(time.time() - 86400 * 400),
            }
        for i in range(1, users + 1):
            self.users[i] = {"id": i, "email": f"customer{i}@example.com",
                             "name": f"Customer {i}", "extRelationId": 1000 + i}
        now = time.time()
        for i in range(servers):
            profile = PROFILES[i % len(PROFILES)]
            package = self.packages[2 + i % 4]
            server = self._add(
                owner_id=1 + i % users, hypervisor_id=1 + i % hypervisors, package=package,
                name=f"vps-{i + 1:03d}", os_template_id=1 + i % 3, created=now - 86400 * (i + 1),
            )
            profile(server)
            if i % 3 == 0 and server.built is not None:
                self.backups[server.id] = [self._backup(server, n, "complete") for n in (1, 2)]
        # one backup still running, so lists show progress too
        first = next(s for s in self.servers.values() if s.id in self.backups)
        self.backups[first.id].append(self._backup(first, 3, "running"))

    def _add(self, *, owner_id: int, hypervisor_id: int, package: dict[str, Any], name: str,
             os_template_id: int, created: float) -> VFServer:
        self._next_id += 1
        server = VFServer(
            id=self._next_id, owner_id=owner_id, hypervisor_id=hypervisor_id,
            package_id=package["id"], name=name, memory=package["memory"],
            cpu_cores=package["cpuCores"], storage=package["primaryStorage"],
            os_template_id=os_template_id, ipv4=f"198.51.{100 + self._next_id // 250}."
                                                f"{self._next_id % 250 + 2}",
            created=created, built=created + 600,
        )
        self.servers[server.id] = server
        return server

    def _backup(self, server: VFServer, n: int, status: str) -> dict[str, Any]:
        created = time.time() - 86400 * n
        return {"id": server.id * 100 + n, "serverId": server.id, "name": f"nightly-{n}",
                "uuid": str(uuid.UUID(int=self.random.getrandbits(128))), "type": "scheduled",
                "status": status, "size": 5 * 1024**3 + n if status == "complete" else None,
                "locked": False, "created": stamp(created),
                "completed": stamp(created + 900) if status == "complete" else None}

    # -- HTTP plumbing ------------------------------------------------------------------------
    def authorize(self, request: Request) -> Response | None:
        if request.url.path.startswith(vf_users.SSO_PATH):
            return None  # a browser following a login link: the token is the credential
        if request.headers.get("authorization") != f"Bearer {self.api_token}":
            return Response(status_code=401)  # VirtFusion's 401 has no body
        return None

    def rate_limited(self, retry_after: int) -> Response:
        return JSONResponse({"message": "Too Many Attempts."}, status_code=429, headers={
            "Retry-After": str(retry_after), "X-RateLimit-Remaining": "0"})

    def server_error(self) -> Response:
        return JSONResponse({"message": "Server Error"}, status_code=500)

    def routes(self) -> list[BaseRoute]:
        s = API + "/servers/{sid:int}"
        return [
            Route(API + "/connect", self.connect, methods=["GET"]),
            Route(API + "/servers", self.list_servers, methods=["GET"]),
            Route(API + "/servers", self.create_server, methods=["POST"]),
            Route(s, self.get_server, methods=["GET"]),
            Route(s, self.delete_server, methods=["DELETE"]),
            Route(s + "/build", self.build, methods=["POST"]),
            Route(s + "/package/{pid:int}", self.change_package, methods=["PUT"]),
            Route(s + "/suspend", self.suspend, methods=["POST"]),
            Route(s + "/unsuspend", self.unsuspend, methods=["POST"]),
            Route(s + "/power/{verb}", self.power, methods=["POST"]),
            Route(s + "/resetPassword", self._users(vf_users.reset_password), methods=["POST"]),
            Route(API + "/users", self._users(vf_users.create_user), methods=["POST"]),
            Route(API + "/users/{ext}/byExtRelation", self._users(vf_users.by_ext_relation),
                  methods=["GET"]),
            Route(API + "/users/{ext}/serverAuthenticationTokens/{sid:int}",
                  self._users(vf_users.login_tokens), methods=["POST"]),
            Route(vf_users.SSO_PATH + "{token}", self._users(vf_users.sso), methods=["GET"]),
            Route(API + "/compute/hypervisors", self.list_hypervisors, methods=["GET"]),
            Route(API + "/compute/hypervisors/{hid:int}", self.get_hypervisor, methods=["GET"]),
            Route(API + "/packages", self.list_packages, methods=["GET"]),
            Route(API + "/packages/{pid:int}", self.get_package, methods=["GET"]),
            Route(API + "/backups/server/{sid:int}", self.list_backups, methods=["GET"]),
            Route(API + "/media/templates/fromServerPackageSpec/{pid:int}", self.templates,
                  methods=["GET"]),
        ]

    def _users(self, handler: Callable[[VirtFusionSim, Request], Awaitable[Response]]
               ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await handler(self, request)
        return endpoint

    def _paginate(self, request: Request, items: list[Any]) -> Response:
        """Laravel's LengthAwarePaginator::toArray(), including its URLs."""
        try:
            per_page = int(request.query_params.get("results", 20))
            page = int(request.query_params.get("page", 1))
        except ValueError:
            return _invalid("results", "The results must be an integer.")
        if not 1 <= per_page <= 200:
            return _invalid("results", "The results must be between 1 and 200.")
        page = max(1, page)
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page: page * per_page]
        path = str(request.url.replace(query=""))

        def url(n: int) -> str:
            return f"{path}?results={per_page}&page={n}"

        return JSONResponse({
            "current_page": page, "data": chunk, "first_page_url": url(1),
            "from": (page - 1) * per_page + 1 if chunk else None, "last_page": last,
            "last_page_url": url(last),
            "links": [{"url": url(page - 1) if page > 1 else None, "label": "&laquo; Previous",
                       "active": False},
                      *({"url": url(n), "label": str(n), "active": n == page}
                        for n in range(1, last + 1)),
                      {"url": url(page + 1) if page < last else None, "label": "Next &raquo;",
                       "active": False}],
            "next_page_url": url(page + 1) if page < last else None, "path": path,
            "per_page": per_page, "prev_page_url": url(page - 1) if page > 1 else None,
            "to": (page - 1) * per_page + len(chunk) if chunk else None, "total": len(items),
        })

    def _server(self, request: Request, *, old: bool = False) -> VFServer | Response:
        server = self.servers.get(request.path_params["sid"])
        if server is None:
            body = {"msg": "server not found"} if old else {"errors": ["server not found"]}
            return JSONResponse(body, status_code=404)
        return server

    def _locked(self, server: VFServer) -> Response | None:
        if server.busy is None:
            return None
        return JSONResponse({"errors": [f"server is locked: a {server.busy} action is queued"]},
                            status_code=423)

    def _settle(self, server: VFServer, action: str, change: Callable[[], None]) -> None:
        """Mark ``action`` queued now and apply ``change`` after the transition delay."""
        server.busy = action

        def done() -> None:
            if self.servers.get(server.id) is server:
                change()
                server.busy = None

        self.later(done)

    # -- reads --------------------------------------------------------------------------------
    async def connect(self, request: Request) -> Response:
        return JSONResponse({})

    async def list_servers(self, request: Request) -> Response:
        hv = request.query_params.get("hypervisorId")
        items = [s.to_json(self, remote=False) for s in self.servers.values()
                 if hv is None or str(s.hypervisor_id) == hv]
        return self._paginate(request, items)

    async def get_server(self, request: Request) -> Response:
        server = self._server(request)
        if isinstance(server, Response):
            return server
        remote = request.query_params.get("remoteState", "false").lower() in ("true", "1")
        return JSONResponse({"data": server.to_json(self, remote=remote)})

    async def list_hypervisors(self, request: Request) -> Response:
        return self._paginate(request, list(self.hypervisors.values()))

    async def get_hypervisor(self, request: Request) -> Response:
        hv = self.hypervisors.get(request.path_params["hid"])
        if hv is None:
            return JSONResponse({"errors": ["hypervisor not found"]}, status_code=404)
        return JSONResponse({"data": hv})

    async def list_packages(self, request: Request) -> Response:
        return JSONResponse({"data": list(self.packages.values())})

    async def get_package(self, request: Request) -> Response:
        package = self.packages.get(request.path_params["pid"])
        if package is None:
            return JSONResponse({"errors": ["package not found"]}, status_code=404)
        return JSONResponse({"data": package})

    async def list_backups(self, request: Request) -> Response:
        server = self._server(request)
        if isinstance(server, Response):
            return server
        return JSONResponse({"data": self.backups.get(server.id, [])})

    async def templates(self, request: Request) -> Response:
        entries = [{"id": tid, "name": name.rsplit(" ", 1)[0], "version": name.rsplit(" ", 1)[-1],
                    "variant": "x86_64"} for tid, name in TEMPLATES.items()]
        return JSONResponse({"data": [{"name": "Linux", "templates": entries}]})

    # -- writes -------------------------------------------------------------------------------
    async def create_server(self, request: Request) -> Response:
        body = await json_body(request)
        package = self.packages.get(_as_int(body.get("packageId")))
        if package is None or not package["enabled"]:
            return _invalid("packageId", "The selected package id is invalid.")
        owner = _as_int(body.get("userId"))
        if owner not in self.users:
            return _invalid("userId", "The selected user id is invalid.")
        group = _as_int(body.get("hypervisorId"))  # a hypervisor *group* id
        candidates = [h for h in self.hypervisors.values()
                      if h["group"]["id"] == group and not h["maintenance"]]
        if not candidates:
            return _invalid("hypervisorId", "No hypervisor in the group can take the server.")
        if request.query_params.get("dryRun") == "true":
            return JSONResponse({"data": {"dryRun": True}})
        hv = min(candidates, key=lambda h: sum(s.hypervisor_id == h["id"]
                                               for s in self.servers.values()))
        server = self._add(owner_id=owner, hypervisor_id=hv["id"], package=package,
                           name=f"server-{self._next_id + 1}", os_template_id=0,
                           created=time.time())
        for key, attr in (("memory", "memory"), ("cpuCores", "cpu_cores"),
                          ("storage", "storage")):
            if isinstance(body.get(key), int):
                setattr(server, attr, body[key])
        server.state, server.built, server.power = "queued", None, "shutoff"
        return JSONResponse({"data": server.to_json(self, remote=False)}, status_code=201)

    async def build(self, request: Request) -> Response:
        server = self._server(request)
        if isinstance(server, Response):
            return server
        if (locked := self._locked(server)) is not None:
            return locked
        if server.delete_level:
            return JSONResponse({"errors": ["server is being deleted"]}, status_code=409)
        body = await json_body(request)
        os_id = _as_int(body.get("operatingSystemId"))
        if os_id not in TEMPLATES:
            return _invalid("operatingSystemId", "The selected operating system is invalid.")
        if isinstance(body.get("name"), str) and body["name"]:
            server.name = body["name"]
        first = server.built is None
        server.build_failed, server.power = False, "shutoff"
        if first:
            server.state = "building"
        else:
            server.rebuild = True

        def finish() -> None:
            server.rebuild, server.os_template_id = False, os_id
            if os_id == FAILING_TEMPLATE:
                server.build_failed, server.state = True, "failed"
                return
            server.state, server.power = "complete", "running"
            server.built = server.built or time.time()

        self._settle(server, "build", finish)
        return JSONResponse({"data": server.to_json(self, remote=False)})

    async def change_package(self, request: Request) -> Response:
        server = self._server(request)
        if isinstance(server, Response):
            return server
        package = self.packages.get(request.path_params["pid"])
        if package is None:
            return JSONResponse({"errors": ["package not found"]}, status_code=404)
        if (locked := self._locked(server)) is not None:
            return locked
        if server.built is None or server.delete_level:
            return JSONResponse({"errors": ["server is not in a state to change package"]},
                                status_code=409)
        server.config_level = 1

        def apply() -> None:
            server.package_id, server.memory = package["id"], package["memory"]
            server.cpu_cores, server.storage = package["cpuCores"], package["primaryStorage"]
            server.config_level = 0

        self._settle(server, "package change", apply)
        return Response(status_code=NO_CONTENT)

    async def suspend(self, request: Request) -> Response:
        return await self._suspension(request, True)

    async def unsuspend(self, request: Request) -> Response:
        return await self._suspension(request, False)

    async def _suspension(self, request: Request, suspend: bool) -> Response:
        server = self._server(request, old=True)
        if isinstance(server, Response):
            return server
        if (locked := self._locked(server)) is not None:
            return locked
        if server.suspended == suspend:
            word = "suspended" if suspend else "not suspended"
            return JSONResponse({"msg": f"server is already {word}"}, status_code=409)
        server.suspended = suspend
        if suspend:
            server.power = "shutoff"  # suspension stops the guest
        else:
            self._settle(server, "boot", lambda: setattr(server, "power", "running"))
        return Response(status_code=NO_CONTENT)

    async def power(self, request: Request) -> Response:
        server = self._server(request, old=True)
        if isinstance(server, Response):
            return server
        verb = request.path_params["verb"]
        if verb not in ("boot", "shutdown", "restart", "poweroff"):
            return JSONResponse({"msg": "unknown power action"}, status_code=404)
        if (locked := self._locked(server)) is not None:
            return locked
        problem = self._power_problem(server, verb)
        if problem is not None:
            return JSONResponse({"msg": problem}, status_code=409)
        if verb == "poweroff":
            server.power = "shutoff"
        elif verb == "boot":
            self._settle(server, "boot", lambda: setattr(server, "power", "running"))
        else:
            final = "shutoff" if verb == "shutdown" else "running"
            server.power = "shutdown"  # libvirt's "being shut down"
            self._settle(server, verb, lambda: setattr(server, "power", final))
        return Response(status_code=NO_CONTENT)

    def _power_problem(self, server: VFServer, verb: str) -> str | None:
        if server.built is None or server.rebuild:
            return "server is not built"
        if server.suspended:
            return "server is suspended"
        if server.delete_level:
            return "server is being deleted"
        on = server.power in ("running", "paused", "shutdown")
        if verb == "boot" and on:
            return "server is already running"
        if verb != "boot" and not on:
            return "server is not running"
        return None

    async def delete_server(self, request: Request) -> Response:
        server = self._server(request)
        if isinstance(server, Response):
            return server
        if (locked := self._locked(server)) is not None:
            return locked
        if server.delete_level:
            return JSONResponse({"errors": ["server is already being deleted"]}, status_code=409)
        delay = request.query_params.get("delay")
        seconds = DEFAULT_DELETE_DELAY_S if delay is None else max(0, _as_int(delay)) * 60.0
        server.delete_level = 1

        def remove() -> None:
            self.servers.pop(server.id, None)
            self.backups.pop(server.id, None)

        self.later(remove, seconds or None)  # delay=0: after the usual transition time
        return Response(status_code=NO_CONTENT)


def _as_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _invalid(field_name: str, message: str) -> Response:
    return JSONResponse({"message": "The given data was invalid.",
                         "errors": {field_name: [message]}}, status_code=422)
