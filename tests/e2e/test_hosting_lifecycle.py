"""The billing flow for a web-hosting account (DirectAdmin)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from panelql_sim.demo import start_panels
from panelql_sim.directadmin import DirectAdminSim
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import GatewayUnderTest, start_gateway
from tests.e2e.test_catalyst_lifecycle import mutate

CREATE = """mutation($input: CreateAccountInput!, $key: String) {
  createAccount(input: $input, idempotencyKey: $key) { replayed account { id username status
    package domains } } }"""


@pytest.fixture(scope="module")
def gw(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[GatewayUnderTest]:
    sims, entries = start_panels(background, transition_seconds=0.2)
    yield start_gateway(background, "gw-hosting", dict(sims), entries,
                        tmp_path_factory.mktemp("hosting") / "h.db")


def account_status(gw: GatewayUnderTest, account_id: str) -> str:
    body = gw.query("query($id: ID!) { account(id: $id) { status package } }", {"id": account_id})
    return body["data"]["account"]["status"]  # type: ignore[no-any-return]


def test_hosting_account_billing_flow(gw: GatewayUnderTest) -> None:
    sim = gw.sims["directadmin"]
    assert isinstance(sim, DirectAdminSim)
    created = mutate(gw, CREATE, {"key": "order-5001", "input": {
        "provider": "directadmin", "username": "acme5001", "email": "owner@acme.example",
        "password": "S3cure-pass!", "domain": "acme.example", "package": "starter"}})
    account = created["account"]
    assert account["username"] == "acme5001" and account["status"] == "ACTIVE"
    assert "acme.example" in account["domains"]
    replay = mutate(gw, CREATE, {"key": "order-5001", "input": {
        "provider": "directadmin", "username": "acme5001", "email": "owner@acme.example",
        "password": "S3cure-pass!", "domain": "acme.example", "package": "starter"}})
    assert replay["replayed"] is True and replay["account"]["id"] == account["id"]

    mutate(gw, 'mutation($id: ID!) { suspendAccount(id: $id, reason: "Invoice 77 overdue") '
               "{ replayed } }", {"id": account["id"]})
    assert account_status(gw, account["id"]) == "SUSPENDED"
    sim.reset_stats()
    twice = mutate(gw, "mutation($id: ID!) { suspendAccount(id: $id) { changed account { "
                       "status } } }", {"id": account["id"]})  # the goal already holds: a no-op
    assert twice == {"changed": False, "account": {"status": "SUSPENDED"}}
    assert sim.command_stats["SELECT_USERS"] == 0  # nothing was sent to suspend it again
    mutate(gw, "mutation($id: ID!) { unsuspendAccount(id: $id) { replayed } }",
           {"id": account["id"]})
    assert account_status(gw, account["id"]) == "ACTIVE"
    again = mutate(gw, "mutation($id: ID!) { unsuspendAccount(id: $id) { changed } }",
                   {"id": account["id"]})
    assert again == {"changed": False}

    upgraded = mutate(gw, 'mutation($id: ID!) { changeAccountPackage(id: $id, package: '
                          '"business") { account { package } } }', {"id": account["id"]})
    assert upgraded["account"]["package"] == "business"
    mutate(gw, 'mutation($id: ID!) { changeAccountPassword(id: $id, password: "N3w-pass-123") '
               "{ replayed } }", {"id": account["id"]})
    audit = gw.query('{ auditLog(action: "changeAccountPassword", first: 1) { input } }')
    assert audit["data"]["auditLog"][0]["input"]["password"] == "[redacted]"
    assert "N3w-pass-123" not in str(audit)

    mutate(gw, "mutation($id: ID!) { deleteAccount(id: $id) { deletedId } }", {"id": account["id"]})
    gone = gw.query("query($id: ID!) { account(id: $id) { id } }", {"id": account["id"]})
    assert gone["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # Deleting what is gone holds the goal already: a no-op with the same deletedId.
    twice = mutate(gw, "mutation($id: ID!) { deleteAccount(id: $id) { deletedId changed } }",
                   {"id": account["id"]})
    assert twice == {"deletedId": account["id"], "changed": False}
