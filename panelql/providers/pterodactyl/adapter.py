"""Pterodactyl adapter: compute (servers, nodes, backups) and hosting (panel users as Accounts).

Batching (upstream calls per query):
- servers: ``GET /api/application/servers?include=allocations&per_page=1000`` → one call per
  1000 servers (the 1.x Application API has no per_page cap; a panel on the develop branch,
  which caps it at 100, is read in pages of 100 after its first refusal: client.app_list);
- nodes: ``GET /nodes?include=location`` → one call; accounts: ``GET /users`` → one call;
- power state: the Application API only knows lifecycle states (``status`` non-null); for the
  rest Wings' state is in the Client API ``/servers/{identifier}/resources``, one call per
  server, bounded by a semaphore. Backups are likewise one Client API list per server.

Credentials: ``application_key`` (``ptla_…``) and, optionally, ``client_key`` (``ptlc_…`` of a
root admin, needed for live state, power and backups).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Self, TypeVar
from urllib.parse import quote

from panelql.domain.catalogue import CatalogueEntry
from panelql.domain.records import (
    AccessGrant,
    AccountRecord,
    AccountSpec,
    BackupRecord,
    LiveState,
    NodeRecord,
    PowerAction,
    Resources,
    ServerRecord,
    ServerSpec,
    TaskHandle,
)
from panelql.domain.status import ServerStatus
from panelql.providers import read_memo
from panelql.providers.bounded import Bounded
from panelql.providers.config import ConnectionConfig
from panelql.providers.contract import Capability, ComputeProvider, Family, HostingProvider
from panelql.providers.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidRequest,
    NotFound,
    Unavailable,
)
from panelql.providers.http import ClientFactory, Upstream, expect
from panelql.providers.pterodactyl import catalogue, records
from panelql.providers.pterodactyl.client import (
    CLIENT_BACKUPS_PAGE,
    PterodactylApi,
    PterodactylUpstream,
    read_error,
)
from panelql.providers.pterodactyl.mapping import conflict_state, subuser_permissions
from panelql.providers.pterodactyl.provisioning import build_create_body, switch_egg

DEFAULT_PAGE_SIZE = 1000
PER_SERVER_CONCURRENCY = 8
# Above this many unknown ids, one list call is cheaper than single gets.
SINGLE_GET_LIMIT = 3
_BACKUP_ID = re.compile(r"^[0-9a-fA-F-]{8,64}$")
T = TypeVar("T")


class PterodactylProvider(ComputeProvider, HostingProvider):
    kind = "pterodactyl"
    families = frozenset({Family.COMPUTE, Family.HOSTING})
    capabilities = frozenset({
        Capability.SERVER_READ, Capability.SERVER_LIVE_STATE, Capability.NODE_READ,
        Capability.BACKUP_READ, Capability.ACCOUNT_READ, Capability.ACCOUNT_CREATE,
        Capability.SERVER_CREATE, Capability.SERVER_POWER, Capability.SERVER_KILL,
        Capability.SERVER_SUSPEND, Capability.SERVER_REINSTALL, Capability.SERVER_RESIZE,
        Capability.SERVER_DELETE, Capability.SERVER_ACCESS,
        Capability.BACKUP_CREATE, Capability.BACKUP_RESTORE, Capability.BACKUP_DELETE,
        Capability.CATALOGUE_READ, Capability.SERVER_REINSTALL_IMAGE,
    })
    unsupported_reasons = {
        Capability.SERVER_PACKAGE: "Pterodactyl has no packages; give resources "
                                   "(PATCH /servers/{id}/build)",
    }

    # routes/api-application.php and api-client.php @706db62c have no SSO, login-token or
    # impersonation route; panel logins are the user's own password (or a reset e-mail).
    login_url_missing = ("Pterodactyl's Application and Client APIs have no single sign-on "
                         "or one-time login route (routes/api-application.php @706db62c); "
                         "users log in with their password")

    def __init__(self, config: ConnectionConfig, api: PterodactylApi) -> None:
        super().__init__(config)
        self.api = api
        self.force_delete = bool(config.options.get("force_delete", False))
        # Client API routes take the 8-char identifier, the Application API the numeric id.
        self._identifiers: dict[str, str] = {}
        self._per_server = Bounded(PER_SERVER_CONCURRENCY)

    @classmethod
    def from_config(cls, config: ConnectionConfig, clients: ClientFactory) -> Self:
        base = config.base_url.rstrip("/")

        def upstream(key: str) -> Upstream:
            client = clients.build(base, headers={"Authorization": f"Bearer {key}"},
                                   timeout=config.timeout_seconds)
            return PterodactylUpstream(client, config.name, read_error)

        client_key = config.credentials.get("client_key")
        api = PterodactylApi(
            upstream(config.credential("application_key")),
            upstream(client_key.reveal()) if client_key is not None else None,
            page_size=int(config.options.get("page_size", DEFAULT_PAGE_SIZE)),
        )
        return cls(config, api)

    async def catalogue(self) -> list[CatalogueEntry]:
        return await catalogue.read(self.api)

    async def check_health(self) -> None:
        await self.api.app.json("GET", "/api/application/nodes", params={"per_page": 1})
        if self.api.has_client:
            account = await self.api.client_item("GET", "/account", "account")
            if not account.get("admin"):
                # A non-admin key only sees its own servers: live state would 404 elsewhere.
                raise AuthenticationFailed(
                    f"{self.name}: client_key must belong to a root admin", provider=self.name)

    # -- servers ------------------------------------------------------------------------------
    async def list_servers(self) -> list[ServerRecord]:
        # Read again for identifiers within the same query: decoded and mapped once.
        return await read_memo.shared_list(("servers", self.name), self._list_servers)

    async def _list_servers(self) -> list[ServerRecord]:
        items = await self.api.app_list("/servers", include="allocations")
        return [self._server(attrs) for attrs in items]

    def _server(self, attrs: dict[str, Any]) -> ServerRecord:
        allocations = self.api.related(attrs, "allocations")
        record = records.server(self.name, attrs,
                                allocations if isinstance(allocations, list) else None)
        self._identifiers[record.id] = str(attrs["identifier"])
        return record

    async def _identifiers_for(self, ids: Sequence[str]) -> dict[str, str]:
        """id → identifier for the ids that exist; unknown ones cost a get or one list call."""
        wanted = [i for i in dict.fromkeys(ids) if i.isdigit()]
        unknown = [i for i in wanted if i not in self._identifiers]
        if len(unknown) > SINGLE_GET_LIMIT:
            await self.list_servers()
        else:
            await asyncio.gather(*(self._fetch_server(i) for i in unknown))
        return {i: self._identifiers[i] for i in wanted if i in self._identifiers}

    async def _fetch_server(self, server_id: str) -> ServerRecord | None:
        try:
            attrs = await self.api.app_item("GET", f"/servers/{server_id}", "server")
        except NotFound:
            return None
        return self._server(attrs)

    async def _identifier(self, server_id: str) -> str:
        found = await self._identifiers_for([server_id])
        if server_id not in found:
            raise NotFound(f"server {server_id} does not exist", provider=self.name)
        return found[server_id]

    async def get_live_states(self, ids: Sequence[str]) -> Mapping[str, LiveState]:
        if not self.api.has_client:
            return {i: LiveState(ServerStatus.UNKNOWN, None) for i in ids}
        idents = await self._identifiers_for(ids)
        states = await self._each(idents, self._live_state)
        return dict(zip(idents, states, strict=True))

    async def _live_state(self, identifier: str) -> LiveState:
        try:
            attrs = await self.api.client_item("GET", f"/servers/{identifier}/resources",
                                               "stats")
        except Conflict as exc:
            status, raw = conflict_state(exc.message)
            return LiveState(status, raw)
        except Unavailable as exc:
            if exc.upstream_status is None:
                raise  # the panel itself is unreachable: not a per-server fact
            # The panel answered 5xx for this server only: its Wings daemon is unreachable.
            return LiveState(ServerStatus.UNKNOWN, "daemon_unreachable")
        return records.live_state(attrs)

    async def _each(self, idents: Mapping[str, str],
                    call: Callable[[str], Awaitable[T]]) -> list[T]:
        return await self._per_server.gather(call(i) for i in idents.values())

    # -- nodes and accounts -------------------------------------------------------------------
    async def list_nodes(self) -> list[NodeRecord]:
        items = await self.api.app_list("/nodes", include="location")
        nodes = []
        for attrs in items:
            location = self.api.related(attrs, "location")
            nodes.append(records.node(self.name, attrs,
                                      location if isinstance(location, dict) else None))
        return nodes

    async def list_accounts(self) -> list[AccountRecord]:
        return [records.account(self.name, attrs) for attrs in await self.api.app_list("/users")]

    async def create_account(self, spec: AccountSpec) -> AccountRecord:
        """``POST /api/application/users`` (StoreUserRequest @706db62c: email, username,
        first_name, last_name required; external_id unique; no password means the panel
        e-mails a set-password link). 422s come back per field (PterodactylUpstream)."""
        first, _, last = (spec.name or "").strip().partition(" ")
        body: dict[str, Any] = {"email": spec.email, "username": spec.username,
                                "first_name": first, "last_name": last.strip()}
        if spec.external_ref:
            body["external_id"] = spec.external_ref
        if spec.password:
            body["password"] = spec.password
        return records.account(self.name, await self.api.app_item("POST", "/users", "user",
                                                                  body))

    async def find_account_by_external_ref(self, external_ref: str) -> AccountRecord | None:
        # GET /users/external/{external_id} (ExternalUserController::index @706db62c): 404
        # when no user has it.
        try:
            attrs = await self.api.app_item("GET", f"/users/external/{quote(external_ref, '')}",
                                            "user")
        except NotFound:
            return None
        return records.account(self.name, attrs)

    # -- backups ------------------------------------------------------------------------------
    async def list_backups(self, server_ids: Sequence[str]) -> Mapping[str, list[BackupRecord]]:
        idents = await self._identifiers_for(server_ids)
        found = dict(zip(idents, await self._each(idents, self._backups_of), strict=True))
        out: dict[str, list[BackupRecord]] = {}
        for sid in server_ids:
            out[sid] = [records.backup(self.name, sid, b) for b in found.get(sid, [])]
        return out

    async def _backups_of(self, identifier: str) -> list[dict[str, Any]]:
        try:
            return await self.api.client_list(f"/servers/{identifier}/backups",
                                              CLIENT_BACKUPS_PAGE)
        except Conflict:
            # Suspended, installing or restoring servers refuse every Client API route but the
            # server view, so their backups cannot be read until the state clears.
            return []

    # -- lifecycle ----------------------------------------------------------------------------
    async def create_server(self, spec: ServerSpec) -> ServerRecord | TaskHandle:
        body = await build_create_body(self.api, spec)
        created = await self.api.app_item("POST", "/servers?include=allocations", "server", body)
        return self._server(created)

    async def power(self, server_id: str, action: PowerAction) -> TaskHandle | None:
        identifier = await self._identifier(server_id)
        # 204: the panel only forwards the signal; completion shows up in /resources.
        await self.api.client_send("POST", f"/servers/{identifier}/power",
                                   {"signal": action.value})
        return None

    async def suspend_server(self, server_id: str, reason: str | None, *,
                             stop: bool = True) -> None:
        # Pterodactyl keeps no reason; suspending a suspended server is a no-op upstream.
        await self.api.app_send("POST", f"/servers/{_numeric(server_id, self.name)}/suspend")

    async def unsuspend_server(self, server_id: str) -> None:
        await self.api.app_send("POST", f"/servers/{_numeric(server_id, self.name)}/unsuspend")

    async def reinstall_with_image(self, server_id: str, image: str) -> TaskHandle | None:
        """Switch to another egg (``"<nest>/<egg>"`` from the catalogue) and reinstall."""
        await switch_egg(self.api, _numeric(server_id, self.name), image)
        return None

    async def reinstall_server(self, server_id: str) -> TaskHandle | None:
        # The status becomes "installing" at once; the list call shows when it is done.
        await self.api.app_send("POST", f"/servers/{_numeric(server_id, self.name)}/reinstall")
        return None

    async def resize_server(self, server_id: str, resources: Resources) -> TaskHandle | None:
        sid = _numeric(server_id, self.name)
        # PATCH /build requires the allocation and feature limits, so read them first.
        current = await self.api.app_item("GET", f"/servers/{sid}", "server")
        limits = dict(current.get("limits") or {})
        if resources.memory_mb is not None:
            limits["memory"] = resources.memory_mb
        if resources.disk_mb is not None:
            limits["disk"] = resources.disk_mb
        if resources.cpu_cores is not None:
            limits["cpu"] = round(resources.cpu_cores * 100)
        body = {"allocation": current.get("allocation"), "limits": limits,
                "feature_limits": current.get("feature_limits") or {},
                "oom_disabled": limits.get("oom_disabled", True)}
        self._server(await self.api.app_item("PATCH", f"/servers/{sid}/build", "server", body))
        return None

    async def delete_server(self, server_id: str) -> TaskHandle | None:
        suffix = "/force" if self.force_delete else ""
        await self.api.app_send("DELETE", f"/servers/{_numeric(server_id, self.name)}{suffix}")
        self._identifiers.pop(server_id, None)
        return None

    async def create_backup(self, server_id: str, name: str | None) -> BackupRecord | TaskHandle:
        identifier = await self._identifier(server_id)
        body = {"name": name} if name else {}
        attrs = await _state_errors(self.api.client_item(
            "POST", f"/servers/{identifier}/backups", "backup", body))
        return records.backup(self.name, server_id, attrs)

    async def restore_backup(self, server_id: str, backup_id: str) -> TaskHandle | None:
        identifier = await self._identifier(server_id)
        path = f"/servers/{identifier}/backups/{_backup_id(backup_id, self.name)}/restore"
        await _state_errors(self.api.client_send("POST", path, {"truncate": False}))
        return None

    async def delete_backup(self, server_id: str, backup_id: str) -> None:
        identifier = await self._identifier(server_id)
        path = f"/servers/{identifier}/backups/{_backup_id(backup_id, self.name)}"
        await _state_errors(self.api.client_send("DELETE", path))

    async def grant_access(self, server_id: str, account_id: str,
                           permissions: Sequence[str]) -> AccessGrant:
        identifier = await self._identifier(server_id)
        user = await self.api.app_item("GET", f"/users/{_numeric(account_id, self.name)}", "user")
        wanted, unmapped = subuser_permissions(list(permissions))
        body = {"permissions": wanted}
        subusers = await self.api.client_list(f"/servers/{identifier}/users", 100)
        if any(s.get("uuid") == user.get("uuid") for s in subusers):
            saved = await self.api.client_item(
                "POST", f"/servers/{identifier}/users/{user['uuid']}", "subuser", body)
        else:
            saved = await self.api.client_item("POST", f"/servers/{identifier}/users",
                                               "subuser", {"email": user.get("email"), **body})
        stored = saved.get("permissions")
        return AccessGrant(account_id=account_id, username=_opt(saved.get("username")),
                           permissions=[str(p) for p in stored] if isinstance(stored, list)
                           else wanted, unmapped=unmapped)

    async def revoke_access(self, server_id: str, account_id: str) -> bool:
        identifier = await self._identifier(server_id)
        user = await self.api.app_item("GET", f"/users/{_numeric(account_id, self.name)}", "user")
        expect(isinstance(user.get("uuid"), str), self.name, "user object")
        subusers = await self.api.client_list(f"/servers/{identifier}/users", 100)
        if not any(s.get("uuid") == user["uuid"] for s in subusers):
            return False  # not a subuser: nothing to revoke
        try:
            await self.api.client_send("DELETE", f"/servers/{identifier}/users/{user['uuid']}")
        except NotFound:
            return False  # removed meanwhile
        return True

    async def list_access(self, server_id: str) -> list[AccessGrant]:
        identifier = await self._identifier(server_id)
        subusers, users = await asyncio.gather(
            self.api.client_list(f"/servers/{identifier}/users", 100),
            self.api.app_list("/users"))
        by_uuid = {u.get("uuid"): str(u.get("id")) for u in users}
        return [AccessGrant(account_id=by_uuid[s["uuid"]], username=_opt(s.get("username")),
                            permissions=[str(p) for p in s.get("permissions") or []])
                for s in subusers if s.get("uuid") in by_uuid]


async def _state_errors(call: Awaitable[T]) -> T:
    """Backup routes answer 400 for wrong state (not completed, locked, status not null)."""
    try:
        return await call
    except InvalidRequest as exc:
        if exc.upstream_status == 400:
            raise Conflict(exc.message, provider=exc.provider, debug=exc.debug,
                           upstream_status=400) from exc
        raise


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


def _numeric(object_id: str, provider: str) -> str:
    """Application API ids are integers; anything else cannot exist (and must not reach a URL)."""
    if not object_id.isdigit():
        raise NotFound(f"{object_id!r} is not a Pterodactyl id", provider=provider)
    return object_id


def _backup_id(backup_id: str, provider: str) -> str:
    if not _BACKUP_ID.match(backup_id):
        raise NotFound(f"backup {backup_id!r} does not exist", provider=provider)
    return backup_id
