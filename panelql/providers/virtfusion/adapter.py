"""VirtFusion adapter: compute only (servers, hypervisors as nodes, legacy backups).

Batching: ``GET /servers?results=200`` pages through a Laravel paginator; page 1 says
``last_page`` and the remaining pages are fetched concurrently, so N servers cost ceil(N/200)
calls. Hypervisors page the same way. The list has no live power state: servers whose status is
not decided by a lifecycle field come back with ``status=None`` and the gateway asks
:meth:`get_live_states`, one ``GET /servers/{id}?remoteState=true`` per server (that call reaches
the hypervisor, so it is slow) with at most ``PER_SERVER_CONCURRENCY`` in flight. Backups have no
cross-server list either: one ``GET /backups/server/{id}`` per server, same bound.

VirtFusion users are Accounts (users.py): the API can create a user and find one by its external
relation id but cannot list users, so the Accounts shown are the owners embedded in the server
list plus the users this gateway created. Single sign-on is per server: a login token for the
server's owner, found by the owner's ``extRelationId``.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, Self, TypeVar

from panelql.domain.catalogue import CatalogueEntry
from panelql.domain.records import (
    AccountRecord,
    AccountSpec,
    BackupRecord,
    LiveState,
    LoginLink,
    NodeRecord,
    PowerAction,
    Resources,
    ServerRecord,
    ServerSpec,
    TaskHandle,
    TaskProgress,
)
from panelql.domain.status import BackupStatus, NodeStatus, ServerStatus, map_status
from panelql.providers import read_memo
from panelql.providers.bounded import Bounded
from panelql.providers.config import ConnectionConfig
from panelql.providers.contract import Capability, ComputeProvider, Family, HostingProvider
from panelql.providers.errors import Conflict, InvalidRequest, NotFound
from panelql.providers.http import ClientFactory, Upstream, expect
from panelql.providers.values import parse_time
from panelql.providers.virtfusion import catalogue
from panelql.providers.virtfusion.mapping import (
    BACKUP_STATUS,
    NODE_STATUS,
    SERVER_STATUS,
    lifecycle_key,
    node_key,
)
from panelql.providers.virtfusion.packages import Package, pick_package
from panelql.providers.virtfusion.parse import (
    addresses,
    as_int,
    as_num,
    as_str,
    gb,
    live_state,
    obj,
    read_error,
)
from panelql.providers.virtfusion.users import VirtFusionUpstream, account

PAGE_SIZE = 200  # the API's maximum for ``results``
MAX_PAGES = 500  # a runaway ``last_page`` must not become 10^6 requests
PER_SERVER_CONCURRENCY = 8
PACKAGE_CHANGE = "configLevel"  # a TaskHandle followed by the server's configLevel

POWER_VERBS = {
    PowerAction.START: "boot",
    PowerAction.STOP: "shutdown",
    PowerAction.RESTART: "restart",
    PowerAction.KILL: "poweroff",
}

T = TypeVar("T")


class VirtFusionProvider(ComputeProvider, HostingProvider):
    kind = "virtfusion"
    families = frozenset({Family.COMPUTE, Family.HOSTING})
    login_url_for = "Server"  # tokens are per server: users/{ext}/serverAuthentication…
    capabilities = frozenset({
        Capability.SERVER_READ, Capability.SERVER_LIVE_STATE, Capability.NODE_READ,
        Capability.BACKUP_READ, Capability.SERVER_CREATE, Capability.SERVER_POWER,
        Capability.SERVER_KILL, Capability.SERVER_SUSPEND, Capability.SERVER_REINSTALL,
        Capability.SERVER_RESIZE, Capability.SERVER_DELETE, Capability.ACCOUNT_READ,
        Capability.ACCOUNT_CREATE, Capability.LOGIN_URL, Capability.SERVER_PASSWORD,
        Capability.CATALOGUE_READ,
        Capability.SERVER_REINSTALL_IMAGE, Capability.SERVER_PACKAGE,
    })

    def __init__(self, config: ConnectionConfig, upstream: Upstream) -> None:
        super().__init__(config)
        self.api = upstream
        self._limit = Bounded(PER_SERVER_CONCURRENCY)
        # Users seen as server owners or created here: the API cannot list users.
        self._users: dict[str, AccountRecord] = {}

    @classmethod
    def from_config(cls, config: ConnectionConfig, clients: ClientFactory) -> Self:
        # base_url is the API root, e.g. https://cp.example.com/api/v1
        client = clients.build(
            config.base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {config.credential('api_token')}",
                     "Content-Type": "application/json"},
            timeout=config.timeout_seconds,
        )
        return cls(config, VirtFusionUpstream(client, config.name, read_error))

    async def check_health(self) -> None:
        # json() turns a non-JSON body into UnexpectedResponse; /connect has no payload to check.
        await self.api.json("GET", "/connect")

    # -- plumbing -----------------------------------------------------------------------------
    async def _data(self, method: str, path: str, **kwargs: Any) -> Any:
        body = await self.api.json(method, path, **kwargs)
        expect(isinstance(body, dict) and "data" in body, self.name, "envelope")
        return body["data"]

    async def _page(self, path: str, page: int, params: dict[str, Any]) -> dict[str, Any]:
        body = await self.api.json("GET", path, params={**params, "results": PAGE_SIZE,
                                                        "page": page})
        expect(isinstance(body, dict) and isinstance(body.get("data"), list)
               and isinstance(body.get("last_page"), int), self.name, "paginated list")
        return dict(body)

    async def _paged(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of a Laravel paginator: page 1, then the rest concurrently."""
        first = await self._page(path, 1, params)
        last = min(int(first["last_page"]), MAX_PAGES)
        rest = await self._limit.gather(self._page(path, page, params)
                                        for page in range(2, last + 1))
        items: list[Any] = [*first["data"]]
        for body in rest:
            items.extend(body["data"])
        expect(all(isinstance(i, dict) and "id" in i for i in items), self.name, "list item")
        return items

    # -- servers ------------------------------------------------------------------------------
    async def list_servers(self) -> list[ServerRecord]:
        # Read again for node allocation within the same query: decoded and mapped once.
        return await read_memo.shared_list(("servers", self.name), self._list_servers)

    async def _list_servers(self) -> list[ServerRecord]:
        return [self._server(raw) for raw in await self._paged("/servers")]

    async def get_server(self, server_id: str) -> ServerRecord:
        return self._server(await self._server_raw(server_id, remote=False))

    async def _server_raw(self, server_id: str, *, remote: bool) -> dict[str, Any]:
        data = await self._data("GET", f"/servers/{server_id}",
                                params={"remoteState": "true" if remote else "false"})
        expect(isinstance(data, dict) and "id" in data, self.name, "server object")
        return dict(data)

    def _server(self, raw: dict[str, Any]) -> ServerRecord:
        expect(isinstance(raw, dict) and "id" in raw, self.name, "server object")
        owner = raw.get("owner")
        if isinstance(owner, dict) and "id" in owner:
            self._users[str(owner["id"])] = account(self.name, owner)
        key = lifecycle_key(raw)
        status = None if key is None else map_status(SERVER_STATUS, key, ServerStatus.UNKNOWN,
                                                     source=self.kind)
        resources = obj(obj(raw, "settings"), "resources")
        storage_gb = as_num(resources.get("storage"))
        return ServerRecord(
            connection=self.name, id=str(raw["id"]), name=str(raw.get("name") or raw["id"]),
            status=status, raw_status=key, suspended=raw.get("suspended") is True,
            node_id=as_str(raw.get("hypervisorId")), owner_id=as_str(raw.get("ownerId")),
            resources=Resources(memory_mb=as_int(resources.get("memory")),
                                cpu_cores=as_num(resources.get("cpuCores")),
                                disk_mb=int(storage_gb * 1024) if storage_gb is not None else None),
            addresses=addresses(raw.get("network")),
            created_at=parse_time(raw.get("created")), external_ref=as_str(raw.get("uuid")),
        )

    # -- users (Accounts), login links, root password ------------------------------------------
    async def list_accounts(self) -> list[AccountRecord]:
        await self.list_servers()  # fills in the owners
        return list(self._users.values())

    async def get_accounts(self, ids: Sequence[str]) -> Mapping[str, AccountRecord]:
        if any(i not in self._users for i in ids):
            await self.list_servers()
        return {i: self._users[i] for i in ids if i in self._users}

    async def create_account(self, spec: AccountSpec) -> AccountRecord:
        """``POST /users {name, email, extRelationId, sendMail}``: the relation id is the
        billing system's numeric client id (externalRef), how VirtFusion finds the user again
        and issues its login tokens."""
        ext = _int_input(spec.external_ref, "externalRef", self.name)
        body = {"name": spec.name or spec.username, "email": spec.email, "extRelationId": ext,
                "sendMail": False}
        data = await self._data("POST", "/users", json=body)
        expect(isinstance(data, dict) and "id" in data, self.name, "created user")
        created = account(self.name, data)
        self._users[created.id] = created
        return created

    async def find_account_by_external_ref(self, external_ref: str) -> AccountRecord | None:
        if not external_ref.isdigit():
            return None  # VirtFusion relation ids are integers: no user can have this one
        try:
            data = await self._data("GET", f"/users/{external_ref}/byExtRelation")
        except NotFound:
            return None
        expect(isinstance(data, dict) and "id" in data, self.name, "user object")
        found = account(self.name, data)
        self._users[found.id] = found
        return found

    async def login_url(self, resource: str, resource_id: str) -> LoginLink:
        """``POST /users/{extRelationId}/serverAuthenticationTokens/{serverId}``; the browser
        goes to the panel's origin + ``data.authentication.endpoint_complete``."""
        if resource != "Server":
            raise InvalidRequest("VirtFusion login links open one server: give the server's id",
                                 provider=self.name, fields={"resource": "server"})
        raw = await self._server_raw(_int_id(resource_id, self.name), remote=False)
        owner = obj(raw, "owner")
        ext = as_str(owner.get("extRelationId"))
        if not ext:
            raise Conflict("the server's owner has no external relation id, which VirtFusion "
                           "needs to issue a login token", provider=self.name,
                           current_status="NO_RELATION_ID")
        data = await self._data("POST", f"/users/{ext}/serverAuthenticationTokens/{raw['id']}")
        path = obj(data if isinstance(data, dict) else {}, "authentication").get(
            "endpoint_complete")
        # A path on the panel itself: never let an answer point the customer elsewhere.
        expect(isinstance(path, str) and path.startswith("/") and not path.startswith("//"),
               self.name, "login token answer")
        return LoginLink(url=self._panel_origin() + str(path), username=as_str(owner.get("email")))

    def _panel_origin(self) -> str:
        base = self.config.base_url.rstrip("/")
        return base[: -len("/api/v1")] if base.endswith("/api/v1") else base

    async def reset_server_password(self, server_id: str, user: str) -> str:
        """``POST /servers/{id}/resetPassword {user, sendMail: false}``; the answer's
        ``data.expectedPassword`` (as the billing modules read it; unverified) is the new one."""
        data = await self._data("POST", f"/servers/{_int_id(server_id, self.name)}/resetPassword",
                                json={"user": user, "sendMail": False})
        password = data.get("expectedPassword") if isinstance(data, dict) else None
        expect(isinstance(password, str) and bool(password), self.name, "password answer")
        return str(password)

    async def get_live_states(self, ids: Sequence[str]) -> Mapping[str, LiveState]:
        """One remoteState GET per server, at most PER_SERVER_CONCURRENCY at once.

        Servers that no longer exist are left out; any other failure fails the batch, so the
        resolver reports this panel's error once instead of N UNKNOWNs.
        """
        self.require(Capability.SERVER_LIVE_STATE)
        results = await self._limit.gather(self._live(sid) for sid in ids)
        return {sid: state for sid, state in zip(ids, results, strict=True) if state is not None}

    async def _live(self, server_id: str) -> LiveState | None:
        try:
            raw = await self._server_raw(server_id, remote=True)
        except NotFound:
            return None
        return live_state(raw, self.kind)

    # -- nodes --------------------------------------------------------------------------------
    async def list_nodes(self) -> list[NodeRecord]:
        # Hypervisors carry capacity, not what is allocated on them; the server list has that.
        hypervisors, servers = await asyncio.gather(self._paged("/compute/hypervisors"),
                                                    self.list_servers())
        placed: dict[str, list[ServerRecord]] = defaultdict(list)
        for server in servers:
            if server.node_id:
                placed[server.node_id].append(server)
        return [self._node(raw, placed[str(raw["id"])]) for raw in hypervisors]

    def _node(self, raw: dict[str, Any], servers: list[ServerRecord]) -> NodeRecord:
        key = node_key(raw)
        group = obj(raw, "group")
        storage = raw.get("storage")
        disk_gb = [as_num(s.get("capacity")) for s in (storage if isinstance(storage, list) else [])
                   if isinstance(s, dict) and s.get("enabled", True)]
        known_disk = [gb for gb in disk_gb if gb]
        return NodeRecord(
            connection=self.name, id=str(raw["id"]), name=str(raw.get("name") or raw["id"]),
            status=map_status(NODE_STATUS, key, NodeStatus.UNKNOWN, source=self.kind),
            raw_status=key, region=as_str(group.get("name")),
            # 0 means "no limit" on a hypervisor, which is no capacity figure at all.
            capacity=Resources(memory_mb=as_int(raw.get("maxMemory")) or None,
                               cpu_cores=as_num(raw.get("maxCpu")) or None,
                               disk_mb=int(sum(known_disk) * 1024) if known_disk else None),
            allocated=Resources(
                memory_mb=sum(s.resources.memory_mb or 0 for s in servers),
                cpu_cores=sum(s.resources.cpu_cores or 0 for s in servers),
                disk_mb=sum(s.resources.disk_mb or 0 for s in servers),
            ),
            server_ids=[s.id for s in servers],
        )

    async def _hypervisor(self, node_id: str) -> dict[str, Any]:
        data = await self._data("GET", f"/compute/hypervisors/{node_id}")
        expect(isinstance(data, dict) and "id" in data, self.name, "hypervisor object")
        return dict(data)

    # -- packages -----------------------------------------------------------------------------
    async def list_packages(self) -> list[Package]:
        """Packages, the unit VirtFusion sizes servers by (used for create and resize)."""
        body = await self.api.json("GET", "/packages", params={"results": PAGE_SIZE})
        expect(isinstance(body, dict) and isinstance(body.get("data"), list), self.name,
               "package list")
        items: list[Any] = list(body["data"])
        if isinstance(body.get("last_page"), int) and body["last_page"] > 1:
            items = await self._paged("/packages")
        return [Package.from_json(raw, self.name) for raw in items]

    async def catalogue(self) -> list[CatalogueEntry]:
        return await catalogue.read(self.api, await self.list_packages())

    async def find_package(self, wanted: Resources) -> Package | None:
        """The smallest enabled package that covers every resource ``wanted`` names."""
        return pick_package(await self.list_packages(), wanted)

    # -- backups ------------------------------------------------------------------------------
    async def list_backups(self, server_ids: Sequence[str]) -> Mapping[str, list[BackupRecord]]:
        results = await self._limit.gather(self._backups(sid) for sid in server_ids)
        return dict(zip(server_ids, results, strict=True))

    async def _backups(self, server_id: str) -> list[BackupRecord]:
        try:
            data = await self._data("GET", f"/backups/server/{server_id}")
        except NotFound:
            return []
        expect(isinstance(data, list), self.name, "backup list")
        return [self._backup(raw, server_id) for raw in data]

    def _backup(self, raw: Any, server_id: str) -> BackupRecord:
        expect(isinstance(raw, dict) and "id" in raw, self.name, "backup object")
        raw_status = as_str(raw.get("status"))
        return BackupRecord(
            connection=self.name, id=str(raw["id"]), server_id=server_id,
            name=str(raw.get("name") or f"backup-{raw['id']}"),
            status=map_status(BACKUP_STATUS, raw_status, BackupStatus.UNKNOWN, source=self.kind),
            raw_status=raw_status, size_bytes=as_int(raw.get("size")),
            locked=raw.get("locked") is True, created_at=parse_time(raw.get("created")),
            completed_at=parse_time(raw.get("completed")),
        )

    # -- lifecycle ----------------------------------------------------------------------------
    # VirtFusion queues the work and answers 204 (or a body without a job id we could follow),
    # so actions return None and the gateway polls the server's status. 423 (locked: another
    # action is queued) is a retryable Conflict at the HTTP boundary.
    async def create_server(self, spec: ServerSpec) -> ServerRecord | TaskHandle:
        """``POST /servers`` creates the record, ``POST /servers/{id}/build`` installs the OS.

        ``template`` (or ``options.operatingSystemId``) is the OS template id; the package comes
        from ``options.packageId`` or the smallest package covering ``resources``. The API's
        ``hypervisorId`` is a hypervisor *group* id, so the chosen node's group is used.
        """
        user_id = _int_input(spec.owner_id, "ownerId", self.name)
        options: dict[str, Any] = dict(spec.options)
        os_id = _int_input(options.get("operatingSystemId", spec.template), "template", self.name)
        package_id = options.get("packageId")
        if package_id is None:
            package = await self.find_package(spec.resources)
            if package is None:
                raise InvalidRequest("no VirtFusion package offers the requested resources",
                                     provider=self.name)
            package_id = package.id
        group_id = options.get("hypervisorGroupId")
        if group_id is None:
            group = obj(await self._hypervisor(spec.node_id), "group")
            expect("id" in group, self.name, "hypervisor group")
            group_id = group["id"]
        body: dict[str, Any] = {
            "packageId": _int_input(package_id, "packageId", self.name), "userId": user_id,
            "hypervisorId": _int_input(group_id, "hypervisorGroupId", self.name),
            "ipv4": _int_input(options.get("ipv4", 1), "ipv4", self.name),
        }
        # Explicit resources override the package's (VirtFusion takes whole cores, GB of disk).
        res = spec.resources
        cores = None if res.cpu_cores is None else max(1, round(res.cpu_cores))
        body.update({k: v for k, v in (("memory", res.memory_mb), ("cpuCores", cores),
                                       ("storage", gb(res.disk_mb))) if v is not None})
        created = await self._data("POST", "/servers", json=body)
        expect(isinstance(created, dict) and "id" in created, self.name, "created server")
        server_id = str(created["id"])
        await self.api.request("POST", f"/servers/{server_id}/build", json={
            "name": spec.name, "hostname": options.get("hostname"),
            "operatingSystemId": os_id, "sshKeys": list(options.get("sshKeys") or []),
        })
        return await self.get_server(server_id)

    async def power(self, server_id: str, action: PowerAction) -> TaskHandle | None:
        await self.api.request("POST", f"/servers/{server_id}/power/{POWER_VERBS[action]}")
        return None

    async def suspend_server(self, server_id: str, reason: str | None, *,
                             stop: bool = True) -> None:
        # VirtFusion keeps no suspension reason (the gateway's audit log has it), and its
        # suspension always stops the guest, so ``stop`` needs nothing extra.
        await self.api.request("POST", f"/servers/{server_id}/suspend")

    async def unsuspend_server(self, server_id: str) -> None:
        await self.api.request("POST", f"/servers/{server_id}/unsuspend")

    async def reinstall_server(self, server_id: str) -> TaskHandle | None:
        """Rebuild with the OS template the server was installed with."""
        raw = await self._server_raw(server_id, remote=False)
        os_id = obj(raw, "settings").get("osTemplateInstallId")
        if not isinstance(os_id, int):
            raise InvalidRequest("the server has no OS template to reinstall",
                                 provider=self.name)
        await self.api.request("POST", f"/servers/{server_id}/build", json={
            "name": raw.get("name"), "hostname": raw.get("hostname"),
            "operatingSystemId": os_id, "sshKeys": [],
        })
        return None

    async def reinstall_with_image(self, server_id: str, image: str) -> TaskHandle | None:
        """Rebuild with another OS template (``POST /servers/{id}/build``, as on create)."""
        raw = await self._server_raw(server_id, remote=False)
        await self.api.request("POST", f"/servers/{server_id}/build", json={
            "name": raw.get("name"), "hostname": raw.get("hostname"),
            "operatingSystemId": _int_input(image, "image", self.name), "sshKeys": [],
        })
        return None

    async def resize_to_package(self, server_id: str, package: str) -> TaskHandle | None:
        await self.api.request(
            "PUT", f"/servers/{server_id}/package/{_int_input(package, 'package', self.name)}")
        return TaskHandle(id=server_id, kind=PACKAGE_CHANGE)

    async def poll_task(self, handle: TaskHandle) -> TaskProgress:
        """A package change answers 204 and is applied in the background, the server locked
        (423 to any other action) while ``configLevel`` > 0: done when it is back to 0, so the
        start that follows a resize does not meet the lock."""
        if handle.kind != PACKAGE_CHANGE:
            return await super().poll_task(handle)
        raw = await self._server_raw(handle.id, remote=False)
        return TaskProgress(done=as_int(raw.get("configLevel")) in (0, None))

    async def resize_server(self, server_id: str, resources: Resources) -> TaskHandle | None:
        """VirtFusion resizes by package: move to the smallest package that fits."""
        package = await self.find_package(resources)
        if package is None:
            raise InvalidRequest("no VirtFusion package offers the requested resources",
                                 provider=self.name)
        await self.api.request("PUT", f"/servers/{server_id}/package/{package.id}")
        return TaskHandle(id=server_id, kind=PACKAGE_CHANGE)

    async def delete_server(self, server_id: str) -> TaskHandle | None:
        # Without ``delay`` VirtFusion waits 5 minutes (deleteLevel > 0 meanwhile, so DELETING).
        delay = self.config.options.get("delete_delay_minutes")
        params = {"delay": int(delay)} if delay is not None else None
        await self.api.request("DELETE", f"/servers/{server_id}", params=params)
        return None


def _int_input(value: Any, field: str, provider: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidRequest(f"VirtFusion needs a numeric {field}", fields={field: "not a number"},
                             provider=provider) from None


def _int_id(value: str, provider: str) -> str:
    """Server ids are integers; anything else cannot exist (and must not reach a URL)."""
    if not value.isdigit():
        raise NotFound(f"{value!r} is not a VirtFusion id", provider=provider)
    return value
