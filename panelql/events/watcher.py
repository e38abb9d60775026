"""The watcher: notices changes made behind the gateway's back and publishes them.

Each connection gets one loop. A poll is the connection's batch list calls (servers and nodes
for compute, accounts for hosting, invoices for billing; live states only for servers whose list
entry carries none), compared with the ``status_snapshots`` table; only real status changes,
appearances and disappearances (status ``DELETED``) become events. Nothing about polling
depends on who listens: one poll per connection per interval, for 0 or 10,000 subscribers.

The interval adapts: ``fast_seconds`` while a server is transitional or the bus has subscribers
for the connection's topics, ``slow_seconds`` otherwise. The watched check happens on every
tick, so a new dashboard speeds polling up within one tick rather than one slow interval.

Changes the gateway announced itself (mutations, webhooks) are not announced twice: the watcher
taps the bus and, when a poll finds the status another source already published, only updates
its snapshot. While another source has announced a *transitional* status (a mutation's
STARTING), that source's operation tracker is following the resource, so the watcher leaves it
alone until the final status is announced, the operation ends (a replica that took it over
may have failed it), or ``ANNOUNCED_TTL`` passes without either; otherwise
a poll landing mid-operation would race the tracker and announce STOPPED → RUNNING itself.

Restarts are quiet: snapshots persist, and the first poll of a connection/topic that has never
been recorded (no ``baseline`` marker row) only records. With several replicas, a loop polls only
while it holds the connection's lease (see ``lease.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol

from panelql.db.engine import Sessions
from panelql.db.snapshots import Key, SnapshotRow, Snapshots
from panelql.domain.status import TRANSITIONAL_SERVER_STATUSES, ServerStatus
from panelql.events import background
from panelql.events.bus import EventBus, Tappable
from panelql.events.lease import Leases, LocalLeases, leases_for
from panelql.events.model import Source, StatusEvent, Topic
from panelql.providers.contract import (
    BillingProvider,
    Capability,
    ComputeProvider,
    HostingProvider,
    Provider,
)
from panelql.providers.errors import ProviderError
from panelql.settings import Settings, WatcherSettings

log = logging.getLogger("panelql.events.watcher")

DELETED = "DELETED"
# Marker row per (connection, topic): "a first poll was recorded", so later polls may announce.
BASELINE = "baseline"
MIN_WAIT = 0.01
# How long a status announced by another source may take to show up in a poll (and how long
# the watcher defers to a tracker that announced a transitional status and then went quiet).
ANNOUNCED_TTL = 120.0
IN_FLIGHT = frozenset(s.value for s in TRANSITIONAL_SERVER_STATUSES)
FINISHED = frozenset({"SUCCEEDED", "FAILED"})  # operation statuses after which nobody follows


class EventRuntime(Protocol):
    """What the event pipeline needs from the gateway (``Gateway`` satisfies it)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def providers(self) -> Mapping[str, Provider]: ...

    @property
    def bus(self) -> EventBus: ...

    @property
    def sessions(self) -> Sessions: ...


@dataclass(frozen=True, slots=True)
class Seen:
    status: str
    raw_status: str | None
    transitional: bool = False


@dataclass
class Observation:
    """One topic of one poll: ids with a known status, and ids listed without one."""

    topic: Topic
    seen: dict[str, Seen]
    unknown: set[str] = field(default_factory=set)
    # When the poll started: what it read may be older than events announced meanwhile.
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class Delta:
    events: list[StatusEvent] = field(default_factory=list)
    upserts: list[SnapshotRow] = field(default_factory=list)
    deletes: list[Key] = field(default_factory=list)


# -- what a poll fetches ----------------------------------------------------------------------
def _server_seen(status: ServerStatus, raw: str | None) -> Seen:
    return Seen(status.value, raw, status in TRANSITIONAL_SERVER_STATUSES)


async def _servers(provider: Provider) -> Observation:
    assert isinstance(provider, ComputeProvider)
    records = await provider.list_servers()
    seen = {s.id: _server_seen(s.status, s.raw_status) for s in records if s.status is not None}
    pending = [s.id for s in records if s.status is None]
    live = {}
    if pending and provider.supports(Capability.SERVER_LIVE_STATE):
        live = dict(await provider.get_live_states(pending))
    seen.update({sid: _server_seen(state.status, state.raw_status) for sid, state in live.items()})
    # Listed but without a status: keep their snapshot untouched rather than call them gone.
    return Observation(Topic.SERVER, seen, set(pending) - set(live))


async def _nodes(provider: Provider) -> Observation:
    assert isinstance(provider, ComputeProvider)
    nodes = await provider.list_nodes()
    return Observation(Topic.NODE, {n.id: Seen(n.status.value, n.raw_status) for n in nodes})


async def _accounts(provider: Provider) -> Observation:
    assert isinstance(provider, HostingProvider)
    accounts = await provider.list_accounts()
    return Observation(Topic.ACCOUNT,
                       {a.id: Seen(a.status.value, a.raw_status) for a in accounts})


async def _invoices(provider: Provider) -> Observation:
    assert isinstance(provider, BillingProvider)
    invoices = await provider.list_invoices()
    return Observation(Topic.INVOICE,
                       {i.id: Seen(i.status.value, i.raw_status) for i in invoices})


Fetch = Callable[[Provider], Awaitable[Observation]]
# topic -> (family the provider must be, capability it must declare, fetch)
FETCHES: dict[Topic, tuple[type[Provider], Capability, Fetch]] = {
    Topic.SERVER: (ComputeProvider, Capability.SERVER_READ, _servers),
    Topic.NODE: (ComputeProvider, Capability.NODE_READ, _nodes),
    Topic.ACCOUNT: (HostingProvider, Capability.ACCOUNT_READ, _accounts),
    Topic.INVOICE: (BillingProvider, Capability.INVOICE_READ, _invoices),
}


def watched_topics(provider: Provider) -> list[Topic]:
    return [topic for topic, (family, capability, _) in FETCHES.items()
            if isinstance(provider, family) and provider.supports(capability)]


# -- comparing with the snapshots ---------------------------------------------------------------
def diff(connection: str, obs: Observation, stored: Mapping[Key, SnapshotRow],
         announced: Mapping[str, str] | None = None,
         newer: AbstractSet[str] = frozenset()) -> Delta:
    """Events and snapshot writes that take ``stored`` to what ``obs`` saw.

    ``announced`` maps resource ids to the status another source has already published; a
    change to exactly that status updates the snapshot silently. ``newer`` are ids another
    source announced after the poll began: what the poll read of them may predate that news,
    so they are left to the next poll.
    """
    kind = obs.topic.value
    told = announced or {}
    announce = (BASELINE, kind) in stored
    delta = Delta()

    def event(resource_id: str, status: str, previous: str | None, raw: str | None) -> None:
        if announce and told.get(resource_id) != status:
            delta.events.append(StatusEvent(
                topic=obs.topic, connection=connection, resource_id=resource_id, status=status,
                previous=previous, source=Source.WATCHER, at=obs.at, data={"raw_status": raw}))

    for resource_id, seen in obs.seen.items():
        if told.get(resource_id) in IN_FLIGHT or resource_id in newer:
            continue  # an operation tracker is following it, or the read is older than news
        old = stored.get((kind, resource_id))
        if old is None or (old.status, old.raw_status) != (seen.status, seen.raw_status):
            delta.upserts.append(SnapshotRow(kind, resource_id, seen.status, seen.raw_status))
        if old is None or old.status != seen.status:
            event(resource_id, seen.status, old.status if old else None, seen.raw_status)
    for (rtype, resource_id), old in stored.items():
        if rtype == kind and resource_id not in obs.seen and resource_id not in obs.unknown \
                and told.get(resource_id) not in IN_FLIGHT and resource_id not in newer:
            delta.deletes.append((rtype, resource_id))
            event(resource_id, DELETED, old.status, None)
    if not announce:
        delta.upserts.append(SnapshotRow(BASELINE, kind, "RECORDED"))
    return delta


# -- the loops --------------------------------------------------------------------------------
class Watcher:
    def __init__(self, providers: Mapping[str, Provider], bus: EventBus, snapshots: Snapshots,
                 *, settings: WatcherSettings | None = None,
                 leases: Leases | None = None) -> None:
        self.providers = providers
        self.bus = bus
        self.snapshots = snapshots
        self.settings = settings or WatcherSettings()
        self.leases: Leases = leases or LocalLeases()
        self.polls: Counter[str] = Counter()  # completed polls per connection
        self.failures: Counter[str] = Counter()
        self._topics = {name: watched_topics(p) for name, p in providers.items()}
        self._transitional: dict[str, bool] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # Set by aclose. The loops also stop on it, not only on cancellation: the redis client
        # can turn a cancellation into a connection error, which _hold then logs and survives,
        # and a CI run hung for ten minutes in aclose waiting for such a loop.
        self._closing = False
        # (connection, resource type, id) -> (status another source published, when, and
        # when by the publisher's clock: the event's own ``at``)
        self._announced: dict[tuple[str, str, str], tuple[str, float, datetime]] = {}
        # (connection, resource type, id) -> when another source last said anything about it
        # (a status, or the end of the operation following it). A poll that began before
        # that read an older state: a CI run saw a poll's STOPPING, read just before the
        # tracker announced STOPPED, announced again as the watcher's own change.
        self._news: dict[tuple[str, str, str], float] = {}
        self._untap: Callable[[], None] | None = None
        # Connections whose last poll failed: a panel that is down is reported once when it
        # goes and once when it comes back, not once per topic per poll.
        self._failing: set[str] = set()
        # Renew leases well inside their TTL, and look at "watched" at least every fast interval.
        self._tick = min(self.settings.fast_seconds, self.settings.lease_seconds / 3)

    @classmethod
    def for_gateway(cls, runtime: EventRuntime) -> Watcher:
        settings = runtime.settings
        return cls(runtime.providers, runtime.bus, Snapshots(runtime.sessions),
                   settings=settings.watcher,
                   leases=leases_for(settings, settings.watcher.lease_seconds))

    async def start(self) -> None:
        """Start one loop per connection that has something to watch (no-op when disabled)."""
        if not self.settings.enabled or self._tasks:
            return
        self._closing = False
        if isinstance(self.bus, Tappable):
            self._untap = self.bus.tap(self._note)
        for name, topics in self._topics.items():
            if topics:
                self._tasks[name] = asyncio.create_task(self._run(name), name=f"watch:{name}")

    async def aclose(self) -> None:
        self._closing = True
        tasks = list(self._tasks.values())
        self._tasks.clear()
        await background.stop(tasks, "watcher loops")
        if self._untap is not None:
            self._untap()
            self._untap = None
        await self.leases.aclose()

    def _note(self, event: StatusEvent) -> None:
        if event.source is Source.WATCHER or event.connection not in self._topics:
            return
        if event.topic is Topic.OPERATION:
            self._operation_ended(event)
            return
        key = (event.connection, event.topic.value, event.resource_id)
        self._announced[key] = (event.status, time.monotonic(), event.at)
        self._news[key] = time.monotonic()

    def _operation_ended(self, event: StatusEvent) -> None:
        """An operation that ended without announcing its server's final status (it failed,
        was given up after its replica died, or followed an upstream task) no longer
        follows that server: polls may announce it again at once, not after ANNOUNCED_TTL.

        Only what was announced before that operation began is its own: a stop's operation
        that ends late (its last write queued on a loaded machine) must not hand back the
        STARTING of the start that followed it — a CI run saw the polls then announce RUNNING
        ahead of the start's own tracker, after a STOPPED that never happened then."""
        if event.status not in FINISHED:
            return
        key = (event.connection, Topic.SERVER.value, str(event.data.get("target")))
        self._news[key] = time.monotonic()
        announced = self._announced.get(key)
        if announced is None or announced[0] not in IN_FLIGHT:
            return
        began = _when(event.data.get("created_at"))
        if began is None or announced[2] <= began:
            del self._announced[key]

    def watched(self, name: str) -> bool:
        return any(self.bus.subscriber_count(topic) for topic in self._topics.get(name, ()))

    def interval(self, name: str) -> float:
        fast = self._transitional.get(name, False) or self.watched(name)
        return self.settings.fast_seconds if fast else self.settings.slow_seconds

    # -- one poll ---------------------------------------------------------------------------
    async def poll_once(self, name: str) -> list[StatusEvent]:
        """Poll one connection, store what changed, publish it; returns the events."""
        provider = self.providers[name]
        topics = self._topics.get(name) or watched_topics(provider)
        started, began = datetime.now(UTC), time.monotonic()
        results = await asyncio.gather(*(FETCHES[t][2](provider) for t in topics),
                                       return_exceptions=True)
        observations = [replace(r, at=started) for r in results if isinstance(r, Observation)]
        failed = [(t, r) for t, r in zip(topics, results, strict=True)
                  if isinstance(r, BaseException)]
        if failed:
            self._log_failure(name, failed)
        elif name in self._failing:
            self._failing.discard(name)
            log.info("watcher poll recovered", extra={"connection": name})
        if not observations:
            self.failures[name] += 1
            return []
        stored = await self.snapshots.load(name)
        delta = Delta()
        for obs in observations:  # a failed topic is skipped, never read as "all gone"
            part = diff(name, obs, stored, self._told(name, obs), self._newer(name, obs, began))
            delta.events += part.events
            delta.upserts += part.upserts
            delta.deletes += part.deletes
        # Store first: a crash between the two loses events rather than repeating them forever.
        await self.snapshots.save(name, delta.upserts, delta.deletes)
        for event in delta.events:
            await self.bus.publish(event)
        self._transitional[name] = any(
            seen.transitional for obs in observations for seen in obs.seen.values())
        self.polls[name] += 1
        return delta.events

    def _told(self, name: str, obs: Observation) -> dict[str, str]:
        """What other sources announced for this topic; entries the poll confirms (or that
        are too old to matter) are dropped."""
        kind, now, told = obs.topic.value, time.monotonic(), {}
        for key, (status, at, _) in list(self._announced.items()):
            connection, rtype, resource_id = key
            if connection != name or rtype != kind:
                continue
            seen = obs.seen.get(resource_id)
            # An in-flight status stays until its source announces the outcome.
            confirmed = status not in IN_FLIGHT and (seen.status if seen else DELETED) == status
            if now - at > ANNOUNCED_TTL:
                del self._announced[key]
                continue
            told[resource_id] = status
            if confirmed:
                del self._announced[key]
        return told

    def _newer(self, name: str, obs: Observation, began: float) -> set[str]:
        """Ids of this topic another source spoke about after the poll began; news older
        than any poll could still be running is forgotten."""
        kind, now, newer = obs.topic.value, time.monotonic(), set()
        for key, at in list(self._news.items()):
            connection, rtype, resource_id = key
            if connection != name or rtype != kind:
                continue
            if at > began:
                newer.add(resource_id)
            elif now - at > ANNOUNCED_TTL:
                del self._news[key]
        return newer

    def _log_failure(self, name: str, failed: list[tuple[Topic, BaseException]]) -> None:
        for _, exc in failed:
            if isinstance(exc, asyncio.CancelledError):
                raise exc
        topics = ",".join(topic.value for topic, _ in failed)
        extra = {"connection": name, "topics": topics}
        known = [exc for _, exc in failed if isinstance(exc, ProviderError)]
        unexpected = [exc for _, exc in failed if not isinstance(exc, ProviderError)]
        if unexpected:  # a bug, not an outage: always worth a traceback
            log.error("watcher poll failed", extra=extra, exc_info=unexpected[0])
        elif name not in self._failing:
            first = known[0]
            log.warning("watcher poll failed: %s", first.message,
                        extra={**extra, "code": first.code})
        else:
            log.debug("watcher poll still failing", extra=extra)
        self._failing.add(name)

    # -- the per-connection loop --------------------------------------------------------------
    async def _run(self, name: str) -> None:
        last = -math.inf
        while not self._stopping():
            if not await self._hold(name):
                await asyncio.sleep(self._tick)
                continue
            if time.monotonic() >= last + self.interval(name):
                last = time.monotonic()
                await self._poll_holding(name)
            wait = last + self.interval(name) - time.monotonic()
            await asyncio.sleep(min(max(wait, MIN_WAIT), self._tick))

    def _stopping(self) -> bool:
        task = asyncio.current_task()
        return self._closing or (task is not None and task.cancelling() > 0)

    async def _hold(self, name: str) -> bool:
        try:
            return await self.leases.hold(name)
        except Exception as exc:  # a broken lease store must not kill the loop
            if self._stopping():  # the error was our own cancellation, converted
                raise asyncio.CancelledError from exc
            log.warning("lease check failed", extra={"connection": name, "error": repr(exc)})
            return False

    async def _poll_holding(self, name: str) -> None:
        """Poll while renewing the lease; give up if another replica took it meanwhile."""
        poll = asyncio.create_task(self.poll_once(name))
        try:
            while not poll.done():
                await asyncio.wait({poll}, timeout=self._tick)
                if not poll.done() and not await self._hold(name):
                    log.warning("lease lost during poll", extra={"connection": name})
                    poll.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poll
        except Exception as exc:  # storage or bus failure: log, try again next interval
            self.failures[name] += 1
            log.error("watcher poll failed", extra={"connection": name}, exc_info=exc)
        finally:
            if not poll.done():
                poll.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await poll


def _when(value: object) -> datetime | None:
    """An ISO timestamp from an event's data (None when absent or not one)."""
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
