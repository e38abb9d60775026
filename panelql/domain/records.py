"""Plain records that adapters return. They know nothing of GraphQL or the database.

Every record carries ``connection`` (the provider connection's name) and the upstream ``id``;
the schema layer turns those two plus the type into an opaque global ID.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from panelql.domain.sites import SiteInfo
from panelql.domain.status import (
    AccountStatus,
    BackupStatus,
    DnsZoneStatus,
    InvoiceStatus,
    NodeStatus,
    ServerStatus,
)


class ResourceType(enum.Enum):
    SERVER = "Server"
    NODE = "Node"
    ACCOUNT = "Account"
    BACKUP = "Backup"
    INVOICE = "Invoice"
    DNS_ZONE = "DnsZone"


@dataclass(frozen=True, slots=True)
class Ref:
    """Where a resource lives: connection name, type and upstream id."""

    connection: str
    type: ResourceType
    id: str


@dataclass(frozen=True, slots=True)
class Resources:
    memory_mb: int | None = None
    cpu_cores: float | None = None
    disk_mb: int | None = None


@dataclass(frozen=True, slots=True)
class UsageLimits:
    """What the plan or package allows, where the panel reports it (for WHMCS UsageUpdate's
    disklimit/bwlimit); None where unlimited or unknown."""

    memory_mb: float | None = None
    disk_mb: float | None = None
    bandwidth_mb: float | None = None  # per billing period


@dataclass(frozen=True, slots=True)
class Usage:
    memory_mb: float | None = None
    cpu_percent: float | None = None
    disk_mb: float | None = None
    uptime_seconds: int | None = None
    bandwidth_mb: float | None = None  # traffic counted this billing period (DirectAdmin)
    network_in_bytes: float | None = None  # interface counters since the guest started
    network_out_bytes: float | None = None
    player_count: int | None = None  # game servers that report it (Catalyst)
    limits: UsageLimits | None = None


@dataclass(frozen=True, slots=True)
class LiveState:
    """Runtime state that some panels only give per server (Pterodactyl ``/resources``)."""

    status: ServerStatus
    raw_status: str | None
    usage: Usage | None = None


@dataclass(slots=True)
class ServerRecord:
    connection: str
    id: str
    name: str
    # None means "the list call does not carry power state": ask for a LiveState.
    status: ServerStatus | None
    raw_status: str | None
    suspended: bool = False
    suspension_reason: str | None = None
    node_id: str | None = None
    owner_id: str | None = None
    resources: Resources = field(default_factory=Resources)
    usage: Usage | None = None
    addresses: list[str] = field(default_factory=list)
    created_at: datetime | None = None
    external_ref: str | None = None
    site: SiteInfo | None = None  # site backends only (ProxmoxWP): domains, proxy, quotas


@dataclass(frozen=True, slots=True)
class DatabaseSpec:
    """A database for a hosting account (DirectAdmin CMD_API_DATABASES)."""

    name: str
    user: str
    password: str


@dataclass(frozen=True, slots=True)
class DatabaseRecord:
    account_id: str
    name: str  # as the panel names it, with the account's prefix (DirectAdmin: user_name)
    user: str
    host: str | None = None


@dataclass(frozen=True, slots=True)
class Slots:
    """Capacity counted in accounts (web-hosting servers), not in memory or disk."""

    capacity: int
    used: int


@dataclass(slots=True)
class NodeRecord:
    connection: str
    id: str
    name: str
    status: NodeStatus
    raw_status: str | None
    region: str | None = None  # a name people use ("us-east"), what placement matches
    region_id: str | None = None  # the panel's own id of that region, when it has one
    # Capacity already includes overallocation where the panel allows it.
    capacity: Resources = field(default_factory=Resources)
    allocated: Resources = field(default_factory=Resources)
    server_ids: list[str] | None = None
    account_slots: Slots | None = None


@dataclass(slots=True)
class AccountRecord:
    connection: str
    id: str
    username: str
    email: str | None
    status: AccountStatus
    raw_status: str | None = None
    package: str | None = None
    domains: list[str] = field(default_factory=list)
    usage: Usage | None = None
    external_ref: str | None = None
    created_at: datetime | None = None


@dataclass(slots=True)
class AccessGrant:
    """One panel user's access to one server, in the panel's own permission names.

    ``unmapped`` holds requested names the panel has no equivalent for (dropped, not sent),
    so the mutation can warn instead of silently granting less than asked.
    """

    account_id: str
    permissions: list[str]
    username: str | None = None
    unmapped: list[str] = field(default_factory=list)


@dataclass(slots=True)
class BackupRecord:
    connection: str
    id: str
    server_id: str
    name: str
    status: BackupStatus
    raw_status: str | None = None
    size_bytes: int | None = None
    locked: bool = False
    created_at: datetime | None = None
    completed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str


@dataclass(slots=True)
class InvoiceLine:
    description: str
    quantity: int
    amount: Money


@dataclass(slots=True)
class InvoiceRecord:
    connection: str
    id: str
    number: str | None
    status: InvoiceStatus
    raw_status: str | None
    amount_due: Money
    amount_paid: Money
    total: Money
    due_date: datetime | None = None
    hosted_url: str | None = None
    lines: list[InvoiceLine] = field(default_factory=list)
    customer_id: str | None = None
    external_ref: str | None = None
    amount_refunded: Money | None = None  # None: nothing refunded (zero in the invoice's currency)
    memo: str | None = None


@dataclass(frozen=True, slots=True)
class InvoiceLineInput:
    description: str
    quantity: int
    unit_amount: Decimal  # in the invoice's currency, exact


@dataclass(frozen=True, slots=True)
class BillingCustomer:
    """Who an invoice is for, as the gateway knows them (no provider ids)."""

    customer_ref: str
    email: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class InvoiceSpec:
    customer_id: str  # the provider's customer id (PayPal: the recipient's email)
    customer: BillingCustomer
    currency: str  # ISO 4217, upper case
    lines: tuple[InvoiceLineInput, ...]
    due_date: datetime | None = None
    memo: str | None = None
    external_ref: str | None = None


class Collection(enum.Enum):
    """What taking the money for an invoice did."""

    CHARGED_SAVED_METHOD = "CHARGED_SAVED_METHOD"  # the customer's saved card / mandate
    RECORDED_OUT_OF_BAND = "RECORDED_OUT_OF_BAND"  # marked paid; the money came elsewhere
    CAPTURED_ORDER = "CAPTURED_ORDER"  # an order the buyer approved, captured (PayPal)


@dataclass(frozen=True, slots=True)
class PaymentLink:
    """Where the customer pays an invoice: a hosted page of the provider."""

    url: str
    kind: str  # "CHECKOUT_SESSION", "ORDER" or "HOSTED_INVOICE"
    id: str | None  # the session / order id (needed to capture a PayPal order)
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PaymentOutcome:
    invoice: InvoiceRecord
    collection: Collection
    payment_id: str | None = None  # capture / payment intent id, when there is one


@dataclass(slots=True)
class DnsResourceRecord:
    id: str
    type: str
    name: str
    content: str
    ttl: int | None = None
    priority: int | None = None
    disabled: bool = False  # kept in the zone but not served (PowerDNS)
    # TXT: the record's character-strings as the upstream holds them (content is their
    # concatenation); None where the upstream has only one string per record.
    txt_strings: list[str] | None = None


@dataclass(frozen=True, slots=True)
class NameserverCheck:
    """Which of the platform's nameservers a domain is delegated to."""

    domain: str
    expected: tuple[str, ...]
    found: tuple[str, ...]

    @property
    def present(self) -> tuple[str, ...]:
        return tuple(ns for ns in self.expected if ns in self.found)

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(ns for ns in self.expected if ns not in self.found)

    @property
    def ok(self) -> bool:
        return not self.missing


@dataclass(slots=True)
class DnsZoneRecord:
    connection: str
    id: str
    name: str
    status: DnsZoneStatus
    raw_status: str | None = None
    nameservers: list[str] = field(default_factory=list)
    records: list[DnsResourceRecord] | None = None
    account_id: str | None = None


# -- inputs of lifecycle actions --------------------------------------------------------------


class PowerAction(enum.Enum):
    START = "start"
    STOP = "stop"
    RESTART = "restart"
    KILL = "kill"


@dataclass(slots=True)
class ServerSpec:
    """What ``createServer`` asks for; adapters read the fields their panel needs."""

    name: str
    node_id: str
    resources: Resources
    owner_id: str | None = None
    template: str | None = None  # egg / template / OS image / package, per panel
    ports: list[int] = field(default_factory=list)
    external_ref: str | None = None
    options: dict[str, object] = field(default_factory=dict)


@dataclass(slots=True)
class AccountSpec:
    username: str
    email: str | None
    password: str | None = None
    package: str | None = None
    domain: str | None = None
    node_id: str | None = None
    external_ref: str | None = None
    name: str | None = None  # the person's full name, where the panel keeps one


@dataclass(frozen=True, slots=True)
class LoginLink:
    """A one-time URL that logs a panel user in (single sign-on). A secret: returned once,
    never logged, never stored."""

    url: str
    expires_at: datetime | None = None
    username: str | None = None


@dataclass(slots=True)
class DnsRecordInput:
    type: str
    name: str
    content: str
    ttl: int | None = None
    priority: int | None = None
    id: str | None = None  # set: update that record; unset: create (or replace same name+type)
    txt_strings: list[str] | None = None  # TXT written as exactly these character-strings


@dataclass(frozen=True, slots=True)
class TaskHandle:
    """An upstream job the gateway can follow (Proxmox UPID, VirtFusion queue id…)."""

    id: str
    kind: str = "task"
    resource_id: str | None = None  # what the job creates, when the upstream says up front


@dataclass(frozen=True, slots=True)
class TaskProgress:
    done: bool
    ok: bool = True
    progress: float | None = None  # 0..1 when the upstream says
    error: str | None = None
