"""In-process event bus: fan-out to bounded per-subscriber queues.

A slow subscriber cannot grow memory without bound: its queue holds at most ``maxsize`` events
and the oldest is dropped (and counted) when it is full, so one stuck dashboard never holds
back the others or the publisher.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Protocol, runtime_checkable

from panelql.events.ledger import StatusLedger
from panelql.events.model import StatusEvent, Topic


class EventBus(Protocol):
    async def publish(self, event: StatusEvent) -> None: ...

    def subscribe(self, topics: set[Topic]) -> AsyncIterator[StatusEvent]: ...

    def subscriber_count(self, topic: Topic) -> int:
        """How many subscribers want ``topic``; the watcher polls faster while it is > 0."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Tappable(Protocol):
    def tap(self, callback: Callable[[StatusEvent], None], *, raw: bool = False
            ) -> Callable[[], None]: ...


class Subscriber:
    def __init__(self, topics: set[Topic], maxsize: int) -> None:
        self.topics = topics
        self.queue: asyncio.Queue[StatusEvent] = asyncio.Queue(maxsize)
        self.dropped = 0

    def offer(self, event: StatusEvent) -> None:
        if event.topic not in self.topics:
            return
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)


class InProcessBus:
    def __init__(self, *, queue_size: int = 256) -> None:
        self.queue_size = queue_size
        self.subscribers: set[Subscriber] = set()
        self.published = 0
        # Kept up to date on (un)subscribe so the watcher can ask every tick at O(1) cost.
        self._per_topic: Counter[Topic] = Counter()
        self._taps: list[Callable[[StatusEvent], None]] = []
        self._raw_taps: list[Callable[[StatusEvent], None]] = []
        self.ledger = StatusLedger()

    async def publish(self, event: StatusEvent) -> None:
        self.deliver(event)

    def deliver(self, event: StatusEvent) -> None:
        for callback in self._raw_taps:
            callback(event)
        for chained in self.ledger.chain(event):
            self.published += 1
            for callback in self._taps:
                callback(chained)
            for subscriber in list(self.subscribers):
                subscriber.offer(chained)

    async def subscribe(self, topics: set[Topic]) -> AsyncIterator[StatusEvent]:
        subscriber = Subscriber(topics, self.queue_size)
        self.subscribers.add(subscriber)
        self._per_topic.update(topics)
        try:
            while True:
                yield await subscriber.queue.get()
        finally:
            if subscriber in self.subscribers:
                self.subscribers.discard(subscriber)
                self._per_topic.subtract(topics)

    def subscriber_count(self, topic: Topic) -> int:
        return self._per_topic[topic]

    def tap(self, callback: Callable[[StatusEvent], None], *, raw: bool = False
            ) -> Callable[[], None]:
        """See every delivered event without being a subscriber (not counted as watching).

        For the gateway's own bookkeeping: the watcher learns what mutations and webhooks have
        already announced. ``callback`` runs inline and must be quick. Returns an undo.
        ``raw``: see every event as published, before the ledger drops repeats (billing
        automation needs an ``invoice.payment_failed`` that leaves the invoice OPEN, which
        subscribers are spared as a repeat).
        """
        taps = self._raw_taps if raw else self._taps
        taps.append(callback)
        return lambda: taps.remove(callback) if callback in taps else None

    async def aclose(self) -> None:
        self.subscribers.clear()
        self._per_topic.clear()
