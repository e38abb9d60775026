"""What every simulated panel shares: fault knobs, request statistics and delayed transitions.

A panel subclasses :class:`SimPanel`, declares its routes and an ``authorize`` hook, and gets:

- knobs (latency, forced error status, error rate, hang, malformed bodies, rate limit), settable
  in-process or over HTTP at ``/__sim/knobs`` so a test in another process can flip them;
- counts of requests per route at ``/__sim/stats``, which the call-count tests and benchmarks
  read instead of trusting the gateway's own numbers;
- :meth:`SimPanel.later`, which runs a state change after ``transition_seconds``, so a start goes
  ``starting`` and then ``running`` as on a real panel;
- the ``hold_transitions`` knob, which parks those changes until
  :meth:`SimPanel.release_transitions` (or the knob set back to false over HTTP), so a test can
  look at ``starting`` without racing a timer on a loaded machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from panelql_sim import referee

SIM_PREFIX = "/__sim"


@dataclass
class Knobs:
    latency_ms: float = 0.0
    fail_status: int | None = None  # every request answers this status
    error_rate: float = 0.0  # share of requests answering 500
    hang: bool = False  # never answer (tests the gateway's timeouts)
    reset: bool = False  # read the request, then reset the TCP connection without answering
    malformed: bool = False  # answer 200 with a body that is not JSON
    rate_limit_per_minute: int | None = None
    transition_seconds: float = 2.0
    # Park every delayed state change until released: tests that assert an in-between state
    # (starting, restoring, in progress) hold, assert, then release — no race with the timer.
    hold_transitions: bool = False
    # Latency and faults hit only these HTTP methods (None: all), so a test can break the
    # POST of a mutation while the gateway's state check (a GET) still gets through.
    fault_methods: list[str] | None = None
    # …and only requests whose path starts with one of these (None: all paths), so one
    # endpoint can fail while the rest of the panel answers.
    fault_paths: list[str] | None = None

    def update(self, values: dict[str, Any]) -> None:
        names = {f.name for f in fields(self)}
        for key, value in values.items():
            if key not in names:
                raise KeyError(key)
            setattr(self, key, value)


class SimPanel:
    """Base class for one simulated upstream."""

    name = "sim"
    # The vendor's OpenAPI documents (file names in shared/specs/) that referee this panel's
    # requests and answers in tests (panelql_sim/referee.py), and the documents' known defects.
    documents: tuple[str, ...] = ()
    document_quirks: referee.Quirks = referee.Quirks()
    # The header a real upstream puts its own id of each request in (Stripe "Request-Id",
    # PayPal "Paypal-Debug-Id", Cloudflare "CF-RAY"); None where the panel sends none.
    request_id_header: str | None = None

    def __init__(self, *, seed: int = 1, knobs: Knobs | None = None) -> None:
        self.random = random.Random(seed)
        self.knobs = knobs or Knobs()
        self.stats: Counter[str] = Counter()
        self.concurrency = Concurrency()
        self._window: list[float] = []
        self._pending: set[asyncio.TimerHandle] = set()
        self._held: list[Callable[[], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- to implement -------------------------------------------------------------------------
    def routes(self) -> Sequence[BaseRoute]:
        raise NotImplementedError

    def authorize(self, request: Request) -> Response | None:
        """Return an error response when the request's credentials are wrong."""
        return None

    def rate_limited(self, retry_after: int) -> Response:
        return JSONResponse(
            {"error": "Rate limit exceeded"}, status_code=429,
            headers={"Retry-After": str(retry_after)},
        )

    def server_error(self) -> Response:
        return JSONResponse({"error": "Internal Server Error"}, status_code=500)

    # -- shared machinery ---------------------------------------------------------------------
    @property
    def total_requests(self) -> int:
        return sum(self.stats.values())

    def reset_stats(self) -> None:
        self.stats.clear()
        self.concurrency = Concurrency()

    def later(self, fn: Callable[[], None], delay: float | None = None) -> None:
        """Run ``fn`` after ``delay`` (default: the transition knob) on the serving loop, or
        park it while ``hold_transitions`` is on."""
        loop = self._loop = asyncio.get_running_loop()
        if self.knobs.hold_transitions:
            self._held.append(fn)
            return
        handle = loop.call_later(
            self.knobs.transition_seconds if delay is None else delay, self._fire, fn
        )
        self._pending.add(handle)

    def release_transitions(self) -> None:
        """Turn ``hold_transitions`` off and run the parked changes, in order, on the serving
        loop. Safe to call from the test's thread."""
        self.knobs.hold_transitions = False
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._fire_held)

    def _fire_held(self) -> None:
        held, self._held = self._held, []
        for fn in held:
            fn()

    def _fire(self, fn: Callable[[], None]) -> None:
        self._pending = {h for h in self._pending if not h.cancelled() and h.when() > 0}
        fn()

    def app(self) -> ASGIApp:
        control = [
            Route(f"{SIM_PREFIX}/knobs", self._knobs_endpoint, methods=["GET", "POST"]),
            Route(f"{SIM_PREFIX}/stats", self._stats_endpoint, methods=["GET", "DELETE"]),
        ]
        inner: ASGIApp = Starlette(routes=[*control, *self.routes()])
        if self.documents and referee.enabled():
            inner = referee.RefereeMiddleware(
                inner, referee.Referee(self.name, self.documents, self.document_quirks),
                skip_prefix=SIM_PREFIX)
        return _FaultMiddleware(inner, self)

    async def _knobs_endpoint(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                self.knobs.update(await request.json())
            except KeyError as exc:
                return JSONResponse({"error": f"unknown knob {exc.args[0]}"}, status_code=400)
            if not self.knobs.hold_transitions and self._held:
                self._fire_held()
        return JSONResponse(asdict(self.knobs))

    async def _stats_endpoint(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.reset_stats()
        return JSONResponse({"total": self.total_requests, "routes": dict(self.stats),
                             "rounds": self.concurrency.rounds,
                             "round_of": self.concurrency.round_of,
                             "peak_in_flight": self.concurrency.peak})

    def _over_rate_limit(self) -> int | None:
        limit = self.knobs.rate_limit_per_minute
        if limit is None:
            return None
        now = time.monotonic()
        self._window = [t for t in self._window if now - t < 60.0]
        if len(self._window) >= limit:
            return max(1, int(60.0 - (now - self._window[0])) + 1)
        self._window.append(now)
        return None


class Concurrency:
    """How requests overlapped, by order of events rather than by clock: the most in flight at
    once, and the number of sequential rounds (a request is one round after the deepest request
    that had finished when it arrived). Tests assert bounded concurrency or "two rounds, not
    three" with these instead of with wall-clock bounds that a loaded machine breaks."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.peak = 0
        self.rounds = 0
        self._finished_depth = 0
        # The latest round each route was called in, so a finding names the call that came late.
        self.round_of: dict[str, int] = {}

    def enter(self) -> int:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        depth = self._finished_depth + 1
        self.rounds = max(self.rounds, depth)
        return depth

    def leave(self, depth: int) -> None:
        self.in_flight -= 1
        self._finished_depth = max(self._finished_depth, depth)


class _FaultMiddleware:
    """Applies the knobs and counts requests; control routes bypass both."""

    def __init__(self, app: ASGIApp, panel: SimPanel) -> None:
        self.app = app
        self.panel = panel

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(SIM_PREFIX):
            await self.app(scope, receive, send)
            return
        panel = self.panel
        route = f"{scope['method']} {_route_key(scope['path'])}"
        panel.stats[route] += 1
        concurrency = panel.concurrency
        depth = concurrency.enter()
        concurrency.round_of[route] = max(concurrency.round_of.get(route, 0), depth)
        try:
            await self._serve(scope, receive, send)
        finally:
            concurrency.leave(depth)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        panel, knobs = self.panel, self.panel.knobs
        if panel.request_id_header:
            send = _with_header(send, panel.request_id_header, uuid.uuid4().hex[:16])
        spared_method = (knobs.fault_methods is not None
                         and scope["method"] not in knobs.fault_methods)
        spared_path = (knobs.fault_paths is not None
                       and not any(scope["path"].startswith(p) for p in knobs.fault_paths))
        if spared_method or spared_path:
            await self.app(scope, receive, send)
            return
        if knobs.latency_ms:
            send = _answer_after(knobs.latency_ms / 1000.0, send)
        request = Request(scope, receive)
        response = self._fault(request)
        if response is None:
            response = panel.authorize(request)
        if response is not None:
            await response(scope, receive, send)
            return
        if knobs.malformed:
            await PlainTextResponse("<html>502 Bad Gateway</html>", status_code=200)(
                scope, receive, send
            )
            return
        await self.app(scope, receive, send)

    def _fault(self, request: Request) -> Response | None:
        panel, knobs = self.panel, self.panel.knobs
        if knobs.hang:
            return _Hang()
        if knobs.reset:
            return _Reset()
        if knobs.fail_status is not None:
            if knobs.fail_status == 429:
                return panel.rate_limited(1)
            return JSONResponse({"error": "injected failure"}, status_code=knobs.fail_status)
        retry_after = panel._over_rate_limit()
        if retry_after is not None:
            return panel.rate_limited(retry_after)
        if knobs.error_rate and panel.random.random() < knobs.error_rate:
            return panel.server_error()
        return None


def _with_header(send: Send, name: str, value: str) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []),
                                              (name.lower().encode(), value.encode())]}
        await send(message)
    return sending


def _answer_after(seconds: float, send: Send) -> Send:
    """``send`` that holds the response until ``seconds`` after the request arrived.

    The latency knob is the panel's response time: its own work (routing, JSON) happens inside
    that time, as on a real panel, instead of being added on top. Otherwise a benchmark that
    divides by "rounds x L" would charge the simulator's CPU to the gateway.
    """
    loop = asyncio.get_running_loop()
    due = loop.time() + seconds

    async def delayed(message: Message) -> None:
        if message["type"] == "http.response.start":
            await asyncio.sleep(max(0.0, due - loop.time()))
        await send(message)

    return delayed


class _Hang(Response):
    """Never answers, until the client gives up (or an hour passes)."""

    def __init__(self) -> None:
        super().__init__(status_code=504)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Wait for the client to give up and hang up, so the server can shut down cleanly.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(3600):
                while (await receive())["type"] != "http.disconnect":
                    pass


class _Reset(Response):
    """Aborts the connection with a TCP RST after the request arrived: the client cannot know
    whether it was processed (the case where only idempotent requests may be retried)."""

    def __init__(self) -> None:
        super().__init__(status_code=502)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # ASGI hides the socket; uvicorn's ``receive`` is a method of its request cycle, which
        # holds the asyncio transport. Without it, fall back to an error the client must see.
        transport = getattr(getattr(receive, "__self__", None), "transport", None)
        if transport is None:
            raise ConnectionResetError("simulated reset")
        sock = transport.get_extra_info("socket")
        if sock is not None:  # linger 0: close() sends RST instead of FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        await asyncio.sleep(0.01)  # let uvicorn see the disconnect before the app returns


def _route_key(path: str) -> str:
    """Collapse ids so stats group by route: /api/servers/abc/start -> /api/servers/*/start."""
    parts = []
    for part in path.strip("/").split("/"):
        looks_like_id = any(c.isdigit() for c in part) or len(part) >= 16
        parts.append("*" if looks_like_id else part)
    return "/" + "/".join(parts)


Handler = Callable[[Request], Awaitable[Response]]


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object, or {} when the body is empty or not an object."""
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class FastJSONResponse(JSONResponse):
    """JSONResponse encoded by orjson (compact UTF-8, as Node's JSON.stringify writes it). For
    the large lists: the real panels serialize 2 MB in a few milliseconds, starlette's stdlib
    encoder took 15 ms, which the bench's wall times would charge to the gateway."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + ".000Z"
