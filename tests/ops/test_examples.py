"""The integration examples in examples/ run against a demo gateway started in-process:
the Python client always; the WHMCS and Paymenter PHP modules when `php` (with curl) exists."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from panelql_sim.demo import call_back, start_panels
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import GatewayUnderTest, start_gateway

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CREATING = ("createServer", "provisionService")  # audit actions that make a server


@pytest.fixture(scope="module")
def demo(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[GatewayUnderTest]:
    sims, entries = start_panels(background, transition_seconds=0.2)
    gw = start_gateway(background, "gw-examples", dict(sims), entries,
                       tmp_path_factory.mktemp("examples") / "demo.db",
                       operation_poll_seconds=0.05, watcher={"enabled": False})
    call_back(sims, entries, gw.url)  # as `make demo` does: payments reach the webhooks
    yield gw


def _run(demo: GatewayUnderTest, *command: str, service: str, customer: str = "",
         **extra: str) -> str:
    env = {**os.environ, "PANELQL_URL": f"{demo.url}/graphql",
           "PANELQL_API_KEY": demo.admin_key, "SERVICE_ID": service, "CUSTOMER_ID": customer,
           **extra}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_python_billing_flow(demo: GatewayUnderTest) -> None:
    out = _run(demo, sys.executable, str(EXAMPLES / "python" / "billing_flow.py"),
               service="py-1")
    for step in ("1. provisioned", "replayed, no second server", "3. suspended",
                 "refused: CONFLICT", "pay at http", "4. paid on stripe (invoice PAID)",
                 "5. upgraded", "refunded half of the invoice: PARTIALLY_REFUNDED (10.00 USD)",
                 "6. terminated"):
        assert step in out, out
    audit = demo.query('{ auditLog(first: 100) { action target } }')["data"]["auditLog"]
    assert {"createServer", "suspendServer", "deleteServer", "createInvoice", "checkout",
            "refundInvoice"} <= {e["action"] for e in audit}


def test_python_billing_flow_on_paypal(demo: GatewayUnderTest) -> None:
    out = _run(demo, sys.executable, str(EXAMPLES / "python" / "billing_flow.py"),
               service="py-2", PANELQL_BILLING="paypal")
    assert "checkoutnow?token=" in out and "4. paid on paypal (invoice PAID)" in out, out
    assert "refunded half of the invoice: PARTIALLY_REFUNDED (10.00 USD)" in out, out


def test_python_new_customer_flow(demo: GatewayUnderTest) -> None:
    out = _run(demo, sys.executable, str(EXAMPLES / "python" / "new_customer.py"),
               service="unused", customer="424242")
    for step in ("1. catalyst-main: user cust424242 (created)", "Catalyst has no one-time",
                 "your initial password", "2. catalyst-main: the same order again is replayed",
                 "1. virtfusion: user cust424242@example.com (created)", "your one-time login link",
                 "login link in the replay: False", "3. virtfusion: a fresh one-time link",
                 "new customer shop:424242 is on"):
        assert step in out, out
    links = demo.query('{ customerLinks(customerRef: "shop:424242") { provider resourceType } }')
    assert {(x["provider"], x["resourceType"]) for x in links["data"]["customerLinks"]} == {
        ("catalyst-main", "Account"), ("virtfusion", "Account")}


def _php() -> str:
    php = shutil.which("php")
    if php is None:
        pytest.skip("php is not installed (apt-get install php-cli php-curl to run this)")
    probe = subprocess.run([php, "-r", "exit(function_exists('curl_init') ? 0 : 1);"],
                           check=False)
    if probe.returncode != 0:
        pytest.skip("php has no curl extension (apt-get install php-curl)")
    return php


def test_whmcs_module_flow(demo: GatewayUnderTest) -> None:
    out = _run(demo, _php(), str(EXAMPLES / "whmcs" / "run_flow.php"), service="501")
    assert "ok   CreateAccount again (idempotent)" in out and "WHMCS flow done" in out, out
    # Suspend → unsuspend → suspend on one day: the second suspension is a new action.
    assert "ok   SuspendAccount again" in out and out.count("ok   server suspended = true") == 2
    assert "ok   externalRef reads back whmcs:service:501" in out, out
    # CreateAccount is one provisionService: the client's panel user, then its server.
    assert "ok   the server belongs to the client's panel user whmcs42" in out, out
    assert "ok   ServiceSingleSignOn: NOT_SUPPORTED: catalyst: Catalyst has no" in out, out
    # The overdue invoice paid on the provider's hosted page, then half of it given back.
    assert "ok   PaymentLink CHECKOUT_SESSION" in out and "ok   invoice PAID" in out, out
    assert "ok   RefundInvoice half: PARTIALLY_REFUNDED 10.00" in out, out
    _assert_two_real_suspensions(demo)
    # CreateAccount linked the new server to the WHMCS client (userid 42), so a key bound to
    # whmcs:42 sees it; the link names exactly the server the module created.
    audit = demo.query('{ auditLog(first: 200) { action target } }')["data"]["auditLog"]
    created = [e["target"] for e in audit if e["action"] in CREATING]
    assert created, audit
    links = demo.query('{ customerLinks(customerRef: "whmcs:42") { provider resourceType '
                       "resource } }")
    assert "errors" not in links, links
    servers = [link for link in links["data"]["customerLinks"]
               if (link["provider"], link["resourceType"]) == ("catalyst-main", "Server")]
    assert len(servers) == 1 and servers[0]["resource"] in created, (created, links)
    accounts = [link for link in links["data"]["customerLinks"]
                if (link["provider"], link["resourceType"]) == ("catalyst-main", "Account")]
    assert len(accounts) == 1, links  # the panel user provisionService made and linked


def test_paymenter_extension_flow(demo: GatewayUnderTest) -> None:
    out = _run(demo, _php(), str(EXAMPLES / "paymenter" / "run_flow.php"), service="601")
    assert "ok   terminateServer" in out and "Paymenter flow done" in out, out
    assert "ok   getActions: NOT_SUPPORTED: catalyst: Catalyst has no one-time login" in out
    assert "ok   suspendServer (again)" in out and "ok   unsuspendServer (again)" in out, out
    assert "ok   paymentLink CHECKOUT_SESSION" in out and "ok   invoice PAID" in out, out
    assert "ok   refundInvoice half: PARTIALLY_REFUNDED 10.00" in out, out
    _assert_two_real_suspensions(demo)


def _assert_two_real_suspensions(demo: GatewayUnderTest) -> None:
    """The newest server the example created was suspended twice by the panel, not replayed."""
    audit = demo.query('{ auditLog(first: 500) { action target outcome } }')["data"]["auditLog"]
    created = [e["target"] for e in audit if e["action"] in CREATING]
    suspensions = [e for e in audit
                   if e["action"] == "suspendServer" and e["target"] == created[0]]
    assert [e["outcome"] for e in suspensions] == ["ok", "ok"], suspensions
