"""ProxmoxWP adapter: each WordPress site (``service_id``) is a Server, each Proxmox node a Node.

Batching: ``GET /sites`` returns every site with its status, usage, custom domains and BAK…
snapshots in one call, and ``GET /nodes`` the Proxmox nodes, so servers, nodes and backups cost a
constant number of calls whatever the number of sites. Both list routes are this project's choice
(the seeds only show per-service calls); see docs/providers/proxmoxwp.md.

The backend answers a suspended service with **401**, the same status as a bad token; a response
hook tells the two apart by the error text and raises Conflict for the former.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Self

import httpx

from panelql.domain.catalogue import CatalogueEntry, EntryKind
from panelql.domain.records import (
    BackupRecord,
    NodeRecord,
    PowerAction,
    Resources,
    ServerRecord,
    ServerSpec,
    Usage,
    UsageLimits,
)
from panelql.domain.sites import Quota, SiteInfo
from panelql.domain.status import BackupStatus, NodeStatus, ServerStatus, map_status
from panelql.providers import read_memo
from panelql.providers.catalogue import CREATE_TEMPLATE, RESIZE_PACKAGE
from panelql.providers.catalogue import PLAN as PLAN_ARG
from panelql.providers.config import ConnectionConfig
from panelql.providers.contract import Capability, ComputeProvider, Family
from panelql.providers.errors import Conflict, InvalidRequest, NotFound, UnexpectedResponse
from panelql.providers.http import ClientFactory, Upstream, expect
from panelql.providers.proxmoxwp.mapping import (
    BACKUP_STATUS,
    LIFECYCLE_STATUSES,
    NODE_STATUS,
    PLANS,
    SERVER_STATUS,
    Plan,
    backup_id,
    backup_name,
    parse_quota,
    plan_for,
)
from panelql.providers.values import parse_time as _time

DEFAULT_PROVISION_TIMEOUT = 60.0  # creating a site is a long operation: 60 s
MIB = 1024 * 1024


def read_error(body: Any) -> str | None:
    """``{"success": false, "error": "…"}`` → the message."""
    if isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"].strip():
        return str(body["error"]).strip()
    return None


def suspended_hook(provider: str) -> Callable[[httpx.Response], Awaitable[None]]:
    """Turn the backend's "401 because the service is suspended" into Conflict.

    It runs before :class:`Upstream` maps the status, so a bad token still becomes
    AuthenticationFailed while a suspended site reads as a wrong-state error.
    """

    async def hook(response: httpx.Response) -> None:
        if response.status_code != 401:
            return
        await response.aread()
        try:
            message = read_error(response.json())
        except ValueError:
            return
        if message and "suspend" in message.lower():
            raise Conflict(message, provider=provider, upstream_status=401,
                           current_status="suspended",
                           debug={"status": 401, "url": str(response.url.copy_with(query=None))})

    return hook


class ProxmoxWPProvider(ComputeProvider):
    kind = "proxmoxwp"
    families = frozenset({Family.COMPUTE})
    capabilities = frozenset({
        Capability.SERVER_READ, Capability.NODE_READ, Capability.BACKUP_READ,
        Capability.SERVER_CREATE, Capability.SERVER_POWER, Capability.SERVER_SUSPEND,
        Capability.SERVER_REINSTALL, Capability.SERVER_RESIZE, Capability.SERVER_DELETE,
        Capability.BACKUP_CREATE, Capability.BACKUP_RESTORE, Capability.BACKUP_DELETE,
        Capability.SITE_DOMAINS, Capability.SITE_PROXY, Capability.SERVER_PLAN,
        Capability.CATALOGUE_READ, Capability.SERVER_PACKAGE,
    })
    unsupported_reasons = {
        Capability.SERVER_REINSTALL_IMAGE: "a site reinstalls by rolling back to its 'initial' "
                                           "snapshot (POST /action/reset); there is no image to "
                                           "choose",
    }

    def __init__(self, config: ConnectionConfig, upstream: Upstream, *,
                 provision_timeout: float = DEFAULT_PROVISION_TIMEOUT,
                 public_ip: str | None = None) -> None:
        super().__init__(config)
        self.api = upstream
        self.provision_timeout = provision_timeout
        self.public_ip = public_ip
        hooks = upstream.client.event_hooks
        hooks["response"] = [*hooks.get("response", []), suspended_hook(config.name)]
        upstream.client.event_hooks = hooks

    @classmethod
    def from_config(cls, config: ConnectionConfig, clients: ClientFactory) -> Self:
        client = clients.build(
            config.base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {config.credential('api_key')}"},
            timeout=config.timeout_seconds,
        )
        raw_timeout = config.options.get("provision_timeout_seconds", DEFAULT_PROVISION_TIMEOUT)
        try:
            provision_timeout = float(raw_timeout)
        except (TypeError, ValueError):
            raise InvalidRequest("option provision_timeout_seconds must be a number",
                                 provider=config.name) from None
        public_ip = config.options.get("public_ip")
        return cls(config, Upstream(client, config.name, read_error),
                   provision_timeout=provision_timeout,
                   public_ip=str(public_ip) if public_ip else None)

    async def _call(self, method: str, path: str, *, long: bool = False,
                    **kwargs: Any) -> dict[str, Any]:
        """One request; the body must be an object and must not say ``success: false``."""
        if long:
            kwargs["timeout"] = httpx.Timeout(self.provision_timeout,
                                              connect=min(self.provision_timeout, 10.0))
        body = await self.api.json(method, path, **kwargs)
        expect(isinstance(body, dict), self.name, "response body")
        if body.get("success") is False:
            # Seed 003 reads `success` from 200 answers too: a refusal without an error status.
            raise InvalidRequest(read_error(body) or f"{self.name} refused the request",
                                 provider=self.name, debug={"path": path})
        return dict(body)

    def _objects(self, body: Mapping[str, Any], key: str, what: str) -> list[dict[str, Any]]:
        """``body[key]`` as a list of JSON objects, or UnexpectedResponse."""
        items = body.get(key)
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise UnexpectedResponse(f"{self.name} sent an unexpected {what}", provider=self.name)
        return items

    async def _action(self, path: str, server_id: str, *, long: bool = False,
                      **fields: str) -> dict[str, Any]:
        return await self._call("POST", path, json={"service_id": server_id, **fields}, long=long)

    async def check_health(self) -> None:
        await self._nodes_raw()

    # -- servers ------------------------------------------------------------------------------
    async def _sites_raw(self) -> list[dict[str, Any]]:
        return self._objects(await self._call("GET", "/sites"), "sites", "site list")

    async def list_servers(self) -> list[ServerRecord]:
        # Read again for node allocation within the same query: decoded and mapped once.
        return await read_memo.shared_list(("servers", self.name), self._list_servers)

    async def _list_servers(self) -> list[ServerRecord]:
        return [self._server(raw) for raw in await self._sites_raw()]

    async def get_site(self, server_id: str) -> ServerRecord:
        """One site through the seeds' per-service status call (``GET /action/status``)."""
        return self._server(await self._call("GET", "/action/status",
                                             params={"service_id": server_id}))

    def _server(self, raw: Mapping[str, Any]) -> ServerRecord:
        expect(isinstance(raw.get("service_id"), str | int), self.name, "site object")
        sid = str(raw["service_id"])
        raw_status = raw.get("status") if isinstance(raw.get("status"), str) else None
        suspended = raw.get("suspended") is True
        if suspended and raw_status not in LIFECYCLE_STATUSES:
            status = ServerStatus.SUSPENDED
        else:
            status = map_status(SERVER_STATUS, raw_status, ServerStatus.UNKNOWN, source=self.kind)
        plan = PLANS.get(str(raw.get("plan") or "").lower())
        memory = _int(raw.get("ram_mb")) or (plan.memory_mb if plan else None)
        disk_gb = _int(raw.get("disk_gb")) or (plan.disk_gb if plan else None)
        subdomain = raw.get("subdomain") if isinstance(raw.get("subdomain"), str) else None
        domains = [d for d in raw.get("domains") or [] if isinstance(d, str)]
        return ServerRecord(
            connection=self.name, id=sid, name=subdomain or f"site-{sid}",
            status=status, raw_status=raw_status, suspended=suspended,
            node_id=_str(raw.get("node")), owner_id=_str(raw.get("email")),
            resources=Resources(memory_mb=memory, disk_mb=disk_gb * 1024 if disk_gb else None),
            usage=self._usage(raw.get("usage"), plan),
            addresses=[*([subdomain] if subdomain else []), *domains],
            created_at=_time(raw.get("created_at")), external_ref=_str(raw.get("vmid")),
            site=self._site(raw, plan, domains),
        )

    @staticmethod
    def _site(raw: Mapping[str, Any], plan: Plan | None, domains: list[str]) -> SiteInfo:
        """Quotas as the site reports them (``domains_limit``, ``backup_quota: "2/3"``), else
        from the plan table; the backend resets them on a plan change."""
        domain_limit = _int(raw.get("domains_limit"))
        if domain_limit is None and plan is not None:
            domain_limit = plan.domains
        backups = parse_quota(raw.get("backup_quota"))
        if backups is None and plan is not None and isinstance(raw.get("backups"), list):
            backups = (len(raw["backups"]), plan.backups)
        proxy = raw.get("proxy_enabled")
        return SiteInfo(
            plan=plan.name if plan else _str(raw.get("plan")), domains=domains,
            domain_quota=Quota(len(domains), domain_limit) if domain_limit is not None else None,
            backup_quota=Quota(*backups) if backups else None,
            proxy_enabled=proxy if isinstance(proxy, bool) else None,
        )

    @staticmethod
    def _usage(raw: Any, plan: Plan | None) -> Usage | None:
        if not isinstance(raw, dict):
            return None
        cpu = raw.get("cpu")
        return Usage(
            memory_mb=_num(raw.get("mem_mb")), disk_mb=_num(raw.get("disk_mb")),
            cpu_percent=round(cpu * 100, 2) if isinstance(cpu, int | float) else None,
            uptime_seconds=_int(raw.get("uptime")),
            limits=UsageLimits(memory_mb=plan.memory_mb, disk_mb=plan.disk_gb * 1024)
            if plan else None,  # the plan table: the site's RAM and disk
        )

    # -- nodes --------------------------------------------------------------------------------
    async def _nodes_raw(self) -> list[dict[str, Any]]:
        return self._objects(await self._call("GET", "/nodes"), "nodes", "node list")

    async def list_nodes(self) -> list[NodeRecord]:
        # Nodes carry capacity; what is allocated on them comes from the sites' plans.
        nodes, servers = await asyncio.gather(self._nodes_raw(), self.list_servers())
        by_node: dict[str, list[ServerRecord]] = defaultdict(list)
        for server in servers:
            if server.node_id:
                by_node[server.node_id].append(server)
        return [self._node(raw, by_node[str(raw.get("node"))]) for raw in nodes]

    def _node(self, raw: Mapping[str, Any], servers: list[ServerRecord]) -> NodeRecord:
        expect(isinstance(raw.get("node"), str), self.name, "node object")
        raw_status = _str(raw.get("status"))
        maxmem, maxdisk = _int(raw.get("maxmem")), _int(raw.get("maxdisk"))
        return NodeRecord(
            connection=self.name, id=raw["node"], name=raw["node"],
            status=map_status(NODE_STATUS, raw_status, NodeStatus.UNKNOWN, source=self.kind),
            raw_status=raw_status, region=self.config.region,
            capacity=Resources(memory_mb=maxmem // MIB if maxmem else None,
                               cpu_cores=_num(raw.get("maxcpu")),
                               disk_mb=maxdisk // MIB if maxdisk else None),
            allocated=Resources(
                memory_mb=sum(s.resources.memory_mb or 0 for s in servers),
                disk_mb=sum(s.resources.disk_mb or 0 for s in servers),
            ),
            server_ids=[s.id for s in servers],
        )

    # -- backups ------------------------------------------------------------------------------
    async def list_backups(self, server_ids: Sequence[str]) -> Mapping[str, list[BackupRecord]]:
        if len(server_ids) == 1:  # the seeds' per-service call carries less than the full list
            return {server_ids[0]: await self._site_backups(server_ids[0])}
        result: dict[str, list[BackupRecord]] = {sid: [] for sid in server_ids}
        if not server_ids:
            return result
        for raw in await self._sites_raw():
            sid = str(raw.get("service_id"))
            if sid in result:
                result[sid] = self._backups(sid, raw)
        return result

    async def _site_backups(self, server_id: str) -> list[BackupRecord]:
        try:
            body = await self._call("GET", "/action/getbak", params={"service_id": server_id})
        except NotFound:
            return []
        return self._backups(server_id, body)

    def _backups(self, server_id: str, body: Mapping[str, Any]) -> list[BackupRecord]:
        return [self._backup(server_id, item)
                for item in self._objects(body, "backups", "backup list")]

    def _backup(self, server_id: str, raw: Mapping[str, Any]) -> BackupRecord:
        expect(isinstance(raw.get("name"), str), self.name, "backup object")
        # A snapshot the backend lists without a state is simply there: completed.
        state = raw.get("state") if isinstance(raw.get("state"), str) else "ready"
        status = map_status(BACKUP_STATUS, state, BackupStatus.UNKNOWN, source=self.kind)
        created = _epoch(raw.get("snaptime"))
        return BackupRecord(
            connection=self.name, id=backup_id(server_id, raw["name"]), server_id=server_id,
            name=raw["name"], status=status, raw_status=state,
            size_bytes=_int(raw.get("size_bytes")), created_at=created,
            completed_at=created if status is BackupStatus.COMPLETED else None,
        )

    # -- lifecycle ----------------------------------------------------------------------------
    async def create_server(self, spec: ServerSpec) -> ServerRecord:
        """``POST /create-site``; the site then provisions for minutes (status INSTALLING)."""
        opts = spec.options
        owner = spec.owner_id if spec.owner_id and "@" in spec.owner_id else None
        sized = plan_for(spec.resources) if spec.resources.memory_mb or spec.resources.disk_mb \
            else None
        fields = {
            "service_id": _opt(opts, "service_id") or spec.external_ref,
            "email": _opt(opts, "email") or owner,
            "plan": (_opt(opts, "plan") or spec.template or (sized.name if sized else "")).lower(),
            "public_ip": _opt(opts, "public_ip") or self.public_ip,
        }
        missing = {k: "required" for k, v in fields.items() if not v}
        if missing:
            raise InvalidRequest(f"{self.kind} needs {', '.join(missing)} to create a site",
                                 provider=self.name, fields=missing)
        body = await self._call("POST", "/create-site", json=fields, long=True)
        if isinstance(body.get("site"), dict):
            return self._server(body["site"])
        plan = PLANS.get(str(fields["plan"]))
        return ServerRecord(
            connection=self.name, id=str(fields["service_id"]),
            name=f"site-{fields['service_id']}", status=ServerStatus.INSTALLING,
            raw_status="installing", owner_id=fields["email"],
            resources=plan.resources if plan else Resources(),
        )

    async def power(self, server_id: str, action: PowerAction) -> None:
        if action is PowerAction.KILL:  # the backend only has graceful stop
            raise self._unsupported(Capability.SERVER_KILL)
        await self._action(f"/action/{action.value}", server_id)

    async def suspend_server(self, server_id: str, reason: str | None, *,
                             stop: bool = True) -> None:
        await self._action("/suspend", server_id)  # the backend keeps no reason

    async def unsuspend_server(self, server_id: str) -> None:
        await self._action("/unsuspend", server_id)

    async def reinstall_server(self, server_id: str) -> None:
        """"Reset": roll the container back to the ``initial`` snapshot taken at provisioning."""
        await self._action("/action/reset", server_id)

    async def resize_server(self, server_id: str, resources: Resources) -> None:
        plan = plan_for(resources)
        if plan is None:
            raise InvalidRequest(f"no {self.kind} plan has that much memory or disk",
                                 provider=self.name, fields={"resources": "too large"})
        await self.change_plan(server_id, plan.name)

    async def resize_to_package(self, server_id: str, package: str) -> None:
        await self.change_plan(server_id, package)

    async def change_plan(self, server_id: str, plan: str) -> None:
        """``POST /wp/upgrade/``: resize RAM/disk and reset backup and domain quotas."""
        if plan.lower() not in PLANS:  # the backend's 400 would say the same, a call later
            raise InvalidRequest(f"unknown plan {plan!r}; {self.kind} plans are "
                                 f"{', '.join(PLANS)}", provider=self.name,
                                 fields={"plan": "unknown plan"})
        await self._action("/wp/upgrade/", server_id, plan=plan.lower())

    async def delete_server(self, server_id: str) -> None:
        await self._action("/delete-site", server_id, long=True)

    async def create_backup(self, server_id: str, name: str | None) -> BackupRecord:
        """``mkbak``; the backend names it ``BAK{DDMMYYYY}-{N}``, so ``name`` is ignored."""
        body = await self._action("/action/mkbak", server_id)
        expect(isinstance(body.get("backup"), dict), self.name, "backup object")
        return self._backup(server_id, body["backup"])

    async def restore_backup(self, server_id: str, backup_id: str) -> None:
        await self._action("/action/rollback", server_id, bak=backup_name(server_id, backup_id))

    async def delete_backup(self, server_id: str, backup_id: str) -> None:
        await self._action("/action/delbak", server_id, bak=backup_name(server_id, backup_id))

    # -- catalogue ------------------------------------------------------------------------------
    async def catalogue(self) -> list[CatalogueEntry]:
        """The backend's plans (RAM, disk, backups, domains): it has no route listing
        them, so they come from the same table the adapter sizes sites by."""
        return [CatalogueEntry(
            kind=EntryKind.PLAN, id=plan.name, name=plan.name.capitalize(),
            description=f"{plan.backups} backups, {plan.domains} custom domains",
            resources=plan.resources,
            usable_as=(PLAN_ARG, RESIZE_PACKAGE, CREATE_TEMPLATE)) for plan in PLANS.values()]

    # -- site extras ----------------------------------------------------------------------------
    async def list_domains(self, server_id: str) -> list[str]:
        body = await self._call("GET", "/action/getdomain", params={"service_id": server_id})
        domains = body.get("domains")
        if not isinstance(domains, list):
            raise UnexpectedResponse(f"{self.name} sent an unexpected domain list",
                                     provider=self.name)
        return [str(d) for d in domains]

    async def add_domain(self, server_id: str, domain: str) -> None:
        """The backend checks the domain's A record before creating the proxy host; its
        refusal ("Domain does not point to …") is a 400 whose message, cleaned of its envelope,
        reaches the client as BAD_USER_INPUT on the ``domain`` field."""
        try:
            await self._action("/action/setdomain", server_id, domain=domain)
        except InvalidRequest as exc:
            if not exc.fields:
                exc.fields = {"domain": exc.message}
            raise

    async def remove_domain(self, server_id: str, domain: str) -> None:
        await self._action("/action/deldomain", server_id, domain=domain)

    async def toggle_proxy(self, server_id: str) -> bool:
        """Flip the site's reverse-proxy host on or off; returns whether it is now enabled."""
        body = await self._action("/action/toggle", server_id)
        expect(isinstance(body.get("enabled"), bool), self.name, "toggle answer")
        return bool(body["enabled"])


def _opt(options: Mapping[str, object], key: str) -> str | None:
    value = options.get(key)
    return str(value) if value not in (None, "") else None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _epoch(value: Any) -> datetime | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None

