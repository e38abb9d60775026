"""Fault injection through a real gateway: slow, failing, hanging, resetting, garbled, rate
limiting and restarting panels. Whatever the fault: no crash, no wait past the panel's deadline,
the healthy panel's data plus exactly one error for the faulty one, and no write sent twice.

No assertion here puts an upper bound on wall-clock time (a loaded machine breaks those). A
hanging panel never answers, so a query that comes back at all was cut by the gateway; the
number of sequential upstream rounds is read from the simulator's order of events
(``Concurrency``); the only clock bounds left are lower bounds (a wait did happen) and safety
nets far above the expected time (the client's own timeout, a Retry-After of tens of
seconds)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.reliability.conftest import BAD_TIMEOUT, RESILIENCE, Pair
from tests.waits import wait_until

SERVERS = ("{ servers(first: 100) { totalCount edges { node { id name status "
           "provider { name } node { name } owner { email } } } } }")
START = "mutation($id: ID!) { startServer(id: $id) { server { status } operation { id } } }"
RETRIES = int(RESILIENCE["retries"])


def assert_partial(pair: Pair, body: dict[str, Any], code: str) -> dict[str, Any]:
    """The healthy panel's servers are all there; the faulty one has exactly one error."""
    data = body["data"]["servers"]
    providers = {e["node"]["provider"]["name"] for e in data["edges"]}
    assert providers == {"rel-ok"}, body
    assert data["totalCount"] == len(pair.ok.servers)
    (error,) = body["errors"]
    assert error["extensions"]["provider"] == "rel-bad"
    assert error["extensions"]["code"] == code, error
    assert pair.bad.api_key not in str(body)
    return error  # type: ignore[no-any-return]


def assert_complete(pair: Pair, body: dict[str, Any]) -> None:
    assert "errors" not in body, body
    total = len(pair.ok.servers) + len(pair.bad.servers)
    assert body["data"]["servers"]["totalCount"] == total


def list_calls(pair: Pair) -> int:
    return pair.bad.stats["GET /api/servers"]


def test_latency_costs_the_slowest_panel_once(pair: Pair) -> None:
    pair.bad.knobs.latency_ms = 400
    body, elapsed = pair.timed(SERVERS)
    assert_complete(pair, body)
    assert elapsed >= 0.4
    # servers, then nodes and owners in one concurrent round: two sequential upstream rounds
    assert pair.bad.concurrency.rounds == 2, pair.bad.stats


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_reads_are_retried_then_reported_once(pair: Pair, status: int) -> None:
    pair.bad.knobs.fail_status = status
    body, _ = pair.timed(SERVERS)
    assert_partial(pair, body, "PROVIDER_UNAVAILABLE")
    assert list_calls(pair) == RETRIES + 1


def test_intermittent_500s_are_absorbed_by_retries(pair: Pair) -> None:
    pair.bad.knobs.error_rate = 0.3
    complete = 0
    for _ in range(10):
        body = pair.gw.query(SERVERS)
        if "errors" in body:  # all attempts failed: still partial, never a crash
            for error in body["errors"]:
                assert error["extensions"]["provider"] == "rel-bad"
        else:
            assert_complete(pair, body)
            complete += 1
    # P(three 500s in a row) = 2.7 % per call: nearly every query comes back whole.
    assert complete >= 7
    assert sum(pair.bad.stats.values()) > 10 * 3  # some calls were retried


def test_hanging_panel_is_cut_at_its_timeout(pair: Pair) -> None:
    pair.bad.knobs.hang = True
    body, elapsed = pair.timed(SERVERS)
    error = assert_partial(pair, body, "PROVIDER_UNAVAILABLE")
    assert "timed out" in error["message"]
    # The panel never answers: that the query came back at all is the cut; it waited first.
    assert elapsed >= BAD_TIMEOUT * 0.9
    assert list_calls(pair) == 1  # the budget was spent: no retry after a timeout


def test_connection_resets_on_reads_are_retried(pair: Pair) -> None:
    pair.bad.knobs.reset = True
    body, _ = pair.timed(SERVERS)
    assert_partial(pair, body, "PROVIDER_UNAVAILABLE")
    assert list_calls(pair) == RETRIES + 1


def test_malformed_json_is_a_provider_error_not_retried(pair: Pair) -> None:
    pair.bad.knobs.malformed = True
    body, _ = pair.timed(SERVERS)
    assert_partial(pair, body, "PROVIDER_ERROR")
    assert list_calls(pair) == 1


def test_short_retry_after_is_waited_for(pair: Pair) -> None:
    pair.bad.knobs.fail_status = 429  # answers Retry-After: 1
    timer = threading.Timer(0.3, lambda: setattr(pair.bad.knobs, "fail_status", None))
    timer.start()
    body, elapsed = pair.timed(SERVERS)
    timer.join()
    assert_complete(pair, body)
    assert elapsed >= 1.0  # the retry honoured Retry-After instead of hammering
    # the 429 and its retry; the node list's own server listing (for allocation) shares that
    # answer within the query (providers/read_memo.py)
    assert list_calls(pair) == 2


def test_429_storm_answers_fast_with_retry_after(pair: Pair) -> None:
    pair.bad.knobs.rate_limit_per_minute = 3  # the window's Retry-After is tens of seconds
    first = pair.gw.query(SERVERS)  # uses up the window (its nested lookups may be limited)
    assert {e["extensions"]["code"] for e in first.get("errors", [])} <= {"RATE_LIMITED"}
    pair.gw.reset_counts()

    def one(_: int) -> tuple[dict[str, Any], float]:
        return pair.timed(SERVERS)

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(one, range(20)))
    for body, elapsed in results:
        error = assert_partial(pair, body, "RATE_LIMITED")
        assert error["extensions"]["retryable"] is True
        assert error["extensions"]["retryAfter"] > RESILIENCE["retry_after_cap_seconds"]
        # Safety net, not a speed goal: waiting out the Retry-After would take longer.
        assert elapsed < error["extensions"]["retryAfter"]
    # A long Retry-After is passed on, not retried: one upstream call per logical read.
    assert list_calls(pair) <= 20


@pytest.mark.parametrize("fault", [
    {"hang": True}, {"reset": True}, {"fail_status": 503}, {"fail_status": 500},
    {"fail_status": 429}, {"latency_ms": (BAD_TIMEOUT + 0.5) * 1000},
])
def test_a_failed_start_is_sent_exactly_once(pair: Pair, fault: dict[str, Any]) -> None:
    server = next(s for s in pair.bad.servers.values() if s.status == "stopped")
    server_id = _global_id(pair, server.name)
    pair.bad.knobs.update({**fault, "fault_methods": ["POST"]})
    body, _ = pair.timed(START, {"id": server_id})
    assert body["errors"][0]["extensions"]["code"] in ("PROVIDER_UNAVAILABLE", "RATE_LIMITED")
    assert pair.bad.stats["POST /api/servers/*/start"] == 1
    if "latency_ms" in fault:  # the panel did start it after the gateway gave up
        wait_until(lambda: server.status in ("starting", "running"), "the late start landed")
        server.status = "stopped"


def test_a_timed_out_create_is_not_repeated_by_a_retry_with_the_same_key(pair: Pair) -> None:
    create = """mutation($input: CreateServerInput!, $key: String) {
      createServer(input: $input, idempotencyKey: $key) { server { id } } }"""
    variables = {"key": "rel-order-1", "input": {
        "provider": "rel-bad", "name": "Order 1",
        "resources": {"memoryMb": 2048, "cpuCores": 1, "diskMb": 10240}}}
    pair.bad.knobs.update({"hang": True, "fault_methods": ["POST"]})
    first, _ = pair.timed(create, variables)  # the panel hangs: coming back is the cut
    assert first["errors"][0]["extensions"]["code"] == "PROVIDER_UNAVAILABLE"
    pair.bad.knobs.hang = False
    again = pair.gw.query(create, variables)  # the client retries: replayed, not re-sent
    assert again["errors"][0]["extensions"]["code"] == "PROVIDER_UNAVAILABLE"
    assert pair.bad.stats["POST /api/servers"] == 1


def test_a_panel_restarting_mid_query(pair: Pair) -> None:
    served = pair.background.served["rel-bad"]
    port = served.port
    pair.background.stop_one("rel-bad")
    down, _ = pair.timed(SERVERS)  # nothing listens: connect errors, retried, reported
    assert_partial(pair, down, "PROVIDER_UNAVAILABLE")

    def come_back() -> None:
        time.sleep(0.15)
        pair.background.serve("rel-bad", pair.bad.app(), port=port)

    stopped = next(s for s in pair.bad.servers.values() if s.status == "stopped")
    server_id = _global_id_when_up(pair, stopped.name, port)
    pair.background.stop_one("rel-bad")
    returning = threading.Thread(target=come_back)
    returning.start()
    with ThreadPoolExecutor(max_workers=2) as pool:
        during = pool.submit(pair.timed, SERVERS)
        started = pool.submit(pair.timed, START, {"id": server_id})
        (read, _), (write, _) = during.result(), started.result()
    returning.join()
    for body in (read, write):
        for error in body.get("errors", []):
            assert error["extensions"]["code"] == "PROVIDER_UNAVAILABLE"
    if "errors" not in read:
        assert_complete(pair, read)
    # A connect error proves the POST never arrived, so it may be retried — but it lands once.
    assert pair.bad.stats["POST /api/servers/*/start"] <= 1
    assert_complete(pair, pair.gw.query(SERVERS))


def _global_id(pair: Pair, name: str) -> str:
    body = pair.gw.query(SERVERS)
    return next(e["node"]["id"] for e in body["data"]["servers"]["edges"]  # type: ignore[no-any-return]
                if e["node"]["name"] == name and e["node"]["provider"]["name"] == "rel-bad")


def _global_id_when_up(pair: Pair, name: str, port: int) -> str:
    pair.background.serve("rel-bad", pair.bad.app(), port=port)
    return _global_id(pair, name)
