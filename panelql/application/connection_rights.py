"""Rights of a long-lived connection (WebSocket, SSE), checked again while it lives.

An HTTP request is authenticated and rate-limited once, before GraphQL runs, and its context
lives as long as the request. A WebSocket carries many operations and a subscription may
stream for hours, so what was true at connect stops being true: the key is revoked or expires,
an admin moves a server to another customer. Checking only at connect let a revoked key keep
mutating, a 10/min key run 100 queries, and a customer keep receiving events of a server that
was no longer theirs.

So a connection keeps its key (never logged, never in the Viewer) and:

- every operation on a WebSocket gets a fresh context (loaders, customer scope, partial errors)
  after the key is looked up again and charged against its rate limit
  (:func:`ConnectionRights.begin_operation`);
- a running subscription looks the key up again and drops its cached scope and loaders at
  most every ``interval`` seconds, also while no event arrives (:func:`ConnectionRights.refresh`).

A key found revoked or expired ends the operation with UNAUTHENTICATED and marks the
connection ``revoked``; the web layer then closes the socket (close code 4403).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from panelql.application.auth import viewer_for_key
from panelql.application.context import Context, Viewer
from panelql.application.errors import RateLimited, Unauthenticated
from panelql.application.gateway import Gateway
from panelql.application.loaders import Loaders


@dataclass
class ConnectionRights:
    gateway: Gateway
    key: str | None = field(default=None, repr=False)
    interval: float = 2.0
    # WebSocket: one connection, many operations, each needing its own context.
    per_operation: bool = False
    # Closes the transport once the key is found revoked (the web layer's socket close).
    on_revoked: Callable[[], Awaitable[None]] | None = field(default=None, repr=False)
    revoked: Unauthenticated | None = None
    _closing: asyncio.Future[None] | None = field(default=None, repr=False)
    checked_at: float = field(default_factory=time.monotonic)

    async def viewer(self) -> Viewer:
        """The key's current Viewer, or Unauthenticated (remembered as ``revoked``)."""
        if self.revoked is not None:
            raise self.revoked
        if self.gateway.settings.auth_required is False:
            return Viewer(name="anonymous", scopes=frozenset({"admin"}))
        try:
            viewer = await viewer_for_key(self.gateway.keys, self.key)
        except Unauthenticated as exc:
            self.revoked = Unauthenticated(
                "this API key was revoked or has expired; the connection is closed")
            raise self.revoked from exc
        self.checked_at = time.monotonic()
        return viewer

    def close_if_revoked_after(self, task: asyncio.Task[Any] | None) -> None:
        """Once ``task`` (the transport's task running one operation) has sent its last
        message, close the transport if the key was found revoked meanwhile."""
        if task is None or self.on_revoked is None:
            return

        def done(_: asyncio.Task[Any]) -> None:
            if self.revoked is not None and self.on_revoked is not None:
                close, self.on_revoked = self.on_revoked, None
                self._closing = asyncio.ensure_future(_quietly(close))
        task.add_done_callback(done)

    async def begin_operation(self, ctx: Context) -> Context:
        """A context for one operation of the connection: the key checked and charged now."""
        viewer = await self.viewer()
        await charge(self.gateway, viewer)
        fresh = Context.create(self.gateway, ctx.request, viewer)
        fresh.rights = self
        return fresh

    async def refresh(self, ctx: Context, *, force: bool = False) -> None:
        """For a long-running subscription: re-check the key and forget what the context
        cached (customer scope, loaded records) once ``interval`` has passed."""
        if not force and time.monotonic() - self.checked_at < self.interval:
            return
        ctx.viewer = await self.viewer()
        ctx.scopes.clear()
        ctx.loaders = Loaders(self.gateway)
        ctx.related.clear()  # what the old loaders answered


async def _quietly(close: Callable[[], Awaitable[None]]) -> None:
    with contextlib.suppress(RuntimeError):  # the client may have gone already
        await close()


async def charge(gateway: Gateway, viewer: Viewer) -> None:
    """Take one request from the key's rate limit, or raise RATE_LIMITED with retryAfter."""
    wait = await rate_wait(gateway, viewer)
    if wait > 0:
        raise RateLimited("rate limit exceeded for this API key", retryAfter=math.ceil(wait))


async def rate_wait(gateway: Gateway, viewer: Viewer) -> float:
    limit = viewer.rate_limit_per_minute or gateway.settings.default_rate_limit_per_minute
    if viewer.key_id is None or not limit:
        return 0.0
    return await gateway.rate_limiter.take(str(viewer.key_id), limit)
