"""The circuit breaker through a real gateway: open after failures, fail fast, probe, close."""

from __future__ import annotations

import time
from pathlib import Path

from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import gateway_of
from tests.reliability.conftest import RESILIENCE, two_panels

SERVERS = "{ servers(first: 100) { totalCount edges { node { provider { name } } } } }"
COOLDOWN = 0.5


def test_breaker_opens_fails_fast_and_recovers(background: BackgroundServers,
                                               tmp_path: Path) -> None:
    pair = two_panels(background, "brk", tmp_path / "brk.db",
                      {**RESILIENCE, "breaker_threshold": 2,
                       "breaker_cooldown_seconds": COOLDOWN})
    assert gateway_of(pair.gw).breaker_states()["brk-bad"] == "closed"
    pair.bad.knobs.fail_status = 503
    for _ in range(2):
        body = pair.gw.query(SERVERS)
        assert "circuit open" not in body["errors"][0]["message"]
    assert gateway_of(pair.gw).breaker_states()["brk-bad"] == "open"
    assert gateway_of(pair.gw).breaker_states()["brk-ok"] == "closed"

    sent = pair.bad.total_requests
    body = pair.gw.query(SERVERS)
    (error,) = body["errors"]
    assert "circuit open" in error["message"]
    assert error["extensions"] == {"code": "PROVIDER_UNAVAILABLE", "provider": "brk-bad",
                                   "retryable": True}
    assert body["data"]["servers"]["totalCount"] == len(pair.ok.servers)
    # Failing fast means not asking: nothing reached the failing panel (no clock bound, which
    # a loaded machine would break).
    assert pair.bad.total_requests == sent

    pair.bad.knobs.fail_status = None
    time.sleep(COOLDOWN)
    assert gateway_of(pair.gw).breaker_states()["brk-bad"] == "half_open"
    body = pair.gw.query(SERVERS)  # the probe succeeds and closes the circuit
    assert "errors" not in body, body
    assert body["data"]["servers"]["totalCount"] == len(pair.ok.servers) + len(pair.bad.servers)
    assert gateway_of(pair.gw).breaker_states()["brk-bad"] == "closed"
