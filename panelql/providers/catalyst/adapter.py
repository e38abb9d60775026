"""Catalyst adapter: compute (servers, nodes, backups) and hosting (panel users as Accounts).

Checked against catalystctl/catalyst @747660b5 (v1.1.18): API keys go in
``Authorization: Bearer catalyst_…`` (catalyst-backend/src/index.ts ``authenticate``; the
``x-api-key`` header is ignored), failures are ``{"error": …}`` and validation failures add
``details: [{field, message}]`` (src/lib/validation.ts ``validateRequestBody``).

Batching: ``GET /api/servers`` returns every server with its latest metrics in one call, and
``GET /api/nodes`` every node; users come from ``GET /api/admin/users`` in pages of 100 (the
first, then all the others at once). Backups
have no cross-server list, so they cost one call per server, with bounded concurrency.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, Self

import httpx
import msgspec

from panelql.domain.records import (
    AccountRecord,
    BackupRecord,
    NodeRecord,
    Resources,
    ServerRecord,
    Usage,
    UsageLimits,
)
from panelql.domain.status import (
    AccountStatus,
    NodeStatus,
    ServerStatus,
    map_status,
)
from panelql.providers import read_memo
from panelql.providers.bounded import Bounded
from panelql.providers.catalyst import wire
from panelql.providers.catalyst.catalogue import CatalystCatalogue
from panelql.providers.catalyst.lifecycle import CatalystLifecycle
from panelql.providers.catalyst.mapping import INPUT_FIELDS, SERVER_STATUS, backup_status
from panelql.providers.config import ConnectionConfig
from panelql.providers.contract import (
    Capability,
    ComputeProvider,
    Family,
    HostingProvider,
)
from panelql.providers.errors import InvalidRequest, ProviderError
from panelql.providers.http import ClientFactory, Upstream, expect
from panelql.providers.values import parse_time

USERS_PAGE = 100
BACKUPS_PAGE = 100
PER_SERVER_CONCURRENCY = 8


def read_error(body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    return None


def read_details(body: Any) -> dict[str, str]:
    """``details`` of a validation failure, keyed by the GraphQL input field to fix.

    validation.ts @747660b5 formats zod issues as ``[{field: "allocatedCpuCores", message:
    "Invalid input: expected int, received number"}]``; a non-zod failure makes ``details`` a
    plain string."""
    if not isinstance(body, dict):
        return {}
    details = body.get("details")
    if isinstance(details, str):
        return {"input": details}
    fields: dict[str, str] = {}
    if isinstance(details, list):
        for item in details:
            if isinstance(item, dict) and isinstance(item.get("message"), str):
                name = str(item.get("field") or "input")
                fields.setdefault(INPUT_FIELDS.get(name, name), str(item["message"]))
    return fields


class CatalystUpstream(Upstream):
    """Catalyst's error bodies: validation ``details`` reach the client per field."""

    def failure(self, response: httpx.Response, body: Any) -> ProviderError:
        error = super().failure(response, body)
        fields = read_details(body)
        if isinstance(error, InvalidRequest) and fields:
            detail = "; ".join(f"{k}: {v}" for k, v in fields.items())
            return InvalidRequest(f"{error.message} ({detail})", fields=fields,
                                  provider=error.provider, debug=error.debug,
                                  upstream_status=error.upstream_status)
        return error



class CatalystProvider(CatalystLifecycle, CatalystCatalogue, ComputeProvider, HostingProvider):
    kind = "catalyst"
    families = frozenset({Family.COMPUTE, Family.HOSTING})
    # better-auth's admin plugin (src/auth.ts @747660b5) has "impersonate", which starts a
    # cookie session for the admin who asks; no route turns an API key into a link a customer
    # can open, and routes/admin.ts has none either.
    login_url_missing = ("Catalyst has no one-time login link: better-auth's impersonation "
                         "starts an admin's own cookie session, not a link for the customer; "
                         "send the panel's address and the user's credentials instead")
    account_password_required = True  # routes/admin.ts POST /users: 8+ characters
    capabilities = frozenset({
        Capability.SERVER_READ, Capability.NODE_READ, Capability.BACKUP_READ,
        Capability.ACCOUNT_READ, Capability.ACCOUNT_CREATE, Capability.SERVER_CREATE,
        Capability.SERVER_POWER,
        Capability.SERVER_KILL, Capability.SERVER_SUSPEND, Capability.SERVER_REINSTALL,
        Capability.SERVER_RESIZE, Capability.SERVER_DELETE, Capability.SERVER_ACCESS,
        Capability.BACKUP_CREATE, Capability.BACKUP_RESTORE, Capability.BACKUP_DELETE,
        Capability.CATALOGUE_READ,
    })
    unsupported_reasons = {
        # routes/servers/power.ts POST /:serverId/reinstall @747660b5 installs the server's own
        # template, and PUT /:serverId (core.ts) takes no templateId.
        Capability.SERVER_REINSTALL_IMAGE: "Catalyst reinstalls a server's own template; no "
                                           "route changes the template of an existing server",
        Capability.SERVER_PACKAGE: "Catalyst has no packages; give resources",
    }

    def __init__(self, config: ConnectionConfig, upstream: Upstream) -> None:
        super().__init__(config)
        self.api = upstream
        self._per_server = Bounded(PER_SERVER_CONCURRENCY)
        # The list carries each server's latest metrics row (routes/servers/core.ts
        # @747660b5, latestMetricsByServer), so its bytes change when an agent reports, not on
        # every call: the dashboards asking in between get the records already mapped.
        self._server_list = read_memo.LastAnswer()

    @classmethod
    def from_config(cls, config: ConnectionConfig, clients: ClientFactory) -> Self:
        # catalyst-backend/src/index.ts @747660b5: only a Bearer token starting "catalyst" is
        # tried as an API key; anything else is looked up as a session (401 Unauthorized).
        client = clients.build(
            config.base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {config.credential('api_key')}"},
            timeout=config.timeout_seconds,
        )
        return cls(config, CatalystUpstream(client, config.name, read_error))

    async def _data(self, path: str, **params: Any) -> Any:
        body = await self.api.json("GET", path, params=params or None)
        expect(isinstance(body, dict) and "data" in body, self.name, "envelope")
        return body["data"]

    async def check_health(self) -> None:
        await self._data("/api/nodes")

    # -- servers ------------------------------------------------------------------------------
    async def list_servers(self) -> list[ServerRecord]:
        # Read again for node allocation within the same query: decoded and mapped once.
        return await read_memo.shared_list(("servers", self.name), self._list_servers)

    async def _list_servers(self) -> list[ServerRecord]:
        response = await self.api.request("GET", "/api/servers")
        try:
            return self._server_list.records(response.content, self._decode_servers)
        except msgspec.MsgspecError:  # not the usual shape: the general path names the fault
            body = self.api.decoded(response, "/api/servers")
            expect(isinstance(body, dict) and "data" in body, self.name, "envelope")
            expect(isinstance(body["data"], list), self.name, "server list")
            return [self._server(item) for item in body["data"]]

    def _decode_servers(self, content: bytes) -> list[ServerRecord]:
        return [self._wire_server(server) for server in wire.SERVER_LIST.decode(content).data]

    def _server(self, raw: dict[str, Any]) -> ServerRecord:
        expect(isinstance(raw, dict) and "id" in raw, self.name, "server object")
        return self._wire_server(wire.server_of(raw))

    def _wire_server(self, raw: wire.WireServer) -> ServerRecord:
        expect(raw.id is not wire.UNSET, self.name, "server object")
        status = map_status(SERVER_STATUS, raw.status, ServerStatus.UNKNOWN, source=self.kind)
        usage = None
        if raw.memoryUsageMb is not wire.UNSET or raw.cpuPercent is not wire.UNSET:
            usage = Usage(memory_mb=_given(raw.memoryUsageMb), cpu_percent=_given(raw.cpuPercent),
                          disk_mb=raw.diskUsageMb, uptime_seconds=raw.uptime,
                          # Seed 000's status example carries playerCount; the server list of
                          # routes/servers/core.ts @747660b5 does not (null there).
                          player_count=_count(raw.playerCount),
                          # core.ts @747660b5: diskTotalMb, the disk the metrics count against.
                          limits=UsageLimits(memory_mb=raw.allocatedMemoryMb,
                                             disk_mb=raw.diskTotalMb))
        return ServerRecord(
            connection=self.name, id=str(raw.id), name=str(raw.name),
            status=status, raw_status=raw.status,
            suspended=raw.status == "suspended" or bool(raw.suspendedAt),
            suspension_reason=raw.suspensionReason,
            node_id=_str(raw.nodeId), owner_id=_str(raw.ownerId),
            resources=Resources(memory_mb=raw.allocatedMemoryMb,
                                cpu_cores=raw.allocatedCpuCores,
                                disk_mb=raw.allocatedDiskMb),
            usage=usage,
            addresses=_addresses(raw),
            created_at=parse_time(raw.createdAt), external_ref=_text(raw.description),
        )

    # -- nodes --------------------------------------------------------------------------------
    async def list_nodes(self) -> list[NodeRecord]:
        # Nodes carry capacity but not what is allocated on them; the server list has that.
        nodes, servers = await asyncio.gather(self._data("/api/nodes"), self.list_servers())
        expect(isinstance(nodes, list), self.name, "node list")
        allocated: dict[str, list[ServerRecord]] = defaultdict(list)
        for server in servers:
            if server.node_id:
                allocated[server.node_id].append(server)
        return [self._node(raw, allocated[str(raw.get("id"))]) for raw in nodes]

    def _node(self, raw: dict[str, Any], servers: list[ServerRecord]) -> NodeRecord:
        expect(isinstance(raw, dict) and "id" in raw, self.name, "node object")
        online = raw.get("isOnline")
        return NodeRecord(
            connection=self.name, id=str(raw["id"]), name=str(raw.get("name", "")),
            status=NodeStatus.ONLINE if online else NodeStatus.OFFLINE,
            raw_status="online" if online else "offline",
            # routes/nodes.ts @747660b5 includes location {id, name}: people (and placement)
            # say "us-east", not the location's cuid.
            region=_location_name(raw), region_id=_str(raw.get("locationId")),
            # Overallocation as routes/servers/core.ts @747660b5 applies it on create:
            # -1 disables the check (no limit), else max * (1 + percent / 100).
            capacity=Resources(
                memory_mb=_overallocated(raw.get("maxMemoryMb"),
                                         raw.get("memoryOverallocatePercent"), whole=True),
                cpu_cores=_overallocated(raw.get("maxCpuCores"),
                                         raw.get("cpuOverallocatePercent")),
                disk_mb=None),
            allocated=Resources(
                memory_mb=sum(s.resources.memory_mb or 0 for s in servers),
                cpu_cores=sum(s.resources.cpu_cores or 0 for s in servers),
                disk_mb=sum(s.resources.disk_mb or 0 for s in servers),
            ),
            server_ids=[s.id for s in servers],
        )

    # -- backups ------------------------------------------------------------------------------
    async def list_backups(self, server_ids: Sequence[str]) -> Mapping[str, list[BackupRecord]]:
        results = await asyncio.gather(*(self._server_backups(sid) for sid in server_ids))
        return dict(zip(server_ids, results, strict=True))

    async def _server_backups(self, server_id: str) -> list[BackupRecord]:
        backups: list[BackupRecord] = []
        page = 1
        async with self._per_server:
            while True:
                body = await self.api.json("GET", f"/api/servers/{server_id}/backups",
                                           params={"page": page, "limit": BACKUPS_PAGE})
                expect(isinstance(body, dict) and isinstance(body.get("backups"), list),
                       self.name, "backup list")
                backups.extend(self._backup(raw) for raw in body["backups"])
                if page >= int(body.get("totalPages") or 1):
                    return backups
                page += 1

    def _backup(self, raw: dict[str, Any]) -> BackupRecord:
        status, raw_status = backup_status(raw)
        size = raw.get("sizeMb")
        return BackupRecord(
            connection=self.name, id=str(raw["id"]), server_id=str(raw["serverId"]),
            name=str(raw.get("name", "")), status=status, raw_status=raw_status,
            size_bytes=int(size * 1024 * 1024) if isinstance(size, int | float) else None,
            created_at=parse_time(raw.get("createdAt")),
            completed_at=parse_time(raw.get("createdAt")) if raw.get("checksum") else None,
        )

    # -- accounts -----------------------------------------------------------------------------
    async def list_accounts(self) -> list[AccountRecord]:
        # The first page says how many there are; the rest are asked for together (one round
        # after it, not one round per page).
        first, pages = await self._users_page(1)
        rest = await asyncio.gather(*(self._users_page(page) for page in range(2, pages + 1)))
        accounts = first
        for found, _ in rest:
            accounts.extend(found)
        return accounts

    async def _users_page(self, page: int) -> tuple[list[AccountRecord], int]:
        body = await self.api.json("GET", "/api/admin/users",
                                   params={"page": page, "limit": USERS_PAGE})
        expect(isinstance(body, dict) and isinstance(body.get("users"), list),
               self.name, "user list")
        pages = int((body.get("pagination") or {}).get("totalPages") or 1)
        return [self._account(raw) for raw in body["users"]], pages

    def _account(self, raw: dict[str, Any]) -> AccountRecord:
        return AccountRecord(
            connection=self.name, id=str(raw["id"]), username=str(raw.get("username", "")),
            email=raw.get("email"), status=AccountStatus.ACTIVE, raw_status=None,
            created_at=parse_time(raw.get("createdAt")),
        )


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _overallocated(maximum: Any, percent: Any, *, whole: bool = False) -> Any:
    if not isinstance(maximum, int | float):
        return None
    if not isinstance(percent, int | float) or percent == 0:
        return maximum
    if percent == -1:
        return None  # unlimited: placement does not filter on it
    value = maximum * (1 + percent / 100)
    return int(value) if whole else value


def _location_name(raw: dict[str, Any]) -> str | None:
    location = raw.get("location")
    if isinstance(location, dict) and location.get("name"):
        return str(location["name"])
    return None


def _addresses(raw: wire.WireServer) -> list[str]:
    """Where players connect: ``connection.host``/``port`` as the server serializer builds it
    (routes/servers/_helpers.ts buildConnectionInfo @747660b5: the assigned IP, else the host
    network IP, else the node's public address). The subdomain is a bare label there, so it is
    not an address on its own."""
    connection = raw.connection
    found: list[str] = []
    if isinstance(connection, dict) and connection.get("host"):
        port = connection.get("port")
        host = str(connection["host"])
        found.append(f"{host}:{port}" if port else host)
    elif raw.primaryIp:
        found.append(f"{raw.primaryIp}:{raw.primaryPort}")
    return found


def _given(value: Any) -> Any:
    """A metric the panel left out is None, like one it sent as null."""
    return None if value is wire.UNSET else value


def _text(value: object) -> str | None:
    """The description where createServer put the external reference (lifecycle.py)."""
    return value if isinstance(value, str) and value else None


def _count(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None
