"""Subscription fan-out: many subscribers on one process, one watcher, one Catalyst simulator.

For 1 and for N (default 1,000) in-process subscribers the watcher polls a simulator over real
HTTP while a server's status is flipped behind its back, round after round. Reported:

- upstream polls per interval and requests per poll (the claim: independent of subscribers);
- latency from the simulator change to each subscriber receiving the event (p50/p99), which
  includes waiting for the next poll, and from publish to receipt (the fan-out alone);
- memory per subscriber set: RSS delta and tracemalloc delta (measured separately, since
  tracing would distort the timings).

    python -m bench.subscribers [--subscribers 1000] [--rounds 30] [--interval 0.25]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from panelql.db.engine import create_engine, session_factory
from panelql.db.migrate import upgrade
from panelql.db.snapshots import Snapshots
from panelql.events.bus import InProcessBus
from panelql.events.model import StatusEvent, Topic
from panelql.events.watcher import Watcher
from panelql.providers.config import ConnectionConfig, Secret
from panelql.providers.contract import Provider
from panelql.providers.http import ClientFactory
from panelql.providers.registry import build_provider
from panelql.settings import WatcherSettings
from panelql_sim.catalyst import CatalystSim
from panelql_sim.runner import BackgroundServers

CONNECTION = "bench-cat"


class TimedBus(InProcessBus):
    """Remembers when each event was published, to split detection from fan-out latency."""

    def __init__(self) -> None:
        super().__init__(queue_size=64)
        self.published_at: dict[tuple[str, str], float] = {}

    async def publish(self, event: StatusEvent) -> None:
        self.published_at[(event.resource_id, event.status)] = time.perf_counter()
        await super().publish(event)


@dataclass
class Result:
    subscribers: int
    polls_per_interval: float
    requests_per_poll: float
    change_ms: list[float] = field(default_factory=list)
    fanout_ms: list[float] = field(default_factory=list)
    delivered: int = 0
    expected: int = 0
    rss_kb: int = 0
    traced_kb: float = 0.0


def rss_kb() -> int:
    with contextlib.suppress(OSError):
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") // 1024
    return 0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextlib.asynccontextmanager
async def subscribers(bus: InProcessBus, n: int, on_event: Callable[[StatusEvent], None]
                      ) -> AsyncIterator[None]:
    async def consume() -> None:
        async for event in bus.subscribe({Topic.SERVER}):
            on_event(event)

    tasks = [asyncio.create_task(consume()) for _ in range(n)]
    while bus.subscriber_count(Topic.SERVER) < n:
        await asyncio.sleep(0.001)
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def traced_kb(n: int) -> float:
    """Python heap held by ``n`` idle subscribers (tasks, generators, queues)."""
    bus = InProcessBus()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    async with subscribers(bus, n, lambda event: None):
        held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return held / 1024


async def run(sim: CatalystSim, provider: Provider, snapshots: Snapshots, n: int, rounds: int,
              interval: float) -> Result:
    bus = TimedBus()
    settings = WatcherSettings(fast_seconds=interval, slow_seconds=max(30.0, interval),
                               lease_seconds=max(15.0, interval * 4))
    watcher = Watcher({CONNECTION: provider}, bus, snapshots, settings=settings)
    await watcher.poll_once(CONNECTION)  # baseline, outside the measured window
    target = next(s for s in sim.servers.values() if s.status in ("running", "stopped"))
    received: list[tuple[float, StatusEvent]] = []
    rss_before = rss_kb()
    async with subscribers(bus, n, lambda e: received.append((time.perf_counter(), e))):
        rss_after = rss_kb()
        sim.reset_stats()
        await watcher.start()
        started = time.perf_counter()
        change_ms, fanout_ms = await _rounds(sim, bus, target.id, n, rounds, interval, received)
        elapsed = time.perf_counter() - started
        await watcher.aclose()
    polls = watcher.polls[CONNECTION] - 1
    return Result(n, polls * interval / elapsed, sim.total_requests / max(polls, 1),
                  change_ms, fanout_ms, len(change_ms), n * rounds, rss_after - rss_before,
                  await traced_kb(n))


async def _rounds(sim: CatalystSim, bus: TimedBus, server_id: str, n: int, rounds: int,
                  interval: float, received: list[tuple[float, StatusEvent]]
                  ) -> tuple[list[float], list[float]]:
    change_ms: list[float] = []
    fanout_ms: list[float] = []
    for _ in range(rounds):
        # Flip at a random phase of the poll cycle, as a real change would land.
        await asyncio.sleep(random.uniform(0, interval))
        received.clear()
        server = sim.servers[server_id]
        new = "stopped" if server.status == "running" else "running"
        changed_at = time.perf_counter()
        server.status = new  # behind the gateway's back
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval * 4 + 5):
                while len(received) < n:
                    await asyncio.sleep(0.001)
        published = bus.published_at.get((server_id, new.upper()), changed_at)
        change_ms += [(at - changed_at) * 1000 for at, _ in received]
        fanout_ms += [(at - published) * 1000 for at, _ in received]
    return change_ms, fanout_ms


def table(results: list[Result], interval: float) -> str:
    head = (f"{'subscribers':>11} | {'polls/interval':>14} | {'req/poll':>8} | "
            f"{'change→recv p50':>15} | {'p99':>8} | {'publish→recv p50':>16} | {'p99':>8} | "
            f"{'delivered':>11} | {'RSS Δ':>9} | {'tracemalloc Δ':>13}")
    lines = [f"interval {interval * 1000:.0f} ms (fast; subscribers make it 'watched')", head,
             "-" * len(head)]
    for r in results:
        lines.append(
            f"{r.subscribers:>11} | {r.polls_per_interval:>14.2f} | {r.requests_per_poll:>8.1f} | "
            f"{pct(r.change_ms, 0.5):>12.1f} ms | {pct(r.change_ms, 0.99):>5.1f} ms | "
            f"{pct(r.fanout_ms, 0.5):>13.2f} ms | {pct(r.fanout_ms, 0.99):>5.2f} ms | "
            f"{r.delivered:>5}/{r.expected:<5} | {r.rss_kb / 1024:>6.1f} MB | "
            f"{r.traced_kb / 1024:>10.2f} MB")
    return "\n".join(lines)


async def amain(n: int, rounds: int, interval: float) -> list[Result]:
    background = BackgroundServers()
    clients = ClientFactory()
    sim = CatalystSim(servers=50, nodes=3)
    tmp = tempfile.TemporaryDirectory(prefix="panelql-bench-")
    try:
        served = background.serve(CONNECTION, sim.app())
        config = ConnectionConfig(name=CONNECTION, kind="catalyst", base_url=served.url,
                                  credentials={"api_key": Secret(sim.api_key)})
        provider = build_provider(config, clients)
        url = f"sqlite+aiosqlite:///{Path(tmp.name) / 'bench.db'}"
        await upgrade(url)
        engine = create_engine(url)
        snapshots = Snapshots(session_factory(engine))
        results = [await run(sim, provider, snapshots, count, rounds, interval)
                   for count in (1, n)]
        await engine.dispose()
        return results
    finally:
        await clients.aclose()
        background.stop()
        tmp.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--interval", type=float, default=0.25, help="fast interval, seconds")
    args = parser.parse_args(argv)
    results = asyncio.run(amain(args.subscribers, args.rounds, args.interval))
    print(table(results, args.interval))
    one, many = results
    print(f"\nupstream requests per interval, 1 vs {many.subscribers} subscribers: "
          f"{one.polls_per_interval * one.requests_per_poll:.2f} vs "
          f"{many.polls_per_interval * many.requests_per_poll:.2f}")


if __name__ == "__main__":
    main()
