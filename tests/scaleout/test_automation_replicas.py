"""Two gateway replicas sharing PostgreSQL and Redis run a billing policy once per event.

Both replicas hear every invoice event (the webhook arrives at one, Redis carries it to the
other), both run the scheduled pass loop (one holds the lease at a time), both see the overdue
invoice: still exactly one suspend run and one unsuspend run, each panel called once.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from panelql.application.ids import encode
from panelql.domain.records import Ref, ResourceType
from panelql_sim.catalyst import CatalystSim
from panelql_sim.directadmin import DirectAdminSim
from panelql_sim.runner import BackgroundServers
from panelql_sim.stripe import StripeSim
from tests.e2e.harness import GatewayUnderTest, serve_sim, start_gateway
from tests.scaleout.test_two_replicas import _database, _drop
from tests.waits import wait_until

RUNS = """query($c: String) { automationRuns(customerRef: $c) { id action status
  steps { provider status attempts } } }"""
Replicas = tuple[GatewayUnderTest, GatewayUnderTest, dict[str, object]]


@pytest.fixture(scope="module")
def replicas(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Replicas]:
    pg, redis = (os.environ.get("PANELQL_TEST_POSTGRES_URL"),
                 os.environ.get("PANELQL_TEST_REDIS_URL"))
    if not pg or not redis:
        pytest.skip("PANELQL_TEST_POSTGRES_URL and PANELQL_TEST_REDIS_URL are needed for the "
                    "two-replica automation test")
    database = asyncio.run(_database(pg))
    catalyst, directadmin, stripe = CatalystSim(servers=6, nodes=2), DirectAdminSim(), StripeSim()
    catalyst.knobs.transition_seconds = 0.2
    entries = [
        serve_sim(background, "cat-auto", catalyst, "catalyst", {"api_key": catalyst.api_key}),
        serve_sim(background, "da-auto", directadmin, "directadmin",
                  {"username": directadmin.username, "password": directadmin.password}),
        serve_sim(background, "st-auto", stripe, "stripe",
                  {"api_key": stripe.api_key, "webhook_secret": stripe.webhook_secret}),
    ]
    sims = {"catalyst": catalyst, "directadmin": directadmin, "stripe": stripe}
    tmp = tmp_path_factory.mktemp("auto-replicas")
    settings = {"redis_url": redis, "automation": {"pass_seconds": 0.3}}
    started: list[str] = []
    try:
        first = start_gateway(background, "auto-r1", dict(sims), entries, Path(tmp / "1.db"),
                              database_url=database, **settings)
        started.append("auto-r1")
        second = start_gateway(background, "auto-r2", dict(sims), entries, Path(tmp / "2.db"),
                               database_url=database, **settings)
        started.append("auto-r2")
        stripe.webhook_url = f"{first.url}/webhooks/stripe/st-auto"
        yield first, second, sims
    finally:
        for name in started:  # before the database goes away under them
            background.stop_one(name)
        asyncio.run(_drop(pg, database))


def ok(gw: GatewayUnderTest, query: str, variables: dict[str, object] | None = None
       ) -> dict[str, object]:
    body = gw.query(query, variables)
    assert "errors" not in body, body
    data: dict[str, object] = body["data"]
    return data


def test_two_replicas_run_the_policy_once_per_event(replicas: Replicas) -> None:
    first, second, sims = replicas
    catalyst, directadmin, stripe = sims["catalyst"], sims["directadmin"], sims["stripe"]
    assert isinstance(catalyst, CatalystSim) and isinstance(directadmin, DirectAdminSim)
    assert isinstance(stripe, StripeSim)
    server = next(s for s in catalyst.servers.values()
                  if s.suspended_at is None and s.status in ("running", "stopped"))
    account = next(u for u in directadmin.users.values() if not u.suspended)
    customer = stripe.add_customer("Replica customer", "replica@example.com")
    link = ("mutation($r: ID, $p: String, $b: String) { linkCustomer(customerRef: "
            '"whmcs:77", resource: $r, provider: $p, billingCustomer: $b) { changed } }')
    ok(first, link, {"r": encode(Ref("cat-auto", ResourceType.SERVER, server.id))})
    ok(second, link, {"r": encode(Ref("da-auto", ResourceType.ACCOUNT, account.username))})
    ok(first, link, {"p": "st-auto", "b": customer})
    ok(second, 'mutation { createAutomationPolicy(input: {name: "overdue 3", trigger: OVERDUE, '
                "overdueDays: 3}) { policy { id } } }")
    invoice = stripe.add_invoice(customer, [("VPS", 1, 2000)])
    ok(first, "mutation($id: ID!) { finalizeInvoice(id: $id) { invoice { status } } }",
       {"id": encode(Ref("st-auto", ResourceType.INVOICE, invoice.id))})
    catalyst.reset_stats()
    directadmin.reset_stats()

    # Time passes on Stripe: its invoice.overdue goes to the first replica's webhook.
    clock = httpx.post(f"{_url(stripe, first)}/__sim/clock", json={"advance_days": 34})
    assert clock.status_code == 200, clock.text

    def runs() -> list[dict[str, object]]:
        found = ok(second, RUNS, {"c": "whmcs:77"})["automationRuns"]
        assert isinstance(found, list)
        return found

    def settled(action: str) -> bool:
        return any(r["action"] == action and r["status"] == "SUCCEEDED" for r in runs())

    wait_until(lambda: settled("SUSPEND"), "the suspension ran")
    response = httpx.post(f"{_url(stripe, first)}/v1/invoices/{invoice.id}/pay",
                          data={"paid_out_of_band": "true"},
                          headers={"Authorization": f"Bearer {stripe.api_key}"})
    assert response.status_code == 200, response.text
    wait_until(lambda: settled("UNSUSPEND"), "the payment lifted it")
    passes = [g.app.state.gateway.automation.passes for g in (first, second)]
    wait_until(lambda: sum(g.app.state.gateway.automation.passes for g in (first, second))
               >= sum(passes) + 4, "a few more scheduled passes on the replicas")

    assert sorted(r["action"] for r in runs()) == ["SUSPEND", "UNSUSPEND"]
    for run in runs():
        steps = run["steps"]
        assert isinstance(steps, list)
        assert [(s["status"], s["attempts"]) for s in steps] == [("DONE", 1), ("DONE", 1)]
    suspends = {k: v for k, v in catalyst.stats.items() if "suspend" in k}
    assert sum(v for k, v in suspends.items() if "unsuspend" not in k) == 1, suspends
    assert sum(v for k, v in suspends.items() if "unsuspend" in k) == 1, suspends
    assert server.suspended_at is None and not account.suspended


def _url(stripe: StripeSim, gw: GatewayUnderTest) -> str:
    assert gw.background is not None
    return str(gw.background.served["st-auto"].url)
