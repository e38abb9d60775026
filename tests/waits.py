"""Event-based waits for tests: poll a condition until it holds. The deadline is only a safety
net, far above the expected time, so a loaded machine slows a test down instead of failing it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator

from panelql_sim.framework import SimPanel

SAFETY_SECONDS = 30.0


def wait_until(done: Callable[[], bool], what: str, deadline: float = SAFETY_SECONDS) -> None:
    give_up = time.monotonic() + deadline
    while not done():
        assert time.monotonic() < give_up, f"never happened within {deadline} s: {what}"
        time.sleep(0.02)


async def until(done: Callable[[], bool], what: str, deadline: float = SAFETY_SECONDS) -> None:
    give_up = time.monotonic() + deadline
    while not done():
        assert time.monotonic() < give_up, f"never happened within {deadline} s: {what}"
        await asyncio.sleep(0.01)


@contextlib.contextmanager
def held(panel: SimPanel) -> Iterator[None]:
    """Park the simulator's delayed state changes inside the block and release them on the way
    out (even when an assertion fails), so an in-between state such as ``starting`` can be
    asserted without racing the transition timer."""
    panel.knobs.hold_transitions = True
    try:
        yield
    finally:
        panel.release_transitions()
