"""RedisBus across two bus instances ("replicas") against a real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from panelql.events.model import Source, StatusEvent, Topic
from panelql.events.redis_bus import RedisBus

pytestmark = pytest.mark.redis


def event(resource_id: str = "s1", topic: Topic = Topic.SERVER) -> StatusEvent:
    return StatusEvent(topic=topic, connection="cat", resource_id=resource_id,
                       status="RUNNING", previous="STOPPED", source=Source.WATCHER,
                       data={"raw_status": "running"})


@contextlib.asynccontextmanager
async def replicas(url: str, n: int = 2) -> AsyncIterator[list[RedisBus]]:
    prefix = f"panelql:test-{uuid.uuid4().hex}:"  # isolated from other runs on the same Redis
    buses = [RedisBus(url, prefix=prefix, interest_seconds=0.1) for _ in range(n)]
    for bus in buses:
        await bus.start()
    try:
        yield buses
    finally:
        for bus in buses:
            await bus.aclose()


@contextlib.asynccontextmanager
async def collecting(bus: RedisBus, n: int, topics: set[Topic]
                     ) -> AsyncIterator[list[list[StatusEvent]]]:
    inboxes: list[list[StatusEvent]] = [[] for _ in range(n)]

    async def consume(inbox: list[StatusEvent]) -> None:
        async for item in bus.subscribe(topics):
            inbox.append(item)

    tasks = [asyncio.create_task(consume(inbox)) for inbox in inboxes]
    while bus.local.subscriber_count(next(iter(topics))) < n:
        await asyncio.sleep(0.001)
    try:
        yield inboxes
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def until(condition: object, timeout: float = 3.0) -> None:
    assert callable(condition)
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_event_published_on_one_replica_reaches_every_replica_once(redis_url: str) -> None:
    async with replicas(redis_url) as (a, b), collecting(a, 3, {Topic.SERVER}) as on_a, \
            collecting(b, 3, {Topic.SERVER}) as on_b:
        sent = event()
        await a.publish(sent)
        await a.publish(event("n1", Topic.NODE))  # nobody asked for nodes
        await until(lambda: all(on_a + on_b))
        await asyncio.sleep(0.1)  # would a duplicate (local + Redis) arrive?
        for inbox in on_a + on_b:
            assert inbox == [sent]  # same event, once, topics filtered


async def test_one_redis_subscription_per_process_whatever_the_subscribers(
        redis_url: str) -> None:
    async with replicas(redis_url) as (a, b), collecting(a, 500, {Topic.SERVER}), \
            collecting(b, 1, {Topic.SERVER}):
        probe = Redis.from_url(redis_url)
        try:
            counts = dict(await probe.pubsub_numsub(a.channel))
            assert counts[a.channel.encode()] == 2  # one per replica, not per subscriber
        finally:
            await probe.aclose()


async def test_subscribers_on_another_replica_count_as_watching(redis_url: str) -> None:
    async with replicas(redis_url) as (a, b):
        assert a.subscriber_count(Topic.INVOICE) == 0
        async with collecting(b, 2, {Topic.INVOICE}):
            await until(lambda: a.subscriber_count(Topic.INVOICE) == 1)
            assert b.subscriber_count(Topic.INVOICE) == 2  # its own, counted exactly
        await until(lambda: a.subscriber_count(Topic.INVOICE) == 0)


async def test_relay_reconnects_after_losing_its_connection(redis_url: str) -> None:
    async with replicas(redis_url, 1) as (bus,), collecting(bus, 1, {Topic.SERVER}) as (inbox,):
        admin = Redis.from_url(redis_url)
        try:
            await _kill_pubsub_connections(admin, bus)
            await until(lambda: bus.reconnects >= 1)
            await until(lambda: bus._subscribed.is_set())
            await bus.publish(event("after"))
            await until(lambda: [e.resource_id for e in inbox] == ["after"])
        finally:
            await admin.aclose()


async def _kill_pubsub_connections(admin: Redis, bus: RedisBus) -> None:
    """Kill only this bus's subscription (by its client name), never other users' clients."""
    killed = 0
    for client in await admin.client_list(_type="pubsub"):
        if client.get("name") == bus.client_name:
            await admin.client_kill_filter(_id=client["id"])
            killed += 1
    assert killed == 1


async def test_two_deployments_on_one_redis_never_share_events_or_interest(
        redis_url: str) -> None:
    """Pub/sub ignores the database number, so only the prefix keeps deployments apart."""
    base = f"panelql:test-{uuid.uuid4().hex}"
    production = RedisBus(redis_url, prefix=f"{base}-prod:", interest_seconds=0.1)
    staging = RedisBus(redis_url, prefix=f"{base}-staging:", interest_seconds=0.1)
    await production.start()
    await staging.start()
    try:
        async with collecting(production, 1, {Topic.SERVER}) as (prod_inbox,), \
                collecting(staging, 1, {Topic.SERVER}) as (staging_inbox,):
            await production.publish(event("prod-1"))
            await staging.publish(event("staging-1"))
            await until(lambda: prod_inbox and staging_inbox)
            await production.publish(event("prod-2"))  # a marker: staging must not see it
            await until(lambda: len(prod_inbox) == 2)
            await asyncio.sleep(0.2)
            assert [e.resource_id for e in prod_inbox] == ["prod-1", "prod-2"]
            assert [e.resource_id for e in staging_inbox] == ["staging-1"]
            # Interest is per deployment too: staging's dashboards do not speed up
            # production's polling.
            await asyncio.sleep(0.3)
            assert production.subscriber_count(Topic.SERVER) == 1  # its own only
    finally:
        await production.aclose()
        await staging.aclose()
