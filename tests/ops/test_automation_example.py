"""examples/python/billing_automation.py runs against a demo gateway of its own (it advances
the Stripe simulator's clock and creates a policy, which would disturb the other examples)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from panelql.cli import billing_clock_url
from panelql_sim.demo import call_back, start_panels
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import GatewayUnderTest, start_gateway

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "python" / "billing_automation.py"


@pytest.fixture(scope="module")
def demo(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[GatewayUnderTest, str]]:
    sims, entries = start_panels(background, transition_seconds=0.2)
    gw = start_gateway(background, "gw-automation-example", dict(sims), entries,
                       tmp_path_factory.mktemp("automation-example") / "demo.db",
                       operation_poll_seconds=0.05, watcher={"enabled": False})
    call_back(dict(sims), entries, gw.url)  # as `panelql demo` wires it
    yield gw, billing_clock_url(entries).removesuffix("/__sim/clock")


def test_the_automation_walkthrough(demo: tuple[GatewayUnderTest, str]) -> None:
    gw, stripe = demo
    env = {**os.environ, "PANELQL_URL": f"{gw.url}/graphql", "PANELQL_API_KEY": gw.admin_key,
           "STRIPE_SIM_URL": stripe, "CUSTOMER_REF": "demo:walkthrough"}
    done = subprocess.run([sys.executable, str(EXAMPLE)], env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    number = out.split("invoice #", 1)[1].split(" ", 1)[0]
    suspended, lifted = out.split("4. ", 1)
    # Noticed by Stripe's invoice.overdue webhook, or by the finalize mutation's own event
    # when the gateway read the invoice after the clock had moved (the script is quick).
    assert (f"SUSPEND SUCCEEDED (noticed by WEBHOOK): Payment overdue - Invoice #{number}" in out
            or f"SUSPEND SUCCEEDED (noticed by MUTATION): Payment overdue - Invoice #{number}"
            in out), out
    assert "UNSUSPEND SUCCEEDED (noticed by WEBHOOK)" in out, out
    assert suspended.count(f"DONE     suspended: Payment overdue - Invoice #{number}") == 3
    assert "SKIPPED  already suspended before this policy acted" in suspended
    assert lifted.count("DONE     unsuspended") == 3
    # After payment: the three run again or start; the one suspended by hand stays so.
    assert "by hand (Catalyst)" in lifted and "SUSPENDED  abuse report" in lifted
    assert lifted.count("SUSPENDED") == 1
