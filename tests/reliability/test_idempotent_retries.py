"""Idempotency keys record outcomes, not failures that changed nothing.

Before, ``startServer(idempotencyKey: K)`` during a panel 503 stored PROVIDER_UNAVAILABLE under
K: after the panel recovered the same key replayed the failure and the server stayed stopped
(for the key's 24 h), and so did a call stopped by the open circuit. Now such failures release
the key and the retry performs the action; a failure that may have applied (a timeout after the
write was sent, tests/reliability/test_faults.py) is still stored and replayed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from panelql.providers.errors import NotFound, Unavailable
from panelql.providers.resilience import (
    ConnectionGuard,
    ResiliencePolicy,
    never_applied,
    tracking_writes,
)
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import gateway_of
from tests.reliability.conftest import RESILIENCE, Pair, two_panels

START = """mutation($id: ID!, $key: String) {
  startServer(id: $id, idempotencyKey: $key) { replayed operation { id } } }"""
STOPPED = """{ servers(filter: {provider: ["idem-bad"], status: [STOPPED]}) {
  edges { node { id } } } }"""
# Long enough that the fail-fast request surely lands while the circuit is open, even on a
# loaded machine (at 0.3 s a CI run saw the cool-down pass first and the start go through);
# the test then waits it out by watching the breaker, not by sleeping.
COOLDOWN = 5.0


@pytest.fixture(scope="module")
def pair(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Pair]:
    yield two_panels(background, "idem", tmp_path_factory.mktemp("idem") / "i.db",
                     {**RESILIENCE, "breaker_threshold": 2,
                      "breaker_cooldown_seconds": COOLDOWN})


def stopped(pair: Pair) -> str:
    deadline = time.monotonic() + 15
    while True:  # the previous test's stop may still be in its transition
        edges = pair.gw.query(STOPPED)["data"]["servers"]["edges"]
        if edges:
            return str(edges[0]["node"]["id"])
        assert time.monotonic() < deadline, "no stopped server"
        time.sleep(0.1)


def code(body: dict[str, Any]) -> str:
    return str(body["errors"][0]["extensions"]["code"])


def stop_again(pair: Pair, server: str) -> None:
    deadline = time.monotonic() + 15
    while True:  # wait out the start transition, then stop, so the next test finds it stopped
        body = pair.gw.query("mutation($id: ID!) { stopServer(id: $id) { replayed } }",
                             {"id": server})
        if "errors" not in body:
            return
        assert time.monotonic() < deadline, body
        time.sleep(0.1)


def test_retry_after_a_503_performs_the_start(pair: Pair) -> None:
    server = stopped(pair)
    pair.bad.knobs.update({"fail_status": 503, "fault_methods": ["POST"]})
    failed = pair.gw.query(START, {"id": server, "key": "idem-503"})
    assert code(failed) == "PROVIDER_UNAVAILABLE"
    assert failed["errors"][0]["extensions"]["retryable"] is True
    pair.bad.knobs.update({"fail_status": None, "fault_methods": None})
    again = pair.gw.query(START, {"id": server, "key": "idem-503"})
    assert "errors" not in again, again
    assert again["data"]["startServer"]["replayed"] is False
    # …and from now on the key replays that outcome.
    replay = pair.gw.query(START, {"id": server, "key": "idem-503"})
    assert replay["data"]["startServer"]["replayed"] is True
    stop_again(pair, server)


def test_retry_after_the_open_circuit_performs_the_start(pair: Pair) -> None:
    server = stopped(pair)
    pair.bad.knobs.fail_status = 502
    for _ in range(2):
        pair.gw.query("{ servers { totalCount } }")
    assert gateway_of(pair.gw).breaker_states()["idem-bad"] == "open"
    pair.bad.knobs.fail_status = None
    # Writes only: the gateway's own background reads (health, the watcher) may reach the
    # panel meanwhile on a loaded machine, and are not what this checks (a CI run: 16 vs 14).
    def writes() -> int:
        return sum(n for route, n in pair.bad.stats.items() if not route.startswith("GET "))
    sent = writes()
    failing_fast = pair.gw.query(START, {"id": server, "key": "idem-circuit"})
    assert code(failing_fast) == "PROVIDER_UNAVAILABLE"
    assert writes() == sent  # the circuit stopped the start before it left
    deadline = time.monotonic() + COOLDOWN + 30  # a safety net only
    while gateway_of(pair.gw).breaker_states()["idem-bad"] == "open":  # the cool-down passes
        assert time.monotonic() < deadline
        time.sleep(0.05)
    again = pair.gw.query(START, {"id": server, "key": "idem-circuit"})
    assert "errors" not in again, again
    assert again["data"]["startServer"]["replayed"] is False
    stop_again(pair, server)


def test_which_failures_never_applied() -> None:
    request = httpx.Request("POST", "http://panel/api/servers/1/power")
    refused = Unavailable("down", provider="p", upstream_status=503)
    crashed = Unavailable("failing", provider="p", upstream_status=500)
    circuit = Unavailable("circuit open", provider="p", debug={"breaker": "open"})
    unreachable = Unavailable("unreachable", provider="p")
    unreachable.__cause__ = httpx.ConnectError("refused", request=request)
    timed_out = Unavailable("timed out", provider="p")
    timed_out.__cause__ = httpx.ReadTimeout("slow", request=request)
    missing = NotFound("gone", provider="p", upstream_status=404)
    assert [never_applied(e) for e in (refused, circuit, unreachable, missing)] == [True] * 4
    assert [never_applied(e) for e in (crashed, timed_out)] == [False, False]


async def test_writes_that_may_have_applied_are_tracked() -> None:
    """What ``execute`` reads to decide: a write answered 2xx (or timing out) may have applied
    and keeps the key stored whatever the action's final error; a write refused with 503 or
    4xx, or never connected, did not."""
    policy = ResiliencePolicy(retries=0, breaker_threshold=0, max_concurrency=0)
    guard = ConnectionGuard("track", policy)

    def answering(status: int) -> Any:
        async def attempt(request: httpx.Request) -> httpx.Response:
            return httpx.Response(status, request=request)
        return attempt

    async def refusing(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def post() -> httpx.Request:
        return httpx.Request("POST", "http://panel/api/servers")

    with tracking_writes() as writes:
        await guard.send(post(), answering(503))
        await guard.send(post(), answering(422))
        with pytest.raises(httpx.ConnectError):
            await guard.send(post(), refusing)
        await guard.send(httpx.Request("GET", "http://panel/api/servers"), answering(200))
        assert writes == []
        await guard.send(post(), answering(201))
        assert writes == [True]
