"""The provider contract: one abstract base per family plus declared capabilities.

A kind may serve several families (Pterodactyl is compute *and* hosting, because its panel users
are Accounts). Reads are batch-first: ``list_*`` returns everything the connection has in as few
upstream calls as the API allows; ``get_*s(ids)`` returns a mapping with missing ids absent, so the
dataloaders can resolve many keys with one call.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import ClassVar, Self

from panelql.providers.config import ConnectionConfig
from panelql.providers.errors import CapabilityNotSupported
from panelql.providers.http import ClientFactory
from panelql.providers.models import (
    AccountRecord,
    BackupRecord,
    DnsZoneRecord,
    InvoiceRecord,
    LiveState,
    NodeRecord,
    ServerRecord,
)


class Family(enum.Enum):
    COMPUTE = "compute"
    HOSTING = "hosting"
    DNS = "dns"
    BILLING = "billing"


class Capability(enum.Enum):
    """What a kind can do; exposed as ``Provider.capabilities`` so clients can check first."""

    SERVER_READ = "server.read"
    SERVER_LIVE_STATE = "server.live_state"
    NODE_READ = "node.read"
    BACKUP_READ = "backup.read"
    ACCOUNT_READ = "account.read"
    DNS_READ = "dns.read"
    INVOICE_READ = "invoice.read"


class Provider(ABC):
    """Base for every adapter: identity, capabilities, health and shutdown."""

    kind: ClassVar[str]
    families: ClassVar[frozenset[Family]]
    capabilities: ClassVar[frozenset[Capability]]

    def __init__(self, config: ConnectionConfig) -> None:
        self.config = config

    @classmethod
    @abstractmethod
    def from_config(cls, config: ConnectionConfig, clients: ClientFactory) -> Self:
        """Build the adapter, taking its HTTP client from the shared factory."""

    @property
    def name(self) -> str:
        return self.config.name

    def supports(self, capability: Capability) -> bool:
        return capability in self.capabilities

    def require(self, capability: Capability) -> None:
        if capability not in self.capabilities:
            raise CapabilityNotSupported(
                f"{self.kind} does not support {capability.value}", provider=self.name
            )

    @abstractmethod
    async def check_health(self) -> None:
        """Make the cheapest authenticated call; raise a ProviderError when it fails."""

    async def aclose(self) -> None:
        """Release connections. Adapters whose client is injected have nothing to close."""


class ComputeProvider(Provider):
    @abstractmethod
    async def list_servers(self) -> list[ServerRecord]: ...

    async def get_servers(self, ids: Sequence[str]) -> Mapping[str, ServerRecord]:
        """Default: the list call is the batch call. Adapters with a cheaper form override."""
        wanted = set(ids)
        return {s.id: s for s in await self.list_servers() if s.id in wanted}

    @abstractmethod
    async def list_nodes(self) -> list[NodeRecord]: ...

    async def get_nodes(self, ids: Sequence[str]) -> Mapping[str, NodeRecord]:
        wanted = set(ids)
        return {n.id: n for n in await self.list_nodes() if n.id in wanted}

    async def get_live_states(self, ids: Sequence[str]) -> Mapping[str, LiveState]:
        """Power state for servers whose list entry had ``status=None``."""
        self.require(Capability.SERVER_LIVE_STATE)
        return {}

    @abstractmethod
    async def list_backups(self, server_ids: Sequence[str]) -> Mapping[str, list[BackupRecord]]:
        """Backups of each server, keyed by server id (every requested id present)."""


class HostingProvider(Provider):
    @abstractmethod
    async def list_accounts(self) -> list[AccountRecord]: ...

    async def get_accounts(self, ids: Sequence[str]) -> Mapping[str, AccountRecord]:
        wanted = set(ids)
        return {a.id: a for a in await self.list_accounts() if a.id in wanted}


class DnsProvider(Provider):
    @abstractmethod
    async def list_zones(self, *, with_records: bool) -> list[DnsZoneRecord]: ...

    async def get_zones(self, ids: Sequence[str]) -> Mapping[str, DnsZoneRecord]:
        wanted = set(ids)
        zones = await self.list_zones(with_records=True)
        return {z.id: z for z in zones if z.id in wanted}


class BillingProvider(Provider):
    @abstractmethod
    async def list_invoices(self, *, customer_ids: Sequence[str] | None = None) -> list[
        InvoiceRecord
    ]: ...

    async def get_invoices(self, ids: Sequence[str]) -> Mapping[str, InvoiceRecord]:
        wanted = set(ids)
        return {i.id: i for i in await self.list_invoices() if i.id in wanted}
