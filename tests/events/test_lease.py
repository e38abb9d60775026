"""Leases: one holder at a time, hand-over when the holder stops renewing, and the watcher
polling only what it holds."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis

from panelql.db.snapshots import Snapshots
from panelql.events.bus import InProcessBus
from panelql.events.lease import LocalLeases, RedisLeases
from panelql.events.watcher import Watcher
from panelql.settings import WatcherSettings
from tests.events.conftest import ServedCatalyst, Sessions
from tests.waits import until


def pair(url: str, ttl: float) -> tuple[RedisLeases, RedisLeases]:
    prefix = f"panelql:test:lease:{uuid.uuid4().hex}:"
    return (RedisLeases(Redis.from_url(url), ttl_seconds=ttl, prefix=prefix, owns_client=True),
            RedisLeases(Redis.from_url(url), ttl_seconds=ttl, prefix=prefix, owns_client=True))


async def test_local_leases_always_grant() -> None:
    leases = LocalLeases()
    assert await leases.hold("any") and await leases.hold("any")
    await leases.aclose()


@pytest.mark.redis
async def test_only_one_holder_and_renewal_keeps_it(redis_url: str) -> None:
    a, b = pair(redis_url, ttl=1.5)
    try:
        assert await a.hold("cat")
        assert not await b.hold("cat")
        # a renews every 0.3 s for 2.4 s, past the TTL: b never gets it. The TTL leaves 1.2 s
        # of slack per renewal for a loaded machine.
        for _ in range(8):
            await asyncio.sleep(0.3)
            assert await a.hold("cat")
            assert not await b.hold("cat")
        assert await b.hold("other")  # leases are per connection
    finally:
        await a.aclose()
        await b.aclose()


@pytest.mark.redis
async def test_lease_moves_when_the_holder_stops_renewing(redis_url: str) -> None:
    a, b = pair(redis_url, ttl=0.4)
    try:
        assert await a.hold("cat")
        await asyncio.sleep(0.6)  # a "died": no renewals, the key expires
        assert await b.hold("cat")
        assert not await a.hold("cat")  # a comes back: compare-and-extend refuses, SET NX fails
    finally:
        await a.aclose()
        await b.aclose()


@pytest.mark.redis
async def test_release_on_shutdown_hands_over_at_once(redis_url: str) -> None:
    a, b = pair(redis_url, ttl=30)
    try:
        assert await a.hold("cat")
        assert not await b.hold("cat")
        await a.aclose()
        assert await b.hold("cat")
    finally:
        await b.aclose()


@pytest.mark.redis
async def test_two_watchers_poll_a_connection_once(
        redis_url: str, catalyst: ServedCatalyst, sessions: Sessions) -> None:
    # A long lease: a stalled loop on a loaded machine must not lose it; the hand-over below
    # comes from a's release on shutdown, not from expiry.
    settings = WatcherSettings(fast_seconds=0.1, slow_seconds=0.1, lease_seconds=10)
    a_leases, b_leases = pair(redis_url, ttl=settings.lease_seconds)
    providers = {catalyst.name: catalyst.provider}
    a = Watcher(providers, InProcessBus(), Snapshots(sessions), settings=settings,
                leases=a_leases)
    b = Watcher(providers, InProcessBus(), Snapshots(sessions), settings=settings,
                leases=b_leases)
    try:
        await a.start()
        await until(lambda: a.polls[catalyst.name] >= 1, "a took the lease and polled")
        await b.start()
        # b's loop turns as often as a's: while a polls four more times, b had as many chances
        # to take the lease, and a renewing holder must refuse it every time.
        target = a.polls[catalyst.name] + 4
        await until(lambda: a.polls[catalyst.name] >= target, "a kept polling")
        assert b.polls[catalyst.name] == 0  # the lease holder polls; the other waits
        await a.aclose()  # a shuts down (releasing) and b takes over
        await until(lambda: b.polls[catalyst.name] >= 2, "b took over after a released")
    finally:
        await a.aclose()
        await b.aclose()
