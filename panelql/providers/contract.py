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
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

from panelql.domain.records import (
    AccessGrant,
    AccountRecord,
    AccountSpec,
    BackupRecord,
    BillingCustomer,
    Collection,
    DatabaseRecord,
    DatabaseSpec,
    DnsRecordInput,
    DnsResourceRecord,
    DnsZoneRecord,
    InvoiceRecord,
    InvoiceSpec,
    LiveState,
    LoginLink,
    NameserverCheck,
    NodeRecord,
    PaymentLink,
    PaymentOutcome,
    PowerAction,
    Resources,
    ServerRecord,
    ServerSpec,
    TaskHandle,
    TaskProgress,
)
from panelql.providers.config import ConnectionConfig
from panelql.providers.errors import CapabilityNotSupported
from panelql.providers.http import ClientFactory


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
    # lifecycle actions
    SERVER_CREATE = "server.create"
    SERVER_POWER = "server.power"
    SERVER_KILL = "server.kill"
    SERVER_SUSPEND = "server.suspend"
    SERVER_REINSTALL = "server.reinstall"
    SERVER_RESIZE = "server.resize"
    SERVER_DELETE = "server.delete"
    SERVER_ACCESS = "server.access"
    BACKUP_CREATE = "backup.create"
    BACKUP_RESTORE = "backup.restore"
    BACKUP_DELETE = "backup.delete"
    ACCOUNT_CREATE = "account.create"
    ACCOUNT_SUSPEND = "account.suspend"
    ACCOUNT_PACKAGE = "account.package"
    ACCOUNT_PASSWORD = "account.password"
    ACCOUNT_DELETE = "account.delete"
    LOGIN_URL = "login.url"
    SERVER_PASSWORD = "server.password"
    DNS_ZONE_WRITE = "dns.zone.write"
    DNS_RECORD_WRITE = "dns.record.write"
    DNS_NAMESERVER_CHECK = "dns.nameserver.check"
    INVOICE_FINALIZE = "invoice.finalize"
    INVOICE_PAY = "invoice.pay"
    INVOICE_VOID = "invoice.void"
    INVOICE_SEND = "invoice.send"
    INVOICE_CREATE = "invoice.create"
    INVOICE_CHECKOUT = "invoice.checkout"  # a hosted payment page for one invoice
    INVOICE_REFUND = "invoice.refund"
    PAYMENT_CAPTURE = "payment.capture"  # capture what the buyer approved (PayPal orders)
    BILLING_CUSTOMER = "billing.customer"  # find or create the provider's customer
    # site backends (ProxmoxWP): providers/sites.py
    SITE_DOMAINS = "site.domains"
    SITE_PROXY = "site.proxy"
    SERVER_PLAN = "server.plan"
    CATALOGUE_READ = "catalogue.read"  # providers/catalogue.py
    # choices from the catalogue, and what the panels offer besides (issue #20)
    SERVER_REINSTALL_IMAGE = "server.reinstall.image"
    SERVER_PACKAGE = "server.package"
    DATABASE_CREATE = "database.create"


@runtime_checkable
class NodeSource(Protocol):
    """Anything with nodes: every compute kind, and hosting kinds that span several servers
    (NextPanel), so nodes and placement work across families."""

    async def list_nodes(self) -> list[NodeRecord]: ...

    async def get_nodes(self, ids: Sequence[str]) -> Mapping[str, NodeRecord]: ...


@dataclass(frozen=True, slots=True)
class WebhookChange:
    """One resource's status as a verified webhook delivery tells it."""

    # The event topic's value ("invoice"): the events layer, which owns the Topic enum, sits
    # above the providers and turns it into one.
    topic: str
    resource_id: str
    status: str
    raw_status: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    event_id: str  # the provider's id for the delivery: the gateway dedupes on it
    changes: list[WebhookChange]


class WebhookReceiver(Protocol):
    """Reads one connection's signed deliveries; kinds that can call back return one from
    :meth:`Provider.webhook_receiver`, so the gateway's endpoint knows no concrete kind."""

    async def receive(self, body: bytes, headers: Mapping[str, str]) -> WebhookDelivery:
        """Verify and convert one delivery; raise InvalidRequest when it is not genuine (and
        another ProviderError when the provider could not be asked)."""
        ...


class Provider(ABC):
    """Base for every adapter: identity, capabilities, health and shutdown."""

    kind: ClassVar[str]
    families: ClassVar[frozenset[Family]]
    capabilities: ClassVar[frozenset[Capability]]
    # Why the panel has no one-time login link, in words an integrator can act on (the
    # NOT_SUPPORTED message of loginUrl); kinds with LOGIN_URL leave it empty.
    login_url_missing: ClassVar[str] = "the panel's API offers no one-time login link"
    login_url_for: ClassVar[str] = "Account"  # what its links open: "Account" or "Server"
    # Whether creating a panel user needs a password (else the panel mails a set-password
    # link or has none): an order without one then gets a generated password, returned once.
    account_password_required: ClassVar[bool] = False
    # Why the panel cannot do what it does not declare, where there is more to say than "no"
    # (the route that would be needed does not exist): shown with NOT_SUPPORTED.
    unsupported_reasons: ClassVar[dict[Capability, str]] = {}

    def __init__(self, config: ConnectionConfig) -> None:
        self.config = config

    @classmethod
    @abstractmethod
    def from_config(cls, config: ConnectionConfig, clients: ClientFactory) -> Self:
        """Build the adapter, taking its HTTP client from the shared factory."""

    @classmethod  # noqa: B027 - an optional hook, not abstract
    def validate_config(cls, config: ConnectionConfig) -> None:
        """Raise ValueError naming what is wrong with the connection's credentials or options.
        Settings call it at load, so a bad entry stops the gateway with the key spelled out."""

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

    async def aclose(self) -> None:  # noqa: B027 - optional hook, not abstract
        """Release connections. Adapters whose client is injected have nothing to close."""

    def webhook_receiver(self) -> WebhookReceiver | None:
        """The receiver of this connection's webhook deliveries; None when the kind cannot
        call back or the connection has no webhook configured (its endpoint answers 404)."""
        return None

    def _unsupported(self, capability: Capability) -> CapabilityNotSupported:
        return CapabilityNotSupported(
            f"{self.kind} does not support {capability.value}", provider=self.name
        )

    async def login_url(self, resource: str, resource_id: str) -> LoginLink:
        """A one-time login URL for the user owning ``resource_id`` (a ``Server`` or an
        ``Account``, as the panel scopes its single sign-on). Kinds listing LOGIN_URL override."""
        raise CapabilityNotSupported(f"{self.kind}: {self.login_url_missing}",
                                     provider=self.name)

    async def poll_task(self, handle: TaskHandle) -> TaskProgress:
        """Progress of an upstream job returned by a lifecycle action."""
        raise self._unsupported(Capability.SERVER_READ)


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

    # Lifecycle actions. Each returns the record as the upstream now reports it, or a TaskHandle
    # when the upstream hands back a job id to follow. The gateway checks state before calling,
    # adapters map the upstream's own 409/423 to Conflict. Defaults say "not supported", and the
    # adapter's ``capabilities`` must list what it overrides.
    async def create_server(self, spec: ServerSpec) -> ServerRecord | TaskHandle:
        raise self._unsupported(Capability.SERVER_CREATE)

    async def power(self, server_id: str, action: PowerAction) -> TaskHandle | None:
        raise self._unsupported(Capability.SERVER_POWER)

    async def suspend_server(self, server_id: str, reason: str | None, *,
                             stop: bool = True) -> TaskHandle | None:
        """Suspend (for non-payment). ``stop``: stop it too, where the panel leaves that open."""
        raise self._unsupported(Capability.SERVER_SUSPEND)

    async def unsuspend_server(self, server_id: str) -> TaskHandle | None:
        raise self._unsupported(Capability.SERVER_SUSPEND)

    async def reinstall_server(self, server_id: str) -> TaskHandle | None:
        raise self._unsupported(Capability.SERVER_REINSTALL)

    async def resize_server(self, server_id: str, resources: Resources) -> TaskHandle | None:
        raise self._unsupported(Capability.SERVER_RESIZE)

    async def delete_server(self, server_id: str) -> TaskHandle | None:
        raise self._unsupported(Capability.SERVER_DELETE)

    async def reinstall_with_image(self, server_id: str, image: str) -> TaskHandle | None:
        """Reinstall with another image, by its catalogue id (reinstallServer(image:))."""
        raise self._unsupported(Capability.SERVER_REINSTALL_IMAGE)

    async def resize_to_package(self, server_id: str, package: str) -> TaskHandle | None:
        """Move to a named package or plan, by its catalogue id."""
        raise self._unsupported(Capability.SERVER_PACKAGE)

    async def create_backup(self, server_id: str, name: str | None) -> BackupRecord | TaskHandle:
        raise self._unsupported(Capability.BACKUP_CREATE)

    async def restore_backup(self, server_id: str, backup_id: str) -> TaskHandle | None:
        raise self._unsupported(Capability.BACKUP_RESTORE)

    async def delete_backup(self, server_id: str, backup_id: str) -> None:
        raise self._unsupported(Capability.BACKUP_DELETE)

    def check_resources(self, resources: Resources) -> None:
        """Refuse, before any upstream call, sizes the panel would refuse or silently change
        (Catalyst: whole CPU cores only). Raises InvalidRequest naming the field."""

    async def grant_access(self, server_id: str, account_id: str,
                           permissions: Sequence[str]) -> AccessGrant | None:
        """Grant the seeds' permission names, mapped to the panel's. Returns what was granted
        (with the names the panel has no equivalent for) when the adapter knows."""
        raise self._unsupported(Capability.SERVER_ACCESS)

    async def revoke_access(self, server_id: str, account_id: str) -> bool | None:
        """False when the user had no access (nothing to revoke: a no-op, not an error)."""
        raise self._unsupported(Capability.SERVER_ACCESS)

    async def list_access(self, server_id: str) -> list[AccessGrant]:
        """Who besides the owner may use the server, in the panel's permission names."""
        raise self._unsupported(Capability.SERVER_ACCESS)

    async def reset_server_password(self, server_id: str, user: str) -> str:
        """Set a new password for ``user`` inside the server (root on a VPS); returns it.
        A secret: the caller hands it out once and never stores or logs it."""
        raise self._unsupported(Capability.SERVER_PASSWORD)


class HostingProvider(Provider):
    @abstractmethod
    async def list_accounts(self) -> list[AccountRecord]: ...

    async def get_accounts(self, ids: Sequence[str]) -> Mapping[str, AccountRecord]:
        wanted = set(ids)
        return {a.id: a for a in await self.list_accounts() if a.id in wanted}

    async def create_account(self, spec: AccountSpec) -> AccountRecord:
        raise self._unsupported(Capability.ACCOUNT_CREATE)

    async def find_account_by_external_ref(self, external_ref: str) -> AccountRecord | None:
        """The user the panel keeps under this third-party id (Pterodactyl ``external_id``,
        VirtFusion ``extRelationId``); None when there is none or the panel keeps no such id.
        Lets a retried order find the user an interrupted attempt created."""
        return None

    async def suspend_account(self, account_id: str, reason: str | None) -> None:
        raise self._unsupported(Capability.ACCOUNT_SUSPEND)

    async def unsuspend_account(self, account_id: str) -> None:
        raise self._unsupported(Capability.ACCOUNT_SUSPEND)

    async def change_account_package(self, account_id: str, package: str) -> None:
        raise self._unsupported(Capability.ACCOUNT_PACKAGE)

    async def change_account_password(self, account_id: str, password: str) -> None:
        raise self._unsupported(Capability.ACCOUNT_PASSWORD)

    async def delete_account(self, account_id: str) -> None:
        raise self._unsupported(Capability.ACCOUNT_DELETE)

    async def create_database(self, account_id: str, spec: DatabaseSpec) -> DatabaseRecord:
        raise self._unsupported(Capability.DATABASE_CREATE)


class DnsProvider(Provider):
    @abstractmethod
    async def list_zones(self, *, with_records: bool) -> list[DnsZoneRecord]: ...

    async def get_zones(self, ids: Sequence[str]) -> Mapping[str, DnsZoneRecord]:
        """Zones with their records filled in."""
        wanted = set(ids)
        zones = await self.list_zones(with_records=True)
        return {z.id: z for z in zones if z.id in wanted}

    async def create_zone(self, name: str, account_id: str | None) -> DnsZoneRecord:
        raise self._unsupported(Capability.DNS_ZONE_WRITE)

    async def delete_zone(self, zone_id: str) -> None:
        raise self._unsupported(Capability.DNS_ZONE_WRITE)

    async def upsert_record(self, zone_id: str, record: DnsRecordInput) -> DnsResourceRecord:
        raise self._unsupported(Capability.DNS_RECORD_WRITE)

    async def delete_record(self, zone_id: str, record_id: str) -> None:
        raise self._unsupported(Capability.DNS_RECORD_WRITE)

    async def verify_nameservers(self, domain: str) -> NameserverCheck:
        """Is the domain delegated to this platform's nameservers?"""
        raise self._unsupported(Capability.DNS_NAMESERVER_CHECK)

    def resolve_content(self, rtype: str, content: str) -> str:
        """Record content as this kind will store it: an alias the kind defines (ISPConfig's
        ``PROXYSRV``) becomes what it stands for, so the gateway validates the real value."""
        return content


class BillingProvider(Provider):
    @abstractmethod
    async def list_invoices(self, *, customer_ids: Sequence[str] | None = None) -> list[
        InvoiceRecord
    ]: ...

    async def get_invoices(self, ids: Sequence[str]) -> Mapping[str, InvoiceRecord]:
        wanted = set(ids)
        return {i.id: i for i in await self.list_invoices() if i.id in wanted}

    async def finalize_invoice(self, invoice_id: str) -> InvoiceRecord:
        raise self._unsupported(Capability.INVOICE_FINALIZE)

    async def pay_invoice(self, invoice_id: str) -> InvoiceRecord:
        raise self._unsupported(Capability.INVOICE_PAY)

    async def void_invoice(self, invoice_id: str) -> InvoiceRecord:
        raise self._unsupported(Capability.INVOICE_VOID)

    async def send_invoice(self, invoice_id: str) -> InvoiceRecord:
        raise self._unsupported(Capability.INVOICE_SEND)

    # What ``pay_invoice`` does on this connection: charge what the customer saved, or record
    # money that came in some other way.
    pay_collection = Collection.RECORDED_OUT_OF_BAND

    # ``key``: an idempotency key for the upstream (Stripe ``Idempotency-Key``, PayPal
    # ``PayPal-Request-Id``), derived from the mutation's own so a retry replays upstream too.
    async def ensure_customer(self, customer: BillingCustomer, known_id: str | None,
                              key: str | None) -> str:
        """The provider's customer id for ``customer`` (found, or created), given the id
        linked earlier if any."""
        raise self._unsupported(Capability.BILLING_CUSTOMER)

    async def create_invoice(self, spec: InvoiceSpec, key: str | None) -> InvoiceRecord:
        raise self._unsupported(Capability.INVOICE_CREATE)

    async def checkout(self, invoice: InvoiceRecord, return_url: str, cancel_url: str,
                       key: str | None) -> PaymentLink:
        raise self._unsupported(Capability.INVOICE_CHECKOUT)

    async def capture_payment(self, order_id: str, key: str | None) -> PaymentOutcome:
        raise self._unsupported(Capability.PAYMENT_CAPTURE)

    async def refund_invoice(self, invoice: InvoiceRecord, amount: Decimal,
                             key: str | None) -> InvoiceRecord:
        """Give back ``amount`` (in the invoice's currency) of what the invoice was paid."""
        raise self._unsupported(Capability.INVOICE_REFUND)
