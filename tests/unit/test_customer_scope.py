"""What a customer reference owns (application/customers.py), case by case, without servers:
the end-to-end matrix is tests/security/test_tenancy.py. These run in milliseconds, so the
mutation run (`make mutation`) uses them to judge every mutant of the module."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from unittest.mock import Mock

import pytest

from panelql.application import customer_scope, customers
from panelql.application.customer_scope import BILLING_CUSTOMER, CustomerScope
from panelql.application.errors import BadUserInput, NotFoundError, StateConflict
from panelql.application.ids import encode
from panelql.domain.records import (
    AccountRecord,
    BackupRecord,
    DnsZoneRecord,
    InvoiceRecord,
    Money,
    NodeRecord,
    Ref,
    ResourceType,
    ServerRecord,
)
from panelql.domain.state import Link
from panelql.domain.status import (
    AccountStatus,
    BackupStatus,
    DnsZoneStatus,
    InvoiceStatus,
    NodeStatus,
)
from panelql.providers.contract import BillingProvider


def server(conn: str, sid: str, owner: str | None = None) -> ServerRecord:
    return ServerRecord(conn, sid, "s", None, None, owner_id=owner)


def account(conn: str, aid: str) -> AccountRecord:
    return AccountRecord(conn, aid, "user", None, AccountStatus.ACTIVE)


def zone(conn: str, zid: str, account_id: str | None = None) -> DnsZoneRecord:
    return DnsZoneRecord(conn, zid, "example.com", DnsZoneStatus.ACTIVE, account_id=account_id)


def invoice(conn: str, customer: str | None) -> InvoiceRecord:
    zero = Money(Decimal("0"), "USD")
    return InvoiceRecord(conn, "in_1", None, InvoiceStatus.OPEN, None, zero, zero, zero,
                         customer_id=customer)


def scope(*refs: Ref, billing: dict[str, list[str]] | None = None) -> CustomerScope:
    made = CustomerScope("whmcs:1", direct=set(refs))
    for conn, ids in (billing or {}).items():
        made.billing[conn].extend(ids)
    return made


ACC = Ref("cat", ResourceType.ACCOUNT, "u1")


def test_servers_owned_directly_or_through_their_owner_account() -> None:
    direct = scope(Ref("cat", ResourceType.SERVER, "s1"))
    assert direct.owns(server("cat", "s1"))
    assert not direct.owns(server("cat", "s2"))
    assert not direct.owns(server("other", "s1"))  # same id on another connection
    via_account = scope(ACC)
    assert via_account.owns(server("cat", "s9", owner="u1"))
    assert not via_account.owns(server("cat", "s9", owner="u2"))
    assert not via_account.owns(server("other", "s9", owner="u1"))
    assert not via_account.owns(server("cat", "s9", owner=None))
    # a server linked directly is not an account link, and the other way round
    assert not scope(Ref("cat", ResourceType.SERVER, "u1")).owns(server("cat", "x", owner="u1"))


def test_accounts_and_zones() -> None:
    mine = scope(ACC, Ref("dns", ResourceType.DNS_ZONE, "z1"))
    assert mine.owns(account("cat", "u1"))
    assert not mine.owns(account("cat", "u2"))
    assert not mine.owns(account("dns", "u1"))
    assert mine.owns(zone("dns", "z1"))
    assert not mine.owns(zone("dns", "z2"))
    assert not mine.owns(zone("cat", "z1"))
    assert mine.owns(zone("cat", "zz", account_id="u1"))  # the account's zone
    assert not mine.owns(zone("cat", "zz", account_id="u2"))
    assert not mine.owns(zone("cat", "zz", account_id=None))
    assert not scope(Ref("cat", ResourceType.SERVER, "u1")).owns(account("cat", "u1"))


def test_owns_account_needs_an_account_link_on_that_connection() -> None:
    mine = scope(ACC)
    assert mine.owns_account("cat", "u1")
    assert not mine.owns_account("cat", None)
    assert not mine.owns_account("cat", "u2")
    assert not mine.owns_account("dns", "u1")


def test_invoices_by_linked_billing_customer_per_connection() -> None:
    mine = scope(billing={"stripe": ["cus_A"]})
    assert mine.owns(invoice("stripe", "cus_A"))
    assert not mine.owns(invoice("stripe", "cus_B"))
    assert not mine.owns(invoice("paypal", "cus_A"))
    assert not mine.owns(invoice("stripe", None))
    assert not scope().owns(invoice("stripe", "cus_A"))


def test_backups_follow_a_directly_linked_server_and_nodes_are_nobodys() -> None:
    mine = scope(Ref("cat", ResourceType.SERVER, "s1"))
    assert mine.owns(BackupRecord("cat", "b1", "s1", "n", BackupStatus.COMPLETED))
    assert not mine.owns(BackupRecord("cat", "b1", "s2", "n", BackupStatus.COMPLETED))
    assert not mine.owns(BackupRecord("pve", "b1", "s1", "n", BackupStatus.COMPLETED))
    node = NodeRecord("cat", "n1", "node", NodeStatus.ONLINE, None)
    assert not scope(Ref("cat", ResourceType.NODE, "n1")).owns(node)
    assert not mine.owns(object())


@pytest.mark.parametrize("ref", ["whmcs:42", "a", "A1_b.c:d@e/f-g", "x" * 128])
def test_valid_customer_refs(ref: str) -> None:
    assert customers.valid_customer_ref(ref) == ref


@pytest.mark.parametrize("ref", ["", "x" * 129, "-lead", ":lead", "has space", "ünïcode",
                                 "semi;colon", "new\nline"])
def test_invalid_customer_refs(ref: str) -> None:
    with pytest.raises(BadUserInput) as caught:
        customers.valid_customer_ref(ref)
    assert caught.value.extensions.get("field") == "customerRef"
    assert caught.value.message == "customerRef must be 1 to 128 characters like whmcs:42"


# -- the parts that talk to the gateway, with a stand-in link store -------------------------
@dataclass
class FakeLinks:
    rows: list[Link] = field(default_factory=list)
    owner: dict[tuple[str, str, str], str] = field(default_factory=dict)
    reads: int = 0

    async def of_customer(self, ref: str) -> list[Link]:
        self.reads += 1
        return [r for r in self.rows if r.customer_ref == ref]

    async def link(self, link: Link) -> tuple[Link, bool]:
        key = (link.connection, link.resource_type, link.resource_id)
        if key in self.owner:
            if self.owner[key] != link.customer_ref:
                raise ValueError(self.owner[key])
            return link, False
        self.owner[key] = link.customer_ref
        self.rows.append(link)
        return link, True

    async def unlink(self, link: Link) -> bool:
        before = len(self.rows)
        self.rows = [r for r in self.rows if r != link]
        self.owner.pop((link.connection, link.resource_type, link.resource_id), None)
        return len(self.rows) != before


def billing_connection() -> Any:
    """Something link_target takes for a billing connection (only its type matters)."""
    return Mock(spec=BillingProvider)


@dataclass
class FakeGateway:
    customer_links: FakeLinks
    providers: dict[str, Any] = field(default_factory=dict)


@dataclass
class FakeContext:
    gateway: FakeGateway
    scopes: dict[str, Any] = field(default_factory=dict)


def ctx_with(*rows: Link, providers: dict[str, Any] | None = None) -> Any:
    return FakeContext(FakeGateway(FakeLinks(list(rows)), providers or {}))


async def test_scope_of_reads_links_once_per_request() -> None:
    ctx = ctx_with(Link("whmcs:1", "cat", "Server", "s1"), Link("whmcs:1", "cat", "Account", "u1"),
                   Link("whmcs:1", "stripe", BILLING_CUSTOMER, "cus_A"),
                   Link("whmcs:1", "stripe", BILLING_CUSTOMER, "cus_B"),
                   Link("whmcs:2", "cat", "Server", "s2"))
    made = await customer_scope.scope_of(ctx, "whmcs:1")
    assert made.customer_ref == "whmcs:1"
    assert made.direct == {Ref("cat", ResourceType.SERVER, "s1"), ACC}
    assert made.billing == {"stripe": ["cus_A", "cus_B"]}
    assert await customer_scope.scope_of(ctx, "whmcs:1") is made
    assert ctx.gateway.customer_links.reads == 1
    other = await customer_scope.scope_of(ctx, "whmcs:2")
    assert other.direct == {Ref("cat", ResourceType.SERVER, "s2")} and not other.billing
    assert ctx.gateway.customer_links.reads == 2


async def test_link_target_checks_its_arguments() -> None:
    ctx = ctx_with(providers={"stripe": billing_connection(), "cat": object()})
    for resource, billing in ((None, None), ("x", "cus_A")):
        with pytest.raises(BadUserInput) as caught:
            await customers.link_target(ctx, resource, "stripe", billing)
        assert caught.value.extensions.get("field") == "resource"
        assert caught.value.message == "give either resource or billingCustomer"
    made = await customers.link_target(ctx, None, "stripe", "cus_A")
    assert made == Link("", "stripe", BILLING_CUSTOMER, "cus_A")
    for provider in (None, "cat", "missing"):
        with pytest.raises(BadUserInput) as caught:
            await customers.link_target(ctx, None, provider, "cus_A")
        assert caught.value.extensions.get("field") == "provider"
        assert caught.value.message == "billingCustomer needs the billing provider's name"
    node = encode(Ref("cat", ResourceType.NODE, "n1"))
    with pytest.raises(BadUserInput) as caught:
        await customers.link_target(ctx, node, None, None)
    assert caught.value.extensions.get("field") == "resource"
    assert caught.value.message == "only Accounts, Servers and DnsZones can be linked"


async def test_link_target_looks_the_resource_up(monkeypatch: pytest.MonkeyPatch) -> None:
    from panelql.application import queries
    seen: list[Ref] = []
    expected_ctx: Any = None

    async def get(ctx: Any, ref: Ref) -> object:
        assert ctx is expected_ctx  # the lookup runs as the caller (its scope, its loaders)
        seen.append(ref)
        if ref.id == "gone":
            raise NotFoundError("server not found")
        return object()

    monkeypatch.setattr(queries, "get", get)
    ctx = expected_ctx = ctx_with()
    wanted = Ref("cat", ResourceType.SERVER, "s1")
    made = await customers.link_target(ctx, encode(wanted), None, None)
    assert made == Link("", "cat", "Server", "s1") and seen == [wanted]
    with pytest.raises(NotFoundError):
        await customers.link_target(ctx, encode(Ref("cat", ResourceType.SERVER, "gone")),
                                    None, None)


async def test_link_and_unlink_forget_the_cached_scope() -> None:
    ctx = ctx_with()
    target = Link("", "cat", "Server", "s1")
    assert await customers.link(ctx, "whmcs:3", Link("", "cat", "Server", "s3")) is True
    assert await customers.unlink(ctx, "whmcs:3", Link("", "cat", "Server", "s3")) is True
    await customer_scope.scope_of(ctx, "whmcs:1")
    assert await customers.link(ctx, "whmcs:1", target) is True
    assert "whmcs:1" not in ctx.scopes
    assert (await customer_scope.scope_of(ctx, "whmcs:1")).direct == {
        Ref("cat", ResourceType.SERVER, "s1")}
    assert await customers.link(ctx, "whmcs:1", target) is False  # already so
    with pytest.raises(StateConflict) as caught:
        await customers.link(ctx, "whmcs:2", target)
    assert "whmcs:1" in caught.value.message
    assert caught.value.extensions.get("currentStatus") == "LINKED"
    with pytest.raises(BadUserInput):
        await customers.link(ctx, "bad ref", target)
    await customer_scope.scope_of(ctx, "whmcs:1")
    assert await customers.unlink(ctx, "whmcs:1", target) is True
    assert "whmcs:1" not in ctx.scopes
    assert await customers.unlink(ctx, "whmcs:1", target) is False
    assert (await customer_scope.scope_of(ctx, "whmcs:1")).direct == set()
