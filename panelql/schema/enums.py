"""GraphQL enums, exposed from the domain's normalised Python enums (one definition each)."""

from __future__ import annotations

import enum

import strawberry

from panelql.domain import status
from panelql.domain.records import Collection as _Collection
from panelql.providers.contract import Capability as _Capability
from panelql.providers.contract import Family as _Family

ServerStatus = strawberry.enum(status.ServerStatus, name="ServerStatus")
NodeStatus = strawberry.enum(status.NodeStatus, name="NodeStatus")
AccountStatus = strawberry.enum(status.AccountStatus, name="AccountStatus")
BackupStatus = strawberry.enum(status.BackupStatus, name="BackupStatus")
InvoiceStatus = strawberry.enum(status.InvoiceStatus, name="InvoiceStatus")
DnsZoneStatus = strawberry.enum(status.DnsZoneStatus, name="DnsZoneStatus")
PaymentCollection = strawberry.enum(
    _Collection, name="PaymentCollection",
    description="How money for an invoice was taken: a saved payment method charged, a "
                "payment made elsewhere recorded, or an approved order captured.")


@strawberry.enum
class ProviderKind(enum.Enum):
    CATALYST = "catalyst"
    PTERODACTYL = "pterodactyl"
    VIRTFUSION = "virtfusion"
    PROXMOX = "proxmox"
    PROXMOXWP = "proxmoxwp"
    DIRECTADMIN = "directadmin"
    NEXTPANEL = "nextpanel"
    ISPCONFIG = "ispconfig"
    CLOUDFLARE = "cloudflare"
    POWERDNS = "powerdns"
    STRIPE = "stripe"
    PAYPAL = "paypal"


@strawberry.enum
class ProviderFamily(enum.Enum):
    COMPUTE = _Family.COMPUTE.value
    HOSTING = _Family.HOSTING.value
    DNS = _Family.DNS.value
    BILLING = _Family.BILLING.value


# Capability names as clients see them: SERVER_POWER, BACKUP_RESTORE, …
ProviderCapability = strawberry.enum(_Capability, name="ProviderCapability")
