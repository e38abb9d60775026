"""The watcher against a Catalyst simulator over real HTTP: real changes only, quiet restarts,
one poll per interval whatever listens, adaptive interval, failures survived."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Self

from panelql.db.snapshots import Snapshots
from panelql.domain.records import BackupRecord, LiveState, NodeRecord, ServerRecord
from panelql.domain.status import NodeStatus, ServerStatus
from panelql.events.bus import InProcessBus
from panelql.events.model import Source, StatusEvent, Topic
from panelql.events.watcher import Watcher
from panelql.providers.config import ConnectionConfig
from panelql.providers.contract import Capability, ComputeProvider
from panelql.providers.http import ClientFactory
from panelql.settings import WatcherSettings
from tests.events.conftest import ServedCatalyst, Sessions, open_sessions
from tests.waits import until

FAST = WatcherSettings(fast_seconds=0.1, slow_seconds=0.6, lease_seconds=1.0)


def make_watcher(cat: ServedCatalyst, sessions: Sessions, bus: InProcessBus | None = None,
                 settings: WatcherSettings = FAST) -> Watcher:
    return Watcher({cat.name: cat.provider}, bus or InProcessBus(), Snapshots(sessions),
                   settings=settings)


def server_ids(cat: ServedCatalyst) -> list[str]:
    return list(cat.sim.servers)


def pairs(events: Sequence[StatusEvent]) -> set[tuple[Topic, str, str | None, str]]:
    return {(e.topic, e.resource_id, e.previous, e.status) for e in events}


@contextlib.asynccontextmanager
async def subscribers(bus: InProcessBus, n: int, topics: set[Topic]
                      ) -> AsyncIterator[list[list[StatusEvent]]]:
    """``n`` live subscribers, each collecting what it receives."""
    inboxes: list[list[StatusEvent]] = [[] for _ in range(n)]

    async def consume(inbox: list[StatusEvent]) -> None:
        async for event in bus.subscribe(topics):
            inbox.append(event)

    tasks = [asyncio.create_task(consume(inbox)) for inbox in inboxes]
    while bus.subscriber_count(next(iter(topics))) < n:
        await asyncio.sleep(0.001)
    try:
        yield inboxes
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_first_poll_records_then_only_real_changes_are_published(
        catalyst: ServedCatalyst, sessions: Sessions) -> None:
    bus = InProcessBus()
    watcher = make_watcher(catalyst, sessions, bus)
    async with subscribers(bus, 1, set(Topic)) as (inbox,):
        assert await watcher.poll_once(catalyst.name) == []  # baseline: records only
        assert await watcher.poll_once(catalyst.name) == []  # nothing changed
        first, _, stopped, *_ = server_ids(catalyst)
        catalyst.sim.servers[first].status = "stopped"  # behind the gateway's back
        catalyst.sim.servers[stopped].status = "running"
        events = await watcher.poll_once(catalyst.name)
        assert pairs(events) == {(Topic.SERVER, first, "RUNNING", "STOPPED"),
                                 (Topic.SERVER, stopped, "STOPPED", "RUNNING")}
        assert all(e.source is Source.WATCHER and e.connection == catalyst.name for e in events)
        assert await watcher.poll_once(catalyst.name) == []  # reported once, not every poll
        await asyncio.sleep(0.01)
        assert pairs(inbox) == pairs(events)


async def test_appearing_and_disappearing_resources(
        catalyst: ServedCatalyst, sessions: Sessions) -> None:
    watcher = make_watcher(catalyst, sessions)
    await watcher.poll_once(catalyst.name)
    sim = catalyst.sim
    gone = server_ids(catalyst)[2]
    del sim.servers[gone]
    new = sim.add_server(name="fresh", node_id=next(iter(sim.nodes)), owner_id=next(iter(
        sim.users)), status="installing", memory_mb=1024, cpu_cores=1, disk_mb=1024)
    node = list(sim.nodes)[1]
    sim.nodes[node]["isOnline"] = False
    events = await watcher.poll_once(catalyst.name)
    assert pairs(events) == {(Topic.SERVER, gone, "STOPPED", "DELETED"),
                             (Topic.SERVER, new.id, None, "INSTALLING"),
                             (Topic.NODE, node, "ONLINE", "OFFLINE")}
    assert await watcher.poll_once(catalyst.name) == []


async def test_restart_resumes_from_snapshots_without_spurious_events(
        catalyst: ServedCatalyst, db_url: str) -> None:
    sessions, engine = await open_sessions(db_url)
    await make_watcher(catalyst, sessions).poll_once(catalyst.name)
    await engine.dispose()  # "the process stops"

    sessions, engine = await open_sessions(db_url)  # a new process on the same file
    try:
        restarted = make_watcher(catalyst, sessions)
        assert await restarted.poll_once(catalyst.name) == []
        target = server_ids(catalyst)[0]
        catalyst.sim.servers[target].status = "crashed"
        events = await restarted.poll_once(catalyst.name)
        assert pairs(events) == {(Topic.SERVER, target, "RUNNING", "ERROR")}
    finally:
        await engine.dispose()


async def _requests_per_poll(cat: ServedCatalyst, sessions: Sessions,
                             n_subscribers: int) -> tuple[int, float]:
    """Upstream requests of three polls, and the interval the watcher chose, while
    ``n_subscribers`` listen."""
    bus = InProcessBus()
    watcher = make_watcher(cat, sessions, bus)
    await watcher.poll_once(cat.name)
    async with subscribers(bus, n_subscribers, {Topic.SERVER}):
        interval = watcher.interval(cat.name)
        cat.sim.reset_stats()
        for _ in range(3):
            await watcher.poll_once(cat.name)
        return cat.sim.total_requests, interval


async def test_polls_per_interval_do_not_depend_on_subscriber_count(
        catalyst: ServedCatalyst, sessions: Sessions) -> None:
    requests_1, interval_1 = await _requests_per_poll(catalyst, sessions, 1)
    requests_200, interval_200 = await _requests_per_poll(catalyst, sessions, 200)
    # Watched -> the fast interval, whatever the number of listeners.
    assert interval_1 == interval_200 == FAST.fast_seconds
    # Each poll is the same few batch calls (servers, nodes + servers, users), never per listener.
    assert requests_1 == requests_200 == 3 * 4


async def _polls(watcher: Watcher, name: str, more: int) -> None:
    """Wait for ``more`` further polls of ``name`` (the watcher's loop is running)."""
    target = watcher.polls[name] + more
    await until(lambda: watcher.polls[name] >= target, f"{more} more polls of {name}")


async def test_interval_is_slow_unless_watched_or_transitional(
        catalyst: ServedCatalyst, sessions: Sessions) -> None:
    bus = InProcessBus()
    watcher = make_watcher(catalyst, sessions, bus)
    await watcher.start()
    try:
        await _polls(watcher, catalyst.name, 1)
        assert watcher.interval(catalyst.name) == FAST.slow_seconds

        async with subscribers(bus, 1, {Topic.NODE}):  # watched: any of its topics counts
            assert watcher.interval(catalyst.name) == FAST.fast_seconds
            await _polls(watcher, catalyst.name, 3)  # the loop keeps polling while watched
        await until(lambda: watcher.interval(catalyst.name) == FAST.slow_seconds,
                    "back to the slow interval once nobody listens")

        catalyst.sim.servers[server_ids(catalyst)[0]].status = "starting"
        await until(lambda: watcher.interval(catalyst.name) == FAST.fast_seconds,
                    "a transitional server makes the interval fast")
        catalyst.sim.servers[server_ids(catalyst)[0]].status = "running"
        await until(lambda: watcher.interval(catalyst.name) == FAST.slow_seconds,
                    "slow again once the server settled")
    finally:
        await watcher.aclose()


async def test_failing_provider_is_retried_and_never_reads_as_deleted(
        catalyst: ServedCatalyst, sessions: Sessions) -> None:
    bus = InProcessBus()
    watcher = make_watcher(catalyst, sessions, bus)
    await watcher.poll_once(catalyst.name)
    async with subscribers(bus, 1, set(Topic)) as (inbox,):
        catalyst.sim.knobs.fail_status = 500
        await watcher.start()
        await until(lambda: watcher.failures[catalyst.name] >= 2, "the failing poll retried")
        assert inbox == []  # an outage is not "every server was deleted"
        catalyst.sim.knobs.fail_status = None
        target = server_ids(catalyst)[1]
        catalyst.sim.servers[target].status = "stopped"
        await until(lambda: bool(inbox), "the change after the outage was announced")
        await watcher.aclose()
    assert pairs(inbox) == {(Topic.SERVER, target, "RUNNING", "STOPPED")}


class LiveOnlyPanel(ComputeProvider):
    """A panel whose list carries no power state (Pterodactyl-like)."""

    kind = "fake"
    families = frozenset()
    capabilities = frozenset({Capability.SERVER_READ, Capability.NODE_READ,
                              Capability.SERVER_LIVE_STATE})

    def __init__(self) -> None:
        super().__init__(ConnectionConfig(name="live", kind="fake", base_url="http://x"))
        self.states = {"a": ServerStatus.RUNNING, "b": ServerStatus.STOPPED}
        self.asked: list[list[str]] = []

    @classmethod
    def from_config(cls, config: ConnectionConfig, clients: ClientFactory) -> Self:
        return cls()

    async def check_health(self) -> None:
        return None

    async def list_servers(self) -> list[ServerRecord]:
        return [ServerRecord("live", sid, sid, None, None) for sid in [*self.states, "mute"]]

    async def get_live_states(self, ids: Sequence[str]) -> Mapping[str, LiveState]:
        self.asked.append(list(ids))
        return {i: LiveState(self.states[i], self.states[i].value.lower())
                for i in ids if i in self.states}

    async def list_nodes(self) -> list[NodeRecord]:
        return [NodeRecord("live", "n1", "n1", NodeStatus.ONLINE, "up")]

    async def list_backups(self, server_ids: Sequence[str]) -> Mapping[str, list[BackupRecord]]:
        return {sid: [] for sid in server_ids}


async def test_servers_without_list_status_use_live_states(sessions: Sessions) -> None:
    panel = LiveOnlyPanel()
    watcher = Watcher({"live": panel}, InProcessBus(), Snapshots(sessions), settings=FAST)
    await watcher.poll_once("live")
    assert panel.asked == [["a", "b", "mute"]]  # one batch call for all of them
    panel.states["b"] = ServerStatus.STARTING
    events = await watcher.poll_once("live")
    # "mute" never has a live state: it is neither announced nor called deleted.
    assert pairs(events) == {(Topic.SERVER, "b", "STOPPED", "STARTING")}
    assert watcher.interval("live") == FAST.fast_seconds  # STARTING is transitional


async def test_changes_already_announced_by_mutations_are_not_repeated(
        catalyst: ServedCatalyst, sessions: Sessions) -> None:
    bus = InProcessBus()
    watcher = make_watcher(catalyst, sessions, bus)
    await watcher.start()
    try:
        while not watcher.polls[catalyst.name]:  # the baseline is recorded
            await asyncio.sleep(0.01)
        async with subscribers(bus, 1, {Topic.SERVER}) as (inbox,):
            mutated, behind_back = server_ids(catalyst)[0], server_ids(catalyst)[1]
            catalyst.sim.servers[mutated].status = "stopped"
            await bus.publish(StatusEvent(Topic.SERVER, catalyst.name, mutated, "STOPPED",
                                          "RUNNING", Source.MUTATION))
            catalyst.sim.servers[behind_back].status = "stopped"
            await until(lambda: len(inbox) >= 2, "the watcher saw the change behind its back")
            await _polls(watcher, catalyst.name, 2)  # a repeat would come with these polls
        assert [(e.resource_id, e.source) for e in inbox] == [
            (mutated, Source.MUTATION), (behind_back, Source.WATCHER)]
        stored = await Snapshots(sessions).find(catalyst.name, "server", mutated)
        assert stored is not None and stored.status == "STOPPED"  # snapshot still follows
    finally:
        await watcher.aclose()


async def test_resources_an_operation_is_following_are_left_to_its_tracker(
        catalyst: ServedCatalyst, sessions: Sessions) -> None:
    bus = InProcessBus()
    watcher = make_watcher(catalyst, sessions, bus)
    await watcher.start()
    try:
        while not watcher.polls[catalyst.name]:
            await asyncio.sleep(0.01)
        server = server_ids(catalyst)[2]  # stopped
        async with subscribers(bus, 1, {Topic.SERVER}) as (inbox,):
            await bus.publish(StatusEvent(Topic.SERVER, catalyst.name, server, "STARTING",
                                          "STOPPED", Source.MUTATION))
            catalyst.sim.servers[server].status = "running"  # upstream finished first
            await _polls(watcher, catalyst.name, 2)  # polls see RUNNING before the tracker
            await bus.publish(StatusEvent(Topic.SERVER, catalyst.name, server, "RUNNING",
                                          "STARTING", Source.MUTATION))
            await _polls(watcher, catalyst.name, 2)
        assert [(e.previous, e.status, e.source) for e in inbox] == [
            ("STOPPED", "STARTING", Source.MUTATION), ("STARTING", "RUNNING", Source.MUTATION)]
        stored = await Snapshots(sessions).find(catalyst.name, "server", server)
        assert stored is not None and stored.status == "RUNNING"
    finally:
        await watcher.aclose()


async def test_an_operation_that_ends_silently_hands_its_server_back_to_the_polls(
        catalyst: ServedCatalyst, sessions: Sessions) -> None:
    """The operation following a server ended without announcing the server's final status
    (it failed, or a replica that took it over from a dead one gave it up): the next poll
    announces what the panel says, instead of waiting out ANNOUNCED_TTL."""
    bus = InProcessBus()
    watcher = make_watcher(catalyst, sessions, bus)
    await watcher.start()
    try:
        while not watcher.polls[catalyst.name]:
            await asyncio.sleep(0.01)
        server = server_ids(catalyst)[2]  # stopped
        async with subscribers(bus, 1, {Topic.SERVER}) as (inbox,):
            await bus.publish(StatusEvent(Topic.SERVER, catalyst.name, server, "STARTING",
                                          "STOPPED", Source.MUTATION))
            catalyst.sim.servers[server].status = "running"
            await asyncio.sleep(0.4)  # deferring to the operation: nothing announced
            assert [e.status for e in inbox] == ["STARTING"]
            await bus.publish(StatusEvent(
                Topic.OPERATION, catalyst.name, "op-1", "FAILED", "RUNNING", Source.MUTATION,
                data={"action": "startServer", "target": server, "error": "step wait: …"}))
            async with asyncio.timeout(10):
                while inbox[-1].status != "RUNNING":
                    await asyncio.sleep(0.01)
        # (The bus's ledger may add the step its chain missed between the two.)
        assert (inbox[0].status, inbox[0].source) == ("STARTING", Source.MUTATION)
        assert (inbox[-1].status, inbox[-1].source) == ("RUNNING", Source.WATCHER)
    finally:
        await watcher.aclose()


class HeldPanel(LiveOnlyPanel):
    """Reads its states when asked, then answers only when released: a poll whose read is
    older than what other sources announce while it is on the wire."""

    def __init__(self) -> None:
        super().__init__()
        self.hold = False
        self.read, self.release = asyncio.Event(), asyncio.Event()

    async def get_live_states(self, ids: Sequence[str]) -> Mapping[str, LiveState]:
        answer = await super().get_live_states(ids)
        if self.hold:
            self.read.set()
            await self.release.wait()
        return answer


async def test_a_poll_older_than_the_news_leaves_that_resource_to_the_next_poll(
        sessions: Sessions) -> None:
    panel, bus = HeldPanel(), InProcessBus()
    slow = WatcherSettings(fast_seconds=60, slow_seconds=60, lease_seconds=180)
    watcher = Watcher({"live": panel}, bus, Snapshots(sessions), settings=slow)
    await watcher.start()  # taps the bus; its loop records the baseline, then waits a minute
    try:
        await until(lambda: watcher.polls["live"] == 1, "the baseline poll")
        async with subscribers(bus, 1, {Topic.SERVER}) as (inbox,):
            panel.hold, panel.states["a"] = True, ServerStatus.STOPPING
            poll = asyncio.create_task(watcher.poll_once("live"))
            await panel.read.wait()  # the poll read STOPPING…
            for previous, status in (("RUNNING", "STOPPING"), ("STOPPING", "STOPPED")):
                await bus.publish(StatusEvent(Topic.SERVER, "live", "a", status, previous,
                                              Source.MUTATION))
            panel.states["a"] = ServerStatus.STOPPED  # …the tracker announced STOPPED since
            panel.release.set()
            assert await poll == []  # its STOPPING is older than that: no second announcement
            panel.hold = False
            assert await watcher.poll_once("live") == []  # the next one confirms silently
        assert [(e.previous, e.status, e.source) for e in inbox] == [
            ("RUNNING", "STOPPING", Source.MUTATION), ("STOPPING", "STOPPED", Source.MUTATION)]
        stored = await Snapshots(sessions).find("live", "server", "a")
        assert stored is not None and stored.status == "STOPPED"
    finally:
        await watcher.aclose()


async def test_an_earlier_operation_ending_late_does_not_hand_back_a_later_ones_server(
        catalyst: ServedCatalyst, sessions: Sessions) -> None:
    """A stop's operation writes its end after the start that followed had announced STARTING
    (a loaded machine): that STARTING is the start's, whose tracker still follows the server,
    so the polls keep leaving it alone until the start's own operation ends."""
    bus = InProcessBus()
    watcher = make_watcher(catalyst, sessions, bus)
    await watcher.start()
    try:
        while not watcher.polls[catalyst.name]:
            await asyncio.sleep(0.01)
        server = server_ids(catalyst)[2]  # stopped
        stop_began = datetime.now(UTC) - timedelta(seconds=1)

        def ended(op: str, status: str, began: datetime) -> StatusEvent:
            return StatusEvent(Topic.OPERATION, catalyst.name, op, status, "RUNNING",
                               Source.MUTATION, data={"target": server,
                                                      "created_at": began.isoformat()})

        async with subscribers(bus, 1, {Topic.SERVER}) as (inbox,):
            await bus.publish(StatusEvent(Topic.SERVER, catalyst.name, server, "STARTING",
                                          "STOPPED", Source.MUTATION))
            start_began = datetime.now(UTC)
            catalyst.sim.servers[server].status = "running"
            await bus.publish(ended("op-stop", "SUCCEEDED", stop_began))  # late, and not its
            await _polls(watcher, catalyst.name, 3)
            assert [e.status for e in inbox] == ["STARTING"]  # still the start's to announce
            await bus.publish(ended("op-start", "FAILED", start_began))  # the start's own end
            async with asyncio.timeout(10):
                while inbox[-1].status != "RUNNING":
                    await asyncio.sleep(0.01)
        assert (inbox[-1].previous, inbox[-1].source) == ("STARTING", Source.WATCHER)
    finally:
        await watcher.aclose()
