"""Periodic clean-up of the gateway's own state: expired idempotency records. (Operations a
dead process left RUNNING are taken over by the tracker's heartbeat, see operations.py.)"""

from __future__ import annotations

import asyncio
import logging

from panelql.application.gateway import Gateway
from panelql.events import background

log = logging.getLogger("panelql.housekeeping")
INTERVAL_SECONDS = 600.0


class Housekeeping:
    def __init__(self, gateway: Gateway, interval: float = INTERVAL_SECONDS) -> None:
        self.gateway = gateway
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.run_once()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def run_once(self) -> int:
        return await self.gateway.idempotency.purge_expired()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                purged = await self.run_once()
                if purged:
                    log.info("purged %d expired idempotency record(s)", purged)
            except Exception:  # a failed clean-up is retried next time, never fatal
                if background.being_cancelled():
                    raise asyncio.CancelledError from None
                log.exception("housekeeping failed")

    async def aclose(self) -> None:
        if self._task is not None:
            await background.stop([self._task], "housekeeping loop")
