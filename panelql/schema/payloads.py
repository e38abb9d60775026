"""What mutations return. Every payload says whether it was ``replayed`` from an earlier call
with the same idempotency key, and carries the Operation when the work finishes later."""

from __future__ import annotations

from datetime import datetime

import strawberry

from panelql.application import activity, ids, queries
from panelql.application.errors import GatewayError
from panelql.application.execution import ActionResult
from panelql.domain.records import ResourceType
from panelql.providers.errors import ProviderError
from panelql.schema.enums import PaymentCollection
from panelql.schema.types.billing import Invoice
from panelql.schema.types.common import Info
from panelql.schema.types.compute import Account, Backup, Server
from panelql.schema.types.dns import DnsZone
from panelql.schema.types.operation import Operation


async def _load(info: Info, global_id: str | None, kind: ResourceType) -> object | None:
    if not global_id:
        return None
    try:
        return await queries.get(info.context, ids.decode(global_id, kind))
    except (GatewayError, ProviderError):
        return None  # e.g. deleted meanwhile: the payload still reports the operation


@strawberry.type
class Payload:
    result: strawberry.Private[ActionResult]

    @strawberry.field(description="True when an earlier call with this idempotencyKey answered.")
    def replayed(self) -> bool:
        return self.result.replayed

    @strawberry.field(description="False when the goal already held (unsuspending an active "
                                  "server, revoking a grant that is not there, deleting what "
                                  "is gone): nothing was sent upstream and nothing changed.")
    def changed(self) -> bool:
        return bool(self.result.data.get("changed", True))

    @strawberry.field(description="What the panel could not do exactly as asked, e.g. "
                                  "permissions it has no equivalent for.")
    def warnings(self) -> list[str]:
        return [str(w) for w in self.result.data.get("warnings") or []]

    @strawberry.field(description="Follow long upstream work here or via operationUpdated.")
    async def operation(self, info: Info) -> Operation | None:
        if self.result.operation_id is None:
            return None
        row = await activity.operation_of_result(info.context, self.result.operation_id)
        return Operation(row=row) if row else None


@strawberry.type
class ServerPayload(Payload):
    @strawberry.field
    async def server(self, info: Info) -> Server | None:
        record = await _load(info, self.result.target, ResourceType.SERVER)
        return Server(r=record) if record else None  # type: ignore[arg-type]


@strawberry.type
class BackupPayload(Payload):
    @strawberry.field
    async def server(self, info: Info) -> Server | None:
        record = await _load(info, self.result.target, ResourceType.SERVER)
        return Server(r=record) if record else None  # type: ignore[arg-type]

    @strawberry.field
    async def backup(self, info: Info) -> Backup | None:
        record = await _load(info, self.result.data.get("backup"), ResourceType.BACKUP)
        return Backup(r=record) if record else None  # type: ignore[arg-type]


@strawberry.type
class AccountPayload(Payload):
    @strawberry.field
    async def account(self, info: Info) -> Account | None:
        record = await _load(info, self.result.target, ResourceType.ACCOUNT)
        return Account(r=record) if record else None  # type: ignore[arg-type]


@strawberry.type
class DnsZonePayload(Payload):
    @strawberry.field
    async def zone(self, info: Info) -> DnsZone | None:
        record = await _load(info, self.result.target, ResourceType.DNS_ZONE)
        return DnsZone(r=record) if record else None  # type: ignore[arg-type]

    @strawberry.field(description="The record written, for upsertDnsRecord.")
    def record_id(self) -> str | None:
        return self.result.data.get("record")


@strawberry.type(description="Where the customer pays: open url in their browser.")
class PaymentLink:
    url: str
    kind: str = strawberry.field(description="CHECKOUT_SESSION (Stripe) or ORDER (PayPal: "
                                             "capture it with capturePayment once approved).")
    id: str | None = strawberry.field(description="The session or order id.")
    expires_at: datetime | None = None


@strawberry.type
class InvoicePayload(Payload):
    @strawberry.field
    async def invoice(self, info: Info) -> Invoice | None:
        record = await _load(info, self.result.target, ResourceType.INVOICE)
        return Invoice(r=record) if record else None  # type: ignore[arg-type]

    @strawberry.field(description="checkout: the hosted payment page.")
    def payment_link(self) -> PaymentLink | None:
        link = self.result.data.get("payment_link")
        if not isinstance(link, dict):
            return None
        expires = link.get("expires_at")
        return PaymentLink(url=str(link["url"]), kind=str(link["kind"]), id=link.get("id"),
                           expires_at=datetime.fromisoformat(expires) if expires else None)

    @strawberry.field(description="payInvoice / capturePayment: how the money was taken.")
    def collection(self) -> PaymentCollection | None:  # type: ignore[valid-type]
        value = self.result.data.get("collection")
        return PaymentCollection(value) if value else None

    @strawberry.field(description="capturePayment: the provider's payment (capture) id.")
    def payment_id(self) -> str | None:
        value = self.result.data.get("payment_id")
        return str(value) if value else None


@strawberry.type
class DeletePayload(Payload):
    @strawberry.field(description="The ID that was (or is being) deleted.")
    def deleted_id(self) -> strawberry.ID:
        return strawberry.ID(str(self.result.data.get("deleted") or self.result.target))
