"""Serve ASGI apps on real loopback sockets from a background thread.

The demo, the end-to-end tests and the benchmarks use this to put simulated panels (and the
gateway itself) behind real HTTP, so every byte goes through uvicorn and httpx as in production.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.types import ASGIApp


@dataclass
class Served:
    name: str
    server: uvicorn.Server
    scheme: str = "http"

    @property
    def port(self) -> int:
        sockets = self.server.servers[0].sockets
        return int(sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"


def _uvloop_or_asyncio() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class BackgroundServers:
    """One event loop in one thread serving several apps; ``stop()`` shuts them all down."""

    def __init__(self, *, uvloop: bool = False) -> None:
        # uvloop: what `panelql serve` runs on (uvicorn picks it when installed), for bench/.
        self.loop = _uvloop_or_asyncio() if uvloop else asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.served: dict[str, Served] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._by_name: dict[str, asyncio.Task[None]] = {}

    def serve(
        self,
        name: str,
        app: ASGIApp,
        *,
        port: int = 0,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        **options: Any,
    ) -> Served:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="auto",
            ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile, ws="websockets-sansio",
            timeout_graceful_shutdown=1,
            **options,
        )
        server = uvicorn.Server(config)
        started = asyncio.run_coroutine_threadsafe(self._start(server), self.loop)
        self._by_name[name] = started.result(timeout=30)
        served = Served(name, server, "https" if ssl_certfile else "http")
        self.served[name] = served
        return served

    async def _start(self, server: uvicorn.Server) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(server.serve())
        self._tasks.append(task)
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("server exited before it started")
            await asyncio.sleep(0.01)
        return task

    def stop_one(self, name: str) -> None:
        """Shut one app down (a panel going away mid-test)."""
        served = self.served.pop(name)
        served.server.should_exit = True
        task = self._by_name.pop(name)
        self.call(asyncio.wait({task}, timeout=10))

    def call(self, coro: Any, timeout: float = 30) -> Any:
        """Run a coroutine on the servers' loop (to touch simulator state safely)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        for served in self.served.values():
            served.server.should_exit = True

        async def _drain() -> None:
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=10)
            # Whatever is left (stuck connections, background followers) is cancelled and
            # awaited here, so nothing is torn down later by a closed loop.
            current = asyncio.current_task()
            rest = [t for t in asyncio.all_tasks() if t is not current]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)
            await self.loop.shutdown_asyncgens()

        try:
            asyncio.run_coroutine_threadsafe(_drain(), self.loop).result(timeout=30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)

