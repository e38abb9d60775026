"""NextPanel adapter: hosting accounts spread over several NextPanel servers behind one API.

NextPanel is known only from seed 002; the routes and bodies assumed here are written down in
docs/providers/nextpanel.md. Batching: ``GET {prefix}/accounts`` pages 100 accounts per call and
``GET {prefix}/servers/status`` returns every server with its capacity and health in one call.
Usage has no list form (``/accounts/{id}/stats`` per account), so it is read only for the
accounts a caller asks for by id (``get_accounts``), at most 8 at a time.

Servers are capacity holders counted in *accounts*, not memory or disk, so they do not fit
``NodeRecord.capacity`` (``Resources``). ``list_nodes`` returns NodeRecords with that left empty,
and ``list_node_capacity`` returns :class:`AccountCapacity` per node from the same call.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

from panelql.domain.records import AccountRecord, AccountSpec, NodeRecord, Slots, Usage
from panelql.domain.status import AccountStatus, NodeStatus, map_status
from panelql.providers.config import ConnectionConfig
from panelql.providers.contract import Capability, Family, HostingProvider
from panelql.providers.errors import Conflict, NotFound
from panelql.providers.http import ClientFactory, Upstream, expect
from panelql.providers.nextpanel.mapping import ACCOUNT_STATUS, NODE_STATUS, node_raw_status
from panelql.providers.values import parse_time

ACCOUNTS_PAGE = 100
STATS_CONCURRENCY = 8
DEFAULT_PREFIX = "/api"


def read_error(body: Any) -> str | None:
    """FastAPI errors: ``{"detail": "…"}``, or a list of field problems on 422."""
    if not isinstance(body, dict):
        return None
    detail = body.get("detail", body.get("error"))
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        msgs = [str(d.get("msg")) for d in detail if isinstance(d, dict) and d.get("msg")]
        return "; ".join(msgs) or None
    return None



@dataclass(slots=True)
class NextPanelAccount(AccountRecord):
    """An AccountRecord that also says which NextPanel server holds the account."""

    node_id: str | None = None


@dataclass(frozen=True, slots=True)
class AccountCapacity:
    """How many accounts a NextPanel server holds and can hold, and whether it takes more."""

    node_id: str
    capacity: int
    accounts: int
    healthy: bool  # is_active and is_online

    @property
    def available(self) -> int:
        return max(0, self.capacity - self.accounts)

    @property
    def load(self) -> float:
        return self.accounts / self.capacity if self.capacity > 0 else 1.0


def placement_order(servers: Sequence[AccountCapacity]) -> list[AccountCapacity]:
    """Healthy servers with room, least loaded first (the seed's load balancing)."""
    usable = [s for s in servers if s.healthy and s.available > 0]
    return sorted(usable, key=lambda s: (s.load, -s.available, s.node_id))


class NextPanelProvider(HostingProvider):
    kind = "nextpanel"
    families = frozenset({Family.HOSTING})
    capabilities = frozenset({
        Capability.ACCOUNT_READ, Capability.NODE_READ, Capability.ACCOUNT_CREATE,
        Capability.ACCOUNT_SUSPEND, Capability.ACCOUNT_DELETE,
    })

    def __init__(self, config: ConnectionConfig, upstream: Upstream,
                 prefix: str = DEFAULT_PREFIX) -> None:
        super().__init__(config)
        self.api = upstream
        self.prefix = prefix.rstrip("/")
        self._stats = asyncio.Semaphore(STATS_CONCURRENCY)

    @classmethod
    def from_config(cls, config: ConnectionConfig, clients: ClientFactory) -> Self:
        client = clients.build(
            config.base_url.rstrip("/"),
            headers={"X-API-Key": config.credential("key_id"),
                     "X-API-Secret": config.credential("key_secret")},
            timeout=config.timeout_seconds,
        )
        prefix = str(config.options.get("api_prefix") or DEFAULT_PREFIX)
        return cls(config, Upstream(client, config.name, read_error), prefix)

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return await self.api.json(method, f"{self.prefix}{path}", **kwargs)

    async def check_health(self) -> None:
        # /api/health needs no key, so it cannot tell a revoked key; the status list can.
        await self._servers()

    # -- nodes (NextPanel servers) ------------------------------------------------------------
    async def _servers(self) -> list[dict[str, Any]]:
        body = await self._json("GET", "/servers/status")
        expect(isinstance(body, dict) and isinstance(body.get("servers"), list),
               self.name, "server status list")
        servers: list[dict[str, Any]] = body["servers"]
        for raw in servers:
            expect(isinstance(raw, dict) and "id" in raw, self.name, "server object")
        return servers

    async def list_nodes(self) -> list[NodeRecord]:
        return [self._node(raw) for raw in await self._servers()]

    async def get_nodes(self, ids: Sequence[str]) -> Mapping[str, NodeRecord]:
        wanted = set(ids)
        return {n.id: n for n in await self.list_nodes() if n.id in wanted}

    async def list_node_capacity(self) -> dict[str, AccountCapacity]:
        """Account capacity of every server, keyed by node id (one upstream call)."""
        return {str(raw["id"]): self._capacity(raw) for raw in await self._servers()}

    def _node(self, raw: dict[str, Any]) -> NodeRecord:
        status_raw = node_raw_status(raw.get("is_active"), raw.get("is_online"))
        return NodeRecord(
            connection=self.name, id=str(raw["id"]), name=str(raw.get("name") or raw["id"]),
            status=map_status(NODE_STATUS, status_raw, NodeStatus.UNKNOWN, source=self.kind),
            raw_status=status_raw, region=raw.get("location"),
            account_slots=Slots(self._count(raw, "capacity"), self._count(raw, "current_accounts")),
        )

    def _capacity(self, raw: dict[str, Any]) -> AccountCapacity:
        return AccountCapacity(node_id=str(raw["id"]), capacity=self._count(raw, "capacity"),
                               accounts=self._count(raw, "current_accounts"),
                               healthy=raw.get("is_active") is True
                               and raw.get("is_online") is True)

    def _count(self, raw: dict[str, Any], key: str) -> int:
        value: Any = raw.get(key)
        expect(isinstance(value, int) and not isinstance(value, bool), self.name, f"server {key}")
        return int(value)

    # -- accounts -----------------------------------------------------------------------------
    async def list_accounts(self) -> list[AccountRecord]:
        accounts: list[AccountRecord] = []
        skip = 0
        while True:
            body = await self._json("GET", "/accounts",
                                    params={"skip": skip, "limit": ACCOUNTS_PAGE})
            expect(isinstance(body, dict) and isinstance(body.get("accounts"), list),
                   self.name, "account list")
            page = body["accounts"]
            accounts.extend(self._account(raw) for raw in page)
            skip += len(page)
            if not page or skip >= int(body.get("total") or 0):
                return accounts

    async def get_accounts(self, ids: Sequence[str]) -> Mapping[str, AccountRecord]:
        wanted = set(ids)
        found = [a for a in await self.list_accounts() if a.id in wanted]
        usages = await self.account_usage([a.id for a in found])
        for account in found:
            account.usage = usages.get(account.id)
        return {a.id: a for a in found}

    async def account_usage(self, ids: Sequence[str]) -> dict[str, Usage]:
        """``/accounts/{id}/stats`` per account, bounded; deleted accounts are left out."""
        results = await asyncio.gather(*(self._usage(i) for i in ids))
        return {i: u for i, u in zip(ids, results, strict=True) if u is not None}

    async def _usage(self, account_id: str) -> Usage | None:
        async with self._stats:
            try:
                body = await self._json("GET", f"/accounts/{account_id}/stats")
            except NotFound:
                return None
        expect(isinstance(body, dict), self.name, "account stats")
        disk = body.get("disk_usage_mb")
        return Usage(disk_mb=float(disk) if isinstance(disk, int | float) else None)

    def _account(self, raw: Any) -> NextPanelAccount:
        expect(isinstance(raw, dict) and "id" in raw and isinstance(raw.get("username"), str),
               self.name, "account object")
        status = raw.get("status")
        return NextPanelAccount(
            connection=self.name, id=str(raw["id"]), username=raw["username"],
            email=raw.get("email"),
            status=map_status(ACCOUNT_STATUS, status, AccountStatus.UNKNOWN, source=self.kind),
            raw_status=status, package=raw.get("plan"),
            domains=[d for d in raw.get("domains") or [] if isinstance(d, str)],
            external_ref=_str(raw.get("billing_customer_id")),
            created_at=parse_time(raw.get("created_at")), node_id=_str(raw.get("server_id")),
        )

    # -- lifecycle ----------------------------------------------------------------------------
    async def create_account(self, spec: AccountSpec) -> AccountRecord:
        """Provision on ``spec.node_id``, or on the least-loaded healthy server with room.

        Without a node, a server that turns out full (409) is skipped for the next one, the
        failover the seed describes; other errors stop at once.
        """
        candidates = [spec.node_id] if spec.node_id else [
            s.node_id for s in placement_order(list((await self.list_node_capacity()).values()))
        ]
        if not candidates:
            raise Conflict("no healthy NextPanel server has room for another account",
                           provider=self.name)
        body = {"username": spec.username, "email": spec.email,
                "password": spec.password or secrets.token_urlsafe(18),
                "full_name": spec.username, "billing_customer_id": spec.external_ref}
        for index, node_id in enumerate(candidates):
            try:
                answer = await self._json("POST", "/provision",
                                          json={**body, "server_id": _server_id(node_id)})
            except Conflict as exc:
                if spec.node_id or index == len(candidates) - 1 or not _is_full(exc):
                    raise
                continue
            expect(isinstance(answer, dict) and isinstance(answer.get("account"), dict),
                   self.name, "provision answer")
            return self._account(answer["account"])
        raise AssertionError("unreachable: the loop returns or raises")

    async def suspend_account(self, account_id: str, reason: str | None) -> None:
        await self._json("POST", f"/accounts/{account_id}/suspend",
                         json={"reason": reason or "Suspended"})

    async def unsuspend_account(self, account_id: str) -> None:
        await self._json("POST", f"/accounts/{account_id}/unsuspend")

    async def delete_account(self, account_id: str) -> None:
        await self._json("DELETE", f"/accounts/{account_id}")


def _is_full(error: Conflict) -> bool:
    text = error.message.lower()
    return "capacity" in text or "not available" in text or "full" in text


def _server_id(node_id: str) -> int | str:
    return int(node_id) if node_id.isdigit() else node_id


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
