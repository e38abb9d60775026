"""New customers on (issue 19): the seed's order flow in one call, panel users, login links
and root passwords, over real HTTP to the simulated panels, with a real SQLite file."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from panelql.application import ids
from panelql.domain.records import Ref, ResourceType
from panelql_sim.catalyst import DEFAULT_TEMPLATE, CatalystSim
from panelql_sim.directadmin import DirectAdminSim
from panelql_sim.pterodactyl import PterodactylSim
from panelql_sim.runner import BackgroundServers
from panelql_sim.virtfusion import VirtFusionSim
from tests.e2e.harness import GatewayUnderTest, serve_sim, start_gateway

PROVISION = """mutation($input: ProvisionServiceInput!, $key: String) {
  provisionService(input: $input, idempotencyKey: $key) {
    replayed accountCreated serverCreated initialPassword
    account { id username email }
    server { id name owner { id email } }
    operation { id status }
    login { supported url expiresAt reason } } }"""
LOGIN = """mutation($r: ID!, $key: String) { createLoginUrl(resource: $r, idempotencyKey: $key) {
  replayed url expiresAt username warnings } }"""
RESET = """mutation($id: ID!, $key: String) { resetServerPassword(id: $id, idempotencyKey: $key) {
  replayed user password warnings server { id } } }"""
CREATE_ACCOUNT = """mutation($input: CreateAccountInput!) { createAccount(input: $input) {
  account { id username email externalRef } } }"""
OPERATION = "query($id: ID!) { operation(id: $id) { status error { code message } } }"


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onboarding") / "onboarding.db"


@pytest.fixture(scope="module")
def gw(background: BackgroundServers, db_path: Path) -> Iterator[GatewayUnderTest]:
    catalyst = CatalystSim(servers=4, nodes=2)
    ptero = PterodactylSim(servers=4, nodes=2, users=3)
    vf = VirtFusionSim(servers=4, hypervisors=2, users=3)
    da = DirectAdminSim(users=3)
    for sim in (catalyst, ptero, vf, da):
        sim.knobs.transition_seconds = 0.2
    entries = [
        serve_sim(background, "ob-cat", catalyst, "catalyst", {"api_key": catalyst.api_key},
                  options={"default_template": DEFAULT_TEMPLATE}),
        serve_sim(background, "ob-ptero", ptero, "pterodactyl",
                  {"application_key": ptero.application_key, "client_key": ptero.client_key}),
        serve_sim(background, "ob-vf", vf, "virtfusion", {"api_token": vf.api_token},
                  path="/api/v1"),
        serve_sim(background, "ob-da", da, "directadmin",
                  {"username": da.username, "password": da.password}),
    ]
    yield start_gateway(background, "gw-onboarding",
                        {"ob-cat": catalyst, "ob-ptero": ptero, "ob-vf": vf, "ob-da": da},
                        entries, db_path, operation_poll_seconds=0.05)


def run(gw: GatewayUnderTest, text: str, variables: dict[str, Any], **headers: str
        ) -> dict[str, Any]:
    body = gw.query(text, variables, **headers)
    assert "errors" not in body, body
    (payload,) = body["data"].values()
    return payload  # type: ignore[no-any-return]


def error_of(gw: GatewayUnderTest, text: str, variables: dict[str, Any], **headers: str
             ) -> dict[str, Any]:
    body = gw.query(text, variables, **headers)
    assert body.get("errors"), body
    return body["errors"][0]  # type: ignore[no-any-return]


def wait_operation(gw: GatewayUnderTest, op_id: str, timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        op = gw.query(OPERATION, {"id": op_id})["data"]["operation"]
        if op["status"] in ("SUCCEEDED", "FAILED"):
            return op  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"operation {op_id} did not finish")


def catalyst_order(customer: str, username: str, service: str) -> dict[str, Any]:
    return {"customerRef": customer, "provider": "ob-cat",
            "account": {"username": username, "email": f"{username}@example.com"},
            "server": {"name": f"{username} Minecraft Server", "externalRef": service,
                       "resources": {"memoryMb": 1024, "cpuCores": 1, "diskMb": 5120},
                       "ports": [25565]}}


def sim(gw: GatewayUnderTest, name: str) -> Any:
    return gw.sims[name]


def test_catalyst_order_in_one_call_then_replayed(gw: GatewayUnderTest) -> None:
    cat = sim(gw, "ob-cat")
    users, servers = len(cat.users), len(cat.servers)
    order = catalyst_order("whmcs:501", "newcust501", "whmcs:service:501")
    first = run(gw, PROVISION, {"input": order, "key": "order-501"})
    assert first["accountCreated"] and first["serverCreated"] and not first["replayed"]
    assert first["server"]["owner"]["id"] == first["account"]["id"]
    assert first["server"]["owner"]["email"] == "newcust501@example.com"
    assert first["login"]["supported"] is False and first["login"]["url"] is None
    assert "Catalyst has no one-time login link" in first["login"]["reason"]
    assert len(first["initialPassword"]) >= 20  # generated: Catalyst needs one
    assert wait_operation(gw, first["operation"]["id"])["status"] == "SUCCEEDED"
    assert (len(cat.users), len(cat.servers)) == (users + 1, servers + 1)

    again = run(gw, PROVISION, {"input": order, "key": "order-501"})
    assert again["replayed"] and again["server"]["id"] == first["server"]["id"]
    assert again["initialPassword"] is None  # a secret is handed out once
    assert (len(cat.users), len(cat.servers)) == (users + 1, servers + 1)
    # The customer's user is linked: its next order reuses it (a new key, a new service).
    second = run(gw, PROVISION, {"input": catalyst_order("whmcs:501", "newcust501",
                                                         "whmcs:service:502"), "key": "o-502"})
    assert not second["accountCreated"] and second["serverCreated"]
    assert second["account"]["id"] == first["account"]["id"]
    assert len(cat.users) == users + 1


def test_panel_down_between_user_and_server_then_retry_finishes(gw: GatewayUnderTest) -> None:
    cat = sim(gw, "ob-cat")
    users, servers = len(cat.users), len(cat.servers)
    order = catalyst_order("whmcs:601", "crash601", "whmcs:service:601")
    # The user is created, then the panel fails every server creation.
    cat.knobs.update({"fail_status": 503, "fault_methods": ["POST"],
                      "fault_paths": ["/api/servers"]})
    try:
        error = error_of(gw, PROVISION, {"input": order, "key": "order-601"})
    finally:
        cat.knobs.update({"fail_status": None, "fault_methods": None, "fault_paths": None})
    assert error["extensions"]["code"] == "PROVIDER_UNAVAILABLE"
    assert (len(cat.users), len(cat.servers)) == (users + 1, servers)

    retried = run(gw, PROVISION, {"input": order, "key": "order-601"})
    assert not retried["replayed"]
    assert not retried["accountCreated"] and retried["serverCreated"]
    assert (len(cat.users), len(cat.servers)) == (users + 1, servers + 1)
    owner = retried["server"]["owner"]["id"]
    uid = ids.decode(owner, ResourceType.ACCOUNT).id
    assert sum(1 for s in cat.servers.values() if s.owner_id == uid) == 1
    # Once done, the key replays; nothing more is created.
    assert run(gw, PROVISION, {"input": order, "key": "order-601"})["replayed"]
    assert (len(cat.users), len(cat.servers)) == (users + 1, servers + 1)


def test_server_made_by_an_interrupted_attempt_is_found_not_doubled(gw: GatewayUnderTest
                                                                     ) -> None:
    """The attempt died after the panel created the server (its answer lost): a retry with a
    new key finds the user by its link and the server by the service reference."""
    cat = sim(gw, "ob-cat")
    order = catalyst_order("whmcs:701", "lost701", "whmcs:service:701")
    first = run(gw, PROVISION, {"input": order, "key": "order-701-a"})
    servers = len(cat.servers)
    retried = run(gw, PROVISION, {"input": order, "key": "order-701-b"})
    assert not retried["accountCreated"] and not retried["serverCreated"]
    assert retried["server"]["id"] == first["server"]["id"]
    assert len(cat.servers) == servers


def test_pterodactyl_user_from_an_interrupted_attempt_is_adopted_by_external_id(
        gw: GatewayUnderTest) -> None:
    ptero = sim(gw, "ob-ptero")
    made = run(gw, CREATE_ACCOUNT, {"input": {
        "provider": "ob-ptero", "username": "orphan801", "email": "orphan801@example.com",
        "name": "Orphan Customer", "externalRef": "whmcs:801"}})["account"]
    assert made["externalRef"] == "whmcs:801"
    users = len(ptero.users)
    order = {"customerRef": "whmcs:801", "provider": "ob-ptero",
             "account": {"username": "orphan801", "email": "orphan801@example.com",
                         "name": "Orphan Customer"},
             "server": {"name": "orphan801 server", "template": "1/1",
                        "resources": {"memoryMb": 1024, "cpuCores": 1, "diskMb": 5120}}}
    done = run(gw, PROVISION, {"input": order, "key": "order-801"})
    assert not done["accountCreated"] and done["account"]["id"] == made["id"]
    assert done["server"]["owner"]["id"] == made["id"] and len(ptero.users) == users
    assert done["login"]["supported"] is False
    assert "Pterodactyl" in done["login"]["reason"]


@pytest.mark.parametrize(("change", "field"), [
    ({"email": "player2@example.com"}, "email"),
    ({"username": "player2"}, "username"),
    ({"externalRef": "billing-2"}, "externalRef"),
])
def test_pterodactyl_taken_user_fields_are_conflicts_naming_the_field(
        gw: GatewayUnderTest, change: dict[str, str], field: str) -> None:
    ptero = sim(gw, "ob-ptero")
    users = len(ptero.users)
    fresh = {"provider": "ob-ptero", "username": "fresh900", "email": "fresh900@example.com",
             "name": "Fresh Person"}
    error = error_of(gw, CREATE_ACCOUNT, {"input": {**fresh, **change}})
    assert error["extensions"]["code"] == "CONFLICT", error
    assert error["extensions"]["field"] == field
    assert len(ptero.users) == users


def test_pterodactyl_field_rules_come_back_per_field(gw: GatewayUnderTest) -> None:
    error = error_of(gw, CREATE_ACCOUNT, {"input": {
        "provider": "ob-ptero", "username": "single901", "email": "single901@example.com",
        "name": "Cher"}})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "name"
    assert "last name" in error["message"]


def test_catalyst_taken_email_is_a_conflict_naming_it(gw: GatewayUnderTest) -> None:
    run(gw, CREATE_ACCOUNT, {"input": {"provider": "ob-cat", "username": "dup910",
                                       "email": "dup910@example.com", "password": "s3cret-pw!"}})
    error = error_of(gw, CREATE_ACCOUNT, {"input": {
        "provider": "ob-cat", "username": "other910", "email": "dup910@example.com",
        "password": "s3cret-pw!"}})
    assert error["extensions"]["code"] == "CONFLICT"
    assert error["extensions"]["field"] == "email"


def vf_order(customer: str, ext: str, username: str) -> dict[str, Any]:
    return {"customerRef": customer, "provider": "ob-vf",
            "account": {"username": username, "email": f"{username}@example.com",
                        "name": "Vee Eff", "externalRef": ext},
            "server": {"name": f"{username}-vps", "template": "1",
                       "resources": {"memoryMb": 2048, "cpuCores": 1, "diskMb": 51200}}}


def test_virtfusion_order_with_a_working_one_time_login_link(gw: GatewayUnderTest) -> None:
    vf = sim(gw, "ob-vf")
    done = run(gw, PROVISION, {"input": vf_order("whmcs:1201", "1201", "vfcust1201"),
                               "key": "vf-1201"})
    assert done["accountCreated"] and done["serverCreated"]
    assert done["server"]["owner"]["email"] == "vfcust1201@example.com"
    url = done["login"]["url"]
    assert done["login"]["supported"] and url and "/sso/login/" in url
    assert done["initialPassword"] is None  # VirtFusion users come in by link
    with httpx.Client() as browser:
        assert browser.get(url).status_code == 200  # logs in once…
        assert browser.get(url).status_code == 403  # …and never again
    server_id = ids.decode(done["server"]["id"], ResourceType.SERVER).id
    assert vf.sso_logins[-1][1] == int(server_id)
    replay = run(gw, PROVISION, {"input": vf_order("whmcs:1201", "1201", "vfcust1201"),
                                 "key": "vf-1201"})
    assert replay["replayed"] and replay["login"]["url"] is None
    assert "handed out once" in replay["login"]["reason"]


def test_virtfusion_login_url_and_root_password_are_returned_once(gw: GatewayUnderTest) -> None:
    vf = sim(gw, "ob-vf")
    done = run(gw, PROVISION, {"input": vf_order("whmcs:1301", "1301", "vfcust1301"),
                               "key": "vf-1301"})
    wait_operation(gw, done["operation"]["id"])
    server = done["server"]["id"]
    link = run(gw, LOGIN, {"r": server, "key": "login-1301"})
    assert link["url"].startswith("http") and link["expiresAt"] is None
    again = run(gw, LOGIN, {"r": server, "key": "login-1301"})
    assert again["replayed"] and again["url"] is None and again["warnings"]
    reset = run(gw, RESET, {"id": server, "key": "reset-1301"})
    sid = int(ids.decode(server, ResourceType.SERVER).id)
    assert reset["user"] == "root" and reset["password"] == vf.root_passwords[sid]
    replayed = run(gw, RESET, {"id": server, "key": "reset-1301"})
    assert replayed["replayed"] and replayed["password"] is None


def test_virtfusion_needs_a_numeric_relation_id(gw: GatewayUnderTest) -> None:
    vf = sim(gw, "ob-vf")
    users = len(vf.users)
    order = vf_order("whmcs:1401", "not-a-number", "vfcust1401")
    error = error_of(gw, PROVISION, {"input": order, "key": "vf-1401"})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "externalRef"
    assert len(vf.users) == users


def test_directadmin_login_url_for_an_account(gw: GatewayUnderTest) -> None:
    da = sim(gw, "ob-da")
    user = next(iter(da.users))
    account = ids.encode(Ref("ob-da", ResourceType.ACCOUNT, user))
    link = run(gw, LOGIN, {"r": account})
    assert link["url"].startswith(f"{da.public_url}/CMD_LOGIN_URL?hash=")
    assert link["username"] == user and link["expiresAt"]
    assert da.login_urls[-1] == user


def test_panels_without_login_links_say_why(gw: GatewayUnderTest) -> None:
    for name, words in (("ob-ptero", "Pterodactyl"), ("ob-cat", "Catalyst")):
        server = next(iter(sim(gw, name).servers))
        error = error_of(gw, LOGIN, {"r": ids.encode(Ref(name, ResourceType.SERVER,
                                                         str(server)))})
        assert error["extensions"]["code"] == "NOT_SUPPORTED"
        assert words in error["message"] and error["extensions"]["field"] == "resource"


@pytest.mark.parametrize(("resource", "code"), [
    ("garbage", "BAD_USER_INPUT"),
    (ids.encode(Ref("ob-vf", ResourceType.NODE, "1")), "BAD_USER_INPUT"),
    (ids.encode(Ref("ob-vf", ResourceType.SERVER, "999999")), "NOT_FOUND"),
    (ids.encode(Ref("ob-vf", ResourceType.SERVER, "x/../1")), "NOT_FOUND"),
    (ids.encode(Ref("nope", ResourceType.SERVER, "1")), "NOT_FOUND"),
])
def test_login_url_invalid_ids(gw: GatewayUnderTest, resource: str, code: str) -> None:
    assert error_of(gw, LOGIN, {"r": resource})["extensions"]["code"] == code


def test_customer_keys_only_get_links_to_their_own_servers(gw: GatewayUnderTest) -> None:
    mine = run(gw, PROVISION, {"input": vf_order("whmcs:1501", "1501", "vfcust1501"),
                               "key": "vf-1501"})
    theirs = run(gw, PROVISION, {"input": vf_order("whmcs:1502", "1502", "vfcust1502"),
                                 "key": "vf-1502"})
    key = gw.create_key(["login.create", "server.password", "server.view"],
                        name="customer-1501", customer_ref="whmcs:1501")
    own = run(gw, LOGIN, {"r": mine["server"]["id"]}, **{"x-api-key": key})
    assert own["url"]
    vf = sim(gw, "ob-vf")
    tokens, resets = len(vf.sso_tokens), dict(vf.root_passwords)
    for text, var in ((LOGIN, "r"), (RESET, "id")):
        error = error_of(gw, text, {var: theirs["server"]["id"]}, **{"x-api-key": key})
        assert error["extensions"]["code"] == "NOT_FOUND"
    assert (len(vf.sso_tokens), vf.root_passwords) == (tokens, resets)  # nothing minted
    order = error_of(gw, PROVISION, {"input": vf_order("whmcs:1501", "1501", "vfcust1501")},
                     **{"x-api-key": key})
    assert order["extensions"]["code"] == "FORBIDDEN"


def test_one_time_secrets_never_reach_logs_audit_or_idempotency_records(
        gw: GatewayUnderTest, db_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    done = run(gw, PROVISION, {"input": vf_order("whmcs:1601", "1601", "vfcust1601"),
                               "key": "vf-1601"})
    wait_operation(gw, done["operation"]["id"])
    link = run(gw, LOGIN, {"r": done["server"]["id"], "key": "login-1601"})
    reset = run(gw, RESET, {"id": done["server"]["id"], "key": "reset-1601"})
    cat = run(gw, PROVISION, {"input": catalyst_order("whmcs:1602", "sec1602", "svc:1602"),
                              "key": "cat-1602"})
    secrets = [done["login"]["url"], link["url"], reset["password"], cat["initialPassword"]]
    assert all(secrets)
    token_parts = [s.split("/sso/login/")[-1].split("?")[0] for s in secrets[:2]]
    # The capture did see the gateway's calls (httpx logs each request line), not nothing.
    assert "serverAuthenticationTokens" in caplog.text and "resetPassword" in caplog.text
    for secret in [*secrets, *token_parts]:
        assert secret not in caplog.text
    with sqlite3.connect(db_path) as db:
        stored = " ".join(str(row) for table in ("audit_log", "idempotency_records")
                          for row in db.execute(f"SELECT * FROM {table}"))
    assert "createLoginUrl" in stored and "resetServerPassword" in stored
    for secret in [*secrets, *token_parts]:
        assert secret not in stored


@pytest.mark.parametrize(("provider", "code"), [
    ("ob-da", "NOT_SUPPORTED"),  # a hosting panel: no servers to order
    ("no-such-panel", "NOT_FOUND"),
])
def test_orders_need_a_compute_panel(gw: GatewayUnderTest, provider: str, code: str) -> None:
    order = {**catalyst_order("whmcs:1701", "wrong1701", "svc:1701"), "provider": provider}
    error = error_of(gw, PROVISION, {"input": order})
    assert error["extensions"]["code"] == code and error["extensions"]["field"] == "provider"


def test_bad_order_input_is_refused_before_any_panel_write(gw: GatewayUnderTest) -> None:
    cat = sim(gw, "ob-cat")
    users, servers = len(cat.users), len(cat.servers)
    for change, field in ((("account", "email"), "not-an-email"),
                          (("server", "resources"), {"memoryMb": -5}),
                          (("account", "username"), "Bad Name!")):
        order = catalyst_order("whmcs:1801", "good1801", "svc:1801")
        order[change[0]] = {**order[change[0]], change[1]: field}
        error = error_of(gw, PROVISION, {"input": order, "key": f"bad-{change[1]}"})
        assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    options = catalyst_order("whmcs:1801", "good1801", "svc:1801")
    options["server"]["options"] = "s"  # JSON, but not an object (found by the fuzz test)
    assert error_of(gw, PROVISION, {"input": options})["extensions"]["field"] == "server.options"
    bad_customer = {**catalyst_order("not a ref!", "good1801", "svc:1801")}
    error = error_of(gw, PROVISION, {"input": bad_customer})
    assert error["extensions"]["field"] == "customerRef"
    assert (len(cat.users), len(cat.servers)) == (users, servers)


@pytest.mark.parametrize("options", ["s", ["ab"]])
def test_create_server_options_must_be_an_object(gw: GatewayUnderTest, options: Any) -> None:
    """A string crashed createServer (INTERNAL) and ["ab"] became {"a": "b"}; both shared the
    options handling provisionService now reuses."""
    error = error_of(gw, """mutation($o: JSON) { createServer(input: {provider: "ob-cat",
        name: "opt test", resources: {memoryMb: 1024, cpuCores: 1, diskMb: 4096},
        options: $o}) { replayed } }""", {"o": options})
    assert error["extensions"] == {**error["extensions"], "code": "BAD_USER_INPUT",
                                   "field": "options"}
