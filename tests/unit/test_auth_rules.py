"""The authorization rules (application/auth.py) and the hook that applies them to root fields
(schema/root_fields.py), without a server: fast enough for the mutation run to judge every
mutant. tests/security/ checks the same over real HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from graphql import GraphQLField, GraphQLObjectType, GraphQLSchema, GraphQLString

from panelql.application import auth
from panelql.application.context import Viewer
from panelql.application.errors import BadUserInput, Forbidden, Unauthenticated
from panelql.schema.root_fields import scope_check, wrap_root_fields

# Written from the seeds' permission names, not read from auth.py: a renamed or dropped scope
# in the product shows up here.
SEED_SCOPES = {
    "server.view", "server.create", "server.start", "server.stop", "server.restart",
    "server.suspend", "server.reinstall", "server.update", "server.delete", "server.access",
    "console.read", "backup.create", "backup.restore", "backup.delete", "account.write",
    "dns.write", "billing.read", "billing.write", "audit.read", "customer.write", "admin",
    # issue 19: a one-time login link or a new root password hands over the whole panel user
    # or server, more than any lifecycle scope, so each has a scope of its own
    "login.create", "server.password",
}
# What must never be open to a plain key, whatever else changes.
ADMIN_ONLY = {("Query", "apiKeys"), ("Mutation", "createApiKey"), ("Mutation", "revokeApiKey")}
INSTALLATION_WIDE = {"auditLog", "apiKeys", "createApiKey", "revokeApiKey", "linkCustomer",
                     "unlinkCustomer", "placementCandidates", "createServer", "createAccount",
                     "createDnsZone", "automationPolicies", "automationPaused",
                     "createAutomationPolicy", "updateAutomationPolicy",
                     "deleteAutomationPolicy", "setAutomationPaused", "runAutomationPolicy",
                     "cancelCustomerServices", "retryAutomationRun", "callOffAutomationRun",
                     "createInvoice", "refundInvoice", "provisionService",
                     "changeServerPlan"}


def viewer(*scopes: str, customer: str | None = None) -> Viewer:
    return Viewer(name="key:1:t", scopes=frozenset(scopes), customer_ref=customer)


def test_the_scope_set_is_the_seeds() -> None:
    assert auth.SCOPES == SEED_SCOPES


def test_every_rule_names_a_real_scope_or_any_key() -> None:
    for parent, table in auth.REQUIRED.items():
        for name, needed in table.items():
            assert needed == auth.ANY or needed in SEED_SCOPES, (parent, name, needed)
    assert auth.ANY == ""
    # resource(id:) checks the scope of the type its id names, in the resolver.
    assert {f for table in auth.REQUIRED.values() for f, s in table.items() if s == ""} == {
        "viewer", "resource"}


def test_admin_only_fields_need_admin() -> None:
    for parent, name in ADMIN_ONLY:
        assert auth.REQUIRED[parent][name] == "admin"
        with pytest.raises(Forbidden):
            auth.check(viewer(*(SEED_SCOPES - {"admin"})), parent, name)
        auth.check(viewer("admin"), parent, name)


def test_writes_need_their_own_scope_not_a_read_scope() -> None:
    for name, needed in auth.REQUIRED["Mutation"].items():
        assert needed not in ("", "server.view", "billing.read", "audit.read"), name
    # the read side: viewing never needs a write scope
    for name, needed in auth.REQUIRED["Query"].items():
        assert not needed.endswith((".write", ".create", ".delete")), name


@pytest.mark.parametrize(("parent", "name", "needed"), [
    ("Query", "servers", "server.view"), ("Query", "invoices", "billing.read"),
    ("Query", "auditLog", "audit.read"), ("Query", "customerLinks", "billing.read"),
    ("Mutation", "startServer", "server.start"), ("Mutation", "killServer", "server.stop"),
    ("Mutation", "deleteServer", "server.delete"), ("Mutation", "payInvoice", "billing.write"),
    ("Mutation", "deleteAccount", "account.write"), ("Mutation", "linkCustomer",
                                                     "customer.write"),
    ("Mutation", "restoreBackup", "backup.restore"), ("Mutation", "upsertDnsRecord",
                                                      "dns.write"),
    ("Subscription", "invoiceStatusChanged", "billing.read"),
    ("Subscription", "serverStatusChanged", "server.view"),
])
def test_check_refuses_without_the_scope_and_admits_with_it(parent: str, name: str,
                                                            needed: str) -> None:
    assert auth.REQUIRED[parent][name] == needed
    with pytest.raises(Forbidden) as caught:
        auth.check(viewer(*(SEED_SCOPES - {needed, "admin"})), parent, name)
    assert caught.value.details == {"scope": needed}
    assert needed in caught.value.message
    auth.check(viewer(needed), parent, name)
    auth.check(viewer("admin"), parent, name)  # admin implies every scope


def test_viewer_needs_any_key_only() -> None:
    auth.check(viewer(), "Query", "viewer")
    auth.check(viewer(customer="whmcs:1"), "Query", "viewer")


def test_fields_without_a_rule_are_refused() -> None:
    for parent, name in (("Query", "secretThing"), ("Nope", "servers"), ("Mutation", "viewer")):
        with pytest.raises(Forbidden) as caught:
            auth.check(viewer("admin"), parent, name)
        assert "no scope rule" in caught.value.message


def test_customer_bound_keys_never_reach_installation_wide_fields() -> None:
    assert auth.NOT_FOR_CUSTOMERS == INSTALLATION_WIDE
    for name in INSTALLATION_WIDE:
        parent = "Query" if name in auth.REQUIRED["Query"] else "Mutation"
        with pytest.raises(Forbidden) as caught:
            auth.check(viewer("admin", customer="whmcs:1"), parent, name)
        assert name in caught.value.message
        auth.check(viewer("admin"), parent, name)  # the same key unbound may
    auth.check(viewer("server.view", customer="whmcs:1"), "Query", "servers")


# -- keys -> viewers ---------------------------------------------------------------------------
@dataclass
class KeyInfo:
    id: int
    name: str
    scopes: list[str]
    active: bool = True
    customer_ref: str | None = None
    rate_limit_per_minute: int | None = None


class Keys:
    def __init__(self, *infos: tuple[str, KeyInfo]) -> None:
        self.by_raw = dict(infos)
        self.asked: list[str] = []

    async def find(self, raw: str) -> KeyInfo | None:
        self.asked.append(raw)
        return self.by_raw.get(raw)


async def test_viewer_for_key() -> None:
    keys: Any = Keys(("pql_good", KeyInfo(7, "billing", ["server.view"], customer_ref="whmcs:9",
                                          rate_limit_per_minute=60)),
                     ("pql_off", KeyInfo(8, "old", ["admin"], active=False)))
    found = await auth.viewer_for_key(keys, "  pql_good \n")
    assert found == Viewer(name="key:7:billing", scopes=frozenset({"server.view"}),
                           customer_ref="whmcs:9", key_id=7, rate_limit_per_minute=60)
    assert keys.asked == ["pql_good"]
    for raw, message in ((None, "send an API key in x-api-key or Authorization: Bearer"),
                         ("", "send an API key in x-api-key or Authorization: Bearer"),
                         ("pql_off", "this API key is unknown, revoked or expired"),
                         ("pql_unknown", "this API key is unknown, revoked or expired")):
        with pytest.raises(Unauthenticated) as caught:
            await auth.viewer_for_key(keys, raw)
        assert caught.value.message == message  # tells the client what to fix
    assert "pql_off" in keys.asked and "" not in keys.asked  # an empty key is not looked up


def test_validate_scopes() -> None:
    assert auth.validate_scopes(["server.view", "admin", "server.view"]) == [
        "admin", "server.view"]
    for bad in ([], ["server.view", "root", "everything"]):
        with pytest.raises(BadUserInput) as caught:
            auth.validate_scopes(bad)
        assert caught.value.details["field"] == "scopes"
        assert caught.value.details["allowed"] == sorted(SEED_SCOPES)
    with pytest.raises(BadUserInput) as caught:
        auth.validate_scopes(["server.view", "root", "everything"])
    assert caught.value.message == "unknown scopes: everything, root"
    with pytest.raises(BadUserInput) as caught:
        auth.validate_scopes([])
    assert caught.value.message == "give at least one scope"


# -- the hook on root fields -------------------------------------------------------------------
@dataclass
class Info:
    context: Any


@dataclass
class Ctx:
    viewer: Viewer


def test_scope_check_runs_before_the_resolver() -> None:
    calls: list[dict[str, Any]] = []
    seen_roots: list[Any] = []

    def resolve(root: Any, info: Any, **kwargs: Any) -> str:
        seen_roots.append((root, info))
        calls.append(kwargs)
        return "ran"

    checked = scope_check("Query", "invoices", resolve)
    with pytest.raises(Forbidden):
        checked(None, Info(Ctx(viewer("server.view"))), first=1)
    assert calls == []
    root, info = object(), Info(Ctx(viewer("billing.read")))
    assert checked(root, info, first=1) == "ran"
    assert calls == [{"first": 1}] and seen_roots == [(root, info)]


def test_wrap_root_fields_wraps_query_and_mutation_fields_only() -> None:
    def plain(root: Any, info: Any, **kwargs: Any) -> str:
        return "plain"

    def field() -> GraphQLField:
        return GraphQLField(GraphQLString, resolve=plain)

    query = GraphQLObjectType("Query", {"a": field(), "__hidden": field(),
                                        "b": GraphQLField(GraphQLString)})
    mutation = GraphQLObjectType("Mutation", {"m": field()})
    nested = GraphQLObjectType("Thing", {"x": field()})
    schema = GraphQLSchema(query=query, mutation=mutation, types=[nested])
    wrapped: list[tuple[str, str]] = []

    def wrapper(parent: str, name: str, resolve: Any) -> Any:
        wrapped.append((parent, name))
        return lambda root, info, **kw: ("wrapped", resolve(root, info, **kw))

    wrap_root_fields(schema, wrapper)
    assert sorted(wrapped) == [("Mutation", "m"), ("Query", "a")]
    assert query.fields["a"].resolve is not None
    assert query.fields["a"].resolve(None, None) == ("wrapped", "plain")
    assert query.fields["__hidden"].resolve is plain
    assert query.fields["b"].resolve is None
    assert nested.fields["x"].resolve is plain
    schema_without_mutation = GraphQLSchema(query=GraphQLObjectType("Query", {"q": field()}))
    wrap_root_fields(schema_without_mutation, wrapper)
    assert wrapped[-1] == ("Query", "q")
