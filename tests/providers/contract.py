"""Family contract suites. Every adapter's test module subclasses the ones for its families.

A subclass provides the ``env`` fixture: a :class:`ContractEnv` whose provider talks over real
HTTP to a simulator served by the session's background servers, and whose ``knobs`` are that
simulator's fault knobs. The suites check the invariants the resolvers rely on, plus the error
boundary: whatever the upstream does, the adapter raises a ProviderError subclass, never
something else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from panelql.domain.records import ServerRecord
from panelql.domain.status import (
    AccountStatus,
    BackupStatus,
    DnsZoneStatus,
    InvoiceStatus,
    NodeStatus,
    ServerStatus,
)
from panelql.providers import errors
from panelql.providers.contract import (
    BillingProvider,
    Capability,
    ComputeProvider,
    DnsProvider,
    HostingProvider,
    Provider,
)
from panelql_sim.framework import Knobs


@dataclass
class ContractEnv:
    provider: Provider
    knobs: Knobs
    # Builds the same provider with wrong credentials (for the auth failure path).
    with_bad_credentials: Callable[[], Provider]
    # Builds the same provider with a short timeout (for the hang path).
    with_timeout: Callable[[float], Provider]
    # Billing kinds: invoice id -> (total, currency) as the simulator's own data says.
    upstream_totals: Callable[[], dict[str, tuple[Decimal, str]]] | None = None


async def _expect_error(
    env: ContractEnv, call: Callable[[Provider], Awaitable[Any]], knob: dict[str, Any],
    expected: type[errors.ProviderError], provider: Provider | None = None,
) -> None:
    saved = dict(env.knobs.__dict__)
    env.knobs.update(knob)
    try:
        with pytest.raises(expected) as info:
            await call(provider or env.provider)
        assert info.value.provider == env.provider.name
        assert info.value.message
    finally:
        env.knobs.update(saved)


class ProviderContract:
    """What every adapter must do, whatever its families."""

    async def test_health_check_passes(self, env: ContractEnv) -> None:
        await env.provider.check_health()

    async def test_outage_is_unavailable(self, env: ContractEnv) -> None:
        await _expect_error(env, lambda p: p.check_health(), {"fail_status": 503},
                            errors.Unavailable)

    async def test_bad_credentials_are_authentication_failed(self, env: ContractEnv) -> None:
        bad = env.with_bad_credentials()
        with pytest.raises(errors.AuthenticationFailed) as info:
            await bad.check_health()
        assert "secret" not in info.value.message.lower()
        await bad.aclose()

    async def test_malformed_body_is_unexpected_response(self, env: ContractEnv) -> None:
        await _expect_error(env, lambda p: p.check_health(), {"malformed": True},
                            errors.UnexpectedResponse)

    async def test_hang_times_out_as_unavailable(self, env: ContractEnv) -> None:
        fast = env.with_timeout(0.3)
        await _expect_error(env, lambda p: p.check_health(), {"hang": True},
                            errors.Unavailable, provider=fast)
        await fast.aclose()

    async def test_rate_limit_is_reported(self, env: ContractEnv) -> None:
        await _expect_error(env, lambda p: p.check_health(), {"fail_status": 429},
                            errors.RateLimited)


class ComputeContract(ProviderContract):
    async def _servers(self, env: ContractEnv) -> list[ServerRecord]:
        assert isinstance(env.provider, ComputeProvider)
        servers = await env.provider.list_servers()
        assert servers, "the simulator seeds servers; the adapter returned none"
        return servers

    async def test_servers_are_well_formed(self, env: ContractEnv) -> None:
        servers = await self._servers(env)
        ids = [s.id for s in servers]
        assert len(ids) == len(set(ids))
        for server in servers:
            assert server.connection == env.provider.name
            assert server.status is None or isinstance(server.status, ServerStatus)
            assert server.name

    async def test_get_servers_returns_subset_and_skips_missing(self, env: ContractEnv) -> None:
        assert isinstance(env.provider, ComputeProvider)
        servers = await self._servers(env)
        wanted = [servers[0].id, servers[-1].id, "does-not-exist-42"]
        found = await env.provider.get_servers(wanted)
        assert set(found) == {servers[0].id, servers[-1].id}
        assert found[servers[0].id].name == servers[0].name

    async def test_nodes_have_status_and_capacity(self, env: ContractEnv) -> None:
        assert isinstance(env.provider, ComputeProvider)
        nodes = await env.provider.list_nodes()
        assert nodes
        for node in nodes:
            assert isinstance(node.status, NodeStatus)
            assert node.connection == env.provider.name
        server_nodes = {s.node_id for s in await self._servers(env) if s.node_id}
        assert server_nodes <= {n.id for n in nodes}

    async def test_live_state_for_servers_without_status(self, env: ContractEnv) -> None:
        """A kind either lists status (then every listed server carries one) or declares the
        live-state capability and answers it for every server asked."""
        assert isinstance(env.provider, ComputeProvider)
        servers = await self._servers(env)
        pending = [s.id for s in servers if s.status is None]
        if not env.provider.supports(Capability.SERVER_LIVE_STATE):
            assert pending == [], "servers without status, and no live-state call to ask"
            statuses = {s.status for s in servers}
        else:
            # Kinds whose list carries status (Proxmox) still answer live state for any
            # server: the gateway asks it for details the list lacks.
            asked = pending or [s.id for s in servers]
            states = await env.provider.get_live_states(asked)
            assert set(states) == set(asked)
            statuses = {st.status for st in states.values()}
        assert all(isinstance(st, ServerStatus) for st in statuses)
        # The simulators seed servers in mixed states: a mapping that folds them all into one
        # status (UNKNOWN, say) is broken.
        assert len(statuses) >= 2, statuses

    async def test_backups_keyed_by_every_requested_server(self, env: ContractEnv) -> None:
        assert isinstance(env.provider, ComputeProvider)
        ids = [s.id for s in await self._servers(env)][:5]
        backups = await env.provider.list_backups(ids)
        assert set(backups) == set(ids)
        flat = [b for items in backups.values() for b in items]
        assert flat, "the simulator seeds backups on the first servers"
        for sid, items in backups.items():
            for backup in items:
                assert backup.server_id == sid
                assert isinstance(backup.status, BackupStatus)


class HostingContract(ProviderContract):
    async def test_accounts_are_well_formed(self, env: ContractEnv) -> None:
        assert isinstance(env.provider, HostingProvider)
        accounts = await env.provider.list_accounts()
        assert accounts
        assert len({a.id for a in accounts}) == len(accounts)
        for account in accounts:
            assert isinstance(account.status, AccountStatus)
            assert account.username
        found = await env.provider.get_accounts([accounts[0].id, "missing-account-42"])
        assert set(found) == {accounts[0].id}


class DnsContract(ProviderContract):
    async def test_zones_with_records(self, env: ContractEnv) -> None:
        assert isinstance(env.provider, DnsProvider)
        zones = await env.provider.list_zones(with_records=True)
        assert zones
        for zone in zones:
            assert isinstance(zone.status, DnsZoneStatus)
            assert zone.records is not None
        assert any(zone.records for zone in zones)


class BillingContract(ProviderContract):
    async def test_invoices_have_exact_amounts(self, env: ContractEnv) -> None:
        """Every total equals, to the last digit, the amount the simulator holds for that
        invoice (read from its own data, in the upstream's units), in its currency."""
        assert isinstance(env.provider, BillingProvider)
        assert env.upstream_totals is not None, "billing test modules give upstream_totals"
        expected = env.upstream_totals()
        invoices = await env.provider.list_invoices()
        assert invoices and {i.id for i in invoices} <= set(expected)
        for invoice in invoices:
            assert isinstance(invoice.status, InvoiceStatus)
            amount, currency = expected[invoice.id]
            assert isinstance(invoice.total.amount, Decimal)
            assert (invoice.total.amount, invoice.total.currency.upper()) == (
                amount, currency.upper()), invoice.id
            # No float went through it: exact decimals keep no more places than the currency.
            exponent = invoice.total.amount.as_tuple().exponent
            assert isinstance(exponent, int) and exponent >= -MINOR_UNITS.get(
                currency.upper(), 2), invoice.total
        assert any(i.total.amount != i.total.amount.to_integral_value() for i in invoices), (
            "the simulators seed fractional amounts; none came through")


# ISO 4217 minor units of the currencies the simulators use (everything else: 2).
MINOR_UNITS = {"JPY": 0, "KRW": 0, "BHD": 3, "KWD": 3}


def exact_from_minor_units(minor: int, currency: str) -> Decimal:
    """An amount in the currency's minor unit (Stripe's ``total``) as an exact Decimal."""
    return Decimal(minor).scaleb(-MINOR_UNITS.get(currency.upper(), 2))
