"""The retry table, the circuit breaker and the concurrency limit, against a mock transport."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest

from panelql.providers.errors import RateLimited, Unavailable
from panelql.providers.http import ClientFactory, ResilientClient, Upstream, error_for_status
from panelql.providers.resilience import (
    CircuitBreaker,
    ConnectionGuard,
    ResiliencePolicy,
)
from panelql.providers.retry_after import retry_after

FAST = ResiliencePolicy(retries=2, backoff_base_seconds=0.001, backoff_cap_seconds=0.005,
                        retry_after_cap_seconds=0.5, breaker_threshold=3,
                        breaker_cooldown_seconds=0.2, max_concurrency=4)

Handler = Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]


class Script:
    """Answers from a list, one per attempt (the last repeats); counts attempts."""


    def __init__(self, *outcomes: int | type[Exception] | httpx.Response) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        outcome = self.outcomes[min(self.calls, len(self.outcomes) - 1)]
        self.calls += 1
        if isinstance(outcome, httpx.Response):
            return outcome
        if isinstance(outcome, int):
            return httpx.Response(outcome, json={"error": "x"})
        raise outcome("scripted", request=request)  # type: ignore[call-arg]


def upstream(handler: Handler | Script, policy: ResiliencePolicy = FAST, name: str = "p",
             timeout: float = 5.0) -> Upstream:
    async def handle(request: httpx.Request) -> httpx.Response:
        return await handler(request)

    factory = ClientFactory(transport=httpx.MockTransport(handle), policy=policy)
    FACTORIES[name] = factory
    client = factory.for_connection(name).build("http://panel.test", timeout=timeout)
    return Upstream(client, name, lambda body: None)


FACTORIES: dict[str, ClientFactory] = {}  # the newest per connection name, for breaker_states


def breaker_states() -> dict[str, str]:
    """What the gateway reports (Gateway.breaker_states): each factory's guarded connections."""
    return {name: state for factory in FACTORIES.values()
            for name, state in factory.breaker_states().items()}


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("failure", [503, 500, 502, 504, httpx.ReadTimeout, httpx.ReadError,
                                     httpx.RemoteProtocolError, httpx.ConnectError])
async def test_reads_are_retried(method: str, failure: Any) -> None:
    script = Script(failure, 200)
    response = await upstream(script).request(method, "/x")
    assert response.status_code == 200 and script.calls == 2


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("failure", [503, 500, 429, httpx.ReadTimeout, httpx.ReadError,
                                     httpx.WriteError, httpx.RemoteProtocolError])
async def test_writes_that_may_have_arrived_are_never_repeated(method: str, failure: Any) -> None:
    script = Script(failure, 200)
    with pytest.raises((Unavailable, RateLimited)):
        await upstream(script).request(method, "/x", json={"a": 1})
    assert script.calls == 1


@pytest.mark.parametrize("failure", [httpx.ConnectError, httpx.ConnectTimeout])
async def test_writes_that_never_left_are_retried(failure: Any) -> None:
    script = Script(failure, 201)
    response = await upstream(script).request("POST", "/x", json={"a": 1})
    assert response.status_code == 201 and script.calls == 2


async def test_retries_stop_after_the_configured_count() -> None:
    script = Script(503)
    with pytest.raises(Unavailable):
        await upstream(script).request("GET", "/x")
    assert script.calls == FAST.retries + 1


async def test_client_errors_are_not_retried() -> None:
    for status in (400, 401, 404, 409, 422):
        script = Script(status, 200)
        with pytest.raises(Exception):  # noqa: B017 - the mapping is tested elsewhere
            await upstream(script).request("GET", "/x")
        assert script.calls == 1


async def test_short_retry_after_is_honoured() -> None:
    script = Script(httpx.Response(429, headers={"Retry-After": "0.2"}), 200)
    started = time.monotonic()
    response = await upstream(script).request("GET", "/x")
    assert response.status_code == 200 and script.calls == 2
    assert time.monotonic() - started >= 0.2


async def test_long_retry_after_goes_back_to_the_caller() -> None:
    script = Script(httpx.Response(429, headers={"Retry-After": "30"}), 200)
    started = time.monotonic()
    with pytest.raises(RateLimited) as caught:
        await upstream(script).request("GET", "/x")
    assert caught.value.retry_after == 30.0 and script.calls == 1
    # Safety net, not a speed goal: waiting out the Retry-After would take 30 s.
    assert time.monotonic() - started < 15


def test_retry_after_parses_seconds_and_dates() -> None:
    assert retry_after(httpx.Response(429, headers={"Retry-After": "3"}).headers) == 3.0
    past = httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert retry_after(past.headers) == 0.0  # in the past
    soon = email.utils.formatdate(time.time() + 120, usegmt=True)
    assert 100 < (retry_after({"retry-after": soon}) or 0) <= 120  # a plain dict, any case
    assert retry_after(httpx.Response(429, headers={"Retry-After": "soon"}).headers) is None
    assert retry_after(httpx.Response(429).headers) is None
    assert retry_after(None) is None


def test_a_429_with_an_http_date_carries_its_wait() -> None:
    """The error table reads Retry-After as the guard does: an HTTP date counts too."""
    soon = email.utils.formatdate(time.time() + 120, usegmt=True)
    response = httpx.Response(429, headers={"Retry-After": soon},
                              request=httpx.Request("GET", "http://panel.test/x"))
    error = error_for_status(response, None, None, "panel")
    assert isinstance(error, RateLimited) and 100 < (error.retry_after or 0) <= 120


async def test_retries_keep_to_the_time_budget() -> None:
    # Fifty retries with backoff up to 1 s would take about 25 s; the 0.5 s budget refuses any
    # backoff that would end past it, so the call stops long before the retries run out. The
    # clock bound is a safety net far above the budget, not a speed goal.
    slow = ResiliencePolicy(retries=50, backoff_base_seconds=1.0, backoff_cap_seconds=1.0,
                            breaker_threshold=0, max_concurrency=0)
    script = Script(503)
    started = time.monotonic()
    with pytest.raises(Unavailable):
        await upstream(script, slow, timeout=0.5).request("GET", "/x")
    assert 1 <= script.calls < 51, script.calls
    assert time.monotonic() - started < 10


async def test_breaker_opens_fails_fast_probes_and_closes() -> None:
    script = Script(503)
    up = upstream(script, name="brk")
    for _ in range(FAST.breaker_threshold):
        with pytest.raises(Unavailable):
            await up.request("GET", "/x")
    calls = script.calls
    assert breaker_states()["brk"] == "open"
    with pytest.raises(Unavailable, match="circuit open"):
        await up.request("GET", "/x")
    assert script.calls == calls  # failed fast: nothing sent

    await asyncio.sleep(FAST.breaker_cooldown_seconds)
    assert breaker_states()["brk"] == "half_open"
    with pytest.raises(Unavailable, match="failing"):  # the probe goes out and fails
        await up.request("GET", "/x")
    assert script.calls > calls
    assert breaker_states()["brk"] == "open"

    await asyncio.sleep(FAST.breaker_cooldown_seconds)
    script.outcomes = [200]
    assert (await up.request("GET", "/x")).status_code == 200
    assert breaker_states()["brk"] == "closed"


async def test_client_errors_and_rate_limits_do_not_open_the_breaker() -> None:
    up = upstream(Script(404), name="alive")
    for _ in range(FAST.breaker_threshold * 2):
        with pytest.raises(Exception):  # noqa: B017
            await up.request("GET", "/x")
    assert breaker_states()["alive"] == "closed"


async def test_half_open_admits_one_probe_at_a_time() -> None:
    clock = [0.0]
    breaker = CircuitBreaker("b", threshold=1, cooldown=5, clock=lambda: clock[0])
    breaker.failure()
    with pytest.raises(Unavailable):
        breaker.before()
    clock[0] = 5.0
    assert breaker.before() is True
    with pytest.raises(Unavailable):
        breaker.before()  # the probe is still out
    breaker.abandon(probe=True)  # cancelled: the next call may probe
    assert breaker.before() is True
    breaker.success(probe=True)
    assert breaker.before() is False


async def test_answers_to_calls_sent_before_the_circuit_opened_do_not_move_it() -> None:
    clock = [0.0]
    breaker = CircuitBreaker("b", threshold=2, cooldown=5, clock=lambda: clock[0])
    assert breaker.before() is False  # a slow call leaves while all is well…
    breaker.failure()
    breaker.failure()  # …the panel fails meanwhile and the circuit opens…
    clock[0] = 1.0
    breaker.success()  # …then the slow call's old 200 arrives: the circuit stays open
    assert breaker.state.value == "open"
    clock[0] = 4.0
    breaker.failure()  # a late failure does not start the cool-down again either
    clock[0] = 5.0
    assert breaker.before() is True  # half-open at 5 s after the opening, not at 9 s
    breaker.failure(probe=True)
    assert breaker.state.value == "open"


async def test_concurrency_is_limited_per_connection() -> None:
    in_flight, peak = 0, 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(200)

    up = upstream(handler)
    await asyncio.gather(*(up.request("GET", "/x") for _ in range(20)))
    assert peak == FAST.max_concurrency


async def test_one_guard_per_connection_and_plain_clients_without_policy() -> None:
    factory = ClientFactory(policy=FAST)
    view = factory.for_connection("ptero")
    first, second = view.build("http://a.test"), view.build("http://a.test")
    assert isinstance(first, ResilientClient) and isinstance(second, ResilientClient)
    assert first.guard is second.guard is factory.guard("ptero")
    assert factory.breaker_states() == {"ptero": "closed"}
    plain = ClientFactory().for_connection("x").build("http://a.test")
    assert type(plain) is httpx.AsyncClient
    assert ClientFactory().guard("x") is None
    await factory.aclose()


async def test_guard_run_counts_unavailable_for_foreign_clients() -> None:
    guard = ConnectionGuard("pve", FAST)

    async def down() -> None:
        raise Unavailable("pve is unreachable", provider="pve")

    for _ in range(FAST.breaker_threshold):
        with pytest.raises(Unavailable, match="unreachable"):
            await guard.run(down)
    with pytest.raises(Unavailable, match="circuit open"):
        await guard.run(down)
