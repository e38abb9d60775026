"""Choices from the catalogue through real HTTP: reinstall with another image, resize to a
named package, a hosting account's database; NOT_SUPPORTED with the
reason where the panel cannot; and a customer key kept to its own servers and accounts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from panelql.application.ids import encode
from panelql.domain.records import Ref, ResourceType
from panelql_sim.catalyst import CatalystSim
from panelql_sim.directadmin import DirectAdminSim
from panelql_sim.proxmoxwp import ProxmoxWPSim
from panelql_sim.pterodactyl import PterodactylSim
from panelql_sim.runner import BackgroundServers
from panelql_sim.virtfusion import VirtFusionSim
from tests.e2e.harness import GatewayUnderTest, serve_sim, start_gateway
from tests.e2e.test_catalyst_lifecycle import mutate, wait_operation

VF, PT, CAT, DA, WP = "vf-choice", "pt-choice", "cat-choice", "da-choice", "wp-choice"
REINSTALL = """mutation($id: ID!, $image: String) { reinstallServer(id: $id, image: $image) {
  operation { id } } }"""
RESIZE = """mutation($id: ID!, $package: String, $memory: Int) { updateServerResources(id: $id,
  package: $package, resources: {memoryMb: $memory}, restart: false) { operation { id } } }"""
PACKAGE = """mutation($id: ID!, $package: String) { updateServerResources(id: $id,
  package: $package) { operation { id } } }"""
DATABASE = """mutation($a: ID!, $n: String!, $k: String) { createDatabase(account: $a, name: $n,
  password: "Db-pass-1234", idempotencyKey: $k) { replayed database { name user host }
  account { username } } }"""


@pytest.fixture(scope="module")
def gw(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[GatewayUnderTest]:
    vf, pt, cat = VirtFusionSim(), PterodactylSim(), CatalystSim()
    da, wp = DirectAdminSim(users=3), ProxmoxWPSim()
    for sim in (vf, pt, cat, da, wp):
        sim.knobs.transition_seconds = 0.2
    entries = [
        serve_sim(background, VF, vf, "virtfusion", {"api_token": vf.api_token}, "/api/v1"),
        serve_sim(background, PT, pt, "pterodactyl", {"application_key": pt.application_key,
                                                     "client_key": pt.client_key}),
        serve_sim(background, CAT, cat, "catalyst", {"api_key": cat.api_key}),
        serve_sim(background, DA, da, "directadmin", {"username": da.username,
                                                     "password": da.password}),
        serve_sim(background, WP, wp, "proxmoxwp", {"api_key": wp.api_key},
                  options={"public_ip": wp.public_ip})]
    yield start_gateway(background, "gw-choices", {VF: vf, PT: pt, CAT: cat, DA: da, WP: wp},
                        entries, tmp_path_factory.mktemp("choices") / "c.db",
                        operation_poll_seconds=0.05)


def sid(connection: str, upstream: object, kind: ResourceType = ResourceType.SERVER) -> str:
    return encode(Ref(connection, kind, str(upstream)))


def vf_servers(gw: GatewayUnderTest) -> list[Any]:
    sim = gw.sims[VF]
    assert isinstance(sim, VirtFusionSim)
    return [s for s in sim.servers.values() if s.built is not None and not s.suspended
            and not s.build_failed and s.busy is None and s.state == "complete"]


def code(body: dict[str, Any]) -> str:
    assert body.get("errors"), body
    return str(body["errors"][0]["extensions"]["code"])


def test_virtfusion_reinstalls_with_another_os_and_resizes_to_a_named_package(
        gw: GatewayUnderTest) -> None:
    server = next(s for s in vf_servers(gw) if s.os_template_id != 2)
    builds = gw.sims[VF].stats["POST /api/*/servers/*/build"]  # ("v1" folds like an id)
    bad = gw.query(REINSTALL, {"id": sid(VF, server.id), "image": "99"})
    assert code(bad) == "BAD_USER_INPUT" and bad["errors"][0]["extensions"]["field"] == "image"
    assert "2 (Ubuntu 24.04)" in bad["errors"][0]["message"]
    assert gw.sims[VF].stats["POST /api/*/servers/*/build"] == builds
    done = mutate(gw, REINSTALL, {"id": sid(VF, server.id), "image": "Ubuntu 24.04"})
    assert wait_operation(gw, done["operation"]["id"])["status"] == "SUCCEEDED"
    assert server.os_template_id == 2
    assert gw.sims[VF].stats["POST /api/*/servers/*/build"] == builds + 1

    other = next(s for s in vf_servers(gw) if s.package_id != 4 and s.power == "running")
    for variables in ({"package": "VPS 4G", "memory": 4096}, {}):
        assert code(gw.query(RESIZE, {"id": sid(VF, other.id), **variables})) == \
            "BAD_USER_INPUT"
    missing = gw.query(PACKAGE, {"id": sid(VF, other.id), "package": "VPS 64G"})
    assert code(missing) == "BAD_USER_INPUT"
    assert missing["errors"][0]["extensions"]["field"] == "package"
    resized = mutate(gw, PACKAGE, {"id": sid(VF, other.id), "package": "VPS 4G"})
    # stop, change (204, then applied in the background while configLevel > 0), start: the
    # start waits for the package change instead of meeting VirtFusion's 423 lock
    assert wait_operation(gw, resized["operation"]["id"], timeout=30)["status"] == "SUCCEEDED"
    assert other.package_id == 4 and other.memory == 4096 and other.power == "running"


def test_pterodactyl_reinstalls_with_another_egg(gw: GatewayUnderTest) -> None:
    sim = gw.sims[PT]
    assert isinstance(sim, PterodactylSim)
    server = next(s for s in sim.servers.values() if s.status is None and s.egg == 1)
    done = mutate(gw, REINSTALL, {"id": sid(PT, server.id), "image": "2/3"})
    assert done["operation"]["id"]
    assert server.egg == 3 and server.image == sim.eggs[3]["docker_image"]
    assert server.environment["HOSTNAME"] == "A Rust Server"
    assert sim.stats["PATCH /api/application/servers/*/startup"] == 1
    assert sim.stats["POST /api/application/servers/*/reinstall"] >= 1


def test_panels_without_the_choice_say_why(gw: GatewayUnderTest) -> None:
    cat = gw.sims[CAT]
    assert isinstance(cat, CatalystSim)
    server = sid(CAT, next(iter(cat.servers)))
    refused = gw.query(REINSTALL, {"id": server, "image": cat.default_template})
    assert code(refused) == "NOT_SUPPORTED"
    assert "own template" in refused["errors"][0]["message"]
    assert code(gw.query(PACKAGE, {"id": server, "package": "x"})) == "NOT_SUPPORTED"
    user = next(iter(cat.users))
    assert code(gw.query(DATABASE, {"a": sid(CAT, user, ResourceType.ACCOUNT),
                                    "n": "shop"})) == "NOT_SUPPORTED"
    wp = gw.query(REINSTALL, {"id": sid(WP, "10001"), "image": "x"})
    assert code(wp) == "NOT_SUPPORTED" and "initial" in wp["errors"][0]["message"]


def test_proxmoxwp_takes_a_plan_as_package(gw: GatewayUnderTest) -> None:
    sim = gw.sims[WP]
    assert isinstance(sim, ProxmoxWPSim)
    site = sim.sites["10004"]
    assert site.plan == "basic"
    done = mutate(gw, PACKAGE, {"id": sid(WP, "10004"), "package": "Standard"})
    assert wait_operation(gw, done["operation"]["id"])["status"] == "SUCCEEDED"
    assert site.plan == "standard"


def test_directadmin_database_for_an_account(gw: GatewayUnderTest) -> None:
    sim = gw.sims[DA]
    assert isinstance(sim, DirectAdminSim)
    user = next(iter(sim.users))
    account = sid(DA, user, ResourceType.ACCOUNT)
    made = mutate(gw, DATABASE, {"a": account, "n": "shop", "k": "db-1"})
    assert made["database"] == {"name": f"{user}_shop", "user": f"{user}_shop",
                                "host": "localhost"}
    assert made["account"]["username"] == user
    assert sim.users[user].databases == {f"{user}_shop": f"{user}_shop"}
    again = mutate(gw, DATABASE, {"a": account, "n": "shop", "k": "db-1"})
    assert again["replayed"] is True and len(sim.users[user].databases) == 1
    twice = gw.query(DATABASE, {"a": account, "n": "shop"})  # no key: the panel refuses
    assert code(twice) == "CONFLICT" and "already exists" in twice["errors"][0]["message"]
    assert code(gw.query(DATABASE, {"a": account, "n": "no spaces"})) == "BAD_USER_INPUT"
    assert code(gw.query(DATABASE, {"a": sid(DA, "ghost", ResourceType.ACCOUNT),
                                    "n": "shop"})) == "NOT_FOUND"
    audit = gw.query('{ auditLog(action: "createDatabase", first: 1) { inputSummary } }')
    assert "Db-pass-1234" not in str(audit), audit


def test_customer_key_reaches_only_its_own(gw: GatewayUnderTest) -> None:
    vf_mine, vf_theirs = vf_servers(gw)[-2:]
    da = gw.sims[DA]
    assert isinstance(da, DirectAdminSim)
    mine_user, theirs_user = list(da.users)[1:3]
    link = ('mutation($r: ID!) { linkCustomer(customerRef: "whmcs:9", resource: $r) '
            "{ changed } }")
    for resource in (sid(VF, vf_mine.id), sid(DA, mine_user, ResourceType.ACCOUNT)):
        assert "errors" not in gw.query(link, {"r": resource})
    key = gw.create_key(["server.view", "server.reinstall", "server.update",
                         "account.write"], name="whmcs-9", customer_ref="whmcs:9")
    before = dict(gw.upstream_routes())
    for query, variables in (
            (REINSTALL, {"id": sid(VF, vf_theirs.id), "image": "1"}),
            (PACKAGE, {"id": sid(VF, vf_theirs.id), "package": "VPS 8G"}),
            (DATABASE, {"a": sid(DA, theirs_user, ResourceType.ACCOUNT), "n": "steal"})):
        assert code(gw.query(query, variables, **{"x-api-key": key})) == "NOT_FOUND"
    writes = {r: c - before.get(r, 0) for r, c in gw.upstream_routes().items()
              if not r.startswith("GET") and c != before.get(r, 0)}
    assert writes == {}, writes
    # Its own server: reinstalled with another image, but no package change (the billing
    # system sells upgrades), refused before anything reaches the panel.
    own = gw.query(REINSTALL, {"id": sid(VF, vf_mine.id), "image": "3"}, **{"x-api-key": key})
    assert "errors" not in own, own
    upgrade = gw.query(PACKAGE, {"id": sid(VF, vf_mine.id), "package": "VPS 16G"},
                       **{"x-api-key": key})
    assert code(upgrade) == "FORBIDDEN" and vf_mine.package_id != 6
    db = gw.query(DATABASE, {"a": sid(DA, mine_user, ResourceType.ACCOUNT), "n": "mine"},
                  **{"x-api-key": key})
    assert "errors" not in db, db
