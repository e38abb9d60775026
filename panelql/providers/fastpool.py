"""A cheaper idle-connection check for httpcore's connection pool (found by profiling bench/).

httpcore asks every pooled connection ``has_expired()`` whenever a request starts or ends; that
calls ``stream.get_extra_info("is_readable")``, and the anyio stream answers by rebuilding its
whole dict of socket attributes each time. Profiling a 100-server query (per-server backup calls,
16 in flight per panel) put 40 % of the client's CPU there. The wrapper below looks the raw
socket up once per connection and polls it directly, as httpcore does with the socket it gets:
2.4 → 1.9 ms of gateway CPU per upstream request at 16 in flight, unchanged at 1.

It touches private attributes of httpx (``_transport``, ``_mounts``) and httpcore (``_pool``,
``_network_backend``); when they are missing (another version, a mock transport) nothing changes.
"""

from __future__ import annotations

import select
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx


def _readable(sock: Any) -> bool:
    """True when the idle socket has data or EOF pending: the server closed it (same as
    httpcore's own check)."""
    if sock is None or sock.fileno() == -1:
        return True
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._sock = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable" and self._sock is not None:
            return _readable(self._sock)
        return self._inner.get_extra_info(info)


class CachedSocketBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None
                          ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_tcp(host, port, timeout, local_address,
                                                     socket_options))

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None
                                  ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def install(client: httpx.AsyncClient) -> None:
    """Wrap the network backend of every httpcore pool the client owns (proxies included)."""
    transports = [getattr(client, "_transport", None),
                  *getattr(client, "_mounts", {}).values()]
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if isinstance(backend, httpcore.AsyncNetworkBackend) and not isinstance(
                backend, CachedSocketBackend):
            pool._network_backend = CachedSocketBackend(backend)  # type: ignore[union-attr]
