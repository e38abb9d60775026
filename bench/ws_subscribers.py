"""GraphQL subscriptions over real WebSockets: one gateway process with its watcher, one Catalyst
simulator in another, and 1 then N (default 1,000) graphql-transport-ws clients in this one.

Each round changes a server's power state directly on the simulator (as someone using the
panel's own UI would, behind the gateway's back) at a random phase of the poll cycle, and waits
until every client has the ``serverStatusChanged`` event for the new state. Reported:

- upstream requests per poll interval with 1 and with N clients (the claim: independent of the
  number of subscribers, since one watcher polls for all of them);
- change → event latency at each client, p50 / p99 (includes waiting for the next poll);
- events delivered out of those expected;
- the gateway process's RSS per open subscription, and its CPU per delivered event.

    python -m bench.ws_subscribers [--clients 1000] [--rounds 20] [--interval 0.25]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from bench.procs import Gateways, Sims, SimSpec
from bench.report import Row
from bench.subscribers import pct
from panelql.application import ids

SIM = "ws-cat"
EVENTS = """subscription($f: StatusEventFilter) {
  serverStatusChanged(filter: $f) { id status previous } }"""
FINAL = {"stop": "STOPPED", "start": "RUNNING"}


@dataclass
class Result:
    clients: int
    requests_per_interval: float
    change_ms: list[float] = field(default_factory=list)
    delivered: int = 0
    expected: int = 0
    rss_kb_per_subscription: float = 0.0
    cpu_ms_per_event: float = 0.0


class Client:
    """One WebSocket connection with one subscription; remembers when each status arrived."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.seen: list[tuple[float, str]] = []
        self.reader: asyncio.Task[None] | None = None

    async def start(self, key: str, server_id: str) -> None:
        await self.ws.send(json.dumps({"type": "connection_init", "payload": {"x-api-key": key}}))
        ack = json.loads(await self.ws.recv())
        if ack.get("type") != "connection_ack":
            raise RuntimeError(f"connection refused: {ack}")
        await self.ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
            "query": EVENTS, "variables": {"f": {"ids": [server_id]}}}}))
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            if message.get("type") == "ping":
                await self.ws.send(json.dumps({"type": "pong"}))
            elif message.get("type") == "next":
                event = message["payload"]["data"]["serverStatusChanged"]
                self.seen.append((time.perf_counter(), event["status"]))

    def arrived(self, status: str, since: float) -> float | None:
        return next((at for at, s in self.seen if s == status and at >= since), None)


@contextlib.asynccontextmanager
async def clients(url: str, key: str, server_id: str, n: int) -> AsyncIterator[list[Client]]:
    ws_url = url.replace("http://", "ws://") + "/graphql"
    async with contextlib.AsyncExitStack() as stack:
        opened: list[Client] = []

        async def open_one() -> None:
            ws = await stack.enter_async_context(
                connect(ws_url, subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
                        max_queue=None, ping_interval=None))
            client = Client(ws)
            await client.start(key, server_id)
            opened.append(client)

        for start in range(0, n, 50):  # in batches, as dashboards connect over time
            await asyncio.gather(*(open_one() for _ in range(min(50, n - start))))
        try:
            yield opened
        finally:
            for client in opened:
                if client.reader:
                    client.reader.cancel()
            await asyncio.gather(*(c.reader for c in opened if c.reader),
                                 return_exceptions=True)


async def open_subscriptions(http: httpx.AsyncClient, url: str) -> int:
    text = (await http.get(f"{url}/metrics")).text
    for line in text.splitlines():
        if line.startswith('panelql_subscriptions_by_topic{topic="server"}'):
            return int(float(line.split()[-1]))
    return 0


async def wait_subscribed(http: httpx.AsyncClient, url: str, n: int) -> None:
    async with asyncio.timeout(120):  # safety net only: 1,000 subscribe in a few seconds
        while await open_subscriptions(http, url) < n:
            await asyncio.sleep(0.05)


async def measure(sims: Sims, gws: Gateways, n: int, rounds: int, interval: float) -> Result:
    url, key = gws.urls["ws"], gws.keys["ws"]
    entry = next(e for e in sims.entries if e["name"] == SIM)
    panel = httpx.AsyncClient(base_url=entry["base_url"], timeout=30, headers={
        "Authorization": f"Bearer {entry['credentials']['api_key']}"})
    http = httpx.AsyncClient(timeout=30, headers={"x-api-key": key})
    try:
        body = (await http.post(f"{url}/graphql", json={
            "query": "{ servers(first: 50) { edges { node { id status } } } }"})).json()
        target = next(e["node"] for e in body["data"]["servers"]["edges"]
                      if e["node"]["status"] in ("RUNNING", "STOPPED"))
        raw_id = ids.decode(target["id"]).id
        action = "stop" if target["status"] == "RUNNING" else "start"
        rss_before = gws.rss_mb()
        async with clients(url, key, target["id"], n) as opened:
            await wait_subscribed(http, url, n)
            rss_after = gws.rss_mb()
            sims.reset()
            cpu_before, started = gws.cpu_seconds(), time.perf_counter()
            change_ms: list[float] = []
            for _ in range(rounds):
                await asyncio.sleep(random.uniform(0, interval))  # any phase of the poll cycle
                changed_at = time.perf_counter()
                (await panel.post(f"/api/servers/{raw_id}/{action}")).raise_for_status()
                final = FINAL[action]
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(interval * 4 + 10):
                        while any(c.arrived(final, changed_at) is None for c in opened):
                            await asyncio.sleep(0.005)
                change_ms += [(at - changed_at) * 1000 for c in opened
                              if (at := c.arrived(final, changed_at)) is not None]
                action = "start" if action == "stop" else "stop"
            elapsed = time.perf_counter() - started
            cpu = gws.cpu_seconds() - cpu_before
        # Our own power calls are counted by the simulator too; they are not the gateway's.
        upstream = sims.calls(SIM)[SIM] - rounds
        return Result(n, upstream / (elapsed / interval), change_ms, len(change_ms), n * rounds,
                      (rss_after - rss_before) * 1024 / n, cpu * 1000 / max(len(change_ms), 1))
    finally:
        await panel.aclose()
        await http.aclose()


def config(sims: Sims, interval: float) -> dict[str, Any]:
    return {"default_rate_limit_per_minute": None, "health_cache_seconds": 3600,
            "watcher": {"fast_seconds": interval, "slow_seconds": max(30.0, interval),
                        "lease_seconds": max(15.0, interval * 4)},
            "providers": sims.provider_entries([SIM])}


def run(n: int = 1000, rounds: int = 20, interval: float = 0.25) -> list[Result]:
    sims = Sims([SimSpec(SIM, "catalyst-main", {"servers": 50, "nodes": 3})])
    try:
        sims.knobs(transition_seconds=0.0)  # the change is whole at once; latency is ours
        gws = Gateways({"ws": config(sims, interval)})
        try:
            return [asyncio.run(measure(sims, gws, count, rounds, interval)) for count in (1, n)]
        finally:
            gws.stop()
    finally:
        sims.stop()


def rows(n: int = 1000, rounds: int = 20, interval: float = 0.25) -> list[Row]:
    one, many = run(n, rounds, interval)
    # One watcher polls for everyone: N clients may cost no more upstream requests than one
    # (10 % for the random phase of when a round's own calls land in a poll window).
    same = many.requests_per_interval <= one.requests_per_interval * 1.1 + 0.1
    return [
        Row(f"6 subscriptions over WebSocket: upstream requests/interval, 1 vs {n:,} clients",
            f"{one.requests_per_interval:.2f} vs {many.requests_per_interval:.2f}", "equal",
            "yes" if same else "NO"),
        Row(f"  change → event at each of {n:,} clients, p50 / p99",
            f"{pct(many.change_ms, 0.5):.0f} / {pct(many.change_ms, 0.99):.0f} ms",
            f"poll interval {interval * 1000:.0f} ms + fan-out", ""),
        Row("  change → event with 1 client, p50 / p99",
            f"{pct(one.change_ms, 0.5):.0f} / {pct(one.change_ms, 0.99):.0f} ms", "", ""),
        Row("  events delivered", f"{many.delivered}/{many.expected}", "all",
            "yes" if many.delivered == many.expected else "NO"),
        Row("  gateway RSS per open subscription",
            f"{many.rss_kb_per_subscription:.0f} KB", "", ""),
        Row("  gateway CPU per delivered event", f"{many.cpu_ms_per_event:.2f} ms", "", ""),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.25, help="fast interval, seconds")
    args = parser.parse_args(argv)
    from bench.report import table

    print(table(rows(args.clients, args.rounds, args.interval)))


if __name__ == "__main__":
    main()
