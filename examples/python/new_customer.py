#!/usr/bin/env python3
"""A new customer's first order against PanelQL (standard library only):

    new customer → panel user → server owned by that user → login link

``provisionService`` does the three steps in one call (seed 000's provisionGameServer). It is
safe to retry with the same idempotency key: after a failure half-way (the user made, the
server not) the retry finishes the job without a second user or server; after success it
answers the stored result with ``replayed: true``. A one-time login link or a generated
password is in the first answer only: mail it at once, never log it.

    PANELQL_URL=http://127.0.0.1:8000/graphql PANELQL_API_KEY=pql_… python new_customer.py

Without PANELQL_API_KEY the key of ``make demo`` (.panelql/demo-api-key) is used. The order
goes to ``catalyst-main`` (no login links: the answer says why and carries a generated
password) and to ``virtfusion`` (a one-time login link).
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

URL = os.environ.get("PANELQL_URL", "http://127.0.0.1:8000/graphql")
CUSTOMER = os.environ.get("CUSTOMER_ID", str(uuid.uuid4().int % 900_000 + 100_000))

PROVISION = """mutation($input: ProvisionServiceInput!, $key: String) {
  provisionService(input: $input, idempotencyKey: $key) {
    replayed accountCreated serverCreated initialPassword
    account { id username email }
    server { id name status owner { username } }
    operation { id }
    login { supported url expiresAt reason } } }"""
LOGIN = """mutation($resource: ID!) {
  createLoginUrl(resource: $resource) { url expiresAt username } }"""


def api_key() -> str:
    key = os.environ.get("PANELQL_API_KEY")
    if key:
        return key
    demo = Path(".panelql/demo-api-key")
    if demo.exists():
        return demo.read_text().strip()
    sys.exit("set PANELQL_API_KEY (or run `make demo`, which writes .panelql/demo-api-key)")


def graphql(query: str, variables: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        URL, data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"content-type": "application/json", "x-api-key": API_KEY}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            body = json.load(response)
    except urllib.error.HTTPError as exc:
        body = json.load(exc)
    if body.get("errors"):
        error = body["errors"][0]
        raise RuntimeError(f"{error.get('extensions', {}).get('code')}: {error['message']}")
    return body["data"]  # type: ignore[no-any-return]


def wait(operation: dict[str, Any] | None, timeout: float = 120) -> None:
    if operation is None:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        op = graphql("query($id: ID!) { operation(id: $id) { status error { message } } }",
                     {"id": operation["id"]})["operation"]
        if op["status"] in ("SUCCEEDED", "FAILED"):
            if op["status"] == "FAILED":
                raise RuntimeError(f"install failed: {op['error']}")
            return
        time.sleep(0.5)
    raise TimeoutError("the server is still installing")


def send_welcome_mail(email: str, login: dict[str, Any], password: str | None) -> None:
    """Stands in for the billing system's mailer: says what it would send, never the secret."""
    if login["url"]:
        print(f"   mail to {email}: your one-time login link (valid until "
              f"{login['expiresAt'] or 'the panel says'})")
    else:
        print(f"   mail to {email}: log in at the panel; no link because: {login['reason']}")
    if password:
        print(f"   mail to {email}: your initial password ({len(password)} characters)")


def order(provider: str, server: dict[str, Any]) -> None:
    username = f"cust{CUSTOMER}"
    variables = {"key": f"order-{provider}-{CUSTOMER}", "input": {
        "customerRef": f"shop:{CUSTOMER}", "provider": provider,
        "account": {"username": username, "email": f"{username}@example.com",
                    "name": "New Customer",
                    # VirtFusion keeps a numeric relation id; other panels any string
                    "externalRef": CUSTOMER if provider == "virtfusion" else None},
        "server": {"externalRef": f"shop:service:{provider}-{CUSTOMER}", **server}}}
    done = graphql(PROVISION, variables)["provisionService"]
    print(f"1. {provider}: user {done['account']['username']} "
          f"({'created' if done['accountCreated'] else 'found'}), server "
          f"{done['server']['name']} owned by {done['server']['owner']['username']}")
    send_welcome_mail(done["account"]["email"], done["login"], done["initialPassword"])
    wait(done["operation"])
    again = graphql(PROVISION, variables)["provisionService"]
    assert again["replayed"] and again["server"]["id"] == done["server"]["id"]
    print(f"2. {provider}: the same order again is replayed, no second user or server; "
          f"login link in the replay: {again['login']['url'] is not None}")
    if done["login"]["supported"]:
        fresh = graphql(LOGIN, {"resource": done["server"]["id"]})["createLoginUrl"]
        print(f"3. {provider}: a fresh one-time link for {fresh['username']} on request")


def main() -> int:
    order("catalyst-main", {"name": f"Minecraft {CUSTOMER}",
                            "resources": {"memoryMb": 2048, "cpuCores": 1, "diskMb": 10240},
                            "placement": {"region": "us-east"}, "ports": [25565]})
    order("virtfusion", {"name": f"vps{CUSTOMER}", "template": "1",
                         "resources": {"memoryMb": 2048, "cpuCores": 1, "diskMb": 51200}})
    print(f"new customer shop:{CUSTOMER} is on")
    return 0


API_KEY = api_key()

if __name__ == "__main__":
    sys.exit(main())
