"""The root Subscription: status changes from mutations, the watcher and webhooks.

Events carry what dashboards need (ids, previous and new status, time, source) so delivering
one costs no upstream call; the ``server``/``node``/… fields load the current object on demand.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator
from datetime import datetime

import strawberry

from panelql.application import ids, queries
from panelql.application.errors import GatewayError
from panelql.application.subscriptions import EventFilter, watch, watch_operation
from panelql.domain.records import Ref, ResourceType
from panelql.domain.status import AccountStatus as AccountStatusEnum
from panelql.domain.status import BackupStatus as BackupStatusEnum
from panelql.domain.status import InvoiceStatus as InvoiceStatusEnum
from panelql.domain.status import NodeStatus as NodeStatusEnum
from panelql.domain.status import ServerStatus as ServerStatusEnum
from panelql.events.model import StatusEvent, Topic
from panelql.providers.errors import ProviderError
from panelql.schema.automation import AutomationSubscription
from panelql.schema.enums import (
    AccountStatus,
    BackupStatus,
    InvoiceStatus,
    NodeStatus,
    ServerStatus,
)
from panelql.schema.types.billing import Invoice
from panelql.schema.types.common import Info
from panelql.schema.types.compute import Account, Backup, Node, Server
from panelql.schema.types.operation import OperationStatus


@strawberry.enum
class EventSource(enum.Enum):
    MUTATION = "mutation"
    WATCHER = "watcher"
    WEBHOOK = "webhook"


@strawberry.input
class StatusEventFilter:
    ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Only these resources.")
    provider: list[str] | None = None
    status: list[str] | None = strawberry.field(
        default=None, description="New status values, e.g. [\"RUNNING\", \"ERROR\"].")

    def to_filter(self) -> EventFilter:
        return EventFilter(ids=[str(i) for i in self.ids] if self.ids is not None else None,
                           providers=self.provider, statuses=self.status)


def _event_fields(kind: ResourceType) -> type:
    """The fields every status event shares, for one resource type."""

    @strawberry.type
    class Common:
        e: strawberry.Private[StatusEvent]

        @strawberry.field
        def id(self) -> strawberry.ID:
            return strawberry.ID(ids.encode(Ref(self.e.connection, kind, self.e.resource_id)))

        @strawberry.field
        def provider(self) -> str:
            return self.e.connection

        @strawberry.field(description="True when the resource disappeared upstream.")
        def deleted(self) -> bool:
            return self.e.status == "DELETED"

        @strawberry.field
        def at(self) -> datetime:
            return self.e.at

        @strawberry.field
        def source(self) -> EventSource:
            return EventSource(self.e.source.value)

    return Common


async def _current(info: Info, kind: ResourceType, event: StatusEvent) -> object | None:
    try:
        return await queries.get(info.context, Ref(event.connection, kind, event.resource_id))
    except (GatewayError, ProviderError):
        return None


def _as(cls: type[enum.Enum], value: str | None) -> enum.Enum | None:
    try:
        return cls(value) if value is not None else None
    except ValueError:
        return None


@strawberry.type
class ServerStatusEvent(_event_fields(ResourceType.SERVER)):  # type: ignore[misc]
    @strawberry.field
    def status(self) -> ServerStatus | None:  # type: ignore[valid-type]
        return _as(ServerStatusEnum, self.e.status)

    @strawberry.field
    def previous(self) -> ServerStatus | None:  # type: ignore[valid-type]
        return _as(ServerStatusEnum, self.e.previous)

    @strawberry.field(description="The server now (one upstream read per delivery).")
    async def server(self, info: Info) -> Server | None:
        record = await _current(info, ResourceType.SERVER, self.e)
        return Server(r=record) if record else None  # type: ignore[arg-type]


@strawberry.type
class NodeStatusEvent(_event_fields(ResourceType.NODE)):  # type: ignore[misc]
    @strawberry.field
    def status(self) -> NodeStatus | None:  # type: ignore[valid-type]
        return _as(NodeStatusEnum, self.e.status)

    @strawberry.field
    def previous(self) -> NodeStatus | None:  # type: ignore[valid-type]
        return _as(NodeStatusEnum, self.e.previous)

    @strawberry.field
    async def node(self, info: Info) -> Node | None:
        record = await _current(info, ResourceType.NODE, self.e)
        return Node(r=record) if record else None  # type: ignore[arg-type]


@strawberry.type
class BackupStatusEvent(_event_fields(ResourceType.BACKUP)):  # type: ignore[misc]
    @strawberry.field
    def status(self) -> BackupStatus | None:  # type: ignore[valid-type]
        return _as(BackupStatusEnum, self.e.status)

    @strawberry.field
    def previous(self) -> BackupStatus | None:  # type: ignore[valid-type]
        return _as(BackupStatusEnum, self.e.previous)

    @strawberry.field
    async def backup(self, info: Info) -> Backup | None:
        record = await _current(info, ResourceType.BACKUP, self.e)
        return Backup(r=record) if record else None  # type: ignore[arg-type]


@strawberry.type
class AccountStatusEvent(_event_fields(ResourceType.ACCOUNT)):  # type: ignore[misc]
    @strawberry.field
    def status(self) -> AccountStatus | None:  # type: ignore[valid-type]
        return _as(AccountStatusEnum, self.e.status)

    @strawberry.field
    def previous(self) -> AccountStatus | None:  # type: ignore[valid-type]
        return _as(AccountStatusEnum, self.e.previous)

    @strawberry.field
    async def account(self, info: Info) -> Account | None:
        record = await _current(info, ResourceType.ACCOUNT, self.e)
        return Account(r=record) if record else None  # type: ignore[arg-type]


@strawberry.type
class InvoiceStatusEvent(_event_fields(ResourceType.INVOICE)):  # type: ignore[misc]
    @strawberry.field
    def status(self) -> InvoiceStatus | None:  # type: ignore[valid-type]
        return _as(InvoiceStatusEnum, self.e.status)

    @strawberry.field
    def previous(self) -> InvoiceStatus | None:  # type: ignore[valid-type]
        return _as(InvoiceStatusEnum, self.e.previous)

    @strawberry.field
    async def invoice(self, info: Info) -> Invoice | None:
        record = await _current(info, ResourceType.INVOICE, self.e)
        return Invoice(r=record) if record else None  # type: ignore[arg-type]

    @strawberry.field(description="The provider's own status word (e.g. paid, "
                                  "PARTIALLY_REFUNDED), when the source gave one.")
    def raw_status(self) -> str | None:
        value = self.e.data.get("raw_status")
        return value if isinstance(value, str) else None

    @strawberry.field(description="What happened: the webhook's event type (e.g. "
                                  "checkout.session.completed, PAYMENT.CAPTURE.DENIED) or the "
                                  "mutation (refundInvoice); null for changes the watcher saw.")
    def event_type(self) -> str | None:
        value = self.e.data.get("event_type")
        return value if isinstance(value, str) else None

    @strawberry.field(description="What happened to a payment, for payment events: "
                                  "SUCCEEDED, FAILED or REFUNDED.")
    def payment(self) -> PaymentEvent | None:
        return _as(PaymentEvent, self.e.data.get("payment"))  # type: ignore[return-value]


@strawberry.enum
class PaymentEvent(enum.Enum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    REFUNDED = "REFUNDED"


@strawberry.type
class OperationEvent:
    e: strawberry.Private[StatusEvent]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.e.resource_id)

    @strawberry.field
    def action(self) -> str:
        return str(self.e.data.get("action", ""))

    @strawberry.field
    def status(self) -> OperationStatus:
        return OperationStatus(self.e.status)

    @strawberry.field
    def step(self) -> str | None:
        step = self.e.data.get("step")
        return str(step) if step is not None else None

    @strawberry.field
    def progress(self) -> float | None:
        progress = self.e.data.get("progress")
        return float(progress) if progress is not None else None

    @strawberry.field
    def error(self) -> str | None:
        error = self.e.data.get("error")
        return str(error) if error else None

    @strawberry.field
    def at(self) -> datetime:
        return self.e.at


Filter = StatusEventFilter | None


@strawberry.type
class Subscription(AutomationSubscription):
    @strawberry.subscription
    async def server_status_changed(self, info: Info, filter: Filter = None
                                    ) -> AsyncGenerator[ServerStatusEvent, None]:
        async for event in watch(info.context, Topic.SERVER, _f(filter)):
            yield ServerStatusEvent(e=event)

    @strawberry.subscription
    async def node_status_changed(self, info: Info, filter: Filter = None
                                  ) -> AsyncGenerator[NodeStatusEvent, None]:
        async for event in watch(info.context, Topic.NODE, _f(filter)):
            yield NodeStatusEvent(e=event)

    @strawberry.subscription
    async def backup_status_changed(self, info: Info, filter: Filter = None
                                    ) -> AsyncGenerator[BackupStatusEvent, None]:
        async for event in watch(info.context, Topic.BACKUP, _f(filter)):
            yield BackupStatusEvent(e=event)

    @strawberry.subscription
    async def account_status_changed(self, info: Info, filter: Filter = None
                                     ) -> AsyncGenerator[AccountStatusEvent, None]:
        async for event in watch(info.context, Topic.ACCOUNT, _f(filter)):
            yield AccountStatusEvent(e=event)

    @strawberry.subscription
    async def invoice_status_changed(self, info: Info, filter: Filter = None
                                     ) -> AsyncGenerator[InvoiceStatusEvent, None]:
        async for event in watch(info.context, Topic.INVOICE, _f(filter)):
            yield InvoiceStatusEvent(e=event)

    @strawberry.subscription(description="Progress of one operation, or of all when id is omitted.")
    async def operation_updated(self, info: Info, id: strawberry.ID | None = None
                                ) -> AsyncGenerator[OperationEvent, None]:
        async for event in watch_operation(info.context, str(id) if id else None):
            yield OperationEvent(e=event)


def _f(value: StatusEventFilter | None) -> EventFilter:
    return value.to_filter() if value else EventFilter()
