"""The billing flow for a VPS on Proxmox VE: real proxmoxer, real TLS, UPID tasks as Operations."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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

    suspended = mutate(gw, 'mutation($id: ID!) { suspendServer(id: $id, reason: "overdue", '
                           "stopServer: false) { operation { id } } }", {"id": server_id})
    # hibernation is a Proxmox task: while it runs the VM is locked (a retryable CONFLICT)
    assert wait_operation(gw, suspended["operation"]["id"])["status"] == "SUCCEEDED"
    assert status_of(gw, server_id) == "SUSPENDED"
    refused = gw.query("mutation($id: ID!) { startServer(id: $id) { replayed } }",
                       {"id": server_id})
    assert refused["errors"][0]["extensions"]["code"] == "CONFLICT"
    resumed = mutate(gw, "mutation($id: ID!) { unsuspendServer(id: $id) { operation { id } } }",
                     {"id": server_id})
    assert wait_operation(gw, resumed["operation"]["id"])["status"] == "SUCCEEDED"
    assert status_of(gw, server_id) in ("RUNNING", "STOPPED")

    upgraded = mutate(gw, "mutation($id: ID!) { updateServerResources(id: $id, resources: "
                          "{memoryMb: 4096, cpuCores: 4, diskMb: 40960}) { operation { id } } }",
                      {"id": server_id})
    assert wait_operation(gw, upgraded["operation"]["id"])["status"] == "SUCCEEDED"
    after = gw.query("query($id: ID!) { server(id: $id) { resources { memoryMb cpuCores } } }",
                     {"id": server_id})["data"]["server"]
    assert after["resources"] == {"memoryMb": 4096, "cpuCores": 4.0}

    terminated = mutate(gw, "mutation($id: ID!) { deleteServer(id: $id, finalBackup: true) { "
                            "operation { id } } }", {"id": server_id})
    op = wait_operation(gw, terminated["operation"]["id"], timeout=30)
    assert op["status"] == "SUCCEEDED", op
    gone = gw.query("query($id: ID!) { server(id: $id) { id } }", {"id": server_id})
    assert gone["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    sim = gw.sims["pve-life"]
    assert isinstance(sim, ProxmoxSim)
