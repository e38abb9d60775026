"""Usage with bandwidth, network counters and the plan's limits, through real HTTP, as each
simulated panel reports them (WHMCS UsageUpdate needs disk and bandwidth used and allowed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from panelql_sim.demo import start_panels
from panelql_sim.directadmin import PACKAGES, DirectAdminSim
from panelql_sim.proxmoxwp import PLANS
from panelql_sim.pterodactyl import PterodactylSim
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import GatewayUnderTest, start_gateway

USAGE = ("usage { memoryMb diskMb bandwidthMb networkInBytes networkOutBytes playerCount "
         "limits { memoryMb diskMb bandwidthMb } }")


@pytest.fixture(scope="module")
def gw(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[GatewayUnderTest]:
    sims, entries = start_panels(background, transition_seconds=0.3)
    yield start_gateway(background, "gw-usage", dict(sims), entries,
                        tmp_path_factory.mktemp("usage") / "u.db")


def servers(gw: GatewayUnderTest, provider: str) -> list[dict[str, Any]]:
    body = gw.query(f'{{ servers(first: 200, filter: {{provider: ["{provider}"]}}) {{ edges {{ '
                    f"node {{ upstreamId status {USAGE} }} }} }} }}")
    assert "errors" not in body, body
    return [e["node"] for e in body["data"]["servers"]["edges"]]


def test_directadmin_bandwidth_and_package_limits(gw: GatewayUnderTest) -> None:
    sim = gw.sims["directadmin"]
    assert isinstance(sim, DirectAdminSim)
    body = gw.query('{ accounts(first: 200, filter: {provider: ["directadmin"]}) { edges { '
                    f"node {{ upstreamId package {USAGE} }} }} }} }}")
    assert "errors" not in body, body
    accounts = [e["node"] for e in body["data"]["accounts"]["edges"]]
    assert accounts
    for account in accounts:
        seed = sum(map(ord, account["upstreamId"]))  # the simulator's usage figures
        usage = account["usage"]
        assert usage["bandwidthMb"] == seed % 5000 + 100.0
        limit = PACKAGES[account["package"]]
        expected = None if limit["bandwidth"] == "unlimited" else float(limit["bandwidth"])
        assert usage["limits"]["bandwidthMb"] == expected
        assert usage["limits"]["diskMb"] == (None if limit["quota"] == "unlimited"
                                             else float(limit["quota"]))


def test_proxmox_network_counters_and_allocation(gw: GatewayUnderTest) -> None:
    sim = gw.sims["proxmox-lab"]
    guests = {str(g.vmid): g for g in sim.guests.values()}  # type: ignore[attr-defined]
    running = [s for s in servers(gw, "proxmox-lab") if s["status"] == "RUNNING"]
    assert running
    for server in running:
        guest = guests[server["upstreamId"]]
        assert server["usage"]["networkInBytes"] == 1024 * guest.vmid
        assert server["usage"]["networkOutBytes"] == 512 * guest.vmid
        assert server["usage"]["limits"]["memoryMb"] == guest.memory_mb


def test_pterodactyl_network_counters(gw: GatewayUnderTest) -> None:
    sim = gw.sims["ptero-eu"]
    assert isinstance(sim, PterodactylSim)
    running = [s for s in servers(gw, "ptero-eu") if s["status"] == "RUNNING"]
    assert running
    for server in running:
        assert server["usage"]["networkInBytes"] == 1024 * int(server["upstreamId"])
        assert server["usage"]["networkOutBytes"] == 2048 * int(server["upstreamId"])


def test_virtfusion_and_proxmoxwp_plan_limits(gw: GatewayUnderTest) -> None:
    vf = gw.sims["virtfusion"]
    raw = {str(s.id): s for s in vf.servers.values()}  # type: ignore[attr-defined]
    with_usage = [s for s in servers(gw, "virtfusion") if s["usage"]]
    assert with_usage
    for server in with_usage:
        limits = server["usage"]["limits"]
        assert limits["memoryMb"] == raw[server["upstreamId"]].memory
        assert limits["diskMb"] == raw[server["upstreamId"]].storage * 1024
        assert limits["bandwidthMb"] == 1000 * 1024  # settings.resources.traffic, GB
    wp = gw.sims["wp-sites"]
    sites = wp.sites  # type: ignore[attr-defined]
    for server in servers(gw, "wp-sites"):
        if server["usage"] is None:
            continue
        ram, disk_gb, _, _ = PLANS[sites[server["upstreamId"]].plan]
        assert server["usage"]["limits"] == {"memoryMb": ram, "diskMb": disk_gb * 1024,
                                             "bandwidthMb": None}


def test_catalyst_player_count_is_null_where_the_panel_has_none(gw: GatewayUnderTest) -> None:
    found = servers(gw, "catalyst-main")
    assert found and all(s["usage"] is None or s["usage"]["playerCount"] is None for s in found)
