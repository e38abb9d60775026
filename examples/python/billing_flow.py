#!/usr/bin/env python3
"""A billing system's whole life of one service, against PanelQL (standard library only).

    provision → start → suspend for non-payment → invoice → payment link → paid (webhook)
    → unsuspend → upgrade → refund half → terminate (final backup)

Every mutation carries an idempotency key derived from the service and the step, so a billing
cron that crashes and runs again never provisions twice: the retry gets the first answer back
with ``replayed: true``.

    PANELQL_URL=http://127.0.0.1:8000/graphql PANELQL_API_KEY=pql_… python billing_flow.py

Without PANELQL_API_KEY the key of ``make demo`` (.panelql/demo-api-key) is used.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

URL = os.environ.get("PANELQL_URL", "http://127.0.0.1:8000/graphql")
PROVIDER = os.environ.get("PANELQL_PROVIDER", "catalyst-main")
REGION = os.environ.get("PANELQL_REGION", "us-east")
SERVICE = os.environ.get("SERVICE_ID", uuid.uuid4().hex[:8])  # the billing system's service id
BILLING = os.environ.get("PANELQL_BILLING", "stripe")  # the billing connection (Stripe, PayPal)
CUSTOMER = os.environ.get("CUSTOMER_REF", "billing:42")  # the billing system's customer


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


def graphql(query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(
        URL, data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"content-type": "application/json", "x-api-key": API_KEY}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            body = json.load(response)
    except urllib.error.HTTPError as exc:  # 401/429 still carry a GraphQL error body
        body = json.load(exc)
    if body.get("errors"):
        raise GraphQLError(body["errors"])
    return body["data"]  # type: ignore[no-any-return]


def mutate(field: str, query: str, variables: dict[str, Any], step: str) -> dict[str, Any]:
    """Run a lifecycle mutation with the idempotency key for (service, step)."""
    variables = {**variables, "key": f"svc-{SERVICE}-{step}"}
    payload: dict[str, Any] = graphql(query, variables)[field]
    return payload


def wait(operation: dict[str, Any] | None, timeout: float = 120) -> None:
    """Poll an Operation until it ends (a dashboard would subscribe to operationUpdated)."""
    if operation is None:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        op = graphql("query($id: ID!) { operation(id: $id) { status step progress "
                     "error { code message } } }", {"id": operation["id"]})["operation"]
        if op["status"] == "SUCCEEDED":
            return
        if op["status"] == "FAILED":
            raise RuntimeError(f"operation failed at {op['step']}: {op['error']}")
        time.sleep(0.5)
    raise TimeoutError(f"operation {operation['id']} still running after {timeout}s")


def status(server_id: str) -> str:
    server = graphql("query($id: ID!) { server(id: $id) { status } }", {"id": server_id})
    return str(server["server"]["status"])


PLACE = """query($provider: [String!], $region: String) {
  placementCandidates(provider: $provider, region: $region, memoryMb: 2048, diskMb: 10240,
                      first: 1) { node { id name } load } }"""
CREATE = """mutation($input: CreateServerInput!, $key: String) {
  createServer(input: $input, idempotencyKey: $key) {
    replayed server { id name status node { name } } operation { id } } }"""
START = """mutation($id: ID!, $key: String) {
  startServer(id: $id, idempotencyKey: $key) { operation { id } } }"""
SUSPEND = """mutation($id: ID!, $reason: String, $key: String) {
  suspendServer(id: $id, reason: $reason, idempotencyKey: $key) {
    server { status suspended suspensionReason } } }"""
UNSUSPEND = """mutation($id: ID!, $key: String) {
  unsuspendServer(id: $id, idempotencyKey: $key) { server { status } } }"""
UPGRADE = """mutation($id: ID!, $resources: ResourcesInput!, $key: String) {
  updateServerResources(id: $id, resources: $resources, idempotencyKey: $key) {
    operation { id } } }"""
INVOICE = """mutation($input: CreateInvoiceInput!, $key: String) {
  createInvoice(input: $input, idempotencyKey: $key) { invoice { id number status
    total { amount currency } } } }"""
CHECKOUT = """mutation($id: ID!, $key: String) {
  checkout(id: $id, returnUrl: "https://billing.example/paid", idempotencyKey: $key) {
    paymentLink { url kind id } } }"""
CAPTURE = """mutation($id: ID!, $order: String!, $key: String) {
  capturePayment(id: $id, orderId: $order, idempotencyKey: $key) { invoice { status } } }"""
REFUND = """mutation($id: ID!, $amount: String, $key: String) {
  refundInvoice(id: $id, amount: $amount, idempotencyKey: $key) {
    invoice { status rawStatus amountRefunded { amount currency } } } }"""
TERMINATE = """mutation($id: ID!, $key: String) {
  deleteServer(id: $id, finalBackup: true, idempotencyKey: $key) { deletedId operation { id } } }"""


def invoice_status(invoice_id: str) -> str:
    found = graphql("query($id: ID!) { invoice(id: $id) { status } }", {"id": invoice_id})
    return str(found["invoice"]["status"])


def pay_as_the_customer(link: dict[str, Any]) -> None:
    """What the customer does in their browser on the provider's hosted page. Only the demo's
    simulated providers can be paid like this (a form POST); with real Stripe or PayPal, send
    the customer the link and wait for the webhook instead."""
    form = {"card": "success"} if link["kind"] == "CHECKOUT_SESSION" else {"funding": "balance"}
    request = urllib.request.Request(link["url"], data=urllib.parse.urlencode(form).encode(),
                                     method="POST")

    class Stay(urllib.request.HTTPRedirectHandler):  # the page redirects to returnUrl
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    try:
        urllib.request.build_opener(Stay).open(request, timeout=30)
    except urllib.error.HTTPError as exc:
        if exc.code != 303:
            raise


def collect_payment() -> str:
    """Invoice the customer, hand out the payment link, and wait until the provider's webhook
    says the invoice is PAID (a dashboard would subscribe to invoiceStatusChanged instead)."""
    created = mutate("createInvoice", INVOICE, {"input": {
        "provider": BILLING, "customerRef": CUSTOMER, "email": "customer42@example.com",
        "currency": "USD", "memo": f"Service {SERVICE}", "externalRef": f"svc-{SERVICE}",
        "lines": [{"description": f"Service {SERVICE} (monthly)", "unitAmount": "20.00"}]}},
        "invoice")
    invoice = created["invoice"]
    link = mutate("checkout", CHECKOUT, {"id": invoice["id"]}, "checkout")["paymentLink"]
    print(f"   invoice {invoice['total']['amount']} {invoice['total']['currency']}: "
          f"pay at {link['url']}")
    pay_as_the_customer(link)
    if link["kind"] == "ORDER":  # PayPal: the buyer approved; the merchant captures
        mutate("capturePayment", CAPTURE, {"id": invoice["id"], "order": link["id"]},
               "capture")
    deadline = time.monotonic() + 30
    while invoice_status(invoice["id"]) != "PAID":
        if time.monotonic() > deadline:
            raise TimeoutError("the payment never arrived")
        time.sleep(0.2)
    return str(invoice["id"])


def main() -> int:
    print(f"service {SERVICE} on {PROVIDER} via {URL}")
    # Pick the node the way the seeds' billing flows do (region, least loaded with room for
    # memory and disk; game panels overcommit CPU). Omitting `node` lets createServer place it,
    # counting CPU too.
    candidates = graphql(PLACE, {"provider": [PROVIDER], "region": REGION})["placementCandidates"]
    if not candidates:
        raise RuntimeError(f"no node in {REGION} on {PROVIDER} has room")
    create_input = {"input": {
        "provider": PROVIDER, "name": f"Service {SERVICE}", "node": candidates[0]["node"]["id"],
        "resources": {"memoryMb": 2048, "cpuCores": 1, "diskMb": 10240}, "ports": [25565],
        "externalRef": f"billing:service:{SERVICE}"}}
    created = mutate("createServer", CREATE, create_input, "create")
    server = created["server"]
    print(f"1. provisioned {server['name']} on {server['node']['name']}: {server['status']}")
    retry = mutate("createServer", CREATE, create_input, "create")  # a crashed cron, re-run
    assert retry["replayed"] and retry["server"]["id"] == server["id"], retry
    print("   retry with the same idempotency key: replayed, no second server")
    wait(created["operation"])

    wait(mutate("startServer", START, {"id": server["id"]}, "start")["operation"])
    print(f"2. started: {status(server['id'])}")

    suspended = mutate("suspendServer", SUSPEND, {"id": server["id"],
                       "reason": f"Overdue invoice for service {SERVICE}"}, "suspend-1")
    print(f"3. suspended for non-payment: {suspended['server']['status']}")
    try:
        graphql(START, {"id": server["id"], "key": f"svc-{SERVICE}-start-while-suspended"})
    except GraphQLError as exc:
        assert exc.code == "CONFLICT", exc
        print(f"   starting it now is refused: {exc.code} "
              f"(currentStatus {exc.errors[0]['extensions'].get('currentStatus')})")

    invoice_id = collect_payment()
    mutate("unsuspendServer", UNSUSPEND, {"id": server["id"]}, "unsuspend-1")
    wait(mutate("startServer", START, {"id": server["id"]}, "start-after-payment")["operation"])
    print(f"4. paid on {BILLING} (invoice PAID), unsuspended and started: "
          f"{status(server['id'])}")

    upgraded = mutate("updateServerResources", UPGRADE, {"id": server["id"], "resources": {
        "memoryMb": 4096, "cpuCores": 2, "diskMb": 20480}}, "upgrade-4g")
    wait(upgraded["operation"])
    print(f"5. upgraded to 4 GB: {status(server['id'])}")

    refund = mutate("refundInvoice", REFUND, {"id": invoice_id, "amount": "10.00"},
                    "refund-half")["invoice"]
    print(f"   refunded half of the invoice: {refund['status']} "
          f"({refund['amountRefunded']['amount']} {refund['amountRefunded']['currency']})")

    terminated = mutate("deleteServer", TERMINATE, {"id": server["id"]}, "terminate")
    wait(terminated["operation"])
    print(f"6. terminated after a final backup: {terminated['deletedId']}")
    return 0


if __name__ == "__main__":
    API_KEY = api_key()
    try:
        sys.exit(main())
    except (GraphQLError, RuntimeError, TimeoutError) as exc:
        sys.exit(f"failed: {exc}")
