"""The floor: what the dashboard shape costs in bare Strawberry, measured beside PanelQL.

A bare Strawberry schema (plain attributes, no resolvers, no extensions) serves the shape
``servers(first: N) { totalCount edges { node { id name status node { name } owner { email } } } }``
from objects built once in memory, on uvicorn + uvloop as the gateway runs. PanelQL answers the
same document over one Catalyst simulator with N servers and no injected latency. Each side runs
in its own process (PanelQL: one gateway process per N), and its CPU per query comes from that
process's own counters (``time.process_time``), not from wall time, so the ratio is CPU against
CPU; the resident set after the largest query is read from ``/proc/self/statm``.
"""

from __future__ import annotations

import enum
import multiprocessing as mp
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import httpx
import strawberry
from strawberry.asgi import GraphQL

from bench.procs import Gateways, Sims, SimSpec
from bench.report import Row

SIZES = (10, 100, 1000)
# Queries per sample and size (after two warm-ups). At 20 queries an N = 100 sample was 0.15 s
# of CPU, and one collection or scheduler hiccup moved the ratio by 0.3 either way (1.11, 0.93,
# 1.40 in three runs); about 0.5 s of CPU per sample keeps that noise small.
RUNS = {10: 120, 100: 60, 1000: 16}
SHAPE = ("{ servers(first: %d) { totalCount edges { node { id name status node { name } "
         "owner { email } } } } }")
COMMON = {"default_rate_limit_per_minute": None, "watcher": {"enabled": False},
          "health_cache_seconds": 3600}


def specs() -> list[SimSpec]:
    return [SimSpec(f"floor{n}", "catalyst-main",
                    {"servers": n, "nodes": 4, "users": max(4, n // 5)}) for n in SIZES]


def gateway_configs(sims: Sims) -> dict[str, dict[str, Any]]:
    return {f"floor{n}": {**COMMON, "providers": sims.provider_entries([f"floor{n}"])}
            for n in SIZES}


# -- the bare schema --------------------------------------------------------------------------
# Strawberry as its documentation writes it: types with plain fields, one root resolver.
@strawberry.enum
class BareStatus(enum.Enum):
    RUNNING = "running"
    STOPPED = "stopped"


@strawberry.type
class BareNode:
    id: strawberry.ID
    name: str


@strawberry.type
class BareAccount:
    id: strawberry.ID
    email: str | None


@strawberry.type
class BareServer:
    id: strawberry.ID
    name: str
    status: BareStatus
    node: BareNode | None
    owner: BareAccount | None


@strawberry.type
class BareEdge:
    cursor: str
    node: BareServer


@strawberry.type
class BareConnection:
    edges: list[BareEdge]
    total_count: int


@strawberry.type
class BareQuery:
    @strawberry.field
    def servers(self, info: strawberry.Info, first: int = 50) -> BareConnection:
        page = info.context["servers"][:first]
        return BareConnection(edges=[BareEdge(cursor=s.id, node=s) for s in page],
                              total_count=len(page))


def bare_app(count: int) -> Any:
    nodes = [BareNode(id=strawberry.ID(f"node-{i}"), name=f"node {i}") for i in range(4)]
    owners = [BareAccount(id=strawberry.ID(f"user-{i}"), email=f"user{i}@example.test")
              for i in range(max(4, count // 5))]
    servers = [BareServer(id=strawberry.ID(f"server-{i}"), name=f"server {i}",
                          status=BareStatus.RUNNING if i % 3 else BareStatus.STOPPED,
                          node=nodes[i % len(nodes)], owner=owners[i % len(owners)])
               for i in range(count)]

    class App(GraphQL[dict[str, Any], None]):
        async def get_context(self, request: Any, response: Any = None) -> dict[str, Any]:
            return {"servers": servers}

    return App(strawberry.Schema(query=BareQuery))


def _bare_main(count: int, pipe: Connection) -> None:
    from panelql_sim.runner import BackgroundServers

    background = BackgroundServers(uvloop=True)
    served = background.serve("floor", bare_app(count))
    pipe.send(served.url)
    while True:
        command = pipe.recv()
        if command == "cpu":
            pipe.send(time.process_time())
        elif command == "rss":
            pipe.send(rss_mb())
        else:
            break
    background.stop()


def rss_mb() -> float:
    """This process's resident set now (not its peak), in MB."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


class Bare:
    def __init__(self, count: int) -> None:
        context = mp.get_context("spawn")
        self.pipe, theirs = context.Pipe()
        self.process = context.Process(target=_bare_main, args=(count, theirs), daemon=True)
        self.process.start()
        if not self.pipe.poll(120):
            raise RuntimeError("the bare Strawberry server did not start")
        self.url: str = self.pipe.recv()

    def ask(self, command: str) -> float:
        self.pipe.send(command)
        value: float = self.pipe.recv()
        return value

    def stop(self) -> None:
        self.pipe.send("stop")
        self.process.join(20)
        if self.process.is_alive():
            self.process.kill()


# -- measuring --------------------------------------------------------------------------------
@dataclass
class Sample:
    cpu_ms: float  # the serving process's CPU per query
    p50_ms: float  # wall time, one query at a time
    rss_mb: float  # resident set after the queries


def measure(post: Callable[[str], None], cpu: Callable[[], float], rss: Callable[[], float],
            n: int) -> Sample:
    text = SHAPE % n
    for _ in range(2):
        post(text)
    times = []
    before = cpu()
    for _ in range(RUNS[n]):
        started = time.perf_counter()
        post(text)
        times.append(time.perf_counter() - started)
    used = cpu() - before
    return Sample(used / RUNS[n] * 1000, statistics.median(times) * 1000, rss())


def poster(http: httpx.Client, url: str, key: str | None, n: int) -> Callable[[str], None]:
    headers = {"x-api-key": key} if key else {}

    def post(text: str) -> None:
        response = http.post(f"{url}/graphql", json={"query": text}, headers=headers)
        body = response.json()
        if body.get("errors") or response.status_code != 200:
            raise RuntimeError(f"floor query: HTTP {response.status_code} {body}"[:300])
        got = len(body["data"]["servers"]["edges"])
        if got != n:
            raise RuntimeError(f"floor query: {got} servers, expected {n}")

    return post


def rows(repeats: int = 5) -> list[Row]:
    """Alternates PanelQL and the floor ``repeats`` times per size and keeps each side's best
    (least disturbed) CPU figure: the machine is shared, and noise only ever adds CPU."""
    sims = Sims(specs())
    try:
        return _rows(sims, repeats)
    finally:
        sims.stop()


def _rows(sims: Sims, repeats: int) -> list[Row]:
    bare = Bare(max(SIZES))
    http = httpx.Client(timeout=120)
    configs = gateway_configs(sims)
    try:
        sims.knobs(latency_ms=0)
        results: dict[int, tuple[Sample, Sample]] = {}
        for n in SIZES:
            # One gateway process per size, serving that one configuration as `panelql serve`
            # does (and as the bare process serves one app): its resident set is one gateway's.
            gateways = Gateways({f"floor{n}": configs[f"floor{n}"]})
            try:
                ours: list[Sample] = []
                floor: list[Sample] = []
                for _ in range(repeats):
                    ours.append(measure(poster(http, gateways.urls[f"floor{n}"],
                                               gateways.keys[f"floor{n}"], n),
                                        gateways.cpu_seconds, gateways.rss_mb, n))
                    floor.append(measure(poster(http, bare.url, None, n),
                                         lambda: bare.ask("cpu"), lambda: bare.ask("rss"), n))
            finally:
                gateways.stop()
            results[n] = (_best(ours), _best(floor))
    finally:
        http.close()
        bare.stop()
    out = [Row("7 floor: servers(first: N) { id name status node { name } owner { email } }, "
               "1 Catalyst panel, no latency", "PanelQL ÷ bare Strawberry", "", "")]
    for n in SIZES:
        ours_n, floor_n = results[n]
        ratio = ours_n.cpu_ms / floor_n.cpu_ms
        out.append(Row(f"  N={n:,}: CPU per query (process counters)",
                       f"{ours_n.cpu_ms:.1f} ÷ {floor_n.cpu_ms:.1f} ms = {ratio:.2f}",
                       "≤ 1.3" if n >= 100 else "", ("yes" if ratio <= 1.3 else "NO")
                       if n >= 100 else ""))
        out.append(Row("    p50 one at a time, wall", f"{ours_n.p50_ms:.1f} vs "
                       f"{floor_n.p50_ms:.1f} ms", "≤ 120 ms" if n == 1000 else "",
                       ("yes" if ours_n.p50_ms <= 120 else "NO") if n == 1000 else ""))
    ours_big, floor_big = results[max(SIZES)]
    out.append(Row(f"  RSS after N={max(SIZES):,} (PanelQL gateway vs bare)",
                   f"{ours_big.rss_mb:.0f} vs {floor_big.rss_mb:.0f} MB", "≤ 180 MB",
                   "yes" if ours_big.rss_mb <= 180 else "NO"))
    return out


def _best(samples: list[Sample]) -> Sample:
    return Sample(min(s.cpu_ms for s in samples), min(s.p50_ms for s in samples),
                  max(s.rss_mb for s in samples))
