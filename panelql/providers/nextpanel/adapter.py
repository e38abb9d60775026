"""NextPanel adapter: one connection is one NextPanel server, spoken to as its billing client does.

The reference is the real billing-side client, saifulrony/nextpanel-bill
``billing-backend/app/services/nextpanel_service.py`` (checked at d511c847; the file last
changed in 9aa18120, cited below as ``service @9aa18120``). NextPanel's own source is not
public. The panel has no route that lists or counts accounts, and capacity is not the panel's
notion at all: the billing side keeps ``capacity`` and ``current_accounts`` per server and picks
the least loaded. PanelQL does that job: counts and the accounts it created live in the
gateway's :class:`~panelql.providers.ledger.AccountLedger`, and placement across connections is
in ``panelql.application.account_placement``.

Each connection has exactly one node, the server itself (id = connection name), whose
``account_slots`` come from the ledger and whose status from ``GET /api/health``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Mapping, Sequence
from typing import Any, Self

from panelql.domain.catalogue import CatalogueEntry, EntryKind
from panelql.domain.records import AccountRecord, AccountSpec, NodeRecord, Slots, Usage
from panelql.domain.status import AccountStatus, NodeStatus, map_status
from panelql.providers.bounded import Bounded
from panelql.providers.catalogue import CREATE_ACCOUNT_PACKAGE
from panelql.providers.config import ConnectionConfig
from panelql.providers.contract import Capability, Family, HostingProvider
from panelql.providers.errors import (
    CapacityExhausted,
    InvalidRequest,
    NotFound,
    ProviderError,
)
from panelql.providers.http import ClientFactory, Upstream, expect
from panelql.providers.ledger import AccountLedger, LedgerEntry
from panelql.providers.nextpanel.mapping import ACCOUNT_STATUS, account_raw_status, read_error
from panelql.providers.nextpanel.server_config import ServerConfig, server_config
from panelql.providers.nextpanel.upstream import NextPanelUpstream
from panelql.providers.resilience import never_sent
from panelql.providers.values import parse_time

# service @9aa18120: every route below hangs off this prefix of the server's base URL.
ACCOUNTS = "/api/v1/billing/accounts"
LIVE_CONCURRENCY = 8


class NextPanelProvider(HostingProvider):
    kind = "nextpanel"
    families = frozenset({Family.HOSTING})
    # The billing-side client (nextpanel-bill @d511c84) calls no SSO or login-link route, and
    # NextPanel's own source is not public: nothing to mint a link with.
    login_url_missing = ("NextPanel's API, as its billing client uses it, has no single "
                         "sign-on or one-time login route; send the panel address and the "
                         "account's password")
    capabilities = frozenset({
        Capability.ACCOUNT_READ, Capability.NODE_READ, Capability.ACCOUNT_CREATE,
        Capability.ACCOUNT_SUSPEND, Capability.ACCOUNT_DELETE, Capability.CATALOGUE_READ,
    })

    def __init__(self, config: ConnectionConfig, upstream: Upstream) -> None:
        super().__init__(config)
        self.api = upstream
        self.server: ServerConfig = server_config(config)
        self._ledger: AccountLedger | None = None
        self._live = Bounded(LIVE_CONCURRENCY)

    @classmethod
    def validate_config(cls, config: ConnectionConfig) -> None:
        server_config(config)

    async def catalogue(self) -> list[CatalogueEntry]:
        """NextPanel's API has no route listing packages (nextpanel-bill @d511c847
        ``NextPanelService``: create, get, suspend, unsuspend, delete and stats only; the
        ``package_id`` it sends is an opaque integer), so the packages are the ones the
        connection's ``packages`` option names, ``{"1" = "Starter", …}``: none otherwise."""
        named = self.config.options.get("packages")
        if not isinstance(named, dict):
            return []
        return [CatalogueEntry(kind=EntryKind.PLAN, id=str(pid), name=str(name),
                               usable_as=(CREATE_ACCOUNT_PACKAGE,))
                for pid, name in named.items()]

    @classmethod
    def from_config(cls, config: ConnectionConfig, clients: ClientFactory) -> Self:
        server_config(config)  # before anything is built: old shapes fail with what changed
        # service @9aa18120 NextPanelServer.__init__: base_url.rstrip('/'), and the session
        # sends X-API-Key and X-API-Secret (plus Content-Type: application/json) on every call.
        client = clients.build(
            config.base_url.rstrip("/"),
            headers={"X-API-Key": config.credential("api_key"),
                     "X-API-Secret": config.credential("api_secret")},
            timeout=config.timeout_seconds,
        )
        return cls(config, NextPanelUpstream(client, config.name, read_error))

    def attach_ledger(self, ledger: AccountLedger) -> None:
        self._ledger = ledger

    @property
    def ledger(self) -> AccountLedger:
        if self._ledger is None:
            raise RuntimeError(f"{self.name}: the NextPanel adapter needs the gateway's account "
                               "ledger (Gateway attaches it at start)")
        return self._ledger

    # -- health and the one node ----------------------------------------------------------------
    async def check_health(self) -> None:
        await self._health()
        # /api/health needs no key (nextpanel-bill test_nextpanel_api.sh @9aa18120, "no auth
        # required"), so it cannot tell a revoked key. The same script takes 200 or 404 on an
        # account route as "API Key is valid" and 401/403 as rejected: probe an id no account has.
        try:
            await self.api.json("GET", f"{ACCOUNTS}/0")
        except NotFound:
            return

    async def _health(self) -> None:
        # service @9aa18120 test_connection: GET /api/health, healthy when it answers 200.
        body = await self.api.json("GET", "/api/health")
        expect(isinstance(body, dict) and isinstance(body.get("status"), str), self.name,
               "health answer")

    async def list_nodes(self) -> list[NodeRecord]:
        try:
            await self._health()
            status, raw = NodeStatus.ONLINE, "healthy"
        except ProviderError:  # down or answering garbage: no new accounts go there
            status, raw = NodeStatus.OFFLINE, "unreachable"
        used = await self.ledger.used(self.name, self.server.current_accounts)
        return [NodeRecord(connection=self.name, id=self.name, name=self.name, status=status,
                           raw_status=raw, region=self.server.location,
                           account_slots=Slots(self.server.capacity, used))]

    async def get_nodes(self, ids: Sequence[str]) -> Mapping[str, NodeRecord]:
        if self.name not in ids:
            return {}
        return {n.id: n for n in await self.list_nodes()}

    # -- accounts --------------------------------------------------------------------------------
    async def list_accounts(self) -> list[AccountRecord]:
        """The accounts the gateway created here, each refreshed with ``GET …/{id}``."""
        entries = await self.ledger.entries(self.name)
        return [a for a in await asyncio.gather(*(self._live_account(e) for e in entries))
                if a is not None]

    async def get_accounts(self, ids: Sequence[str]) -> Mapping[str, AccountRecord]:
        entries = await self.ledger.entries(self.name, list(ids))
        found = [a for a in await asyncio.gather(*(self._live_account(e) for e in entries))
                 if a is not None]
        usages = await asyncio.gather(*(self._usage(a.id) for a in found))
        for account, usage in zip(found, usages, strict=True):
            account.usage = usage
        return {a.id: a for a in found}

    async def _live_account(self, entry: LedgerEntry) -> AccountRecord | None:
        # service @9aa18120 get_account: GET /api/v1/billing/accounts/{user_id}, 200 → JSON.
        async with self._live:
            try:
                body = await self.api.json("GET", f"{ACCOUNTS}/{entry.account_id}")
            except NotFound:
                # Deleted on the panel behind the gateway's back: its slot is free again.
                await self.ledger.forget(self.name, entry.account_id,
                                         self.server.current_accounts)
                return None
        expect(isinstance(body, dict), self.name, "account object")
        raw = account_raw_status(body, entry.status)
        username = body.get("username")
        email = body.get("email")
        return AccountRecord(
            connection=self.name, id=entry.account_id,
            username=username if isinstance(username, str) else entry.username,
            email=email if isinstance(email, str) else entry.email,
            status=map_status(ACCOUNT_STATUS, raw, AccountStatus.UNKNOWN, source=self.kind),
            raw_status=raw, external_ref=entry.external_ref,
            created_at=parse_time(body.get("created_at")) or entry.created_at,
        )

    async def _usage(self, account_id: str) -> Usage | None:
        stats = await self.account_stats(account_id)
        if stats is None:
            return None
        disk = stats.get("storage_used")
        return Usage(disk_mb=float(disk) if isinstance(disk, int | float)
                     and not isinstance(disk, bool) else None)

    async def account_stats(self, account_id: str) -> dict[str, Any] | None:
        """``GET …/{id}/stats`` as the panel sends it (None when the account is gone).

        service @9aa18120 get_account_stats; the fields are those the billing side passes
        through (NEXTPANEL_INTEGRATION_GUIDE.md @ace088b1 §5): user_id, username, email,
        total_domains, total_databases, total_email_accounts, total_ssl_certificates,
        storage_used, last_login, account_age_days.
        """
        async with self._live:
            try:
                body = await self.api.json("GET", f"{ACCOUNTS}/{account_id}/stats")
            except NotFound:
                return None
        expect(isinstance(body, dict), self.name, "account stats")
        return dict(body)

    # -- lifecycle -------------------------------------------------------------------------------
    async def create_account(self, spec: AccountSpec) -> AccountRecord:
        """Take a slot in the ledger, then create; the slot is given back if creation fails.

        A full server raises :class:`CapacityExhausted` without calling the panel, so placement
        across connections moves on to the next server. A failure before the request reached
        the panel is :class:`Unavailable` with ``never_sent`` true; placement moves on then too.
        """
        if spec.node_id is not None and spec.node_id != self.name:
            raise NotFound(f"{self.name} has no node {spec.node_id!r}", provider=self.name)
        if spec.domain is not None:
            # service @9aa18120 create_account sends no domain; dropping it silently would
            # report an account without the site the caller asked for.
            raise InvalidRequest("NextPanel's account API takes no domain; create the account "
                                 "without one", provider=self.name, fields={"domain": "unused"})
        baseline = self.server.current_accounts
        if not await self.ledger.reserve(self.name, self.server.capacity, baseline):
            raise CapacityExhausted(f"{self.name} is full ({self.server.capacity} accounts)",
                                    provider=self.name)
        try:
            # service @9aa18120 create_account: POST /api/v1/billing/accounts, success is 201
            # with the account (``account['id']``); any other status is a failure.
            body = await self.api.json("POST", ACCOUNTS, json=_create_body(spec))
            expect(isinstance(body, dict) and isinstance(body.get("id"), int | str),
                   self.name, "created account")
        except ProviderError as exc:
            # Give the slot back only when the account surely was not made: the panel answered
            # with an error, or the request never left. After a timeout or a garbled 201 it
            # may exist, so the slot stays taken (over-counting is the safe side).
            if exc.upstream_status is not None or never_sent(exc):
                await self.ledger.release(self.name, baseline)
            raise
        entry = LedgerEntry(
            account_id=str(body["id"]),
            username=str(body.get("username") or spec.username),
            email=_opt_str(body.get("email")) or spec.email, external_ref=spec.external_ref,
            status="active", created_at=parse_time(body.get("created_at")))
        await self.ledger.record(self.name, entry)
        return AccountRecord(connection=self.name, id=entry.account_id, username=entry.username,
                             email=entry.email, status=AccountStatus.ACTIVE, raw_status="active",
                             package=spec.package, external_ref=spec.external_ref,
                             created_at=entry.created_at)

    async def suspend_account(self, account_id: str, reason: str | None) -> None:
        # service @9aa18120 suspend_account: POST …/{id}/suspend {"reason": …}, 200; the
        # billing side sends "Suspended by billing system" when it has no reason.
        await self.api.json("POST", f"{ACCOUNTS}/{account_id}/suspend",
                            json={"reason": reason or "Suspended through PanelQL"})
        await self.ledger.set_status(self.name, account_id, "suspended", reason)

    async def unsuspend_account(self, account_id: str) -> None:
        # service @9aa18120 unsuspend_account: POST …/{id}/unsuspend without a body, 200.
        await self.api.json("POST", f"{ACCOUNTS}/{account_id}/unsuspend")
        await self.ledger.set_status(self.name, account_id, "active", None)

    async def delete_account(self, account_id: str) -> None:
        # service @9aa18120 delete_account: DELETE …/{id}, 200, then current_accounts -= 1.
        # A 404 means the goal already holds: the slot is freed all the same.
        with contextlib.suppress(NotFound):
            await self.api.json("DELETE", f"{ACCOUNTS}/{account_id}")
        await self.ledger.forget(self.name, account_id, self.server.current_accounts)


def _create_body(spec: AccountSpec) -> dict[str, Any]:
    """service @9aa18120 create_account's ``data``, field for field."""
    package: Any = int(spec.package) if spec.package and spec.package.isdigit() else spec.package
    return {
        "username": spec.username, "email": spec.email,
        "password": spec.password or secrets.token_urlsafe(18),
        "full_name": None, "phone": None, "company": None, "package_id": package,
        "is_admin": False, "billing_id": spec.external_ref,
        "metadata": {"created_from": "panelql", "billing_customer_id": spec.external_ref,
                     "account_type": "panel", "is_admin": False},
    }


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
