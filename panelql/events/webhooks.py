"""A verified webhook delivery turned into status events.

The HTTP endpoint (``web/webhooks.py``) finds the connection, lets its provider's receiver
(``Provider.webhook_receiver``, e.g. ``providers/stripe/receiver.py``) verify the delivery and
convert it to :class:`WebhookChange` records, and hands them here. :func:`ingest` dedupes on the
delivery's event id in ``webhook_events`` (a replay does nothing), takes each resource's
previous status from the snapshot table, updates the snapshot (so the watcher does not announce
the same change again) and publishes. This layer knows no concrete provider.
"""

from __future__ import annotations

from panelql.db.snapshots import SnapshotRow, Snapshots
from panelql.events.model import Source, StatusEvent, Topic
from panelql.events.watcher import EventRuntime
from panelql.providers.contract import Provider, WebhookDelivery


async def ingest(runtime: EventRuntime, provider: Provider,
                 delivery: WebhookDelivery) -> list[StatusEvent] | None:
    """Dedupe, update snapshots and publish; None when the delivery was already processed."""
    rows = [SnapshotRow(c.topic, c.resource_id, c.status, c.raw_status)
            for c in delivery.changes]
    previous = await Snapshots(runtime.sessions).ingest(provider.name, delivery.event_id, rows)
    if previous is None:
        return None
    events = [StatusEvent(topic=Topic(c.topic), connection=provider.name,
                          resource_id=c.resource_id, status=c.status,
                          previous=previous.get((c.topic, c.resource_id)),
                          source=Source.WEBHOOK, data={"raw_status": c.raw_status, **c.data})
              for c in delivery.changes]
    for event in events:
        await runtime.bus.publish(event)
    return events
