"""Billing automation end to end: a policy suspends a customer's services on every panel when
an invoice is overdue by N days, and a payment (a signed Stripe webhook) lifts exactly those.

Real HTTP to the simulators, a real SQLite file, the real stripe library verifying webhooks;
time passes through the Stripe simulator's clock (POST /__sim/clock).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from panelql.application.ids import encode
from panelql.domain.records import Ref, ResourceType
from panelql_sim.catalyst import CatalystSim
from panelql_sim.demo import start_panels
from panelql_sim.directadmin import DirectAdminSim
from panelql_sim.proxmoxwp import ProxmoxWPSim
from panelql_sim.runner import BackgroundServers
from panelql_sim.stripe import StripeSim
from tests.e2e.harness import GatewayUnderTest, start_gateway
from tests.waits import wait_until

POLICY = """mutation($input: AutomationPolicyInput!) {
  createAutomationPolicy(input: $input) { policy { id name trigger overdueDays } replayed } }"""
RUNS = """query($c: String) { automationRuns(customerRef: $c) {
  id action status cause source reason invoiceNumber dryRun error
  steps { provider kind resourceType resource status note error attempts } } }"""
LINK = """mutation($c: String!, $r: ID, $p: String, $b: String) {
  linkCustomer(customerRef: $c, resource: $r, provider: $p, billingCustomer: $b) { changed } }"""


@pytest.fixture(scope="module")
def gw(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[GatewayUnderTest]:
    sims, entries = start_panels(background, transition_seconds=0.2)
    gateway = start_gateway(background, "gw-automation", dict(sims), entries,
                            tmp_path_factory.mktemp("automation") / "a.db",
                            automation={"pass_seconds": 0.3, "retry_base_seconds": 0.2,
                                        "retry_max_seconds": 1.0, "max_attempts": 50})
    stripe = sims["stripe"]
    assert isinstance(stripe, StripeSim)
    stripe.webhook_url = f"{gateway.url}/webhooks/stripe/stripe"
    yield gateway


def ok(gw: GatewayUnderTest, query: str, variables: dict[str, Any] | None = None,
       **headers: str) -> dict[str, Any]:
    body = gw.query(query, variables, **headers)
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


@dataclass
class Customer:
    ref: str
    stripe_id: str
    catalyst: str  # upstream ids
    account: str
    site: str
    by_hand: str  # a Catalyst server an admin suspended by hand


def new_customer(gw: GatewayUnderTest, ref: str) -> Customer:
    """A Stripe customer linked to a running Catalyst server, an active DirectAdmin account,
    a live ProxmoxWP site, and a Catalyst server an admin suspended by hand."""
    stripe, catalyst = gw.sims["stripe"], gw.sims["catalyst-main"]
    directadmin, wp = gw.sims["directadmin"], gw.sims["wp-sites"]
    assert isinstance(stripe, StripeSim) and isinstance(catalyst, CatalystSim)
    assert isinstance(directadmin, DirectAdminSim) and isinstance(wp, ProxmoxWPSim)
    taken = _taken(gw)
    servers = [s for s in catalyst.servers.values()
               if s.suspended_at is None and s.status in ("running", "stopped")
               and s.id not in taken]
    account = next(u for u in directadmin.users.values()
                   if not u.suspended and u.username not in taken)
    site = next(s for s in wp.sites.values()
                if not s.suspended and s.status == "running" and s.service_id not in taken)
    customer = Customer(ref, stripe.add_customer(ref, f"{ref.replace(':', '-')}@example.com"),
                        servers[0].id, account.username, site.service_id, servers[1].id)
    refs = [Ref("catalyst-main", ResourceType.SERVER, customer.catalyst),
            Ref("directadmin", ResourceType.ACCOUNT, customer.account),
            Ref("wp-sites", ResourceType.SERVER, customer.site),
            Ref("catalyst-main", ResourceType.SERVER, customer.by_hand)]
    for r in refs:
        ok(gw, LINK, {"c": ref, "r": encode(r)})
    ok(gw, LINK, {"c": ref, "p": "stripe", "b": customer.stripe_id})
    suspended = ok(gw, 'mutation($id: ID!) { suspendServer(id: $id, reason: "abuse report") '
                   '{ server { suspended } } }', {"id": encode(refs[3])})
    assert suspended["suspendServer"]["server"]["suspended"] is True
    return customer


_TAKEN: set[str] = set()


def _taken(gw: GatewayUnderTest) -> set[str]:
    return _TAKEN


def remember(customer: Customer) -> None:
    _TAKEN.update({customer.catalyst, customer.account, customer.site, customer.by_hand})


def open_invoice(gw: GatewayUnderTest, customer: Customer) -> tuple[str, str]:
    """A finalized send_invoice invoice due in 30 days: (upstream id, number)."""
    stripe = gw.sims["stripe"]
    assert isinstance(stripe, StripeSim)
    invoice = stripe.add_invoice(customer.stripe_id, [("Game server (monthly)", 1, 1500)])
    gid = encode(Ref("stripe", ResourceType.INVOICE, invoice.id))
    ok(gw, "mutation($id: ID!) { finalizeInvoice(id: $id) { invoice { status } } }",
       {"id": gid})
    assert invoice.number is not None
    return invoice.id, invoice.number


def advance(gw: GatewayUnderTest, days: float) -> dict[str, Any]:
    stripe_url = _sim_url(gw, "stripe")
    response = httpx.post(f"{stripe_url}/__sim/clock", json={"advance_days": days})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def pay_on_stripe(gw: GatewayUnderTest, invoice_id: str) -> None:
    """The customer pays on Stripe's side; Stripe sends the signed invoice.paid webhook."""
    response = httpx.post(f"{_sim_url(gw, 'stripe')}/v1/invoices/{invoice_id}/pay",
                          data={"paid_out_of_band": "true"},
                          headers={"Authorization": "Bearer sk_test_demo"})
    assert response.status_code == 200, response.text


def _sim_url(gw: GatewayUnderTest, name: str) -> str:
    assert gw.background is not None
    return str(gw.background.served[name].url)


def runs(gw: GatewayUnderTest, ref: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = ok(gw, RUNS, {"c": ref})["automationRuns"]
    return found


def run_of(gw: GatewayUnderTest, ref: str, action: str, status: str) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        return next((r for r in runs(gw, ref) if r["action"] == action
                     and r["status"] == status), None)
    wait_until(lambda: find() is not None, f"a {status} {action} run for {ref}")
    found = find()
    assert found is not None
    return found


def panel_state(gw: GatewayUnderTest, c: Customer) -> dict[str, tuple[bool, str]]:
    catalyst, directadmin, wp = (gw.sims["catalyst-main"], gw.sims["directadmin"],
                                 gw.sims["wp-sites"])
    assert isinstance(catalyst, CatalystSim) and isinstance(directadmin, DirectAdminSim)
    assert isinstance(wp, ProxmoxWPSim)
    server, by_hand = catalyst.servers[c.catalyst], catalyst.servers[c.by_hand]
    user, site = directadmin.users[c.account], wp.sites[c.site]
    return {"catalyst": (server.suspended_at is not None, server.suspension_reason or ""),
            "directadmin": (user.suspended, user.suspended_reason),
            "wp": (site.suspended, ""),
            "by_hand": (by_hand.suspended_at is not None, by_hand.suspension_reason or "")}


def policy(gw: GatewayUnderTest, name: str, **fields: Any) -> str:
    data = ok(gw, POLICY, {"input": {"name": name, "trigger": "OVERDUE", "overdueDays": 3,
                                     **fields}})
    return str(data["createAutomationPolicy"]["policy"]["id"])


def test_overdue_suspends_everywhere_and_payment_lifts_exactly_that(gw: GatewayUnderTest
                                                                      ) -> None:
    policy(gw, "suspend after 3 days overdue")
    c = new_customer(gw, "whmcs:2101")
    remember(c)
    invoice_id, number = open_invoice(gw, c)
    advance(gw, 31)  # one day overdue: nothing yet
    before = panel_state(gw, c)
    assert not any(s for s, _ in (before["catalyst"], before["directadmin"], before["wp"]))

    advance(gw, 3)  # four days overdue
    run = run_of(gw, c.ref, "SUSPEND", "SUCCEEDED")
    assert run["reason"] == f"Payment overdue - Invoice #{number}"
    assert run["invoiceNumber"] == number
    state = panel_state(gw, c)
    assert state["catalyst"] == (True, f"Payment overdue - Invoice #{number}")
    # DirectAdmin takes a reason only with the connection's suspend_reason option (its own
    # vocabulary); suspended it is, and the run's steps name the invoice.
    assert state["directadmin"][0] is True
    assert state["wp"][0] is True
    by_step = {(s["provider"], s["status"]) for s in run["steps"]}
    assert ("catalyst-main", "SKIPPED") in by_step  # the server the admin suspended
    skipped = next(s for s in run["steps"] if s["status"] == "SKIPPED")
    assert "before this policy acted" in skipped["note"]

    pay_on_stripe(gw, invoice_id)
    lifted = run_of(gw, c.ref, "UNSUSPEND", "SUCCEEDED")
    # The webhook usually wins; the scheduled pass (every 0.3 s here) reads the same state.
    assert lifted["source"] in ("WEBHOOK", "SCHEDULE")
    assert sorted(s["provider"] for s in lifted["steps"]) == [
        "catalyst-main", "directadmin", "wp-sites"]
    state = panel_state(gw, c)
    assert not state["catalyst"][0] and not state["directadmin"][0] and not state["wp"][0]
    assert state["by_hand"] == (True, "abuse report")

    # The audit log names the policy and the invoice for every action.
    audit = ok(gw, '{ auditLog(first: 50, action: "unsuspendAccount") { actor input } }')
    entry = audit["auditLog"][0]
    assert entry["actor"].startswith("automation:policy:")
    assert entry["input"]["invoice"] == number
