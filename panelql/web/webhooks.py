"""Signed webhooks from providers that can call back, over HTTP.

    POST /webhooks/{kind}/{connection}   one route per connection
    POST /webhooks/{kind}                shorthand when exactly one connection has that kind

The endpoint is generic: the connection's provider supplies the receiver that verifies a
delivery and converts it to changes (``Provider.webhook_receiver``, e.g.
``providers/stripe/receiver.py``), and ``events/webhooks.py`` dedupes and publishes them. The
receivers' upstream work (crediting a payment to its invoice) happens before the delivery counts
as processed, so a failure there answers 503 and the provider delivers again.

Answers: 200 processed or duplicate; 400 bad signature, stale or future timestamp, not an
event, or JSON nested too deep (checked before any signature); 404 unknown or unconfigured
connection; 413 body too large; 429 when the sending address had 10 deliveries refused within
the last minute (no verification is attempted meanwhile); 503 when the provider could not be
asked to verify (PayPal) or to settle a payment, so that it redelivers.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from panelql.domain import json_depth
from panelql.events.watcher import EventRuntime
from panelql.events.webhooks import ingest
from panelql.providers.contract import Provider
from panelql.providers.errors import InvalidRequest, ProviderError

log = logging.getLogger("panelql.web.webhooks")

MAX_BODY = 1024 * 1024  # Stripe events are a few KB; refuse anything absurd before parsing
# A source (client address, per connection) whose deliveries were refused this many times in
# the last minute gets 429 without verification: a PayPal verification is an upstream call,
# so forged deliveries would otherwise each cost one. Genuine senders are never refused.
REJECTIONS_PER_MINUTE = 10
WINDOW_SECONDS = 60.0


class RejectionThrottle:
    """Refused deliveries per (connection, source) over a sliding minute, in this process."""

    def __init__(self, limit: int = REJECTIONS_PER_MINUTE, window: float = WINDOW_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._refused: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        times = self._refused.setdefault(key, deque())
        cutoff = self._clock() - self.window
        while times and times[0] < cutoff:
            times.popleft()
        return times

    def wait(self, connection: str, source: str) -> float:
        """Seconds until this source may be heard again; 0 when it may now."""
        times = self._recent((connection, source))
        if len(times) < self.limit:
            if not times:
                self._refused.pop((connection, source), None)
            return 0.0
        return max(0.0, times[0] + self.window - self._clock())

    def refused(self, connection: str, source: str) -> None:
        if len(self._refused) > 10_000:  # a flood from many addresses: forget the oldest
            self._refused.clear()
        self._recent((connection, source)).append(self._clock())


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _connection(providers: Mapping[str, Provider], kind: str,
                name: str | None) -> Provider | None:
    if name is not None:
        provider = providers.get(name)
        return provider if provider is not None and provider.kind == kind else None
    of_kind = [p for p in providers.values() if p.kind == kind]
    return of_kind[0] if len(of_kind) == 1 else None


async def _read(request: Request, limit: int) -> bytes | None:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def webhook_routes(runtime: Callable[[Request], EventRuntime]) -> list[Route]:
    """Routes for every connection whose provider has a webhook receiver; ``runtime`` finds
    the gateway per request (connections are built in the lifespan, after the routes)."""

    throttle = RejectionThrottle()

    async def endpoint(request: Request) -> Response:
        kind = request.path_params["kind"]
        state = runtime(request)
        provider = _connection(state.providers, kind, request.path_params.get("connection"))
        receiver = provider.webhook_receiver() if provider is not None else None
        if provider is None or receiver is None:
            return _error(404, "NOT_FOUND", "no webhook endpoint for this connection")
        source = request.client.host if request.client else "unknown"
        wait = throttle.wait(provider.name, source)
        if wait > 0:
            response = _error(429, "RATE_LIMITED", "too many refused deliveries from this "
                                                   "address; try again later")
            response.headers["Retry-After"] = str(math.ceil(wait))
            return response
        body = await _read(request, MAX_BODY)
        if body is None:
            throttle.refused(provider.name, source)
            return _error(413, "TOO_LARGE", "webhook body too large")
        try:  # before any signature check: the stripe library parses without a depth limit
            json_depth.loads(body)
        except json_depth.TooDeep as exc:
            throttle.refused(provider.name, source)
            return _error(400, "INVALID_WEBHOOK", f"webhook body is {exc.msg}")
        except ValueError:
            pass  # not JSON at all: each receiver refuses that in its own words
        try:
            delivery = await receiver.receive(body, request.headers)
        except InvalidRequest as exc:
            throttle.refused(provider.name, source)
            log.warning("webhook rejected", extra={"connection": provider.name,
                                                   "reason": exc.message})
            return _error(400, "INVALID_WEBHOOK", exc.message)
        except ProviderError as exc:
            # The provider could not be asked to verify (PayPal): not accepted, not refused
            # for good; a 5xx makes the provider deliver it again later.
            log.warning("webhook not verified", extra={"connection": provider.name,
                                                       "reason": exc.message})
            return _error(503, "PROVIDER_UNAVAILABLE", "could not verify the delivery with the "
                          "provider; it will be redelivered")
        events = await ingest(state, provider, delivery)
        if events is None:
            return JSONResponse({"received": True, "duplicate": True})
        return JSONResponse({"received": True, "duplicate": False, "events": len(events)})

    return [Route("/webhooks/{kind}", endpoint, methods=["POST"]),
            Route("/webhooks/{kind}/{connection}", endpoint, methods=["POST"])]
