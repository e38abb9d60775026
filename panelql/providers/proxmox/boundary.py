"""The one place proxmoxer is called: a bounded thread pool plus the exception mapping table.

proxmoxer is synchronous (requests), so every call runs in a worker thread of a small
``ThreadPoolExecutor`` (``max_workers`` option, default 8); the event loop never blocks and
the pool bounds how many requests one connection has in flight. What the worker raises is
translated here, and only here, into the provider error tree:

    requests.Timeout                       → Unavailable ("timed out")
    requests.ConnectionError (incl. TLS)   → Unavailable
    proxmoxer.ResourceException            → by status and reason phrase, see ``_from_resource``
    proxmoxer.AuthenticationError          → AuthenticationFailed
    KeyError/TypeError/ValueError inside   → UnexpectedResponse (proxmoxer indexes ``["data"]``)

Proxmox puts its message in the HTTP reason phrase; proxmoxer 2.x keeps it in
``ResourceException.content`` (``status_message`` holds the standard phrase for the code).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from typing import Any

import requests
from proxmoxer import AuthenticationError, ResourceException

from panelql.providers.errors import (
    AuthenticationFailed,
    CapabilityNotSupported,
    Conflict,
    InvalidRequest,
    NotFound,
    ProviderError,
    RateLimited,
    Unavailable,
    UnexpectedResponse,
)
from panelql.providers.resilience import ConnectionGuard

log = logging.getLogger("panelql.upstream")

Call = Callable[[Any], Any]

# Reason-phrase fragments of PVE's 500 answers, most specific first: (fragment, kind).
# "can't lock file … got timeout" and "VM is locked (backup)" are both worth retrying.
_MESSAGE_TABLE: tuple[tuple[str, str], ...] = (
    ("lock", "conflict-retry"),
    # a `digest` that no longer matches: qemu-server "checksum mismatch (file change by other
    # user?)", pve-common assert_if_modified "detected modified configuration - file changed…"
    ("file change by other user", "conflict-retry"),
    ("file changed by other user", "conflict-retry"),
    ("does not exist", "not-found"),
    ("no such", "not-found"),
    ("already running", "conflict"),
    ("not running", "conflict"),
    ("is running", "conflict"),
    ("is paused", "conflict"),
    ("already exists", "conflict"),
    ("already used", "conflict"),
    ("is protected", "conflict"),
    ("not supported", "invalid"),
    ("timeout", "unavailable"),
    ("timed out", "unavailable"),
)


class ProxmoxClient:
    """A proxmoxer ``ProxmoxAPI`` reached through a bounded pool, with the error boundary."""

    def __init__(self, api: Any, provider: str, *, max_workers: int = 8,
                 session: requests.Session | None = None,
                 guard: ConnectionGuard | None = None) -> None:
        self.api = api
        self.provider = provider
        self._session = session
        # The connection's circuit breaker (no retries: proxmoxer cannot tell us whether a
        # write left the process; the pool above already bounds concurrency).
        self._guard = guard
        self._pool = ThreadPoolExecutor(max_workers=max_workers,
                                        thread_name_prefix=f"proxmox-{provider}")

    async def call(self, fn: Call, what: str) -> Any:
        """Run ``fn(api)`` in the pool; ``what`` names the operation in logs and errors."""
        if self._guard is None:
            return await self._call(fn, what)
        return await self._guard.run(lambda: self._call(fn, what))

    async def _call(self, fn: Call, what: str) -> Any:
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self._pool, fn, self.api)
        except ProviderError:
            raise
        except (ResourceException, AuthenticationError, requests.RequestException,
                KeyError, TypeError, ValueError) as exc:
            error = translate(exc, self.provider, what)
            log.info("upstream error", extra={"provider": self.provider, "operation": what,
                                              "error": type(error).__name__})
            raise error from exc
        if isinstance(result, dict) and set(result) == {"errors"} \
                and isinstance(result["errors"], bytes):
            # proxmoxer's answer to a 2xx body that is not JSON.
            raise UnexpectedResponse(f"{self.provider} sent a body that is not JSON",
                                     provider=self.provider,
                                     debug={"operation": what,
                                            "snippet": result["errors"][:200].decode(
                                                "utf-8", "replace")})
        return result

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._session is not None:
            self._session.close()


def translate(exc: Exception, provider: str, what: str) -> ProviderError:
    debug: dict[str, Any] = {"operation": what, "error": type(exc).__name__}
    if isinstance(exc, ResourceException):
        return _from_resource(exc, provider, debug)
    if isinstance(exc, AuthenticationError):
        return AuthenticationFailed(f"{provider} rejected the gateway's credentials",
                                    provider=provider, debug=debug)
    if isinstance(exc, requests.Timeout):
        return Unavailable(f"{provider} timed out", provider=provider, debug=debug)
    if isinstance(exc, requests.exceptions.SSLError):
        return Unavailable(f"{provider}: TLS handshake or certificate verification failed",
                           provider=provider, debug=debug)
    if isinstance(exc, requests.RequestException):
        return Unavailable(f"{provider} is unreachable", provider=provider, debug=debug)
    return UnexpectedResponse(f"{provider} sent an unexpected response", provider=provider,
                              debug=debug)


def reason(exc: ResourceException) -> str:
    """The upstream's own message: the reason phrase unless it is just the standard one."""
    content = exc.content if isinstance(exc.content, str) else ""
    standard = _standard_phrase(exc.status_code)
    if content.strip() and content.strip() != standard:
        return content.strip()
    return str(exc.status_message or standard or f"HTTP {exc.status_code}")


def _standard_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _from_resource(exc: ResourceException, provider: str,
                   debug: dict[str, Any]) -> ProviderError:
    status = int(exc.status_code)
    message = reason(exc)
    errors = exc.errors if isinstance(exc.errors, dict) else {}
    debug.update(status=status, errors=errors)
    kwargs: dict[str, Any] = {"provider": provider, "debug": debug, "upstream_status": status}
    if status == 401:
        return AuthenticationFailed(f"{provider} rejected the gateway's API token", **kwargs)
    if status == 403:
        return AuthenticationFailed(f"{provider} denied the API token: {message}", **kwargs)
    if status == 400:
        fields = {str(k): str(v) for k, v in errors.items()}
        detail = "; ".join(f"{k}: {v}" for k, v in fields.items())
        return InvalidRequest(f"{message} {detail}".strip(), fields=fields, **kwargs)
    if status == 404:
        return NotFound(message, **kwargs)
    if status == 429:
        return RateLimited(f"{provider} is rate limiting the gateway", **kwargs)
    if status == 501:
        return CapabilityNotSupported(f"{provider} does not offer this: {message}", **kwargs)
    if status == 500:
        return _from_message(message, provider, kwargs)
    if status >= 500:  # 502-504 from a proxy, 595-599 from pveproxy (node unreachable)
        return Unavailable(f"{provider} is unavailable: {message}", **kwargs)
    return UnexpectedResponse(f"{provider} answered HTTP {status}", **kwargs)


def _from_message(message: str, provider: str, kwargs: dict[str, Any]) -> ProviderError:
    lowered = message.lower()
    kind = next((k for fragment, k in _MESSAGE_TABLE if fragment in lowered), "unavailable")
    if kind == "conflict-retry":
        return Conflict(message, retryable=True, **kwargs)
    if kind == "conflict":
        return Conflict(message, **kwargs)
    if kind == "not-found":
        return NotFound(message, **kwargs)
    if kind == "invalid":
        return InvalidRequest(message, **kwargs)
    return Unavailable(f"{provider} is failing: {message}", **kwargs)
