"""Simulated ProxmoxWP site backend.

The routes are the ones the Paymenter extension calls; where they are silent this simulator
and the adapter share the choices written down in docs/providers/proxmoxwp.md: ``GET /sites`` and
``GET /nodes`` list routes, ``GET /action/status``, ``POST /action/{start|stop|restart|reset}``,
snapshot ``state`` values, and a suspended service answered with **401**.

Errors are ``{"success": false, "error": "…"}``. The real backend blocks until a power action is
done (5-30 s); here actions answer at once and the site shows a transitional status for
``transition_seconds``, so watchers can see the change happen.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from panelql_sim.framework import Knobs, SimPanel, iso, json_body

# plan → (RAM MB, disk GB, backups, domains).
PLANS = {"basic": (2048, 20, 2, 3), "standard": (4096, 40, 3, 5), "premium": (8192, 80, 5, 10)}
ZONE = "nodepoint.eu"
SERVICE_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
BUSY = {"installing", "starting", "stopping", "restarting", "resetting", "restoring", "deleting"}
# action → (states it may start from, transitional status, final status)
ACTIONS: dict[str, tuple[set[str], str, str]] = {
    "start": ({"stopped"}, "starting", "running"),
    "stop": ({"running"}, "stopping", "stopped"),
    "restart": ({"running"}, "restarting", "running"),
    "reset": ({"running", "stopped"}, "resetting", "running"),
}
NAMES = ["bakery", "photo-studio", "yoga-lab", "bike-repair", "law-office", "dentist",
         "kitchen-blog", "garden-club", "architect", "florist", "tutoring", "vinyl-shop"]


def fail(message: str, status: int) -> JSONResponse:
    return JSONResponse({"success": False, "error": message}, status_code=status)


def ok(**body: Any) -> JSONResponse:
    return JSONResponse({"success": True, **body})


@dataclass
class WPSite:
    service_id: str
    email: str
    plan: str
    subdomain: str
    node: str
    vmid: int
    public_ip: str
    status: str
    created: float
    suspended: bool = False
    proxy_enabled: bool = True
    domains: list[str] = field(default_factory=list)
    backups: list[dict[str, Any]] = field(default_factory=list)
    cpu: float = 0.05

    @property
    def limits(self) -> tuple[int, int, int, int]:
        return PLANS[self.plan]

    def backup_quota(self) -> str:
        return f"{len(self.backups)}/{self.limits[2]}"

    def usage(self) -> dict[str, Any]:
        ram, disk = self.limits[0], self.limits[1] * 1024
        running = self.status == "running"
        return {"cpu": self.cpu if running else 0.0, "mem_mb": ram * 3 // 10 if running else 0,
                "disk_mb": disk // 6, "uptime": int(time.time() - self.created) if running else 0}

    def to_json(self) -> dict[str, Any]:
        ram, disk, _, max_domains = self.limits
        return {
            "service_id": self.service_id, "email": self.email, "plan": self.plan,
            "subdomain": self.subdomain, "status": self.status, "suspended": self.suspended,
            "proxy_enabled": self.proxy_enabled, "vmid": self.vmid, "node": self.node,
            "private_ip": f"192.168.1.{self.vmid - 800}", "public_ip": self.public_ip,
            "ram_mb": ram, "disk_gb": disk, "usage": self.usage(),
            "domains": list(self.domains), "domains_remaining": max_domains - len(self.domains),
            "domains_limit": max_domains, "backups": [dict(b) for b in self.backups],
            "backup_quota": self.backup_quota(), "created_at": iso(self.created),
        }


class ProxmoxWPSim(SimPanel):
    name = "proxmoxwp"

    def __init__(self, *, api_key: str = "pwp_demo_key", sites: int = 12,
                 public_ip: str = "203.0.113.10", seed: int = 1,
                 knobs: Knobs | None = None) -> None:
        super().__init__(seed=seed, knobs=knobs)
        self.api_key = api_key
        self.public_ip = public_ip
        self.sites: dict[str, WPSite] = {}
        self.nodes: dict[str, dict[str, Any]] = {}
        self._seed(sites)

    # -- data ---------------------------------------------------------------------------------
    def _seed(self, count: int) -> None:
        gib = 1024**3
        for i, name in enumerate(["pve1", "pve2", "pve3"]):
            online = i < 2
            node: dict[str, Any] = {"node": name, "status": "online" if online else "offline",
                                    "maxcpu": 32, "maxmem": 128 * gib, "maxdisk": 2048 * gib}
            if online:
                node.update(cpu=round(0.1 + 0.05 * i, 3), mem=40 * gib, disk=400 * gib,
                            uptime=86400 * 40)
            self.nodes[name] = node
        # (status, suspended, proxy enabled)
        states = [("running", False, True), ("running", False, True), ("stopped", False, True),
                  ("running", False, True), ("stopped", True, True), ("installing", False, True),
                  ("running", False, False), ("error", False, True), ("stopped", False, True),
                  ("unknown", False, True), ("running", False, True), ("stopped", True, True)]
        now = time.time()
        for i in range(count):
            status, suspended, proxy = states[i % len(states)]
            label = NAMES[i % len(NAMES)] + (str(i // len(NAMES)) if i >= len(NAMES) else "")
            site = self.add_site(
                service_id=str(10001 + i), email=f"customer{i + 1}@example.com",
                plan=list(PLANS)[i % 3], subdomain=f"{label}.{ZONE}", status=status,
                node="pve3" if status == "unknown" else f"pve{1 + i % 2}",
                created=now - 86400 * (90 - i),
            )
            site.suspended, site.proxy_enabled = suspended, proxy
            if status in ("installing", "error"):
                continue
            for n in range(1 + i % 2):
                site.backups.append(self._snapshot(site, now - 86400 * (10 + 3 * n + i)))
            site.domains = [f"{label}-{k + 1}.example" for k in range(i % 3)]

    def add_site(self, *, service_id: str, email: str, plan: str, subdomain: str, status: str,
                 node: str, created: float) -> WPSite:
        site = WPSite(service_id=service_id, email=email, plan=plan, subdomain=subdomain,
                      node=node, vmid=900 + len(self.sites), public_ip=self.public_ip,
                      status=status, created=created,
                      cpu=round(0.01 + self.random.random() * 0.3, 3))
        self.sites[service_id] = site
        return site

    def _snapshot(self, site: WPSite, when: float, state: str = "ready") -> dict[str, Any]:
        day = time.strftime("%d%m%Y", time.gmtime(when))
        taken = [int(b["name"].rsplit("-", 1)[1]) for b in site.backups
                 if b["name"].startswith(f"BAK{day}-")]
        name = f"BAK{day}-{max(taken, default=0) + 1}"
        return {"name": name, "snaptime": int(when), "description": "customer backup",
                "state": state}

    # -- HTTP ---------------------------------------------------------------------------------
    def authorize(self, request: Request) -> Response | None:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return fail("Missing bearer token", 401)
        if auth[len("Bearer "):] != self.api_key:
            return fail("Invalid API key", 401)
        return None

    def rate_limited(self, retry_after: int) -> Response:
        return JSONResponse({"success": False, "error": "Too many requests"}, status_code=429,
                            headers={"Retry-After": str(retry_after)})

    def server_error(self) -> Response:
        return fail("Internal server error", 500)

    def routes(self) -> list[BaseRoute]:
        post = ["POST"]
        return [
            Route("/sites", self.list_sites, methods=["GET"]),
            Route("/nodes", self.list_nodes, methods=["GET"]),
            Route("/create-site", self.create_site, methods=post),
            Route("/delete-site", self.delete_site, methods=post),
            Route("/suspend", self.suspend, methods=post),
            Route("/unsuspend", self.unsuspend, methods=post),
            Route("/wp/upgrade/", self.upgrade, methods=post),
            Route("/wp/upgrade", self.upgrade, methods=post),
            Route("/action/status", self.status, methods=["GET"]),
            Route("/action/getdomain", self.get_domains, methods=["GET"]),
            Route("/action/setdomain", self.set_domain, methods=post),
            Route("/action/deldomain", self.del_domain, methods=post),
            Route("/action/getbak", self.get_backups, methods=["GET"]),
            Route("/action/mkbak", self.make_backup, methods=post),
            Route("/action/delbak", self.del_backup, methods=post),
            Route("/action/rollback", self.rollback, methods=post),
            Route("/action/toggle", self.toggle, methods=post),
            Route("/action/{action}", self.power, methods=post),
        ]

    async def _find(self, request: Request, *, mutating: bool = True
                    ) -> tuple[WPSite, dict[str, Any]] | Response:
        """The site named by ``service_id`` (query for GET, JSON body for POST)."""
        body = await json_body(request) if request.method == "POST" else dict(
            request.query_params)
        sid = body.get("service_id")
        if not isinstance(sid, str | int) or not str(sid):
            return fail("Missing service_id", 400)
        site = self.sites.get(str(sid))
        if site is None:
            return fail("Service not found", 404)
        if mutating and site.status == "deleting":
            return fail("Site is being deleted", 409)
        return site, body

    async def _usable(self, request: Request) -> tuple[WPSite, dict[str, Any]] | Response:
        """As :meth:`_find`, for customer actions: suspended → 401, provisioning → 409."""
        found = await self._find(request)
        if isinstance(found, Response):
            return found
        site = found[0]
        if site.suspended:
            return fail("Service is suspended", 401)
        if site.status in ("installing", "error"):
            return fail("Site is not provisioned yet" if site.status == "installing"
                        else "Site provisioning failed", 409)
        if site.status == "unknown":
            return fail(f"Proxmox node {site.node} is unreachable", 500)
        return found

    def _transition(self, site: WPSite, transient: str, final: str,
                    then: Callable[[], None] | None = None) -> None:
        site.status = transient

        def settle() -> None:
            if site.status == transient:
                site.status = final
                if then is not None:
                    then()
        self.later(settle)

    async def list_sites(self, request: Request) -> Response:
        sites = [s.to_json() for s in self.sites.values()]
        return ok(sites=sites, count=len(sites))

    async def list_nodes(self, request: Request) -> Response:
        return ok(nodes=list(self.nodes.values()))

    async def status(self, request: Request) -> Response:
        found = await self._find(request, mutating=False)
        return found if isinstance(found, Response) else ok(**found[0].to_json())

    # -- provisioning -------------------------------------------------------------------------
    async def create_site(self, request: Request) -> Response:
        body = await json_body(request)
        missing = [k for k in ("service_id", "email", "plan", "public_ip") if not body.get(k)]
        if missing:
            return fail(f"Missing parameters: {', '.join(missing)}", 400)
        sid, plan = str(body["service_id"]), str(body["plan"]).lower()
        if not SERVICE_ID.match(sid):
            return fail("Invalid service_id", 400)
        if "@" not in str(body["email"]):
            return fail("Invalid email", 400)
        if plan not in PLANS:
            return fail(f"Unknown plan: {body['plan']}", 400)
        if sid in self.sites:
            return fail("Site already exists", 409)
        online = [n for n, v in self.nodes.items() if v["status"] == "online"]
        if not online:
            return fail("No Proxmox node available", 500)
        node = min(online, key=lambda n: sum(s.node == n for s in self.sites.values()))
        site = self.add_site(service_id=sid, email=str(body["email"]), plan=plan,
                             subdomain=f"wp{sid}.{ZONE}", status="installing", node=node,
                             created=time.time())
        site.public_ip = str(body["public_ip"])
        self._transition(site, "installing", "running")
        return ok(message="Provisioning started", site=site.to_json())

    async def delete_site(self, request: Request) -> Response:
        found = await self._find(request)
        if isinstance(found, Response):
            return found
        site = found[0]

        def remove() -> None:
            self.sites.pop(site.service_id, None)
        self._transition(site, "deleting", "deleted", then=remove)
        return ok(message="Site deletion started")

    async def suspend(self, request: Request) -> Response:
        found = await self._find(request)
        if isinstance(found, Response):
            return found
        site = found[0]
        if not site.suspended:  # idempotent
            site.suspended = True
            if site.status in ("running", "starting", "stopping", "restarting"):
                site.status = "stopped"
        return ok(message="Service suspended")

    async def unsuspend(self, request: Request) -> Response:
        found = await self._find(request)
        if isinstance(found, Response):
            return found
        site = found[0]
        if not site.suspended:
            return ok(message="Service is not suspended")
        site.suspended = False
        if site.status == "stopped":
            self._transition(site, "starting", "running")
        return ok(message="Service unsuspended")

    async def upgrade(self, request: Request) -> Response:
        found = await self._find(request)
        if isinstance(found, Response):
            return found
        site, body = found
        plan = str(body.get("plan") or "").lower()
        if plan not in PLANS:
            return fail(f"Unknown plan: {body.get('plan')}", 400)
        if site.status in BUSY:
            return fail("Another operation is in progress", 409)
        _, _, backups, domains = PLANS[plan]
        if len(site.backups) > backups or len(site.domains) > domains:
            return fail(f"Plan {plan} quota exceeded: remove backups or domains first", 409)
        site.plan = plan
        return ok(message=f"Plan changed to {plan}", plan=plan)

    # -- customer actions ---------------------------------------------------------------------
    async def power(self, request: Request) -> Response:
        action = request.path_params["action"]
        if action not in ACTIONS:
            return fail(f"Unknown action: {action}", 404)
        found = await self._usable(request)
        if isinstance(found, Response):
            return found
        site = found[0]
        allowed, transient, final = ACTIONS[action]
        if site.status not in allowed:
            return fail(f"Cannot {action} site while it is {site.status}", 409)
        self._transition(site, transient, final)
        return ok(message=f"{action.capitalize()} issued", status=transient)

    async def toggle(self, request: Request) -> Response:
        found = await self._usable(request)
        if isinstance(found, Response):
            return found
        site = found[0]
        site.proxy_enabled = not site.proxy_enabled
        return ok(enabled=site.proxy_enabled)

    async def get_domains(self, request: Request) -> Response:
        found = await self._find(request, mutating=False)
        if isinstance(found, Response):
            return found
        site = found[0]
        limit = site.limits[3]
        return ok(service_id=site.service_id, domains=list(site.domains),
                  remaining=limit - len(site.domains), limit=limit)

    async def set_domain(self, request: Request) -> Response:
        found = await self._usable(request)
        if isinstance(found, Response):
            return found
        site, body = found
        domain = str(body.get("domain") or "").strip().lower()
        if not DOMAIN.match(domain):
            return fail("Invalid domain", 400)
        if any(domain in s.domains for s in self.sites.values()):
            return fail("Domain already exists", 409)
        if len(site.domains) >= site.limits[3]:
            return fail("Domain limit reached", 409)
        if domain.endswith(".invalid"):  # stands for "the A record does not point at the proxy"
            return fail(f"Domain does not point to {site.public_ip}", 400)
        site.domains.append(domain)
        return ok(message=f"Domain added: {domain}", remaining=site.limits[3] - len(site.domains))

    async def del_domain(self, request: Request) -> Response:
        found = await self._usable(request)
        if isinstance(found, Response):
            return found
        site, body = found
        domain = str(body.get("domain") or "").strip().lower()
        if domain not in site.domains:
            return fail("Domain not found", 404)
        site.domains.remove(domain)
        return ok(message=f"Domain removed: {domain}", remaining=site.limits[3] - len(site.domains))

    # -- backups ------------------------------------------------------------------------------
    async def get_backups(self, request: Request) -> Response:
        found = await self._find(request, mutating=False)
        if isinstance(found, Response):
            return found
        site = found[0]
        return ok(service_id=site.service_id, backups=[dict(b) for b in site.backups],
                  quota=site.backup_quota())

    async def make_backup(self, request: Request) -> Response:
        found = await self._usable(request)
        if isinstance(found, Response):
            return found
        site = found[0]
        if len(site.backups) >= site.limits[2]:
            return fail("Backup limit exceeded", 409)
        backup = self._snapshot(site, time.time(), state="creating")
        site.backups.append(backup)

        def done() -> None:
            if backup["state"] == "creating":
                backup["state"] = "ready"
        self.later(done)
        return ok(backup=dict(backup), quota=site.backup_quota())

    def _named_backup(self, site: WPSite, body: dict[str, Any]) -> dict[str, Any] | Response:
        name = body.get("bak")
        if not isinstance(name, str) or not name:
            return fail("Missing bak", 400)
        backup = next((b for b in site.backups if b["name"] == name), None)
        return backup if backup is not None else fail("Backup not found", 404)

    async def del_backup(self, request: Request) -> Response:
        found = await self._usable(request)
        if isinstance(found, Response):
            return found
        site, body = found
        backup = self._named_backup(site, body)
        if isinstance(backup, Response):
            return backup
        if backup["state"] != "ready":
            return fail("Backup is busy", 409)
        site.backups.remove(backup)
        return ok(message=f"Backup deleted: {backup['name']}", quota=site.backup_quota())

    async def rollback(self, request: Request) -> Response:
        found = await self._usable(request)
        if isinstance(found, Response):
            return found
        site, body = found
        backup = self._named_backup(site, body)
        if isinstance(backup, Response):
            return backup
        if backup["state"] != "ready" or site.status in BUSY:
            return fail("Another operation is in progress", 409)
        backup["state"] = "restoring"

        def done() -> None:
            backup["state"] = "ready"
        self._transition(site, "restoring", "running")
        self.later(done)
        return ok(message=f"Rolling back to {backup['name']}", status="restoring")
