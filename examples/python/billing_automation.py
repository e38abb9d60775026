#!/usr/bin/env python3
"""Billing-driven automation on ``make demo`` (standard library only).

A policy "suspend after 3 days overdue, unsuspend on payment" acting on one customer who has a
Catalyst server, a DirectAdmin account and a ProxmoxWP site (plus a second Catalyst server an
admin suspended by hand for abuse):

    1. the customer and the policy: links in PanelQL
    2. an invoice is created through PanelQL (createInvoice: the customer on Stripe is found or
       created and linked) and finalized, due in 30 days
    3. 34 days pass on Stripe's clock: Stripe sends invoice.overdue, the policy suspends all
       three with "Payment overdue - Invoice #…"
    4. the customer pays on Stripe Checkout (checkout mutation, the hosted page): the signed
       webhook lifts exactly those three; the server suspended by hand stays suspended

    python examples/python/billing_automation.py

PANELQL_URL / PANELQL_API_KEY as for billing_flow.py; STRIPE_SIM_URL is the Stripe simulator
(default: read from .panelql/demo.toml, which `make demo` writes).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

URL = os.environ.get("PANELQL_URL", "http://127.0.0.1:8000/graphql")
CUSTOMER = os.environ.get("CUSTOMER_REF", f"demo:{uuid.uuid4().hex[:6]}")
POLICY = "suspend after 3 days overdue"
STRIPE_KEY = "sk_test_demo"  # the simulator's own throwaway key


class GraphQLError(Exception):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        self.code = errors[0].get("extensions", {}).get("code")
        super().__init__(f"{self.code}: {errors[0].get('message')}")


def api_key() -> str:
    key = os.environ.get("PANELQL_API_KEY")
    if key:
        return key
    demo = Path(".panelql/demo-api-key")
    if demo.exists():
        return demo.read_text().strip()
    sys.exit("set PANELQL_API_KEY (or run `make demo`, which writes .panelql/demo-api-key)")


def stripe_url() -> str:
    url = os.environ.get("STRIPE_SIM_URL")
    if url:
        return url.rstrip("/")
    config = Path(".panelql/demo.toml")
    if config.exists():
        found = re.search(r'name = "stripe"\nkind = "stripe"\nbase_url = "([^"]+)"',
                          config.read_text())
        if found:
            return found.group(1).rstrip("/")
    sys.exit("set STRIPE_SIM_URL (or run `make demo`, which writes .panelql/demo.toml)")


API_KEY = api_key()
STRIPE = stripe_url()


def graphql(query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(
        URL, data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"content-type": "application/json", "x-api-key": API_KEY}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            body = json.load(response)
    except urllib.error.HTTPError as exc:
        body = json.load(exc)
    if body.get("errors"):
        raise GraphQLError(body["errors"])
    data: dict[str, Any] = body["data"]
    return data


def stripe(method: str, path: str, form: dict[str, str] | None = None,
           json_body: dict[str, Any] | None = None) -> dict[str, Any]:
    """A call to (simulated) Stripe, as the billing system or the customer would make it."""
    headers = {"Authorization": f"Bearer {STRIPE_KEY}"}
    data = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["content-type"] = "application/x-www-form-urlencoded"
    elif json_body is not None:
        data = json.dumps(json_body).encode()
        headers["content-type"] = "application/json"
    request = urllib.request.Request(f"{STRIPE}{path}", data=data, headers=headers,
                                     method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        body: dict[str, Any] = json.load(response)
        return body


def link(**target: str) -> None:
    graphql("mutation($c: String!, $r: ID, $p: String, $b: String) { linkCustomer("
            "customerRef: $c, resource: $r, provider: $p, billingCustomer: $b) { changed } }",
            {"c": CUSTOMER, **target})


def claim(candidates: list[dict[str, Any]], what: str) -> dict[str, Any]:
    """Link the first candidate no other customer owns yet (a re-run finds earlier ones taken)."""
    for candidate in candidates:
        try:
            link(r=candidate["id"])
            return candidate
        except GraphQLError as exc:
            if exc.code != "CONFLICT":
                raise
    sys.exit(f"no unlinked {what} left on the demo; restart `make demo`")


def services() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    servers = graphql('{ c: servers(first: 100, filter: {provider: ["catalyst-main"], '
                      'status: [RUNNING]}) { edges { node { id name node { status } } } } '
                      'w: servers(first: 100, filter: {provider: ["wp-sites"], '
                      'status: [RUNNING]}) { edges { node { id name } } } '
                      'a: accounts(first: 100, filter: {provider: ["directadmin"], '
                      'status: [ACTIVE]}) { edges { node { id username } } } }')
    games = [e["node"] for e in servers["c"]["edges"]
             if e["node"]["node"]["status"] == "ONLINE"]  # so it can be started again
    game = claim(games, "running Catalyst server")
    by_hand = claim([g for g in games if g["id"] != game["id"]], "second Catalyst server")
    account = claim([e["node"] for e in servers["a"]["edges"]], "DirectAdmin account")
    site = claim([e["node"] for e in servers["w"]["edges"]], "ProxmoxWP site")
    return game, account, site, by_hand


def policy_id() -> str:
    try:
        created = graphql('mutation { createAutomationPolicy(input: {name: "' + POLICY + '", '
                          "trigger: OVERDUE, overdueDays: 3, unsuspendOnPayment: true}) "
                          "{ policy { id } } }")
        return str(created["createAutomationPolicy"]["policy"]["id"])
    except GraphQLError as exc:
        if exc.code != "CONFLICT":
            raise
    listed = graphql("{ automationPolicies { id name } }")["automationPolicies"]
    return str(next(p["id"] for p in listed if p["name"] == POLICY))


RUNS = """query($c: String) { automationRuns(customerRef: $c) { action status source reason
  steps { provider resourceType status note } } }"""


def wait_for(action: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for run in graphql(RUNS, {"c": CUSTOMER})["automationRuns"]:
            if run["action"] == action and run["status"] in ("SUCCEEDED", "FAILED"):
                return dict(run)
        time.sleep(0.5)
    sys.exit(f"no finished {action} run within two minutes")


def show(run: dict[str, Any]) -> None:
    print(f"   {run['action']} {run['status']} (noticed by {run['source']}): "
          f"{run['reason'] or ''}")
    for step in run["steps"]:
        print(f"     {step['provider']:<14} {step['resourceType']:<8} {step['status']:<8} "
              f"{step['note'] or ''}")


def states(game: dict[str, Any], account: dict[str, Any], site: dict[str, Any],
           by_hand: dict[str, Any]) -> None:
    data = graphql("query($g: ID!, $a: ID!, $s: ID!, $h: ID!) { "
                   "g: server(id: $g) { name status suspensionReason } "
                   "a: account(id: $a) { username status } "
                   "s: server(id: $s) { name status } "
                   "h: server(id: $h) { name status suspensionReason } }",
                   {"g": game["id"], "a": account["id"], "s": site["id"], "h": by_hand["id"]})
    print(f"   Catalyst server    {data['g']['name']:<24} {data['g']['status']:<10} "
          f"{data['g']['suspensionReason'] or ''}")
    print(f"   DirectAdmin        {data['a']['username']:<24} {data['a']['status']}")
    print(f"   ProxmoxWP site     {data['s']['name']:<24} {data['s']['status']}")
    print(f"   by hand (Catalyst) {data['h']['name']:<24} {data['h']['status']:<10} "
          f"{data['h']['suspensionReason'] or ''}")


def pay_on_hosted_page(url: str) -> None:
    """What the customer does on Stripe Checkout's page (the simulator's: card "success")."""
    request = urllib.request.Request(url, data=b"card=success", method="POST", headers={
        "content-type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=30):  # redirected to returnUrl
        pass


def main() -> None:
    game, account, site, by_hand = services()
    graphql('mutation($id: ID!) { suspendServer(id: $id, reason: "abuse report") '
            "{ server { status } } }", {"id": by_hand["id"]})
    print(f"1. customer {CUSTOMER}: {game['name']} (Catalyst), {account['username']} "
          f"(DirectAdmin), {site['name']} (ProxmoxWP); {by_hand['name']} suspended by hand")
    policy = policy_id()
    print(f"   policy {policy}: {POLICY}, unsuspend on payment")

    # The billing system bills the customer through PanelQL: createInvoice finds or creates
    # the Stripe customer and links it to the customer reference.
    created = graphql(
        "mutation($c: String!) { createInvoice(input: {provider: \"stripe\", customerRef: $c, "
        "email: \"billing@acme.example\", name: \"Acme\", currency: \"USD\", lines: ["
        "{description: \"Game server (monthly)\", unitAmount: \"19.99\"}]}) "
        "{ invoice { id } } }", {"c": CUSTOMER})
    gid = created["createInvoice"]["invoice"]["id"]
    final = graphql("mutation($id: ID!) { finalizeInvoice(id: $id) { invoice { number dueDate "
                    "status externalRef } } }", {"id": gid})["finalizeInvoice"]["invoice"]
    print(f"2. invoice #{final['number']} {final['status']}, due {final['dueDate']}")

    clock = stripe("POST", "/__sim/clock", json_body={"advance_days": 34})
    print(f"3. 34 days pass on Stripe's clock: {[e['type'] for e in clock['events']]}")
    show(wait_for("SUSPEND"))
    states(game, account, site, by_hand)

    link_ = graphql("mutation($id: ID!, $back: String!) { checkout(id: $id, returnUrl: $back) "
                    "{ paymentLink { url } } }",
                    {"id": gid, "back": URL.rsplit("/graphql", 1)[0] + "/healthz"})
    pay_on_hosted_page(link_["checkout"]["paymentLink"]["url"])
    print(f"4. #{final['number']} paid on Stripe Checkout; its signed webhook arrives")
    show(wait_for("UNSUSPEND"))
    states(game, account, site, by_hand)


if __name__ == "__main__":
    main()
