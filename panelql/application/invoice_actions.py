"""Invoice actions (finalize, pay, void, send), each allowed only from the states it accepts."""

from __future__ import annotations

from panelql.application.context import Context
from panelql.application.errors import NotFoundError, StateConflict
from panelql.application.execution import ActionResult
from panelql.application.targets import target
from panelql.domain.records import ResourceType
from panelql.domain.status import InvoiceStatus
from panelql.events.model import Source, StatusEvent, Topic
from panelql.providers.contract import BillingProvider, Capability

# Which invoice states each action accepts (Stripe's rules, which PayPal's map onto).
INVOICE_RULES = {
    "finalize": ({InvoiceStatus.DRAFT}, Capability.INVOICE_FINALIZE),
    "pay": ({InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE}, Capability.INVOICE_PAY),
    "void": ({InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE}, Capability.INVOICE_VOID),
    "send": ({InvoiceStatus.OPEN}, Capability.INVOICE_SEND),
}


async def invoice_action(ctx: Context, invoice_id: str, action: str) -> ActionResult:
    allowed, capability = INVOICE_RULES[action]
    ref, provider = await target(ctx, invoice_id, ResourceType.INVOICE, BillingProvider, capability)
    current = (await provider.get_invoices([ref.id])).get(ref.id)
    if current is None:
        raise NotFoundError("invoice not found")
    if current.status not in allowed:
        raise StateConflict(f"cannot {action} an invoice that is {current.status.value}",
                            currentStatus=current.status.value)
    method = {"finalize": provider.finalize_invoice, "pay": provider.pay_invoice,
              "void": provider.void_invoice, "send": provider.send_invoice}[action]
    updated = await method(ref.id)
    if updated.status is not current.status:
        await ctx.gateway.bus.publish(StatusEvent(
            topic=Topic.INVOICE, connection=ref.connection, resource_id=ref.id,
            status=updated.status.value, previous=current.status.value, source=Source.MUTATION))
    ctx.loaders.invoice.clear(ref).prime(ref, updated)
    # payInvoice says how the money was taken (a saved method charged, or marked paid).
    data = {"collection": provider.pay_collection.value} if action == "pay" else {}
    return ActionResult(target=invoice_id, data=data)
