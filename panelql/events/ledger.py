"""The last status delivered per resource, so the events of one resource form a chain.

Mutations, operation followers, the watcher and webhooks each announce what they saw, and each
has its own idea of the previous status. Left alone that gives a subscriber
``RUNNING→STOPPING, STOPPED→STARTING, STOPPING→STARTING``: a repeat, a gap and a ``previous``
that points nowhere. Every delivery (local, or received from Redis, in the same order on every
replica) goes through :meth:`StatusLedger.chain`, which

- sets ``previous`` to the status of the last event delivered for that resource;
- drops a repeat of the current status, unless it brings other payment news (``data.payment``:
  a failed charge leaves an invoice OPEN and is still news; the webhook confirming a payment
  a mutation already announced is not);
- drops what the watcher read before the latest event was known (its poll started earlier);
- fills a gap the source saw itself: a start whose own read found ``STOPPED`` while the last
  event said ``STOPPING`` delivers ``STOPPING→STOPPED`` first. Not for the watcher: its
  ``previous`` is its snapshot, which it leaves alone while another source follows the
  resource, so a gap there is one it did not see (it would invent ``STARTING→STOPPED``).

Operations and automation runs are left alone: their progress updates repeat ``RUNNING`` on
purpose.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from datetime import datetime

from panelql.events.model import Source, StatusEvent, Topic

Key = tuple[Topic, str, str]


class StatusLedger:
    def __init__(self, *, capacity: int = 100_000) -> None:
        self.capacity = capacity
        # resource → (status, when, payment news of the last delivered event)
        self._last: OrderedDict[Key, tuple[str, datetime, object]] = OrderedDict()

    def chain(self, event: StatusEvent) -> list[StatusEvent]:
        """What to deliver for ``event``: nothing, the event, or a missing step and the event."""
        if event.topic in (Topic.OPERATION, Topic.AUTOMATION):
            return [event]
        key = (event.topic, event.connection, event.resource_id)
        last = self._last.get(key)
        if last is None:
            self._remember(key, event)
            return [event]
        status, at, payment = last
        if event.source is Source.WATCHER and event.at < at:
            return []  # read before the newer event was announced: stale
        news = event.data.get("payment")
        if event.status == status and (news is None or news == payment):
            return []
        out = []
        seen_before = None if event.source is Source.WATCHER else event.previous
        if seen_before not in (None, status, event.status):
            assert seen_before is not None
            out.append(replace(event, status=seen_before, previous=status))
            status = seen_before
        out.append(replace(event, previous=status))
        self._remember(key, event)
        return out

    def _remember(self, key: Key, event: StatusEvent) -> None:
        self._last[key] = (event.status, event.at, event.data.get("payment"))
        self._last.move_to_end(key)
        if len(self._last) > self.capacity:
            self._last.popitem(last=False)
