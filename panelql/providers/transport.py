"""A lean HTTP/1.1 keep-alive transport for httpx, on asyncio and httptools (uvicorn's parser).

Why: a dashboard query over 100 servers makes ~75 upstream calls, because several panels have no
bulk endpoint for backups or live state. Profiling bench/ showed httpcore + h11 spending about
1.6 ms of gateway CPU per call (connection-pool bookkeeping, the h11 state machine, anyio
streams); this transport does the same exchange in about a third of that. Everything above the
transport (auth, cookies, redirects, event hooks, decoding of gzip bodies, our retry guard) is
still httpx.

What it does not do is handed to a regular ``httpx.AsyncHTTPTransport`` (``fallback``): HEAD
(a body-less answer the parser cannot tell from a truncated one), streaming request bodies,
``Expect: 100-continue`` and anything that is not http/https. Proxies never reach it: httpx
routes proxied URLs through its own mounts. ``upstream_transport = "httpx"`` in the settings
turns it off entirely.

A response body larger than ``max_response_bytes`` (default 64 MiB) is refused while it arrives
(:class:`ResponseTooLarge`, the connection dropped): a panel or a proxy in front of it answering
with an endless body must not fill the gateway's memory. Everything it does answer is buffered
(the adapters parse whole JSON documents).

Failures are raised as the httpx exceptions httpcore would raise, so the retry guard
(providers/resilience.py) and the error boundary (providers/http.py) treat both transports alike:
ConnectError/ConnectTimeout (not sent), PoolTimeout, WriteError, ReadTimeout, ReadError and
RemoteProtocolError (maybe sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import defaultdict
from typing import Any, cast

import httptools
import httpx

Origin = tuple[str, str, int]  # scheme, host, port
DEFAULT_PORTS = {"http": 80, "https": 443}
# The largest answer a panel API gives us is a list page (Stripe: 100 invoices, ~1 MiB); far above.
MAX_RESPONSE_BYTES = 64 * 2**20


class ResponseTooLarge(httpx.RequestError):
    """The upstream's body passed the cap. Not a TransportError: it says nothing about the
    upstream being down (no breaker failure, no retry); the error boundary reports it as the
    provider answering something unusable (PROVIDER_ERROR)."""


class _Exchange(asyncio.Protocol):
    """One TCP (or TLS) connection; reads one response at a time."""

    def __init__(self, max_body: int = MAX_RESPONSE_BYTES) -> None:
        self.transport: asyncio.Transport | None = None
        self.max_body = max_body
        self.closed = False
        self.idle_since = time.monotonic()
        self._parser = httptools.HttpResponseParser(self)
        self._reset()

    def _reset(self) -> None:
        self.waiter: asyncio.Future[None] | None = None
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.size = 0
        self.started = False  # any byte of the response seen
        self.headers_done = False
        self.complete = False
        self.keep_alive = False

    # -- asyncio.Protocol -----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.started = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(httpx.RemoteProtocolError("the upstream switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"malformed HTTP response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.complete or self.waiter is None:
            return
        if self.headers_done and not self._delimited():
            self._finish(keep_alive=False)  # the body ran until the connection closed
        elif not self.started:
            self._fail(httpx.RemoteProtocolError("Server disconnected without sending a "
                                                 "response."))
        else:
            self._fail(httpx.ReadError("the connection closed in the middle of the response"))

    # -- httptools callbacks --------------------------------------------------------------
    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > self.max_body:
            self.body.clear()
            self._fail(ResponseTooLarge(f"the upstream's answer is larger than "
                                        f"{self.max_body} bytes"))
            return
        self.body.append(body)

    def on_message_complete(self) -> None:
        self._finish(keep_alive=self._parser.should_keep_alive())

    # -- helpers --------------------------------------------------------------------------
    def _delimited(self) -> bool:
        names = {name.lower() for name, _ in self.headers}
        return b"content-length" in names or b"transfer-encoding" in names

    def _finish(self, *, keep_alive: bool) -> None:
        self.complete = True
        self.keep_alive = keep_alive
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    async def exchange(self, head: bytes, body: bytes, read_timeout: float | None,
                       request: httpx.Request) -> httpx.Response:
        assert self.transport is not None
        self._reset()
        self.waiter = asyncio.get_running_loop().create_future()
        try:
            self.transport.write(head + body if len(body) < 65536 else head)
            if len(body) >= 65536:
                self.transport.write(body)
        except (OSError, RuntimeError) as exc:
            raise httpx.WriteError(str(exc) or type(exc).__name__, request=request) from exc
        try:
            async with asyncio.timeout(read_timeout):
                await self.waiter
        except TimeoutError:
            self.transport.abort()
            raise httpx.ReadTimeout("timed out waiting for the upstream's answer",
                                    request=request) from None
        except httpx.RequestError as exc:  # raised on the waiter, without the request
            exc.request = request
            raise
        except BaseException:
            # Cancelled mid-exchange: the answer may still arrive, so the connection is spent.
            self.transport.abort()
            raise
        body, self.body = b"".join(self.body), []  # the pooled connection keeps no old chunks
        return httpx.Response(
            self._parser.get_status_code(),
            headers=self.headers,
            stream=httpx.ByteStream(body),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": self.reason},
            request=request,
        )


class LeanTransport(httpx.AsyncBaseTransport):
    """Keep-alive pool per origin, at most ``max_connections`` per origin, idle connections
    closed after ``keepalive_expiry`` seconds (httpx's defaults)."""

    def __init__(self, *, verify: ssl.SSLContext | str | bool = True,
                 max_connections: int = 32, max_keepalive: int = 16,
                 keepalive_expiry: float = 5.0,
                 max_response_bytes: int = MAX_RESPONSE_BYTES) -> None:
        self._ssl = httpx.create_ssl_context(verify=verify)
        self._max_keepalive = max_keepalive
        self._expiry = keepalive_expiry
        self._max_body = max_response_bytes
        self._idle: dict[Origin, list[_Exchange]] = defaultdict(list)
        self._slots: dict[Origin, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(max_connections))
        self.fallback = httpx.AsyncHTTPTransport(verify=verify)

    @staticmethod
    def handles(request: httpx.Request) -> bool:
        return (request.url.scheme in DEFAULT_PORTS and request.method != "HEAD"
                and "expect" not in request.headers
                and isinstance(request.stream, httpx.ByteStream))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self.handles(request):
            return await self.fallback.handle_async_request(request)
        url = request.url
        origin: Origin = (url.scheme, url.host, url.port or DEFAULT_PORTS[url.scheme])
        timeouts = request.extensions.get("timeout", {})
        slots = self._slots[origin]
        try:
            async with asyncio.timeout(timeouts.get("pool")):
                await slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout("no free upstream connection in time",
                                    request=request) from None
        try:
            conn = self._take_idle(origin) or await self._connect(origin, timeouts, request)
            response = await conn.exchange(_head(request), request.content,
                                           timeouts.get("read"), request)
            self._put_back(origin, conn)
            return response
        finally:
            slots.release()

    def _take_idle(self, origin: Origin) -> _Exchange | None:
        idle = self._idle[origin]
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < self._expiry:
                return conn
            _close(conn)
        return None

    def _put_back(self, origin: Origin, conn: _Exchange) -> None:
        idle = self._idle[origin]
        if conn.keep_alive and not conn.closed and len(idle) < self._max_keepalive:
            conn.idle_since = time.monotonic()
            idle.append(conn)
        else:
            _close(conn)

    async def _connect(self, origin: Origin, timeouts: dict[str, Any],
                       request: httpx.Request) -> _Exchange:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        tls = self._ssl if scheme == "https" else None
        try:
            async with asyncio.timeout(timeouts.get("connect")):
                _, conn = await loop.create_connection(
                    lambda: _Exchange(self._max_body), host, port, ssl=tls,
                    server_hostname=host if tls else None)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out",
                                       request=request) from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from exc
        return conn

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                _close(conn)
        self._idle.clear()
        await self.fallback.aclose()


def _head(request: httpx.Request) -> bytes:
    target = request.url.raw_path  # path + query, already percent-encoded by httpx
    lines = [request.method.encode("ascii"), b" ", target, b" HTTP/1.1\r\n"]
    for name, value in request.headers.raw:
        lines += [name, b": ", value, b"\r\n"]
    lines.append(b"\r\n")
    return b"".join(lines)


def _close(conn: _Exchange) -> None:
    if conn.transport is not None:
        with contextlib.suppress(Exception):
            conn.transport.close()
