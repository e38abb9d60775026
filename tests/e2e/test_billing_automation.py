"""Billing automation end to end: a policy suspends a customer's services on every panel when
an invoice is overdue by N days, and a payment (a signed Stripe webhook) lifts exactly those.
A dispute (Stripe ``charge.dispute.created``, PayPal ``CUSTOMER.DISPUTE.CREATED``) suspends at
once and no payment lifts it.

Real HTTP to the simulators, a real SQLite file, the real stripe library verifying webhooks,
PayPal's deliveries verified by the PayPal simulator's verify-webhook-signature; time passes
through the Stripe simulator's clock (POST /__sim/clock).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from panelql.application.ids import encode
from panelql.domain.automation import InvoiceCause, ServiceRef, suspend_key
from panelql.domain.records import Ref, ResourceType
from panelql_sim.catalyst import CatalystSim
from panelql_sim.demo import start_panels
from panelql_sim.directadmin import DirectAdminSim
from panelql_sim.paypal import PayPalSim
from panelql_sim.proxmoxwp import ProxmoxWPSim
from panelql_sim.runner import BackgroundServers
from panelql_sim.stripe import StripeSim
from tests.e2e.harness import GatewayUnderTest, gateway_of, start_gateway, wait_for_subscribers
from tests.e2e.wsclient import ws_client
from tests.waits import SAFETY_SECONDS, wait_until

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
    paypal = sims["paypal"]
    assert isinstance(paypal, PayPalSim)
    paypal.webhook_url = f"{gateway.url}/webhooks/paypal/paypal"
    _SIM_URLS[gateway.url] = {e.name: str(e.base_url) for e in entries}
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
    """A Stripe customer linked to a new running Catalyst server, a new DirectAdmin account, a
    new ProxmoxWP site, and a Catalyst server an admin suspended by hand (each test its own,
    so tests in any order never share a service)."""
    stripe, catalyst = gw.sims["stripe"], gw.sims["catalyst-main"]
    directadmin, wp = gw.sims["directadmin"], gw.sims["wp-sites"]
    assert isinstance(stripe, StripeSim) and isinstance(catalyst, CatalystSim)
    assert isinstance(directadmin, DirectAdminSim) and isinstance(wp, ProxmoxWPSim)
    n = ref.rsplit(":", 1)[-1]
    node = next(i for i, x in catalyst.nodes.items() if x["isOnline"])
    owner = next(iter(catalyst.users))
    game, by_hand = (catalyst.add_server(
        name=f"c{n}-{what}", node_id=node, owner_id=owner, status="running", memory_mb=1024,
        cpu_cores=1, disk_mb=10240, backup_allocation_mb=2048) for what in ("game", "spare"))
    package = next(iter(directadmin.users.values())).package
    account = directadmin.add_user(f"c{n}", f"c{n}@example.com", package, f"c{n}.example",
                                   password="Acct-pass-1!")
    site = wp.add_site(service_id=f"2{n}", email=f"c{n}@example.com", plan="basic",
                       subdomain=f"c{n}.nodepoint.eu", status="running", node="pve1",
                       created=time.time())
    customer = Customer(ref, stripe.add_customer(ref, f"{ref.replace(':', '-')}@example.com"),
                        game.id, account.username, site.service_id, by_hand.id)
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


_SIM_URLS: dict[str, dict[str, str]] = {}  # gateway URL -> simulator name -> its URL


def _sim_url(gw: GatewayUnderTest, name: str) -> str:
    """The URL of this gateway's simulator (each module gateway has simulators of its own)."""
    return _SIM_URLS[gw.url][name].rstrip("/")


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
    """The policy's id, creating it unless a test before (in any order) did."""
    body = gw.query(POLICY, {"input": {"name": name, "trigger": "OVERDUE", "overdueDays": 3,
                                       **fields}})
    if "errors" in body:
        assert body["errors"][0]["extensions"]["code"] == "CONFLICT", body
        listed = ok(gw, "{ automationPolicies { id name } }")["automationPolicies"]
        return str(next(p["id"] for p in listed if p["name"] == name))
    return str(body["data"]["createAutomationPolicy"]["policy"]["id"])


OVERDUE_POLICY = "suspend after 3 days overdue"


def test_overdue_suspends_everywhere_and_payment_lifts_exactly_that(gw: GatewayUnderTest
                                                                      ) -> None:
    policy(gw, OVERDUE_POLICY)
    c = new_customer(gw, "whmcs:2101")
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


def test_a_replayed_webhook_or_a_second_look_never_acts_twice(gw: GatewayUnderTest) -> None:
    policy(gw, OVERDUE_POLICY)
    c = new_customer(gw, "whmcs:2102")
    invoice_id, _ = open_invoice(gw, c)
    advance(gw, 34)
    run_of(gw, c.ref, "SUSPEND", "SUCCEEDED")
    pay_on_stripe(gw, invoice_id)
    run_of(gw, c.ref, "UNSUSPEND", "SUCCEEDED")
    stripe = gw.sims["stripe"]
    assert isinstance(stripe, StripeSim)
    paid = next(e for e in reversed(stripe.events) if e["type"] == "invoice.paid"
                and e["data"]["object"]["id"] == invoice_id)
    body, signature = stripe.signed(paid)
    replay = httpx.post(f"{gw.url}/webhooks/stripe/stripe", content=body, headers={
        "Stripe-Signature": signature, "Content-Type": "application/json"})
    assert replay.json() == {"received": True, "duplicate": True}
    # The same payment announced again under a new event id (a second Stripe event, or the
    # watcher seeing it) finds the run already there.
    again = {**paid, "id": paid["id"] + "x", "type": "invoice.payment_succeeded"}
    body, signature = stripe.signed(again)
    fresh = httpx.post(f"{gw.url}/webhooks/stripe/stripe", content=body, headers={
        "Stripe-Signature": signature, "Content-Type": "application/json"})
    assert fresh.json()["duplicate"] is False
    advance(gw, 1)  # and the scheduled pass reads the paid invoice a few more times
    seen_runs = runs(gw, c.ref)
    wait_until(lambda: _passes(gw) >= 3, "three more scheduled passes")
    assert [(r["action"], r["status"]) for r in runs(gw, c.ref)] == [
        (r["action"], r["status"]) for r in seen_runs]
    assert sorted(r["action"] for r in seen_runs) == ["SUSPEND", "UNSUSPEND"]


_PASS_COUNT: list[int] = []


def _passes(gw: GatewayUnderTest) -> int:
    """Scheduled passes since the first call (reads the pass counter of the engine)."""
    count = int(gateway_of(gw).automation.passes)
    if not _PASS_COUNT:
        _PASS_COUNT.append(count)
    return count - _PASS_COUNT[0]


def test_a_panel_failing_mid_run_is_retried_and_the_run_resumes(gw: GatewayUnderTest) -> None:
    policy(gw, OVERDUE_POLICY)
    c = new_customer(gw, "whmcs:2103")
    open_invoice(gw, c)
    directadmin = gw.sims["directadmin"]
    directadmin.knobs.update({"fail_status": 503})
    try:
        advance(gw, 34)
        def retrying() -> bool:
            found = [r for r in runs(gw, c.ref) if r["action"] == "SUSPEND"]
            return bool(found) and any(s["status"] == "RETRYING" and s["attempts"] >= 2
                                       for s in found[0]["steps"])
        wait_until(retrying, "the DirectAdmin step retried while the panel is down")
        run = next(r for r in runs(gw, c.ref) if r["action"] == "SUSPEND")
        assert run["status"] == "RUNNING"
        assert "directadmin" in (run["error"] or "")
        done = {s["provider"] for s in run["steps"] if s["status"] == "DONE"}
        assert {"catalyst-main", "wp-sites"} <= done  # the other panels were not held back
        assert panel_state(gw, c)["directadmin"][0] is False
    finally:
        directadmin.knobs.update({"fail_status": None})
    run = run_of(gw, c.ref, "SUSPEND", "SUCCEEDED")
    step = next(s for s in run["steps"] if s["provider"] == "directadmin")
    assert step["status"] == "DONE" and step["attempts"] >= 2 and step["error"] is None
    assert panel_state(gw, c)["directadmin"][0] is True


DRY = """mutation($p: ID!, $i: ID!) { runAutomationPolicy(policy: $p, invoice: $i, dryRun: true) {
  runs { id status dryRun action reason steps { provider status } } } }"""


def test_dry_run_lists_what_would_happen_and_touches_nothing(gw: GatewayUnderTest) -> None:
    policy_id = policy(gw, OVERDUE_POLICY)
    c = new_customer(gw, "whmcs:2104")
    invoice_id, number = open_invoice(gw, c)
    before = panel_state(gw, c)
    data = ok(gw, DRY, {"p": policy_id, "i": encode(Ref("stripe", ResourceType.INVOICE,
                                                        invoice_id))})
    (run,) = data["runAutomationPolicy"]["runs"]
    assert run["dryRun"] is True and run["status"] == "PLANNED"
    assert run["reason"] == f"Payment overdue - Invoice #{number}"
    assert sorted(s["provider"] for s in run["steps"] if s["status"] == "PLANNED") == [
        "catalyst-main", "catalyst-main", "directadmin", "wp-sites"]
    assert panel_state(gw, c) == before


def test_customer_bound_keys_see_only_their_own_runs(gw: GatewayUnderTest) -> None:
    policy_id = policy(gw, OVERDUE_POLICY)
    c = new_customer(gw, "whmcs:2105")
    invoice_id, _ = open_invoice(gw, c)
    data = ok(gw, DRY, {"p": policy_id, "i": encode(Ref("stripe", ResourceType.INVOICE,
                                                        invoice_id))})
    run_id = data["runAutomationPolicy"]["runs"][0]["id"]
    own = gw.create_key(["billing.read"], customer_ref=c.ref)
    other = gw.create_key(["billing.read"], customer_ref="whmcs:someone-else")
    mine = ok(gw, RUNS, {"c": None}, **{"x-api-key": own})["automationRuns"]
    assert run_id in {r["id"] for r in mine} and {r["id"] for r in mine} <= {
        r["id"] for r in runs(gw, c.ref)}
    assert ok(gw, RUNS, {"c": c.ref}, **{"x-api-key": other})["automationRuns"] == []
    assert ok(gw, RUNS, {"c": None}, **{"x-api-key": other})["automationRuns"] == []
    hidden = gw.query("query($id: ID!) { automationRun(id: $id) { id } }", {"id": run_id},
                      **{"x-api-key": other})
    assert hidden["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    refused = gw.query("{ automationPolicies { id } }", **{"x-api-key": own})
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


@pytest.fixture(scope="module")
def webhook_only(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[GatewayUnderTest]:
    """A gateway whose scheduled pass never comes round after start-up: only the webhooks
    can make its policies act."""
    sims, entries = start_panels(background, transition_seconds=0.2)
    gateway = start_gateway(background, "gw-automation-webhooks", dict(sims), entries,
                            tmp_path_factory.mktemp("automation-webhooks") / "w.db",
                            automation={"pass_seconds": 3600})
    stripe = sims["stripe"]
    assert isinstance(stripe, StripeSim)
    stripe.webhook_url = f"{gateway.url}/webhooks/stripe/stripe"
    paypal = sims["paypal"]
    assert isinstance(paypal, PayPalSim)
    paypal.webhook_url = f"{gateway.url}/webhooks/paypal/paypal"
    _SIM_URLS[gateway.url] = {e.name: str(e.base_url) for e in entries}
    yield gateway


def test_webhooks_act_at_once_without_waiting_for_the_pass(webhook_only: GatewayUnderTest
                                                           ) -> None:
    gw = webhook_only
    policy(gw, OVERDUE_POLICY)
    c = new_customer(gw, "whmcs:2106")
    stripe = gw.sims["stripe"]
    assert isinstance(stripe, StripeSim)
    invoice = stripe.add_invoice(c.stripe_id, [("Web hosting (monthly)", 1, 900)])
    finalized = httpx.post(f"{_sim_url(gw, 'stripe')}/v1/invoices/{invoice.id}/finalize",
                           headers={"Authorization": "Bearer sk_test_demo"})
    assert finalized.status_code == 200, finalized.text
    assert any(e["type"] == "invoice.overdue" for e in advance(gw, 34)["events"])
    suspended = run_of(gw, c.ref, "SUSPEND", "SUCCEEDED")
    assert suspended["source"] == "WEBHOOK"
    pay_on_stripe(gw, invoice.id)
    lifted = run_of(gw, c.ref, "UNSUSPEND", "SUCCEEDED")
    assert lifted["source"] == "WEBHOOK"
    assert panel_state(gw, c)["catalyst"][0] is False


CANCEL = """mutation($p: ID!, $c: String!, $at: DateTime) {
  cancelCustomerServices(policy: $p, customerRef: $c, terminateAt: $at) {
    runs { id action status notBefore reason } } }"""


def test_cancellation_suspends_now_and_terminates_at_the_time_given(gw: GatewayUnderTest
                                                                    ) -> None:
    created = ok(gw, POLICY, {"input": {"name": "cancel at period end",
                                        "trigger": "CANCELLATION", "finalBackup": True}})
    policy_id = created["createAutomationPolicy"]["policy"]["id"]
    c = new_customer(gw, "whmcs:2107")
    when = datetime.now(UTC) + timedelta(seconds=2)
    runs_ = ok(gw, CANCEL, {"p": policy_id, "c": c.ref, "at": when.isoformat()}
               )["cancelCustomerServices"]["runs"]
    assert [(r["action"], r["status"]) for r in runs_] == [("SUSPEND", "PENDING"),
                                                            ("TERMINATE", "SCHEDULED")]
    assert runs_[0]["reason"].startswith("Service cancelled - will be deleted at")
    run_of(gw, c.ref, "SUSPEND", "SUCCEEDED")
    state = panel_state(gw, c)
    assert state["catalyst"][0] and state["directadmin"][0] and state["wp"][0]
    wait_until(lambda: any(r["action"] == "TERMINATE" and r["status"] in ("SUCCEEDED", "FAILED")
                           for r in runs(gw, c.ref)), "the termination ended")
    terminated = next(r for r in runs(gw, c.ref) if r["action"] == "TERMINATE")
    assert terminated["status"] == "SUCCEEDED", terminated
    notes = {s["provider"] + ":" + s["resource"]: s["note"] for s in terminated["steps"]}
    catalyst, directadmin, wp = (gw.sims["catalyst-main"], gw.sims["directadmin"],
                                 gw.sims["wp-sites"])
    assert isinstance(catalyst, CatalystSim) and isinstance(directadmin, DirectAdminSim)
    assert isinstance(wp, ProxmoxWPSim)
    assert c.catalyst not in catalyst.servers and c.account not in directadmin.users
    assert c.site not in wp.sites
    assert c.by_hand not in catalyst.servers  # cancelled means every service goes
    # Panels refuse to back up a suspended server: the termination lifts it for the backup.
    assert "terminated after a final backup" in notes[
        "catalyst-main:" + encode(Ref("catalyst-main", ResourceType.SERVER, c.catalyst))]


SUBSCRIBE = """subscription($c: String) { automationRunUpdated(customerRef: $c) {
  id action status customerRef steps { provider status } } }"""


async def test_a_failed_payment_suspends_at_once_and_subscribers_see_the_run(
        gw: GatewayUnderTest) -> None:
    def setup() -> tuple[Customer, str]:
        ok(gw, POLICY, {"input": {"name": "games on failed payment",
                                  "trigger": "PAYMENT_FAILED", "kinds": ["CATALYST"]}})
        c = new_customer(gw, "whmcs:2108")
        stripe = gw.sims["stripe"]
        assert isinstance(stripe, StripeSim)
        stripe.customers[c.stripe_id]["_method"] = "declined"
        invoice_id, number = open_invoice(gw, c)
        return c, encode(Ref("stripe", ResourceType.INVOICE, invoice_id)) + "|" + number

    c, both = await asyncio.to_thread(setup)
    invoice, number = both.split("|")
    def succeeded() -> float:
        return REGISTRY.get_sample_value("panelql_automation_runs_total",
                                         {"action": "SUSPEND", "outcome": "succeeded"}) or 0.0

    created = succeeded()
    other = await asyncio.to_thread(gw.create_key, ["billing.read"],
                                    customer_ref="whmcs:someone-else")
    async with ws_client(gw.url) as mine, ws_client(gw.url) as theirs:
        assert (await mine.init({"x-api-key": gw.admin_key}))["type"] == "connection_ack"
        assert (await theirs.init({"x-api-key": other}))["type"] == "connection_ack"
        await mine.subscribe(SUBSCRIBE, {"c": c.ref})
        await theirs.subscribe(SUBSCRIBE, {"c": None})
        await wait_for_subscribers(gw, "automation", 2)
        declined = await asyncio.to_thread(
            gw.query, "mutation($id: ID!) { payInvoice(id: $id) { invoice { status } } }",
            {"id": invoice})
        assert "declined" in declined["errors"][0]["message"]  # the card was declined
        seen: list[dict[str, Any]] = []

        async def until_succeeded() -> None:
            while not any(r["status"] == "SUCCEEDED" for r in seen):
                message = await mine.recv(timeout=SAFETY_SECONDS)
                seen.append(message["payload"]["data"]["automationRunUpdated"])
        # A safety net only (keep-alive pings would otherwise keep recv waiting forever).
        await asyncio.wait_for(until_succeeded(), SAFETY_SECONDS)
        assert {r["action"] for r in seen} == {"SUSPEND"}
        assert seen[0]["status"] == "PENDING"
        final = seen[-1]
        # Only the Catalyst servers: the policy's kinds; the one suspended by hand is skipped.
        assert sorted((s["provider"], s["status"]) for s in final["steps"]) == [
            ("catalyst-main", "DONE"), ("catalyst-main", "SKIPPED")]
        with pytest.raises(TimeoutError):  # another customer's key hears nothing of it
            await theirs.recv(timeout=0.5)
    (run,) = [r for r in runs(gw, c.ref) if r["action"] == "SUSPEND"]
    assert run["reason"] == f"Payment failed - Invoice #{number}"
    assert run["source"] == "WEBHOOK" and run["cause"] == "invoice.payment_failed"
    state = panel_state(gw, c)
    assert state["catalyst"] == (True, f"Payment failed - Invoice #{number}")
    assert state["directadmin"][0] is False and state["wp"][0] is False
    assert succeeded() >= created + 1  # (other tests' runs may settle meanwhile)
    metrics = await asyncio.to_thread(httpx.get, f"{gw.url}/metrics")
    assert 'panelql_automation_runs_total{action="SUSPEND",outcome="succeeded"}' in metrics.text
    assert "panelql_automation_steps_total" in metrics.text


def test_a_run_left_by_a_dead_replica_is_resumed_and_its_half_done_step_counted(
        gw: GatewayUnderTest) -> None:
    """A replica took a run, suspended the Catalyst server (the call reached the panel) and
    died before writing the step down: the pass of another replica resumes the run once the
    lease has passed, and the server counts as the policy's, so the payment lifts it."""
    policy_id = int(policy(gw, OVERDUE_POLICY))
    c = new_customer(gw, "whmcs:2109")
    invoice_id, number = open_invoice(gw, c)
    automation = gateway_of(gw).automation
    store = automation.store
    assert gw.background is not None
    cause = InvoiceCause("stripe", invoice_id, number)
    row = gw.background.call(store.policy(policy_id))
    # Paused while the dead replica's state is laid out, so no pass takes the run half-laid.
    ok(gw, "mutation { setAutomationPaused(paused: true) }")
    services = [ServiceRef("catalyst-main", "catalyst", "Server", c.catalyst),
                ServiceRef("directadmin", "directadmin", "Account", c.account)]
    run = gw.background.call(store.create_run(
        dedupe_key=suspend_key(policy_id, cause, False), policy=row, customer_ref=c.ref,
        action="SUSPEND", cause="overdue 4 day(s)", source="SCHEDULE", status="RUNNING",
        dry_run=False, invoice=cause, reason=f"Payment overdue - Invoice #{number}",
        not_before=None, services=services, statuses=["PENDING", "PENDING"]))
    assert run is not None
    # The dead replica's state: its lease ran out, its first step ACTING after the panel call.
    assert gw.background.call(store.claim(run.id, "deadreplica", timedelta(seconds=-1)))
    gw.background.call(store.update_step(run.steps[0].id, status="ACTING", attempts=1))
    catalyst = gw.sims["catalyst-main"]
    assert isinstance(catalyst, CatalystSim)
    server = catalyst.servers[c.catalyst]
    server.status, server.suspended_at = "suspended", time.time()
    server.suspension_reason = f"Payment overdue - Invoice #{number}"
    ok(gw, "mutation { setAutomationPaused(paused: false) }")

    resumed = run_of(gw, c.ref, "SUSPEND", "SUCCEEDED")
    assert [(s["provider"], s["status"]) for s in resumed["steps"]] == [
        ("catalyst-main", "DONE"), ("directadmin", "DONE")]
    assert panel_state(gw, c)["directadmin"][0] is True
    pay_on_stripe(gw, invoice_id)
    run_of(gw, c.ref, "UNSUSPEND", "SUCCEEDED")
    state = panel_state(gw, c)
    assert state["catalyst"][0] is False and state["directadmin"][0] is False


@pytest.fixture(scope="module")
def polling_only(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[GatewayUnderTest]:
    """Stripe sends no webhooks here and the scheduled pass never comes round after start-up:
    only the watcher's invoice polling can tell the gateway an invoice was paid."""
    sims, entries = start_panels(background, transition_seconds=0.2)
    gateway = start_gateway(background, "gw-automation-polling", dict(sims), entries,
                            tmp_path_factory.mktemp("automation-polling") / "p.db",
                            automation={"pass_seconds": 3600},
                            watcher={"enabled": True, "fast_seconds": 1.0,
                                     "slow_seconds": 1.0, "lease_seconds": 5})
    _SIM_URLS[gateway.url] = {e.name: str(e.base_url) for e in entries}
    yield gateway


def test_the_watchers_invoice_polling_lifts_a_suspension_without_webhooks(
        polling_only: GatewayUnderTest) -> None:
    gw = polling_only
    policy_id = policy(gw, OVERDUE_POLICY)
    c = new_customer(gw, "whmcs:2110")
    invoice_id, number = open_invoice(gw, c)
    applied = ok(gw, "mutation($p: ID!, $i: ID!) { runAutomationPolicy(policy: $p, invoice: $i) "
                 "{ runs { action status } } }",
                 {"p": policy_id, "i": encode(Ref("stripe", ResourceType.INVOICE, invoice_id))})
    assert [r["action"] for r in applied["runAutomationPolicy"]["runs"]] == ["SUSPEND"]
    run_of(gw, c.ref, "SUSPEND", "SUCCEEDED")
    assert panel_state(gw, c)["catalyst"] == (True, f"Payment overdue - Invoice #{number}")
    pay_on_stripe(gw, invoice_id)  # no webhook: the simulator has nowhere to send it
    lifted = run_of(gw, c.ref, "UNSUSPEND", "SUCCEEDED")
    assert lifted["source"] == "WATCHER"
    assert panel_state(gw, c)["catalyst"][0] is False


# One DISPUTE policy for Stripe and PayPal alike (a second would make a second run per dispute).
DISPUTE_POLICY = "games on dispute"


def test_a_dispute_suspends_and_the_paid_invoice_does_not_lift_it(gw: GatewayUnderTest) -> None:
    """The cardholder disputes a paid invoice's charge (Stripe charge.dispute.created): a
    DISPUTE policy suspends at once, and the invoice reading paid never lifts it."""
    policy(gw, DISPUTE_POLICY, trigger="DISPUTE", kinds=["CATALYST"], overdueDays=0)
    c = new_customer(gw, "whmcs:2111")
    invoice_id, number = open_invoice(gw, c)
    invoice = encode(Ref("stripe", ResourceType.INVOICE, invoice_id))
    link = ok(gw, 'mutation($id: ID!) { checkout(id: $id, returnUrl: "https://shop.example/ok")'
                  " { paymentLink { url } } }", {"id": invoice})["checkout"]["paymentLink"]
    paid = httpx.post(link["url"], data={"card": "success"})
    assert paid.status_code == 303, paid.text

    def status() -> str:
        found = ok(gw, "query($id: ID!) { invoice(id: $id) { status } }", {"id": invoice})
        return str(found["invoice"]["status"])
    wait_until(lambda: status() == "PAID", "the checkout paid the invoice")
    stripe = gw.sims["stripe"]
    assert isinstance(stripe, StripeSim)
    (intent,) = [s["payment_intent"] for s in stripe.sessions.values()
                 if s.get("payment_intent") and s["customer"] == c.stripe_id]
    opened = httpx.post(f"{_sim_url(gw, 'stripe')}/__sim/disputes",
                        json={"payment_intent": intent})
    assert opened.status_code == 200, opened.text
    run = run_of(gw, c.ref, "SUSPEND", "SUCCEEDED")
    assert run["source"] == "WEBHOOK" and run["cause"] == "charge.dispute.created"
    assert run["reason"] == f"Payment disputed - Invoice #{number}"
    assert panel_state(gw, c)["catalyst"] == (True, f"Payment disputed - Invoice #{number}")
    # The invoice reads paid, and news of that payment (a fresh webhook, then scheduled
    # passes reading the invoice) lifts nothing: a dispute is settled by hand.
    assert status() == "PAID"
    paid_event = next(e for e in reversed(stripe.events) if e["type"] == "invoice.paid"
                      and e["data"]["object"]["id"] == invoice_id)
    body, signature = stripe.signed({**paid_event, "id": paid_event["id"] + "d",
                                     "type": "invoice.payment_succeeded"})
    news = httpx.post(f"{gw.url}/webhooks/stripe/stripe", content=body, headers={
        "Stripe-Signature": signature, "Content-Type": "application/json"})
    assert news.json()["duplicate"] is False
    passes = int(gateway_of(gw).automation.passes)
    wait_until(lambda: int(gateway_of(gw).automation.passes) >= passes + 3,
               "three more scheduled passes")
    assert not [r for r in runs(gw, c.ref) if r["action"] == "UNSUSPEND"]
    assert panel_state(gw, c)["catalyst"][0] is True


# -- PayPal disputes -------------------------------------------------------------------------

def paypal_paid_invoice(gw: GatewayUnderTest, c: Customer) -> tuple[str, str]:
    """A PayPal invoice for the customer (createInvoice links its PayPal recipient to the
    customer), paid through checkout, the payer's approval and capturePayment:
    (upstream id, number)."""
    email = f"{c.ref.replace(':', '-')}@paypal.example"
    made = ok(gw, """mutation($input: CreateInvoiceInput!) { createInvoice(input: $input) {
      invoice { id number } } }""", {"input": {
        "provider": "paypal", "customerRef": c.ref, "email": email, "name": "Ada Lovelace",
        "currency": "USD", "lines": [{"description": "Game server", "unitAmount": "9.00",
                                      "quantity": 1}]}})["createInvoice"]["invoice"]
    link = ok(gw, 'mutation($id: ID!) { checkout(id: $id, returnUrl: "https://shop.example/ok",'
                  ' cancelUrl: "https://shop.example/no") { paymentLink { url id } } }',
              {"id": made["id"]})["checkout"]["paymentLink"]
    approved = httpx.post(link["url"], data={"funding": "balance"})
    assert approved.status_code == 303, approved.text
    captured = ok(gw, """mutation($id: ID!, $order: String!) {
      capturePayment(id: $id, orderId: $order) { invoice { status number } } }""",
                  {"id": made["id"], "order": link["id"]})["capturePayment"]
    assert captured["invoice"]["status"] == "PAID"
    paypal = gw.sims["paypal"]
    assert isinstance(paypal, PayPalSim)
    (upstream,) = [i.id for i in paypal.invoices.values() if i.recipient == email]
    return upstream, str(made["number"])


def open_paypal_dispute(gw: GatewayUnderTest, body: dict[str, Any]) -> dict[str, Any]:
    """The payer opens a dispute in the PayPal simulator, which delivers the signed
    CUSTOMER.DISPUTE.CREATED to the gateway; returns that event."""
    opened = httpx.post(f"{_sim_url(gw, 'paypal')}/__sim/disputes", json=body)
    assert opened.status_code == 200, opened.text
    paypal = gw.sims["paypal"]
    assert isinstance(paypal, PayPalSim)
    return next(e for e in paypal.deliveries if e["id"] == opened.json()["event"])


def deliver_paypal(gw: GatewayUnderTest, event: dict[str, Any]) -> httpx.Response:
    paypal = gw.sims["paypal"]
    assert isinstance(paypal, PayPalSim)
    body, headers = paypal.signed(event)
    return httpx.post(f"{gw.url}/webhooks/paypal/paypal", content=body, headers=headers)


def test_a_paypal_dispute_suspends_and_later_payment_news_does_not_lift_it(
        gw: GatewayUnderTest) -> None:
    """The payer disputes a PayPal invoice's payment (CUSTOMER.DISPUTE.CREATED names the
    capture, not the invoice): a DISPUTE policy suspends at once with the invoice's number in
    the reason, and news of the payment afterwards lifts nothing."""
    policy(gw, DISPUTE_POLICY, trigger="DISPUTE", kinds=["CATALYST"], overdueDays=0)
    c = new_customer(gw, "whmcs:2121")
    invoice_id, number = paypal_paid_invoice(gw, c)
    assert not [r for r in runs(gw, c.ref) if r["action"] == "SUSPEND"]  # paid: nothing yet

    event = open_paypal_dispute(gw, {"invoice_id": invoice_id, "invoice_number": False})
    (tx,) = event["resource"]["disputed_transactions"]
    assert "invoice_number" not in tx and event["resource"]["status"] == "OPEN"
    run = run_of(gw, c.ref, "SUSPEND", "SUCCEEDED")
    assert run["source"] == "WEBHOOK" and run["cause"] == "CUSTOMER.DISPUTE.CREATED"
    assert run["reason"] == f"Payment disputed - Invoice #{number}"
    assert run["invoiceNumber"] == number
    assert panel_state(gw, c)["catalyst"] == (True, f"Payment disputed - Invoice #{number}")

    # News of the payment (PayPal's capture and invoice events under fresh ids, then
    # scheduled passes reading the paid invoice) lifts nothing: a dispute is settled by hand.
    paypal = gw.sims["paypal"]
    assert isinstance(paypal, PayPalSim)
    completed = next(e for e in reversed(paypal.deliveries)
                     if e["event_type"] == "PAYMENT.CAPTURE.COMPLETED"
                     and e["resource"]["custom_id"] == invoice_id)
    news = deliver_paypal(gw, {**completed, "id": completed["id"] + "N"})
    assert news.json()["duplicate"] is False
    body, headers = paypal.delivery("INVOICING.INVOICE.PAID", invoice_id)
    paid = httpx.post(f"{gw.url}/webhooks/paypal/paypal", content=body, headers=headers)
    assert paid.json() == {"received": True, "duplicate": False, "events": 1}
    passes = int(gateway_of(gw).automation.passes)
    wait_until(lambda: int(gateway_of(gw).automation.passes) >= passes + 3,
               "three more scheduled passes")
    assert not [r for r in runs(gw, c.ref) if r["action"] == "UNSUSPEND"]
    assert panel_state(gw, c)["catalyst"][0] is True


def test_a_replayed_or_repeated_paypal_dispute_acts_once(gw: GatewayUnderTest) -> None:
    policy(gw, DISPUTE_POLICY, trigger="DISPUTE", kinds=["CATALYST"], overdueDays=0)
    c = new_customer(gw, "whmcs:2122")
    invoice_id, _ = paypal_paid_invoice(gw, c)
    event = open_paypal_dispute(gw, {"invoice_id": invoice_id})
    run_of(gw, c.ref, "SUSPEND", "SUCCEEDED")
    replay = deliver_paypal(gw, event)  # PayPal redelivers the same event
    assert replay.json() == {"received": True, "duplicate": True}
    # A second delivery about the same payment under a new event id finds the run there.
    again = deliver_paypal(gw, {**event, "id": event["id"] + "R"})
    assert again.json() == {"received": True, "duplicate": False, "events": 1}
    passes = int(gateway_of(gw).automation.passes)
    wait_until(lambda: int(gateway_of(gw).automation.passes) >= passes + 2,
               "two more scheduled passes")
    assert [(r["action"], r["status"]) for r in runs(gw, c.ref)] == [("SUSPEND", "SUCCEEDED")]


def test_a_paypal_dispute_about_money_the_gateway_never_invoiced_changes_nothing(
        gw: GatewayUnderTest) -> None:
    policy(gw, DISPUTE_POLICY, trigger="DISPUTE", kinds=["CATALYST"], overdueDays=0)
    c = new_customer(gw, "whmcs:2123")
    invoice_id, number = paypal_paid_invoice(gw, c)
    paypal = gw.sims["paypal"]
    assert isinstance(paypal, PayPalSim)
    strangers = [{"seller_transaction_id": "0UN45678KN0WN0000", "invoice_number": "NOPE-404"},
                 {"seller_transaction_id": "5AB45678CD9012345"}]
    unknown = paypal.event("CUSTOMER.DISPUTE.CREATED", "dispute", paypal.dispute(
        strangers, "UNAUTHORISED"), "A new dispute opened")
    answer = deliver_paypal(gw, unknown)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"received": True, "duplicate": False, "events": 0}
    # The customer's own invoice number on a payment that did not pay it is no link either.
    borrowed = paypal.event("CUSTOMER.DISPUTE.CREATED", "dispute", paypal.dispute(
        [{"seller_transaction_id": "7XY45678CD9012345", "invoice_number": number}],
        "UNAUTHORISED"), "A new dispute opened")
    assert deliver_paypal(gw, borrowed).json()["events"] == 0
    passes = int(gateway_of(gw).automation.passes)
    wait_until(lambda: int(gateway_of(gw).automation.passes) >= passes + 2,
               "two more scheduled passes")
    assert not runs(gw, c.ref)
    assert panel_state(gw, c)["catalyst"][0] is False
    # Among several disputed transactions, the one that paid the invoice still counts.
    mixed = paypal.event("CUSTOMER.DISPUTE.CREATED", "dispute", paypal.dispute(
        [*strangers, {"seller_transaction_id": paypal.invoices[invoice_id].transactions[0][
            "payment_id"]}], "UNAUTHORISED"), "A new dispute opened")
    assert deliver_paypal(gw, mixed).json()["events"] == 1
    assert run_of(gw, c.ref, "SUSPEND", "SUCCEEDED")["reason"] == \
        f"Payment disputed - Invoice #{number}"
