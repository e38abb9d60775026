"""Each panel's catalogue through real HTTP: what the simulator holds, typed, with the
arguments each id fits; read once per connection per request and then cached briefly."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from panelql_sim.catalyst import CatalystSim
from panelql_sim.demo import start_panels
from panelql_sim.directadmin import PACKAGES as DA_PACKAGES
from panelql_sim.proxmox import TEMPLATE_FILES
from panelql_sim.proxmoxwp import PLANS
from panelql_sim.pterodactyl import PterodactylSim
from panelql_sim.runner import BackgroundServers
from panelql_sim.virtfusion import PACKAGES as VF_PACKAGES
from panelql_sim.virtfusion import TEMPLATES as VF_TEMPLATES
from tests.e2e.harness import GatewayUnderTest, start_gateway

ENTRY = "id name kind description group usableAs resources { memoryMb cpuCores diskMb }"
ONE = f"""query($p: String!) {{ catalogue(provider: $p) {{ provider
  plans {{ {ENTRY} }} images {{ {ENTRY} }} locations {{ {ENTRY} }} storages {{ {ENTRY} }} }} }}"""


@pytest.fixture(scope="module")
def gw(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[GatewayUnderTest]:
    sims, entries = start_panels(background, transition_seconds=0.3)
    yield start_gateway(background, "gw-catalogue", dict(sims), entries,
                        tmp_path_factory.mktemp("catalogue") / "c.db")


def catalogue(gw: GatewayUnderTest, provider: str) -> dict[str, Any]:
    body = gw.query(ONE, {"p": provider})
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["catalogue"]
    return result


def test_catalyst_templates_and_locations(gw: GatewayUnderTest) -> None:
    sim = gw.sims["catalyst-main"]
    assert isinstance(sim, CatalystSim)
    got = catalogue(gw, "catalyst-main")
    assert {i["id"]: i["name"] for i in got["images"]} == {
        t["id"]: t["name"] for t in sim.templates.values()}
    paper = next(i for i in got["images"] if i["id"] == sim.default_template)
    assert paper["group"] == "Minecraft" and paper["usableAs"] == ["createServer.template"]
    assert paper["resources"]["memoryMb"] == sim.templates[sim.default_template][
        "allocatedMemoryMb"]
    assert {loc["id"]: loc["name"] for loc in got["locations"]} == {
        loc["id"]: loc["name"] for loc in sim.locations.values()}
    assert got["plans"] == [] and got["storages"] == []


def test_pterodactyl_eggs_by_nest_and_locations(gw: GatewayUnderTest) -> None:
    sim = gw.sims["ptero-eu"]
    assert isinstance(sim, PterodactylSim)
    got = catalogue(gw, "ptero-eu")
    assert {i["id"]: (i["name"], i["group"]) for i in got["images"]} == {
        f"{e['nest']}/{e['id']}": (e["name"], sim.nests[e["nest"]][0])
        for e in sim.eggs.values()}
    assert all(i["usableAs"] == ["createServer.template", "reinstallServer.image"]
               for i in got["images"])
    assert sorted(loc["name"] for loc in got["locations"]) == sorted(
        loc["short"] for loc in sim.locations.values())


def test_virtfusion_packages_and_os_templates(gw: GatewayUnderTest) -> None:
    got = catalogue(gw, "virtfusion")
    enabled = [p for p in VF_PACKAGES if p["enabled"]]
    assert [(p["id"], p["name"]) for p in got["plans"]] == [
        (str(p["id"]), p["name"]) for p in enabled]
    assert got["plans"][0]["resources"] == {"memoryMb": enabled[0]["memory"],
                                            "cpuCores": enabled[0]["cpuCores"],
                                            "diskMb": enabled[0]["primaryStorage"] * 1024}
    assert "updateServerResources.package" in got["plans"][0]["usableAs"]
    assert {i["id"]: i["name"] for i in got["images"]} == {
        str(k): v for k, v in VF_TEMPLATES.items()}
    assert all("reinstallServer.image" in i["usableAs"] for i in got["images"])


def test_directadmin_nextpanel_proxmoxwp_plans(gw: GatewayUnderTest) -> None:
    da = catalogue(gw, "directadmin")
    assert [p["id"] for p in da["plans"]] == list(DA_PACKAGES)
    starter = da["plans"][0]
    assert starter["resources"]["diskMb"] == int(DA_PACKAGES["starter"]["quota"])
    assert starter["usableAs"] == ["changeAccountPackage.package", "createAccount.package"]
    nextpanel = catalogue(gw, "nextpanel-fra")
    assert [(p["id"], p["name"]) for p in nextpanel["plans"]] == [("1", "Starter"),
                                                                 ("2", "Business")]
    wp = catalogue(gw, "wp-sites")
    assert [p["id"] for p in wp["plans"]] == list(PLANS)
    assert wp["plans"][0]["resources"]["memoryMb"] == PLANS["basic"][0]
    assert "changeServerPlan.plan" in wp["plans"][0]["usableAs"]


def test_proxmox_storages_and_templates(gw: GatewayUnderTest) -> None:
    got = catalogue(gw, "proxmox-lab")
    sim = gw.sims["proxmox-lab"]
    assert {s["id"] for s in got["storages"]} == set(sim.storages)  # type: ignore[attr-defined]
    lvm = next(s for s in got["storages"] if s["id"] == "local-lvm")
    assert lvm["usableAs"] == ["createServer.options.storage"]
    assert {i["id"] for i in got["images"]} == {f"local:{kind}/{name}"
                                               for kind, name, _, _ in TEMPLATE_FILES}


def test_every_connection_once_then_cached(gw: GatewayUnderTest) -> None:
    gw.reset_counts()
    query = "{ providers { name kind catalogue { provider entries { id } } } }"
    first = gw.query(query)
    assert "errors" not in first, first
    with_catalogue = {p["name"] for p in first["data"]["providers"] if p["catalogue"]}
    assert with_catalogue >= {"catalyst-main", "ptero-eu", "virtfusion", "proxmox-lab",
                              "wp-sites", "directadmin", "nextpanel-fra"}
    for p in first["data"]["providers"]:  # DNS and billing kinds have none
        assert (p["catalogue"] is None) == (p["kind"] in {
            "ISPCONFIG", "CLOUDFLARE", "POWERDNS", "STRIPE", "PAYPAL"})
    gw.reset_counts()
    again = gw.query(query + " ")  # within the cache's minute: no panel is asked again
    assert again["data"] == first["data"]
    assert sum(gw.upstream_calls().values()) == 0, gw.upstream_routes()


def test_unknown_or_unsupported_connection(gw: GatewayUnderTest) -> None:
    missing = gw.query(ONE, {"p": "nope"})
    assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    dns = gw.query(ONE, {"p": "powerdns"})
    assert dns["errors"][0]["extensions"]["code"] == "NOT_SUPPORTED"
