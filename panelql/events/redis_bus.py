"""Event bus over Redis pub/sub, so an event published on one replica reaches all of them.

    publish ──PUBLISH──▶ Redis channel ──▶ one relay task per process ──▶ local InProcessBus
                                                                          └▶ subscriber queues

Local subscribers read a local :class:`InProcessBus`; only the relay task holds a Redis
subscription, so 1,000 subscribers on a replica still cost one. Events go out only through
Redis (never straight to local subscribers too), so each is delivered once per replica. If
Redis is unreachable at publish time the event is delivered locally instead of being lost, and
the relay reconnects with capped exponential backoff.

Whether a topic is watched matters beyond one replica: the replica holding a connection's lease
should poll fast when a dashboard on *another* replica subscribes. Each replica therefore
advertises the topics it has subscribers for in a sorted set per topic (member = replica,
score = expiry) and reads how many other replicas are interested.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from panelql.events import background
from panelql.events.bus import EventBus, InProcessBus, Subscriber
from panelql.events.model import StatusEvent, Topic

log = logging.getLogger("panelql.events.redis")

# Every name below starts with the deployment's prefix (``Settings.redis_prefix``,
# ``panelql:<deployment>:``): two deployments sharing one Redis never see each other's events,
# whatever database number each uses, since pub/sub channels are global to a Redis server.
CHANNEL = "events"
INTEREST = "watchers:"
DEFAULT_PREFIX = "panelql:"
MAX_BACKOFF = 5.0


class RedisBus:
    def __init__(self, url: str, *, prefix: str = DEFAULT_PREFIX, queue_size: int = 256,
                 interest_seconds: float = 2.0) -> None:
        self.replica = secrets.token_hex(8)
        # Named so operators (and tests) can tell replicas apart in CLIENT LIST.
        self.client_name = f"panelql-bus-{self.replica}"
        self.client: Redis = Redis.from_url(url, client_name=self.client_name)
        self.channel = prefix + CHANNEL
        self.interest = prefix + INTEREST
        self.local = InProcessBus(queue_size=queue_size)
        self.interest_seconds = interest_seconds
        self.relayed = 0
        self.reconnects = 0
        self._remote: dict[Topic, int] = {}
        self._subscribed = asyncio.Event()
        # Set by aclose: the loops end at their next turn even when a cancellation is lost
        # inside the redis client (a CI run hung in aclose after the relay had reconnected).
        self._closing = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, *, wait: float = 5.0) -> None:
        """Start relaying; waits (up to ``wait`` s) until the Redis subscription is live, so
        nothing published after ``start`` returns is missed."""
        if self._tasks:
            return
        self._tasks = [asyncio.create_task(self._relay(), name="redis-bus-relay"),
                       asyncio.create_task(self._advertise(), name="redis-bus-interest")]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), wait)

    async def publish(self, event: StatusEvent) -> None:
        payload = json.dumps(event.to_json(), separators=(",", ":"))
        try:
            await self.client.publish(self.channel, payload)
        except RedisError as exc:
            log.warning("redis publish failed; delivering locally only",
                        extra={"error": repr(exc)})
            self.local.deliver(event)

    def subscribe(self, topics: set[Topic]) -> AsyncIterator[StatusEvent]:
        return self.local.subscribe(topics)

    def tap(self, callback: Callable[[StatusEvent], None], *, raw: bool = False
            ) -> Callable[[], None]:
        return self.local.tap(callback, raw=raw)

    @property
    def subscribers(self) -> set[Subscriber]:
        """This replica's subscribers, as on :class:`InProcessBus`."""
        return self.local.subscribers

    def subscriber_count(self, topic: Topic) -> int:
        """Local subscribers, plus one for each other replica that has subscribers."""
        return self.local.subscriber_count(topic) + self._remote.get(topic, 0)

    async def aclose(self) -> None:
        self._closing.set()  # each loop checks it within about a second (get_message's timeout)
        await background.stop(self._tasks, "redis bus loops")
        self._tasks = []
        await self.local.aclose()
        with contextlib.suppress(RedisError):
            await self._withdraw()
        await self.client.aclose()

    # -- relay: one Redis subscription feeds every local subscriber ---------------------------
    async def _relay(self) -> None:
        backoff = 0.1
        while not self._closing.is_set():
            try:
                await self._listen()
            except (RedisError, OSError) as exc:
                self._subscribed.clear()
                if self._closing.is_set():
                    return
                self.reconnects += 1
                log.warning("redis subscription lost; reconnecting",
                            extra={"error": repr(exc), "backoff": backoff})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
            else:
                backoff = 0.1

    async def _listen(self) -> None:
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
            self._subscribed.set()
            while not self._closing.is_set():
                # A bounded wait keeps the loop responsive to cancellation and dead sockets.
                message = await pubsub.get_message(timeout=1.0)
                if message is not None:
                    self._deliver(message.get("data"))
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _deliver(self, data: Any) -> None:
        try:
            event = StatusEvent.from_json(json.loads(data))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring malformed event on redis", extra={"error": repr(exc)})
            return
        self.relayed += 1
        self.local.deliver(event)

    # -- interest: which topics some replica is watching --------------------------------------
    async def _advertise(self) -> None:
        while not self._closing.is_set():
            try:
                await self._exchange_interest()
            except (RedisError, OSError) as exc:
                log.warning("redis interest update failed", extra={"error": repr(exc)})
            await asyncio.sleep(self.interest_seconds)

    async def _exchange_interest(self) -> None:
        now = time.time()
        expiry = now + 3 * self.interest_seconds
        pipe = self.client.pipeline(transaction=False)
        for topic in Topic:
            key = self.interest + topic.value
            if self.local.subscriber_count(topic):
                pipe.zadd(key, {self.replica: expiry})
            else:
                pipe.zrem(key, self.replica)
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.zrange(key, 0, -1)
        replies = await pipe.execute()
        for topic, members in zip(Topic, replies[2::3], strict=True):
            others = [m for m in members if m != self.replica.encode()]
            self._remote[topic] = len(others)

    async def _withdraw(self) -> None:
        pipe = self.client.pipeline(transaction=False)
        for topic in Topic:
            pipe.zrem(self.interest + topic.value, self.replica)
        await pipe.execute()


async def open_bus(redis_url: str | None, prefix: str = DEFAULT_PREFIX) -> EventBus:
    """The bus settings ask for, started: Redis when a URL is configured, in-process otherwise."""
    if not redis_url:
        return InProcessBus()
    bus = RedisBus(redis_url, prefix=prefix)
    await bus.start()
    return bus
