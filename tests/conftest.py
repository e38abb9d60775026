"""Shared fixtures: real loopback servers for simulated panels and the gateway."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from panelql_sim.runner import BackgroundServers


@pytest.fixture(scope="session")
def background() -> Iterator[BackgroundServers]:
    """One thread + loop that serves every simulator (and gateway) a test session starts."""
    servers = BackgroundServers()
    yield servers
    servers.stop()


def env_or_skip(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.skip(f"{name} is not set; this test needs a real service")
    return value
