"""The billing flow for a VPS on Proxmox VE: real proxmoxer, real TLS, UPID tasks as Operations."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from panelql.application.ids import decode
from panelql.settings import ProviderEntry
from panelql_sim.proxmox import ProxmoxSim
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import GatewayUnderTest, start_gateway
from tests.e2e.test_catalyst_lifecycle import CREATE, mutate, status_of, wait_operation


@pytest.fixture(scope="module")
def gw(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[GatewayUnderTest]:
    sim = ProxmoxSim(servers=6)
    sim.knobs.transition_seconds = 0.2
    served = background.serve("pve-life", sim.app(), **sim.serve_options())
    entry = ProviderEntry(name="pve-life", kind="proxmox", base_url=served.url,
                          credentials={"token_id": sim.token_id, "token_secret": sim.token_secret},
                          options={"ca_bundle": sim.tls.ca_path})
    yield start_gateway(background, "gw-pve", {"pve-life": sim}, [entry],
                        tmp_path_factory.mktemp("pve") / "pve.db", operation_poll_seconds=0.05)


def test_vps_billing_flow(gw: GatewayUnderTest) -> None:
    created = mutate(gw, CREATE, {"input": {
        "provider": "pve-life", "name": "vps-12345",
        "resources": {"memoryMb": 2048, "cpuCores": 2, "diskMb": 20480}}})
    assert wait_operation(gw, created["operation"]["id"])["status"] == "SUCCEEDED"
    server_id = created["server"]["id"] if created["server"] else None
    assert server_id, created
    assert status_of(gw, server_id) == "STOPPED"

    started = mutate(gw, "mutation($id: ID!) { startServer(id: $id) { operation { id } } }",
                     {"id": server_id})
    assert wait_operation(gw, started["operation"]["id"])["status"] == "SUCCEEDED"
    assert status_of(gw, server_id) == "RUNNING"

    suspended = mutate(gw, 'mutation($id: ID!) { suspendServer(id: $id, reason: "overdue") { '
                           "operation { id } } }", {"id": server_id})
    # the shutdown is a Proxmox task; the guest is SUSPENDED from the first moment
    assert wait_operation(gw, suspended["operation"]["id"])["status"] == "SUCCEEDED"
    assert status_of(gw, server_id) == "SUSPENDED"
    refused = gw.query("mutation($id: ID!) { startServer(id: $id) { replayed } }",
                       {"id": server_id})
    assert refused["errors"][0]["extensions"]["code"] == "CONFLICT"
    resumed = mutate(gw, "mutation($id: ID!) { unsuspendServer(id: $id) { operation { id } } }",
                     {"id": server_id})
    assert wait_operation(gw, resumed["operation"]["id"])["status"] == "SUCCEEDED"
    assert status_of(gw, server_id) == "RUNNING"  # it was running before

    upgraded = mutate(gw, "mutation($id: ID!) { updateServerResources(id: $id, resources: "
                          "{memoryMb: 4096, cpuCores: 4, diskMb: 40960}) { operation { id } } }",
                      {"id": server_id})
    assert wait_operation(gw, upgraded["operation"]["id"])["status"] == "SUCCEEDED"
    after = gw.query("query($id: ID!) { server(id: $id) { resources { memoryMb cpuCores } } }",
                     {"id": server_id})["data"]["server"]
    assert after["resources"] == {"memoryMb": 4096, "cpuCores": 4.0}

    sim = gw.sims["pve-life"]
    assert isinstance(sim, ProxmoxSim)
    vmid = int(decode(server_id).id.rsplit("/", 1)[-1])
    archives_before = {a.volid for a in sim.archives.values() if a.vmid == vmid}
    terminated = mutate(gw, "mutation($id: ID!) { deleteServer(id: $id, finalBackup: true) { "
                            "operation { id } } }", {"id": server_id})
    op = wait_operation(gw, terminated["operation"]["id"], timeout=30)
    assert op["status"] == "SUCCEEDED", op
    gone = gw.query("query($id: ID!) { server(id: $id) { id } }", {"id": server_id})
    assert gone["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert vmid not in sim.guests
    # finalBackup: true made one vzdump archive of the guest before it was destroyed, and the
    # archive outlives the guest (it is what the customer's data can be restored from).
    final = [a for a in sim.archives.values()
             if a.vmid == vmid and a.volid not in archives_before]
    assert len(final) == 1, final


SERVER = ("query($id: ID!) { server(id: $id) { status rawStatus suspended suspensionReason "
          "kind } }")


def guest_id(gw: GatewayUnderTest, name: str) -> str:
    body = gw.query('{ servers(first: 100, filter: {provider: ["pve-life"]}) { edges { node { '
                    "id name } } } }")
    return next(e["node"]["id"] for e in body["data"]["servers"]["edges"]
                if e["node"]["name"] == name)


def test_a_container_is_suspended_for_non_payment(
        gw: GatewayUnderTest, background: BackgroundServers,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """Issue #14: suspendServer on an LXC container was NOT_SUPPORTED."""
    sim = gw.sims["pve-life"]
    assert isinstance(sim, ProxmoxSim)
    ct = guest_id(gw, "ct-0004")  # VMID 103, a running container
    suspended = mutate(gw, "mutation($id: ID!) { suspendServer(id: $id, reason: "
                           '"Invoice #12345 overdue", idempotencyKey: "whmcs-s-12345") { '
                           "operation { id } server { status suspended suspensionReason } } }",
                       {"id": ct})
    assert suspended["server"] == {"status": "SUSPENDED", "suspended": True,
                                   "suspensionReason": "Invoice #12345 overdue"}
    assert wait_operation(gw, suspended["operation"]["id"])["status"] == "SUCCEEDED"
    assert not sim.guests[103].running and "panelql-suspended" in sim.guests[103].tags
    refused = gw.query("mutation($id: ID!) { startServer(id: $id) { replayed } }", {"id": ct})
    assert refused["errors"][0]["extensions"] == {"code": "CONFLICT",
                                                  "currentStatus": "SUSPENDED"}
    # The mark lives in PVE: a second gateway with an empty database sees the same.
    entry = ProviderEntry(name="pve-life", kind="proxmox",
                          base_url=background.served["pve-life"].url,
                          credentials={"token_id": sim.token_id,
                                       "token_secret": sim.token_secret},
                          options={"ca_bundle": sim.tls.ca_path})
    other = start_gateway(background, "gw-pve-restarted", {"pve-life": sim}, [entry],
                          tmp_path_factory.mktemp("pve2") / "pve2.db",
                          operation_poll_seconds=0.05)
    seen = other.query(SERVER, {"id": ct})["data"]["server"]
    assert seen == {"status": "SUSPENDED", "rawStatus": "stopped tag=panelql-suspended",
                    "suspended": True, "suspensionReason": "Invoice #12345 overdue",
                    "kind": "PROXMOX"}
    resumed = mutate(other, "mutation($id: ID!) { unsuspendServer(id: $id) { operation { id } "
                            "} }", {"id": ct})
    assert wait_operation(other, resumed["operation"]["id"])["status"] == "SUCCEEDED"
    assert gw.query(SERVER, {"id": ct})["data"]["server"] == {
        "status": "RUNNING", "rawStatus": "running", "suspended": False,
        "suspensionReason": None, "kind": "PROXMOX"}
    background.stop_one("gw-pve-restarted")


def test_create_backup_with_default_options(gw: GatewayUnderTest) -> None:
    """Issue #14: with no backup_storage option vzdump got notes-template without storage."""
    vm = guest_id(gw, "vm-0001")  # VMID 100, running
    made = mutate(gw, 'mutation($id: ID!) { createBackup(server: $id, name: "before upgrade") '
                      "{ operation { id } } }", {"id": vm})
    op = wait_operation(gw, made["operation"]["id"])
    assert op["status"] == "SUCCEEDED", op
    backups = gw.query("query($id: ID!) { server(id: $id) { backups(first: 50) { edges { node "
                       "{ id name status } } } } }", {"id": vm})["data"]["server"]["backups"]
    names = {e["node"]["name"]: e["node"]["status"] for e in backups["edges"]}
    assert names.get("before upgrade") == "COMPLETED", names
