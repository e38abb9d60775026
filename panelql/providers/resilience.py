"""Upstream resilience per provider connection: retries, a circuit breaker, a concurrency limit.

One :class:`ConnectionGuard` per connection sits between an adapter's ``httpx`` client and the
network (see :class:`panelql.providers.http.ResilientClient`). For every request it

1. fails fast with ``Unavailable("… circuit open")`` while the connection's breaker is open;
2. waits for a slot of the connection's concurrency limit (within the request's time budget);
3. sends, and decides whether the attempt may be repeated:

   =========================================  ===================  ====================
   outcome                                    GET / HEAD / OPTIONS  POST / PUT / PATCH / DELETE
   =========================================  ===================  ====================
   connect error, connect or pool timeout     retry                 retry (never sent)
   read/write timeout, reset, protocol error  retry                 never (may have applied)
   429, 500, 502, 503, 504                    retry                 never
   anything else                              return                return
   =========================================  ===================  ====================

   Waits grow exponentially with full jitter; a ``Retry-After`` is honoured when it fits under
   ``retry_after_cap_seconds``, otherwise the 429 goes back to the caller (it becomes
   ``RATE_LIMITED`` with ``retryAfter``) instead of holding a GraphQL request for minutes;
4. counts the logical call (after its retries) into the breaker: a network failure or an
   outage answer is a failure, anything else, 4xx included, proves the upstream alive.

"Outage answer" is a 5xx by default. A kind whose panel answers a caller's own mistakes with a
5xx (DirectAdmin: ``{"error": "…does not exist"}`` with HTTP 500) passes its own test
(:data:`OutageTest`) to the guard: such an answer is then neither retried nor counted, so one
customer looking up names that do not exist cannot open the breaker for every tenant.

The whole call keeps to one time budget, the request's read timeout (the connection's
``timeout_seconds``): a retry is only started, and only given the time, that remains.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

import httpx

from panelql.providers.errors import ProviderError, Unavailable
from panelql.providers.retry_after import retry_after

log = logging.getLogger("panelql.upstream")

T = TypeVar("T")
Attempt = Callable[[httpx.Request], Awaitable[httpx.Response]]
# Does this answer say the upstream is unwell (retry it, count it against the breaker)?
OutageTest = Callable[[httpx.Response], bool]


def server_error(response: httpx.Response) -> bool:
    """The default outage test: any 5xx."""
    return response.status_code >= 500

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
# The request never left the gateway: safe to repeat whatever the method.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# The request may have reached the upstream: only reads may be repeated.
MAYBE_SENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
DEFAULT_BUDGET = 25.0


def never_sent(error: BaseException) -> bool:
    """True when a failed call certainly did not reach the upstream (no connection was made, or
    the circuit breaker refused it), so a write may safely go elsewhere or be counted undone."""
    if isinstance(error.__cause__, NOT_SENT):
        return True
    return isinstance(error, Unavailable) and "breaker" in error.debug


@dataclass(frozen=True)
class ResiliencePolicy:
    """Knobs for every connection's guard; zero switches a mechanism off."""

    retries: int = 2
    backoff_base_seconds: float = 0.1
    backoff_cap_seconds: float = 2.0
    retry_after_cap_seconds: float = 5.0
    breaker_threshold: int = 5
    breaker_cooldown_seconds: float = 15.0
    max_concurrency: int = 16

    @classmethod
    def disabled(cls) -> ResiliencePolicy:
        """Pass-through: what ``ClientFactory()`` uses unless the app hands it a policy."""
        return cls(retries=0, breaker_threshold=0, max_concurrency=0)

    @property
    def active(self) -> bool:
        return bool(self.retries or self.breaker_threshold or self.max_concurrency)

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(cap, base·2^attempt)], so retries do not align."""
        ceiling = min(self.backoff_cap_seconds, self.backoff_base_seconds * 2 ** attempt)
        return rng.uniform(0.0, ceiling)


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures; after ``cooldown`` lets one probe through.

    The probe's success closes it, its failure opens it for another cool-down. Single event
    loop, no awaits inside: no lock needed.

    Only the probe speaks for an open circuit. A call admitted while it was still closed can
    finish after it opened; its answer is older than the failures that opened it, so it
    neither closes it nor starts a new cool-down (a CI run saw such a late 200, from an
    operation's status poll sent before the panel failed, close the circuit and let a write
    through in the middle of the outage).
    """

    def __init__(self, name: str, threshold: int, cooldown: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._probing or self._clock() - self._opened_at >= self.cooldown:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def before(self) -> bool:
        """Admit a call or raise ``Unavailable``; True when the call is the half-open probe."""
        state = self.state
        if state is BreakerState.CLOSED:
            return False
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True
            return True
        raise Unavailable(f"{self.name}: circuit open after {self._failures} consecutive "
                          "failures; failing fast until the upstream recovers",
                          provider=self.name, debug={"breaker": state.value})

    def success(self, probe: bool = False) -> None:
        if self._opened_at is not None:
            if not probe:
                return  # admitted before the circuit opened: stale news
            log.info("circuit closed", extra={"provider": self.name})
        self._failures = 0
        self._opened_at = None
        self._probing = False

    def failure(self, probe: bool = False) -> None:
        if self._opened_at is not None and not probe:
            return  # admitted before the circuit opened; the failures that opened it count
        self._failures += 1
        if probe or (self.threshold and self._failures >= self.threshold):
            if self._opened_at is None or probe:
                log.warning("circuit open", extra={"provider": self.name,
                                                   "failures": self._failures})
            self._opened_at = self._clock()
        self._probing = False

    def abandon(self, probe: bool) -> None:
        """A call ended without an answer (cancelled): let the next one probe instead."""
        if probe:
            self._probing = False


class ConnectionGuard:
    """Retry policy, breaker and concurrency limit of one provider connection."""

    def __init__(self, name: str, policy: ResiliencePolicy, *, seed: int | None = None,
                 outage: OutageTest = server_error) -> None:
        self.name = name
        self.policy = policy
        self.outage = outage
        self.breaker = CircuitBreaker(name, policy.breaker_threshold,
                                      policy.breaker_cooldown_seconds)
        self._slots = asyncio.Semaphore(policy.max_concurrency) if policy.max_concurrency else None
        self._rng = random.Random(seed)

    # -- HTTP ---------------------------------------------------------------------------------
    async def send(self, request: httpx.Request, attempt: Attempt, *,
                   replayable: bool = True) -> httpx.Response:
        """One logical call: breaker check, attempts with retries, breaker accounting."""
        budget = _budget(request)
        deadline = time.monotonic() + budget
        overall = _request_deadline.get()
        if overall is not None and overall < deadline:
            # The GraphQL request's own deadline comes first: the call gets what is left.
            remaining = overall - time.monotonic()
            if remaining <= 0:
                raise past_deadline(self.name)
            _shrink_timeout(request, remaining)
            deadline = overall
        return await self._breaker_around(
            lambda: self._attempts(request, attempt, deadline, replayable),
            failed=self.outage)

    async def _attempts(self, request: httpx.Request, attempt: Attempt, deadline: float,
                        replayable: bool) -> httpx.Response:
        idempotent = request.method.upper() in IDEMPOTENT_METHODS
        if not idempotent:
            attempt = _noting_writes(attempt)
        retries = self.policy.retries if replayable else 0
        for number in range(retries + 1):
            last = number == retries
            try:
                response = await self._limited(deadline, attempt, request)
            except NOT_SENT as exc:
                delay = None if last else self._delay(number, deadline)
                if delay is None:
                    raise
                self._log_retry(request, number, type(exc).__name__, delay)
            except MAYBE_SENT as exc:
                delay = None if last or not idempotent else self._delay(number, deadline)
                if delay is None:
                    raise
                self._log_retry(request, number, type(exc).__name__, delay)
            else:
                delay = None if last or not idempotent else self._delay_for(response, number,
                                                                            deadline)
                if delay is None:
                    return response
                await response.aclose()
                self._log_retry(request, number, f"HTTP {response.status_code}", delay)
            await asyncio.sleep(delay)
            _shrink_timeout(request, deadline - time.monotonic())
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _limited(self, deadline: float, attempt: Attempt,
                       request: httpx.Request) -> httpx.Response:
        if self._slots is None:
            return await attempt(request)
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await self._slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout(f"{self.name}: concurrency limit "
                                    f"({self.policy.max_concurrency}) busy for the whole "
                                    "time budget", request=request) from None
        try:
            return await attempt(request)
        finally:
            self._slots.release()

    def _delay_for(self, response: httpx.Response, number: int,
                   deadline: float) -> float | None:
        if response.status_code not in RETRYABLE_STATUS:
            return None
        if response.status_code >= 500 and not self.outage(response):
            return None  # the panel's way of saying "your request was wrong": same again, same
        hinted = retry_after(response.headers)
        if hinted is None:
            return self._delay(number, deadline)
        if hinted > self.policy.retry_after_cap_seconds:
            return None  # the caller gets RATE_LIMITED with retryAfter instead of a long wait
        return hinted if time.monotonic() + hinted < deadline else None

    def _delay(self, number: int, deadline: float) -> float | None:
        delay = self.policy.backoff(number, self._rng)
        # Leave the next attempt at least a little time, or do not start it at all.
        return delay if time.monotonic() + delay + 0.05 < deadline else None

    def _log_retry(self, request: httpx.Request, number: int, why: str, delay: float) -> None:
        log.info("upstream retry", extra={"provider": self.name, "method": request.method,
                                          "path": request.url.path, "attempt": number + 1,
                                          "reason": why, "delay": round(delay, 3)})

    # -- any awaitable (adapters with their own client, e.g. proxmoxer) ------------------------
    async def run(self, call: Callable[[], Awaitable[T]]) -> T:
        """Breaker and concurrency limit around ``call``; ``Unavailable`` counts as a failure.

        No retries: the caller's client cannot tell us whether a write left the process.
        """
        async def limited() -> T:
            if self._slots is None:
                return await _within_deadline(self.name, call)
            async with self._slots:
                return await _within_deadline(self.name, call)

        return await self._breaker_around(limited, failed=lambda _: False)

    async def _breaker_around(self, call: Callable[[], Awaitable[T]],
                              failed: Callable[[T], bool]) -> T:
        if not self.policy.breaker_threshold:
            return await call()
        probe = self.breaker.before()
        try:
            result = await call()
        except (httpx.TransportError, Unavailable):
            self.breaker.failure(probe)
            raise
        except BaseException:
            # Cancellation or an error that says nothing about the upstream's health.
            self.breaker.abandon(probe)
            raise
        if failed(result):
            self.breaker.failure(probe)
        else:
            self.breaker.success(probe)
        return result


# -- the request's overall deadline ------------------------------------------------------------
# Per-call timeouts alone let one slow panel hold a query for the sum of its calls (40 s with an
# 8 s panel). Inside ``request_deadline(seconds)`` (schema/deadline.py opens it around each
# query) every call gets at most what is left, and none starts once it has passed: the slow
# panel's part becomes a PROVIDER_UNAVAILABLE error beside the other panels' data.

_request_deadline: ContextVar[float | None] = ContextVar("panelql_request_deadline",
                                                         default=None)


@contextmanager
def request_deadline(seconds: float | None) -> Iterator[None]:
    if seconds is None:
        yield
        return
    token = _request_deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _request_deadline.reset(token)


def past_deadline(provider: str) -> Unavailable:
    return Unavailable(f"{provider}: the request's deadline passed before this call could "
                       "finish", provider=provider, debug={"deadline": True})


async def _within_deadline(provider: str, call: Callable[[], Awaitable[T]]) -> T:
    overall = _request_deadline.get()
    if overall is None:
        return await call()
    remaining = overall - time.monotonic()
    if remaining <= 0:
        raise past_deadline(provider)
    try:
        async with asyncio.timeout(remaining):
            return await call()
    except TimeoutError:
        raise past_deadline(provider) from None


# -- did a failed action change anything upstream? -------------------------------------------
# The idempotency layer stores a failed mutation's error for replay unless the panel certainly
# did not change: replaying a failure that changed nothing would keep a retry (the same key,
# after the panel recovered) from ever performing the action.

_writes: ContextVar[list[bool] | None] = ContextVar("panelql_writes_sent", default=None)


@contextmanager
def tracking_writes() -> Iterator[list[bool]]:
    """Inside this block, every write attempt that may have been applied upstream appends True
    (a write answered 4xx, 429 or 503, or never sent, does not)."""
    sent: list[bool] = []
    token = _writes.set(sent)
    try:
        yield sent
    finally:
        _writes.reset(token)


def _noting_writes(attempt: Attempt) -> Attempt:
    async def noted(request: httpx.Request) -> httpx.Response:
        sent = _writes.get()
        try:
            response = await attempt(request)
        except NOT_SENT:
            raise
        except BaseException:
            if sent is not None:
                sent.append(True)  # it may have arrived: a timeout, a reset
            raise
        if sent is not None and not refused_unapplied(response.status_code):
            sent.append(True)
        return response
    return noted


def refused_unapplied(status: int) -> bool:
    """An answer that says the request was not carried out: 4xx (429 included), 503."""
    return 400 <= status < 500 or status == 503


def never_applied(error: BaseException) -> bool:
    """True when the failed call certainly changed nothing upstream: refused with a 4xx or
    503, stopped by the open circuit before it was sent, or never connected."""
    if isinstance(error, ProviderError):
        if error.upstream_status is not None and refused_unapplied(error.upstream_status):
            return True
        if error.debug.get("breaker"):  # CircuitBreaker.before: nothing was sent
            return True
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, NOT_SENT):
            return True
        cause = cause.__cause__
    return False


def _budget(request: httpx.Request) -> float:
    timeout = request.extensions.get("timeout") or {}
    read = timeout.get("read") if isinstance(timeout, dict) else None
    return float(read) if read else DEFAULT_BUDGET


def _shrink_timeout(request: httpx.Request, remaining: float) -> None:
    """A retry gets only what is left of the budget, so the call ends by its deadline."""
    remaining = max(0.05, remaining)
    timeout = request.extensions.get("timeout")
    if isinstance(timeout, dict):
        shrunk = {k: (min(v, remaining) if v is not None else remaining)
                  for k, v in timeout.items()}
        request.extensions = {**request.extensions, "timeout": shrunk}
