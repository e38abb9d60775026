"""Shared fixtures: real loopback servers for simulated panels and the gateway."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from panelql_sim import referee
from panelql_sim.runner import BackgroundServers

# The vendors' OpenAPI documents, beside the repository (CI lays shared/ next to the clone);
# PANELQL_TEST_SPECS points elsewhere (a git worktree has no shared/ beside it).
SPECS = Path(os.environ.get("PANELQL_TEST_SPECS")
             or Path(__file__).resolve().parent.parent.parent / "shared" / "specs")


def pytest_configure(config: pytest.Config) -> None:
    reason = referee.enable(SPECS)
    if reason is not None:
        print(f"\n{reason}", file=sys.stderr)


@pytest.fixture(autouse=True)
def simulators_answer_as_documented() -> Iterator[None]:
    """Fails the test during which a simulator received or sent something its vendor's
    OpenAPI document does not allow (panelql_sim/referee.py)."""
    seen = len(referee.VIOLATIONS)
    yield
    referee.settle()
    new = referee.VIOLATIONS[seen:]
    if new:
        pytest.fail("simulator traffic the vendor's OpenAPI document does not allow:\n"
                    + "\n".join(f"- {v}" for v in new[:10]), pytrace=False)


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
