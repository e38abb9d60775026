"""NextPanel over real HTTP: three servers as three connections (the demo's), placement with
failover across them, and suspend/unsuspend/stats/delete through the panel's real routes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from panelql.settings import ProviderEntry
from panelql_sim.demo import start_panels
from panelql_sim.nextpanel import NextPanelSim
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import GatewayUnderTest, start_gateway
from tests.e2e.test_catalyst_lifecycle import mutate

CREATE = """mutation($input: CreateAccountInput!, $key: String) {
  createAccount(input: $input, idempotencyKey: $key) {
    replayed account { id username status provider { name } } } }"""
NODES = """{ nodes(filter: {kind: [NEXTPANEL]}) { edges { node { name status region
  accountSlots { capacity used available } } } } }"""
SERVERS = ("nextpanel-fra", "nextpanel-ams", "nextpanel-nyc")


@pytest.fixture(scope="module")
def panels(background: BackgroundServers) -> tuple[dict[str, Any], list[ProviderEntry]]:
    sims, entries = start_panels(background, transition_seconds=0.2)
    return sims, [e for e in entries if e.kind == "nextpanel"]


@pytest.fixture(scope="module")
def gw(background: BackgroundServers, panels: tuple[dict[str, Any], list[ProviderEntry]],
       tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayUnderTest]:
    sims, entries = panels
    yield start_gateway(background, "gw-nextpanel", {n: sims[n] for n in SERVERS}, entries,
                        tmp_path_factory.mktemp("np") / "np.db")


def sim(gw: GatewayUnderTest, name: str) -> NextPanelSim:
    panel = gw.sims[name]
    assert isinstance(panel, NextPanelSim)
    return panel


def calls(panel: NextPanelSim, method: str, suffix: str) -> int:
    """Requests to one account route (the simulator's stats fold ids and "v1" into "*")."""
    return sum(n for route, n in panel.stats.items()
               if route.startswith(f"{method} /api/") and route.endswith(suffix))


def slots(gw: GatewayUnderTest) -> dict[str, tuple[str, int, int]]:
    body = gw.query(NODES)
    return {e["node"]["name"]: (e["node"]["status"], e["node"]["accountSlots"]["used"],
                                e["node"]["accountSlots"]["capacity"])
            for e in body["data"]["nodes"]["edges"]}


def create(gw: GatewayUnderTest, username: str, key: str | None = None) -> dict[str, Any]:
    payload = mutate(gw, CREATE, {"key": key, "input": {
        "kind": "NEXTPANEL", "username": username, "email": f"{username}@acme.example",
        "password": "S3cure-pass!", "externalRef": f"whmcs:{username}"}})
    return payload["account"]  # type: ignore[no-any-return]


def test_three_servers_are_three_nodes_loaded_as_in_the_seed(gw: GatewayUnderTest) -> None:
    assert slots(gw) == {"nextpanel-fra": ("ONLINE", 45, 100),
                         "nextpanel-ams": ("ONLINE", 78, 100),
                         "nextpanel-nyc": ("ONLINE", 92, 100)}


def test_create_lands_on_the_least_loaded_and_fails_over(gw: GatewayUnderTest) -> None:
    fra, ams = sim(gw, "nextpanel-fra"), sim(gw, "nextpanel-ams")
    first = create(gw, "acme6001", key="order-6001")
    assert first["provider"]["name"] == "nextpanel-fra" and first["status"] == "ACTIVE"
    assert any(u.username == "acme6001" for u in fra.users.values())
    replay = mutate(gw, CREATE, {"key": "order-6001", "input": {
        "kind": "NEXTPANEL", "username": "acme6001", "email": "acme6001@acme.example",
        "password": "S3cure-pass!", "externalRef": "whmcs:acme6001"}})
    assert replay["replayed"] and replay["account"]["id"] == first["id"]
    assert slots(gw)["nextpanel-fra"][1] == 46

    fra.knobs.update({"fail_status": 503})  # Frankfurt is down: health fails, so does all
    try:
        assert slots(gw)["nextpanel-fra"][0] == "OFFLINE"
        second = create(gw, "acme6002")
    finally:
        fra.knobs.update({"fail_status": None})
    assert second["provider"]["name"] == "nextpanel-ams"
    assert any(u.username == "acme6002" for u in ams.users.values())

    # Healthy on /api/health, failing on the create itself: the next server takes it.
    fra.knobs.update({"fail_status": 503, "fault_methods": ["POST"]})
    try:
        third = create(gw, "acme6003")
    finally:
        fra.knobs.update({"fail_status": None, "fault_methods": None})
    assert third["provider"]["name"] == "nextpanel-ams"
    assert slots(gw) == {"nextpanel-fra": ("ONLINE", 46, 100),
                         "nextpanel-ams": ("ONLINE", 80, 100),
                         "nextpanel-nyc": ("ONLINE", 92, 100)}


def test_full_server_is_skipped(background: BackgroundServers,
                                panels: tuple[dict[str, Any], list[ProviderEntry]],
                                tmp_path_factory: pytest.TempPathFactory) -> None:
    """Frankfurt at 100/100 (its operator says so): the next least loaded gets the account,
    and with every server full the answer is CONFLICT without any create sent."""
    sims, entries = panels
    full = [e.model_copy(update={"options": {**e.options, "current_accounts": 100}})
            if e.name == "nextpanel-fra" else e for e in entries]
    gw = start_gateway(background, "gw-nextpanel-full", {n: sims[n] for n in SERVERS}, full,
                       tmp_path_factory.mktemp("np-full") / "np.db")
    assert create(gw, "acme7001")["provider"]["name"] == "nextpanel-ams"
    none_left = [e.model_copy(update={"options": {**e.options, "current_accounts": 100}})
                 for e in entries]
    gw2 = start_gateway(background, "gw-nextpanel-none", {n: sims[n] for n in SERVERS},
                        none_left, tmp_path_factory.mktemp("np-none") / "np.db")
    gw2.reset_counts()
    body = gw2.query(CREATE, {"input": {"kind": "NEXTPANEL", "username": "acme7002",
                                        "email": "a7002@acme.example"}})
    assert body["errors"][0]["extensions"]["code"] == "CONFLICT"
    assert "room" in body["errors"][0]["message"]
    assert not any(r.startswith("POST") for r in gw2.upstream_routes())


def test_suspend_unsuspend_stats_delete_through_the_real_routes(gw: GatewayUnderTest) -> None:
    account = create(gw, "acme6100")
    fra = sim(gw, "nextpanel-fra")
    user = next(u for u in fra.users.values() if u.username == "acme6100")
    fra.reset_stats()
    mutate(gw, 'mutation($id: ID!) { suspendAccount(id: $id, reason: "Invoice 77 overdue") '
               "{ replayed } }", {"id": account["id"]})
    assert not user.is_active and user.suspension_reason == "Invoice 77 overdue"
    assert calls(fra, "POST", "/suspend") == 1
    again = mutate(gw, 'mutation($id: ID!) { suspendAccount(id: $id) { account { status } } }',
                   {"id": account["id"]})
    assert again["account"]["status"] == "SUSPENDED"  # already suspended: a no-op
    assert calls(fra, "POST", "/suspend") == 1

    mutate(gw, "mutation($id: ID!) { unsuspendAccount(id: $id) { replayed } }",
           {"id": account["id"]})
    assert user.is_active
    read = gw.query("query($id: ID!) { account(id: $id) { status externalRef usage { diskMb } "
                    "provider { name } } }", {"id": account["id"]})["data"]["account"]
    assert read["status"] == "ACTIVE" and read["externalRef"] == "whmcs:acme6100"
    assert read["usage"]["diskMb"] == sum(map(ord, "acme6100")) % 900  # from …/stats
    assert calls(fra, "GET", "/stats") >= 1

    listed = gw.query('{ accounts(filter: {search: "acme61"}) { nodes { id username } } }')
    assert [a["username"] for a in listed["data"]["accounts"]["nodes"]] == ["acme6100"]

    before = slots(gw)["nextpanel-fra"][1]
    mutate(gw, "mutation($id: ID!) { deleteAccount(id: $id) { deletedId } }", {"id": account["id"]})
    assert user.id not in fra.users and slots(gw)["nextpanel-fra"][1] == before - 1
    gone = gw.query("query($id: ID!) { account(id: $id) { id } }", {"id": account["id"]})
    assert gone["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def test_input_errors(gw: GatewayUnderTest) -> None:
    body = gw.query(CREATE, {"input": {"username": "nowhere1", "email": "n@acme.example"}})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    body = gw.query(CREATE, {"input": {"kind": "NEXTPANEL", "username": "dom1",
                                       "email": "d@acme.example", "domain": "d.example"}})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "domain" in body["errors"][0]["message"]
    body = gw.query(CREATE, {"input": {"provider": "nextpanel-fra", "kind": "DIRECTADMIN",
                                       "username": "k1", "email": "k@acme.example"}})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_a_timeout_on_create_does_not_fail_over(
        background: BackgroundServers, panels: tuple[dict[str, Any], list[ProviderEntry]],
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """The create may have happened on a server that stopped answering: trying the next server
    could make the account twice, so the error comes back (retryable) and nothing else is tried;
    the slot stays counted."""
    sims, entries = panels
    short = [e.model_copy(update={"timeout_seconds": 1.0}) for e in entries]
    gw = start_gateway(background, "gw-nextpanel-timeout", {n: sims[n] for n in SERVERS},
                       short, tmp_path_factory.mktemp("np-timeout") / "np.db")
    fra, ams = sim(gw, "nextpanel-fra"), sim(gw, "nextpanel-ams")
    ams_before = dict(ams.users)
    fra.knobs.update({"hang": True, "fault_methods": ["POST"]})
    try:
        body = gw.query(CREATE, {"input": {"kind": "NEXTPANEL", "username": "acme8001",
                                           "email": "a8001@acme.example"}})
    finally:
        fra.knobs.update({"hang": False, "fault_methods": None})
    error = body["errors"][0]
    assert error["extensions"]["code"] == "PROVIDER_UNAVAILABLE"
    assert error["extensions"]["retryable"] is True
    assert ams.users == ams_before  # not tried elsewhere
    assert slots(gw)["nextpanel-fra"][1] == 46  # 45 configured + the slot that stays taken
