"""A gateway under test: real uvicorn, real SQLite file, simulated panels over real HTTP."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from panelql.app import create_app
from panelql.settings import ProviderEntry, Settings
from panelql_sim.framework import SimPanel
from panelql_sim.runner import BackgroundServers


@dataclass
class GatewayUnderTest:
    url: str
    sims: dict[str, SimPanel]
    app: Any = None
    background: BackgroundServers | None = None
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))
    admin_key: str = ""

    def create_key(self, scopes: list[str], name: str = "test", **options: Any) -> str:
        """Create an API key directly in the gateway's database (what `panelql keys create`
        does), on the loop that serves the gateway."""
        assert self.background is not None
        raw, _ = self.background.call(gateway_of(self).keys.create(
            name=name, scopes=scopes, **options))
        return str(raw)

    def query(self, query: str, variables: dict[str, Any] | None = None,
              **headers: str) -> dict[str, Any]:
        response = self.client.post(f"{self.url}/graphql",
                                    json={"query": query, "variables": variables or {}},
                                    headers=headers)
        body: dict[str, Any] = response.json()
        return body

    def upstream_calls(self) -> dict[str, int]:
        return {name: sim.total_requests for name, sim in self.sims.items()}

    def upstream_routes(self) -> dict[str, int]:
        """Requests per "METHOD /route" over every simulator (ids folded into the route)."""
        merged: dict[str, int] = {}
        for sim in self.sims.values():
            for route, count in sim.stats.items():
                merged[route] = merged.get(route, 0) + count
        return merged

    def reset_counts(self) -> None:
        for sim in self.sims.values():
            sim.reset_stats()


def start_gateway(background: BackgroundServers, name: str, sims: dict[str, SimPanel],
                  entries: list[ProviderEntry], db_path: Path, *,
                  database_url: str | None = None, **settings: Any) -> GatewayUnderTest:
    """A gateway on a real socket; its client sends a fresh admin key on every request.
    ``database_url`` (e.g. PostgreSQL) replaces the SQLite file at ``db_path``."""
    # The watcher polls on its own schedule, which would make upstream-call counts racy;
    # tests that exercise it pass watcher={"enabled": True}.
    settings.setdefault("watcher", {"enabled": False})
    settings.setdefault("freeze_heap", False)  # one test process starts many gateways
    config = Settings(database_url=database_url or f"sqlite+aiosqlite:///{db_path}",
                      providers=entries, **settings)
    app = create_app(config)
    served = background.serve(name, app)
    gw = GatewayUnderTest(url=served.url, sims=sims, app=app, background=background)
    gw.admin_key = gw.create_key(["admin"], name="test-admin")
    gw.client.headers["x-api-key"] = gw.admin_key
    return gw


def gateway_of(gw: GatewayUnderTest) -> Any:
    """The running Gateway object, for assertions about internal state (subscribers…)."""
    return gw.app.state.gateway


def serve_sim(background: BackgroundServers, name: str, sim: SimPanel, kind: str,
              credentials: dict[str, str], path: str = "",
              options: dict[str, Any] | None = None) -> ProviderEntry:
    served = background.serve(name, sim.app())
    return ProviderEntry(name=name, kind=kind, base_url=served.url + path,
                         credentials=dict(credentials), options=dict(options or {}))


async def wait_for_subscribers(gw: GatewayUnderTest, topic: str, count: int,
                               timeout: float = 10.0) -> None:
    """Wait until the gateway's bus has ``count`` subscribers of ``topic`` (no fixed sleeps)."""
    import asyncio
    import time

    from panelql.events.model import Topic

    bus = gateway_of(gw).bus
    deadline = time.monotonic() + timeout
    while bus.subscriber_count(Topic(topic)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{count} subscriber(s) of {topic} never registered")
        await asyncio.sleep(0.02)
