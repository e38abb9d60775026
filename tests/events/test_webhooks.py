"""Stripe webhook endpoint: signature and timestamp checks, dedupe, events with previous status."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from panelql.db.snapshots import SnapshotRow, Snapshots
from panelql.events.bus import InProcessBus
from panelql.events.model import Source, StatusEvent, Topic
from panelql.providers.config import ConnectionConfig, Secret
from panelql.providers.contract import Provider
from panelql.providers.http import ClientFactory
from panelql.providers.registry import build_provider
from panelql.settings import Settings
from panelql.web.webhooks import webhook_routes
from panelql_sim.stripe import StripeSim
from tests.events.conftest import Sessions


@dataclass
class Runtime:
    sessions: Sessions
    providers: dict[str, Provider]
    bus: InProcessBus = field(default_factory=InProcessBus)
    settings: Settings = field(default_factory=Settings)


class RecordingBus(InProcessBus):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[StatusEvent] = []

    async def publish(self, event: StatusEvent) -> None:
        self.events.append(event)
        await super().publish(event)


def stripe_connection(name: str, clients: ClientFactory, secret: str = "whsec_demo") -> Provider:
    config = ConnectionConfig(name=name, kind="stripe", base_url="http://127.0.0.1:9",
                              credentials={"api_key": Secret("sk_test_demo"),
                                           "webhook_secret": Secret(secret)})
    return build_provider(config, clients)


@dataclass
class Endpoint:
    client: httpx.AsyncClient
    runtime: Runtime
    bus: RecordingBus
    sim: StripeSim

    async def deliver(self, body: str, signature: str, path: str = "/webhooks/stripe"
                      ) -> httpx.Response:
        return await self.client.post(path, content=body, headers={
            "Stripe-Signature": signature, "Content-Type": "application/json"})

    def invoice_event(self, kind: str = "invoice.paid") -> tuple[str, dict[str, Any]]:
        invoice = next(i for i in self.sim.invoices.values() if i.status == "open")
        invoice.status = "paid"
        return invoice.id, self.sim.record_event(kind, invoice)


@pytest.fixture
async def endpoint(sessions: Sessions) -> AsyncIterator[Endpoint]:
    clients = ClientFactory()
    bus = RecordingBus()
    runtime = Runtime(sessions, {"billing": stripe_connection("billing", clients)}, bus)
    app = Starlette(routes=webhook_routes(lambda request: runtime))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        yield Endpoint(client, runtime, bus, StripeSim(customers=2, invoices=6))
    await clients.aclose()


async def test_valid_signature_publishes_with_previous_status(endpoint: Endpoint) -> None:
    invoice_id, event = endpoint.invoice_event()
    await Snapshots(endpoint.runtime.sessions).save(
        "billing", [SnapshotRow("invoice", invoice_id, "OPEN", "open")])
    body, signature = endpoint.sim.signed(event)
    response = await endpoint.deliver(body, signature)
    assert response.status_code == 200, response.text
    assert response.json() == {"received": True, "duplicate": False, "events": 1}
    (published,) = endpoint.bus.events
    assert (published.topic, published.connection, published.resource_id, published.previous,
            published.status, published.source) == (
        Topic.INVOICE, "billing", invoice_id, "OPEN", "PAID", Source.WEBHOOK)
    assert published.data["event_id"] == event["id"]
    stored = await Snapshots(endpoint.runtime.sessions).find("billing", "invoice", invoice_id)
    assert stored is not None and stored.status == "PAID"  # the watcher will not repeat it


async def test_forged_signature_is_rejected(endpoint: Endpoint) -> None:
    _, event = endpoint.invoice_event()
    body, _ = endpoint.sim.signed(event)
    forged = StripeSim(webhook_secret="whsec_attacker").signed(event)[1]
    response = await endpoint.deliver(body, forged)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_WEBHOOK"
    tampered = body.replace('"paid"', '"void"')
    response = await endpoint.deliver(tampered, endpoint.sim.signed(event)[1])
    assert response.status_code == 400
    assert endpoint.bus.events == []


async def test_stale_timestamp_is_rejected(endpoint: Endpoint) -> None:
    _, event = endpoint.invoice_event()
    body, signature = endpoint.sim.signed(event, timestamp=int(time.time()) - 3600)
    response = await endpoint.deliver(body, signature)
    assert response.status_code == 400
    assert "stale" in response.json()["error"]["message"]
    assert endpoint.bus.events == []


async def test_replay_is_acknowledged_and_ignored(endpoint: Endpoint) -> None:
    _, event = endpoint.invoice_event()
    body, signature = endpoint.sim.signed(event)
    assert (await endpoint.deliver(body, signature)).json()["duplicate"] is False
    replay = await endpoint.deliver(body, endpoint.sim.signed(event)[1])  # freshly re-signed
    assert replay.status_code == 200
    assert replay.json() == {"received": True, "duplicate": True}
    assert len(endpoint.bus.events) == 1


async def test_routes_by_connection_and_shorthand_only_when_unambiguous(
        endpoint: Endpoint) -> None:
    _, event = endpoint.invoice_event()
    body, signature = endpoint.sim.signed(event)
    assert (await endpoint.deliver(body, signature, "/webhooks/stripe/nope")).status_code == 404
    assert (await endpoint.deliver(body, signature, "/webhooks/paypal")).status_code == 404
    clients = ClientFactory()
    endpoint.runtime.providers["billing2"] = stripe_connection("billing2", clients, "whsec_2")
    assert (await endpoint.deliver(body, signature)).status_code == 404  # which one?
    assert (await endpoint.deliver(body, signature, "/webhooks/stripe/billing2")
            ).status_code == 400  # signed with the other connection's secret
    response = await endpoint.deliver(body, signature, "/webhooks/stripe/billing")
    assert response.status_code == 200 and response.json()["events"] == 1
    await clients.aclose()


async def test_non_invoice_events_are_recorded_without_publishing(endpoint: Endpoint) -> None:
    event = {"id": "evt_customer_1", "object": "event", "type": "customer.created",
             "created": int(time.time()), "data": {"object": {"id": "cus_1"}},
             "livemode": False}
    body, signature = endpoint.sim.signed(event)
    response = await endpoint.deliver(body, signature)
    assert response.json() == {"received": True, "duplicate": False, "events": 0}
    assert endpoint.bus.events == []
