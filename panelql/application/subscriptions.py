"""Subscription use-cases: read the bus, keep what the subscriber's filter asks for.

The bus already gives each subscriber a bounded queue; these generators only filter and must
leave no trace when the client disconnects (the bus's own ``finally`` drops the queue).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from panelql.application import auth, ids, queries
from panelql.application.context import Context
from panelql.application.errors import GatewayError
from panelql.domain.records import Ref, ResourceType
from panelql.events.model import StatusEvent, Topic
from panelql.providers.errors import ProviderError

log = logging.getLogger("panelql.subscriptions")

TOPIC_TYPES = {
    Topic.SERVER: ResourceType.SERVER,
    Topic.NODE: ResourceType.NODE,
    Topic.BACKUP: ResourceType.BACKUP,
    Topic.ACCOUNT: ResourceType.ACCOUNT,
    Topic.INVOICE: ResourceType.INVOICE,
}


@dataclass
class EventFilter:
    ids: list[str] | None = None  # global IDs
    providers: list[str] | None = None
    statuses: list[str] | None = None

    def refs(self, topic: Topic) -> set[Ref] | None:
        if self.ids is None:
            return None
        kind = TOPIC_TYPES.get(topic)
        return {ids.decode(i, kind) for i in self.ids}


def event_ref(event: StatusEvent) -> Ref | None:
    kind = TOPIC_TYPES.get(event.topic)
    return Ref(event.connection, kind, event.resource_id) if kind else None


FIELDS = {Topic.SERVER: "serverStatusChanged", Topic.NODE: "nodeStatusChanged",
          Topic.BACKUP: "backupStatusChanged", Topic.ACCOUNT: "accountStatusChanged",
          Topic.INVOICE: "invoiceStatusChanged", Topic.OPERATION: "operationUpdated"}


async def watch(ctx: Context, topic: Topic, f: EventFilter) -> AsyncIterator[StatusEvent]:
    auth.check(ctx.viewer, "Subscription", FIELDS[topic])
    wanted = f.refs(topic)  # decoded up front: a bad ID fails the subscription at once
    async for event in _checked(ctx, FIELDS[topic], ctx.gateway.bus.subscribe({topic})):
        if f.providers is not None and event.connection not in f.providers:
            continue
        if f.statuses is not None and event.status not in f.statuses:
            continue
        if wanted is not None and event_ref(event) not in wanted:
            continue
        if not await visible(ctx, event):
            continue
        yield event


async def watch_operation(ctx: Context, operation_id: str | None) -> AsyncIterator[StatusEvent]:
    field = FIELDS[Topic.OPERATION]
    auth.check(ctx.viewer, "Subscription", field)
    async for event in _checked(ctx, field, ctx.gateway.bus.subscribe({Topic.OPERATION})):
        wanted = operation_id is None or event.resource_id == operation_id
        if wanted and await visible(ctx, event):
            yield event


async def _checked(ctx: Context, field: str, events: AsyncIterator[StatusEvent]
                   ) -> AsyncIterator[StatusEvent]:
    """``events`` while the subscriber's rights hold: on a long-lived connection the key and
    the customer scope are looked up again every ``rights.interval`` seconds, also while no
    event arrives, so a revoked key's subscription ends (UNAUTHENTICATED) within seconds and
    an unlinked resource's events stop."""
    rights = ctx.rights
    if rights is None:
        async for event in _masked(events):
            yield event
        return
    async for item in _ticking(_masked(events), rights.interval):
        await rights.refresh(ctx)
        auth.check(ctx.viewer, "Subscription", field)
        if item is not None:
            yield item


async def _ticking(events: AsyncIterator[StatusEvent], every: float
                   ) -> AsyncIterator[StatusEvent | None]:
    """``events``, with a None whenever ``every`` seconds pass without one. The source is read
    by a task into a queue, so waiting with a timeout never cancels the source itself."""
    # (event, None) per event, (None, error) when the source failed, (None, None) at its end.
    queue: asyncio.Queue[tuple[StatusEvent | None, Exception | None]] = asyncio.Queue(1)

    async def pump() -> None:
        try:
            async for event in events:
                await queue.put((event, None))
        except Exception as exc:  # handed to the reader, which raises it
            await queue.put((None, exc))
        else:
            await queue.put((None, None))

    task = asyncio.create_task(pump())
    try:
        while True:
            try:
                event, error = await asyncio.wait_for(queue.get(), every)
            except TimeoutError:
                yield None
                continue
            if error is not None:
                raise error
            if event is None:
                return
            yield event
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# For subscription use-cases in other modules (application/automation/subscriptions.py).
checked = _checked


async def _masked(events: AsyncIterator[StatusEvent]) -> AsyncIterator[StatusEvent]:
    """Subscriptions bypass the HTTP error shaping, so unexpected failures are masked here."""
    try:
        async for event in events:
            yield event
    except (GatewayError, ProviderError):
        raise
    except Exception as exc:
        error_id = uuid.uuid4().hex[:12]
        log.error("subscription failed %s", error_id, exc_info=exc)
        raise GatewayError(f"Internal error (id {error_id})", errorId=error_id) from None


async def visible(ctx: Context, event: StatusEvent) -> bool:
    """Customer-bound subscribers see events of their own resources only. The ownership check
    is a lookup through the connection's loaders, so it is paid once per resource, not per
    event."""
    if ctx.viewer.customer_ref is None:
        return True
    ref = event_ref(event)
    if ref is None:  # operations: visible when their target server is
        target = event.data.get("target")
        if not isinstance(target, str):
            return False
        ref = Ref(event.connection, ResourceType.SERVER, target)
    try:
        await queries.get(ctx, ref)
    except (GatewayError, ProviderError):
        return False
    return True
