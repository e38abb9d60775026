"""A gateway over two Catalyst panels, one healthy and one whose knobs the tests turn."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from panelql_sim.catalyst import CatalystSim
from panelql_sim.framework import Knobs
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import GatewayUnderTest, serve_sim, start_gateway

BAD_TIMEOUT = 2.0  # the faulty panel's timeout_seconds: the deadline the tests hold it to
RESILIENCE = {"retries": 2, "backoff_base_seconds": 0.05, "backoff_cap_seconds": 0.2,
              "retry_after_cap_seconds": 1.5, "breaker_threshold": 0, "max_concurrency": 16}


@dataclass
class Pair:
    gw: GatewayUnderTest
    ok: CatalystSim
    bad: CatalystSim
    background: BackgroundServers

    def timed(self, query: str, variables: dict[str, Any] | None = None
              ) -> tuple[dict[str, Any], float]:
        started = time.monotonic()
        body = self.gw.query(query, variables)
        return body, time.monotonic() - started


def two_panels(background: BackgroundServers, tag: str, db: Any,
               resilience: dict[str, Any]) -> Pair:
    ok, bad = CatalystSim(servers=4, nodes=2), CatalystSim(servers=3, nodes=2)
    bad.knobs.transition_seconds = 0.1
    ok_entry = serve_sim(background, f"{tag}-ok", ok, "catalyst", {"api_key": ok.api_key})
    bad_entry = serve_sim(background, f"{tag}-bad", bad, "catalyst", {"api_key": bad.api_key})
    bad_entry = bad_entry.model_copy(update={"timeout_seconds": BAD_TIMEOUT})
    gw = start_gateway(background, f"gw-{tag}", {ok_entry.name: ok, bad_entry.name: bad},
                       [ok_entry, bad_entry], db, resilience=resilience,
                       watcher={"enabled": False}, operation_poll_seconds=0.05)
    return Pair(gw, ok, bad, background)


@pytest.fixture(scope="module")
def pair(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Pair]:
    yield two_panels(background, "rel", tmp_path_factory.mktemp("rel") / "rel.db", RESILIENCE)


@pytest.fixture(autouse=True)
def calm(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test starts with the faulty panel healthy and its counters at zero."""
    if "pair" not in request.fixturenames:
        yield
        return
    pair: Pair = request.getfixturevalue("pair")
    _restore(pair)
    yield
    _restore(pair)


def _restore(pair: Pair) -> None:
    transition = pair.bad.knobs.transition_seconds
    pair.bad.knobs = Knobs(transition_seconds=transition)
    pair.bad._window.clear()
    pair.gw.reset_counts()
