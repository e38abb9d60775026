"""Simulators and gateways in their own processes, so the numbers measure the gateway.

On one interpreter the simulators' and the load generator's Python would share the GIL with the
gateway and show up as "gateway overhead". Here the simulators run in one child process, the
gateways (several apps, one per configuration) in another, and the benchmark drives them over
real HTTP from the parent; knobs and request counts go through each simulator's ``/__sim``
control routes.
"""

from __future__ import annotations

import multiprocessing as mp
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

from panelql_sim.demo import DEMO_PANELS, load_sim


@dataclass(frozen=True)
class SimSpec:
    name: str  # connection name
    demo: str  # which DEMO_PANELS entry supplies kind, credentials and options
    kwargs: dict[str, Any]


def _sims_main(specs: list[SimSpec], pipe: Connection) -> None:
    from panelql_sim.runner import BackgroundServers

    demos = {d.name: d for d in DEMO_PANELS}
    background = BackgroundServers()
    entries = []
    for spec in specs:
        demo = demos[spec.demo]
        panel = load_sim(demo.sim, **spec.kwargs)
        panel.knobs.transition_seconds = 0.2
        served = background.serve(spec.name, panel.app(),
                                  **getattr(panel, "serve_options", dict)())
        entries.append({"name": spec.name, "kind": demo.kind,
                        "base_url": served.url + demo.path,
                        "credentials": dict(demo.credentials(panel)),
                        "options": demo.options(panel, served.url), "region": demo.region,
                        "control": served.url})
    pipe.send(entries)
    pipe.recv()  # any message: stop
    background.stop()


def _gateways_main(configs: dict[str, dict[str, Any]], pipe: Connection) -> None:
    from panelql.app import create_app
    from panelql.settings import Settings
    from panelql_sim.runner import BackgroundServers

    background = BackgroundServers(uvloop=True)  # as `panelql serve` runs
    tmp = tempfile.mkdtemp(prefix="panelql-bench-")
    out: dict[str, tuple[str, str]] = {}
    apps = {}
    for name, values in configs.items():
        settings = Settings(database_url=f"sqlite+aiosqlite:///{Path(tmp) / name}.db",
                            **values)
        apps[name] = app = create_app(settings)
        served = background.serve(name, app)
        raw, _ = background.call(app.state.gateway.keys.create(name="bench", scopes=["admin"]))
        out[name] = (served.url, str(raw))
    pipe.send(out)
    profiler: Any = None
    while True:
        command = pipe.recv()
        if command == "profile-start":
            profiler = background.call(_start_profiler())
            pipe.send("ok")
        elif command == "profile-stop":
            text = background.call(_stop_profiler(profiler))
            pipe.send(text)
        elif command == "cpu":
            pipe.send(time.process_time())  # the whole gateway process, all threads
        elif command == "rss":
            from bench.floor import rss_mb

            pipe.send(rss_mb())
        else:
            break
    background.stop()


async def _start_profiler() -> Any:
    from pyinstrument import Profiler

    # Started on the serving loop's thread, so it samples the gateway, not this pipe.
    profiler = Profiler(interval=0.0005, async_mode="disabled")
    profiler.start()
    return profiler


async def _stop_profiler(profiler: Any) -> str:
    profiler.stop()
    return str(profiler.output_text(unicode=False, color=False, show_all=False))


class Child:
    def __init__(self, target: Any, *args: Any) -> None:
        context = mp.get_context("spawn")
        self.pipe, theirs = context.Pipe()
        self.process = context.Process(target=target, args=(*args, theirs), daemon=True)
        self.process.start()
        if not self.pipe.poll(120):
            raise RuntimeError(f"{target.__name__} did not start")
        self.ready = self.pipe.recv()

    def stop(self) -> None:
        self.pipe.send("stop")
        self.process.join(20)
        if self.process.is_alive():
            self.process.kill()


class Sims(Child):
    """The simulators; ``entries`` are the gateway's provider entries (plus a control URL)."""

    def __init__(self, specs: list[SimSpec]) -> None:
        super().__init__(_sims_main, specs)
        self.entries: list[dict[str, Any]] = self.ready
        self.http = httpx.Client(timeout=30, verify=False)

    def provider_entries(self, names: list[str] | None = None) -> list[dict[str, Any]]:
        return [{k: v for k, v in e.items() if k != "control"} for e in self.entries
                if names is None or e["name"] in names]

    def _control(self, name: str) -> str:
        return str(next(e["control"] for e in self.entries if e["name"] == name))

    def knobs(self, **values: Any) -> None:
        for entry in self.entries:
            self.http.post(f"{entry['control']}/__sim/knobs", json=values).raise_for_status()

    def reset(self) -> None:
        for entry in self.entries:
            self.http.delete(f"{entry['control']}/__sim/stats").raise_for_status()

    def calls(self, name: str | None = None) -> dict[str, int]:
        names = [name] if name else [e["name"] for e in self.entries]
        return {n: int(self.http.get(f"{self._control(n)}/__sim/stats").json()["total"])
                for n in names}

    def routes(self, name: str) -> dict[str, int]:
        body = self.http.get(f"{self._control(name)}/__sim/stats").json()
        return dict(body["routes"])

    def rounds(self, name: str) -> int:
        """Sequential request rounds the simulator saw since the last reset (by its order of
        events: a request is one round after the deepest one finished before it arrived)."""
        body = self.http.get(f"{self._control(name)}/__sim/stats").json()
        return int(body["rounds"])

    def kind(self, name: str) -> str:
        return str(next(e["kind"] for e in self.entries if e["name"] == name))

    def stop(self) -> None:
        self.http.close()
        super().stop()


class Gateways(Child):
    """Gateway apps by configuration name: ``urls[name]``, ``keys[name]``; one process."""

    def __init__(self, configs: dict[str, dict[str, Any]]) -> None:
        super().__init__(_gateways_main, configs)
        self.urls = {name: url for name, (url, _) in self.ready.items()}
        self.keys = {name: key for name, (_, key) in self.ready.items()}

    def cpu_seconds(self) -> float:
        self.pipe.send("cpu")
        seconds: float = self.pipe.recv()
        return seconds

    def rss_mb(self) -> float:
        self.pipe.send("rss")
        mb: float = self.pipe.recv()
        return mb

    def profile(self, work: Any) -> str:
        self.pipe.send("profile-start")
        self.pipe.recv()
        work()
        self.pipe.send("profile-stop")
        return str(self.pipe.recv())
