"""The pipeline inside a real gateway (uvicorn, SQLite file, simulators over HTTP): the watcher
starts with the app and records its baseline, and the Stripe webhook route answers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from panelql.db.snapshots import Snapshots
from panelql_sim.catalyst import CatalystSim
from panelql_sim.runner import BackgroundServers
from panelql_sim.stripe import StripeSim
from tests.e2e.harness import serve_sim, start_gateway
from tests.events.conftest import open_sessions


async def test_gateway_runs_the_watcher_and_accepts_stripe_webhooks(
        background: BackgroundServers, tmp_path: Path) -> None:
    catalyst, stripe_sim = CatalystSim(servers=3, nodes=1), StripeSim(customers=2, invoices=4)
    entries = [
        serve_sim(background, "ev-cat", catalyst, "catalyst", {"api_key": catalyst.api_key}),
        serve_sim(background, "ev-stripe", stripe_sim, "stripe",
                  {"api_key": stripe_sim.api_key, "webhook_secret": stripe_sim.webhook_secret}),
    ]
    db = tmp_path / "gw.db"
    gw = await asyncio.to_thread(start_gateway, background, "ev-gw", {}, entries, db,
                                 watcher={"fast_seconds": 0.2, "slow_seconds": 0.5})
    sessions, engine = await open_sessions(f"sqlite+aiosqlite:///{db}")
    try:
        snapshots = Snapshots(sessions)
        async with asyncio.timeout(10):  # the watcher's first poll records every connection
            while not (await snapshots.load("ev-cat") and await snapshots.load("ev-stripe")):
                await asyncio.sleep(0.1)
        invoice = next(i for i in stripe_sim.invoices.values() if i.status == "open")
        invoice.status = "void"
        body, signature = stripe_sim.signed(stripe_sim.record_event("invoice.voided", invoice))
        async with httpx.AsyncClient(base_url=gw.url) as client:
            headers = {"Stripe-Signature": signature, "Content-Type": "application/json"}
            first = await client.post("/webhooks/stripe", content=body, headers=headers)
            again = await client.post("/webhooks/stripe/ev-stripe", content=body,
                                      headers=headers)
            forged = await client.post("/webhooks/stripe", content=body,
                                       headers={**headers, "Stripe-Signature": "t=1,v1=00"})
        assert first.status_code == 200 and first.json()["events"] == 1, first.text
        assert again.json() == {"received": True, "duplicate": True}
        assert forged.status_code == 400
        stored = await snapshots.find("ev-stripe", "invoice", invoice.id)
        assert stored is not None and stored.status == "VOID"
    finally:
        await engine.dispose()
        for name in ("ev-gw", "ev-cat", "ev-stripe"):
            await asyncio.to_thread(background.stop_one, name)
