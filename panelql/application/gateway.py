"""The long-lived runtime the resolvers work against: provider adapters, database, settings."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from panelql.application.errors import NotFoundError
from panelql.application.rate_limit import LocalRateLimiter, RateLimiter
from panelql.application.write_locks import LocalWriteLocks, WriteLocks
from panelql.db.account_ledger import DatabaseLedger
from panelql.db.api_keys import ApiKeys
from panelql.db.customer_links import CustomerLinks
from panelql.db.engine import Sessions
from panelql.db.repositories import Audit, Idempotency, Operations
from panelql.events.bus import EventBus, InProcessBus
from panelql.providers.contract import Provider
from panelql.providers.errors import ProviderError
from panelql.providers.http import ClientFactory
from panelql.providers.ledger import LedgerUser
from panelql.settings import Settings

P = TypeVar("P", bound=Provider)


@dataclass
class Health:
    ok: bool
    latency_ms: float | None
    checked_at: datetime
    error: str | None = None
    code: str | None = None


@dataclass
class Gateway:
    settings: Settings
    providers: dict[str, Provider]
    sessions: Sessions
    bus: EventBus = field(default_factory=InProcessBus)
    # The billing automation engine (application/automation/engine.py), set by the app's
    # lifespan; typed loosely because that package builds on this module.
    automation: Any = None
    # The HTTP clients' factory, which holds each connection's guard (retries, breaker); None
    # when the adapters were built elsewhere (tests).
    clients: ClientFactory | None = None
    _health: dict[str, Health] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from panelql.application.operations import OperationTracker
        from panelql.application.probes import resumer

        self.audit = Audit(self.sessions)
        self.idempotency = Idempotency(self.sessions)
        self.operations = Operations(self.sessions)
        self.customer_links = CustomerLinks(self.sessions)
        self.keys = ApiKeys(self.sessions)
        self.rate_limiter: RateLimiter = LocalRateLimiter()
        # Read-modify-write changes upstream (a PowerDNS rrset): Redis-backed when scaled out.
        self.write_locks: WriteLocks = LocalWriteLocks()
        # Panels that cannot list or count their accounts (NextPanel) keep them here.
        self.ledger = DatabaseLedger(self.sessions)
        for provider in self.providers.values():
            if isinstance(provider, LedgerUser):
                provider.attach_ledger(self.ledger)
        watcher = self.settings.watcher
        # Operations are leased like watched connections: a dead replica's are taken over
        # within lease_seconds plus one heartbeat (at most one fast poll interval).
        self.tracker = OperationTracker(
            self.operations, self.bus, poll_seconds=self.settings.operation_poll_seconds,
            timeout_seconds=self.settings.operation_timeout_seconds,
            lease_seconds=watcher.lease_seconds,
            heartbeat_seconds=min(watcher.lease_seconds / 3, watcher.fast_seconds),
            resumer=resumer(self.bus, self.providers))

    def breaker_states(self) -> dict[str, str]:
        """``{connection: "closed" | "open" | "half_open"}`` for every guarded connection."""
        return self.clients.breaker_states() if self.clients is not None else {}

    def provider(self, name: str) -> Provider:
        try:
            return self.providers[name]
        except KeyError:
            raise NotFoundError(f"no provider connection named {name!r}") from None

    def of_family(self, family: type[P], names: Iterable[str] | None = None) -> list[P]:
        wanted = set(names) if names is not None else None
        return [
            p for p in self.providers.values()
            if isinstance(p, family) and (wanted is None or p.name in wanted)
        ]

    async def health(self, provider: Provider) -> Health:
        """Health of one connection, cached briefly so dashboards do not hammer panels."""
        cached = self._health.get(provider.name)
        max_age = self.settings.health_cache_seconds
        if cached and (datetime.now(UTC) - cached.checked_at).total_seconds() < max_age:
            return cached
        started = time.perf_counter()
        try:
            await asyncio.wait_for(provider.check_health(), provider.config.timeout_seconds)
            result = Health(True, (time.perf_counter() - started) * 1000, datetime.now(UTC))
        except ProviderError as exc:
            result = Health(False, None, datetime.now(UTC), exc.message, exc.code)
        except TimeoutError:
            result = Health(False, None, datetime.now(UTC), "health check timed out",
                            "PROVIDER_UNAVAILABLE")
        self._health[provider.name] = result
        return result

    def record_failure(self, provider: str, error: ProviderError) -> None:
        """A failed query marks the connection unhealthy until the next check."""
        self._health[provider] = Health(False, None, datetime.now(UTC), error.message, error.code)

    async def aclose(self) -> None:
        await self.tracker.aclose()
        await self.bus.aclose()
        await asyncio.gather(*(p.aclose() for p in self.providers.values()),
                             return_exceptions=True)
