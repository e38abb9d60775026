"""The one place that builds upstream HTTP clients and turns HTTP failures into ProviderErrors.

Adapters receive an ``httpx.AsyncClient`` from :class:`ClientFactory` (timeouts, pooling, user
agent and, when the app passes a policy, retries, circuit breaker and concurrency limit per
connection, all set here) and call :meth:`Upstream.request`. Tests inject respx or point the
base URL at a simulated panel; the adapter code is the same either way.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import orjson

from panelql.providers import read_memo, request_ids
from panelql.providers.errors import (
    AuthenticationFailed,
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    ProviderError,
    RateLimited,
    Unavailable,
    UnexpectedResponse,
)
from panelql.providers.resilience import ConnectionGuard, OutageTest, ResiliencePolicy
from panelql.providers.retry_after import retry_after
from panelql.providers.transport import LeanTransport, ResponseTooLarge

log = logging.getLogger("panelql.upstream")

USER_AGENT = "PanelQL/0.1 (+https://github.com/panelql)"

# Reads an upstream's error body into a user-safe sentence (None: use the generic one).
ErrorReader = Callable[[Any], str | None]


class ResilientClient(httpx.AsyncClient):
    """An ``AsyncClient`` whose every send goes through its connection's guard (retries, circuit
    breaker, concurrency limit; see :mod:`panelql.providers.resilience`). Overriding ``send``
    keeps everything else httpx does (auth flows, proxies from the environment, redirects)."""

    def __init__(self, *, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.guard = guard

    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        parent = super().send
        return await self.guard.send(request, lambda req: parent(req, **kwargs),
                                     replayable=not kwargs.get("stream", False))


class ClientFactory:
    """Builds pooled clients with the gateway's defaults; owns and closes them.

    With a :class:`ResiliencePolicy` (the app passes ``settings.resilience``) every client of a
    connection shares one guard: the view returned by :meth:`for_connection` is what each adapter
    receives, so an adapter with two clients (Pterodactyl's two keys) still has one breaker.
    Without a policy (``ClientFactory()``, as adapter tests use it) clients are unguarded.
    """

    def __init__(self, *, transport: httpx.AsyncBaseTransport | None = None,
                 policy: ResiliencePolicy | None = None,
                 event_hooks: Callable[[str], Mapping[str, list[Callable[..., Any]]]] | None = None,
                 lean: bool = True) -> None:
        self._transport = transport
        # providers/transport.py, as in production (``upstream_transport`` setting); lean=False
        # is httpx's own transport: the escape hatch, and what respx's replays patch.
        self.lean = lean
        # Observers per connection name (metrics: panelql.web.metrics.upstream_event_hooks).
        self._event_hooks = event_hooks
        self._clients: list[httpx.AsyncClient] = []
        self.policy = policy or ResiliencePolicy.disabled()
        self._guards: dict[str, ConnectionGuard] = {}
        self.connection: str | None = None

    def for_connection(self, name: str) -> ClientFactory:
        """A view of this factory for one connection: same clients, same guards."""
        view = copy.copy(self)  # shares _clients and _guards by reference
        view.connection = name
        return view

    def guard(self, name: str | None = None) -> ConnectionGuard | None:
        """The connection's guard (None when resilience is off), for adapters that bring their
        own client (proxmoxer) and want the breaker and limit without the retries."""
        key = name or self.connection
        if key is None or not self.policy.active:
            return None
        if key not in self._guards:
            self._guards[key] = ConnectionGuard(key, self.policy)
        return self._guards[key]

    def breaker_states(self) -> dict[str, str]:
        return {name: g.breaker.state.value for name, g in sorted(self._guards.items())}

    def build(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
        timeout: float = 25.0,
        verify: bool | str = True,
        outage: OutageTest | None = None,
    ) -> httpx.AsyncClient:
        """``outage``: which answers count as the upstream failing (default: any 5xx), for a
        kind that answers application errors with a 5xx (see providers/resilience.py)."""
        options: dict[str, Any] = {
            "base_url": base_url,
            "headers": {"User-Agent": USER_AGENT, "Accept": "application/json",
                        **(headers or {})},
            "auth": auth,
            "timeout": httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            "limits": httpx.Limits(max_connections=32, max_keepalive_connections=16),
            "transport": self._transport or (LeanTransport(verify=verify) if self.lean else None),
            "verify": verify,
        }
        hooks = {"request": [], "response": [request_ids.note]}  # for the audit log
        if self._event_hooks is not None:
            for kind, observers in self._event_hooks(self.connection or base_url).items():
                hooks.setdefault(kind, []).extend(observers)
        options["event_hooks"] = hooks
        # A client built outside for_connection() is keyed by its origin.
        guard = self.guard(self.connection or httpx.URL(base_url).netloc.decode() or base_url)
        if guard is not None and outage is not None:
            guard.outage = outage
        client = (ResilientClient(guard=guard, **options) if guard is not None
                  else httpx.AsyncClient(**options))
        self._clients.append(client)
        return client

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
        self._clients.clear()


def _retry_after(response: httpx.Response, body: Any) -> float | None:
    header = retry_after(response.headers)
    if header is not None or "retry-after" in response.headers:
        return header
    if isinstance(body, dict) and isinstance(body.get("retryAfter"), int | float):
        return float(body["retryAfter"])
    return None


def _decode(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def error_for_status(
    response: httpx.Response, body: Any, message: str | None, provider: str
) -> ProviderError:
    """Map one failed HTTP answer to the most specific ProviderError (the mapping table)."""
    status = response.status_code
    debug = {"status": status, "url": str(response.request.url.copy_with(query=None))}
    kwargs: dict[str, Any] = {"provider": provider, "debug": debug, "upstream_status": status}
    text = message or f"{provider} answered HTTP {status}"
    if status == 401:
        return AuthenticationFailed(f"{provider} rejected the gateway's credentials", **kwargs)
    if status == 403:
        return forbidden(message, provider, kwargs)
    if status == 404:
        return NotFound(message or "not found upstream", **kwargs)
    if status == 409:
        return Conflict(text, **kwargs)
    if status == 423:
        return Conflict(text, retryable=True, **kwargs)
    if status in (400, 422):
        return InvalidRequest(text, **kwargs)
    if status == 429:
        return RateLimited(
            f"{provider} is rate limiting the gateway", retry_after=_retry_after(response, body),
            **kwargs,
        )
    if status >= 500:
        return Unavailable(f"{provider} is failing (HTTP {status})", **kwargs)
    return UnexpectedResponse(f"{provider} answered HTTP {status}", **kwargs)


# A 403 is not always a bad key. Its body says which kind it is: words about the key or the
# caller's address mean every call will fail (the key is rejected); "disabled"/"not enabled"
# means a feature is off for this object (a wrong state, CONFLICT); anything else is the panel
# refusing this one object (FORBIDDEN), e.g. catalyst-backend/src/routes/servers/invites.ts
# @747660b5 answers 403 {"error":"Forbidden"} to anyone but the server's owner, and
# routes/backups.ts 403 {"error":"Backup allocation disabled. Configure S3 or SFTP…"}.
_KEY_WORDS = ("api key", "api-key", "apikey", "token", "credential", "unauthenticated",
              "authentication", "ip address", "not authorized to access the api")
_DISABLED_WORDS = ("disabled", "not enabled", "is turned off")


def forbidden(message: str | None, provider: str, kwargs: dict[str, Any]) -> ProviderError:
    """Classify one 403 by what the panel said (the shared rule; see the table above)."""
    text = (message or "").strip()
    lowered = text.lower()
    if any(word in lowered for word in _KEY_WORDS):
        return AuthenticationFailed(f"{provider} rejected the gateway's credentials", **kwargs)
    if any(word in lowered for word in _DISABLED_WORDS):
        return Conflict(f"{provider}: {text}", **kwargs)
    return Forbidden(f"{provider} does not allow this for this object: {text or 'Forbidden'}",
                     panel_message=text or None, **kwargs)


class Upstream:
    """A JSON API reached through one injected client, with the error boundary applied."""

    def __init__(self, client: httpx.AsyncClient, provider: str, read_error: ErrorReader) -> None:
        self.client = client
        self.provider = provider
        self._read_error = read_error

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if method == "GET" and set(kwargs) <= {"params"}:
            # Within a query, an identical read made elsewhere shares this one's answer.
            key = (self.provider, str(self.client.base_url), path, repr(kwargs.get("params")))
            return await read_memo.shared(key, lambda: self._request(method, path, **kwargs))
        return await self._request(method, path, **kwargs)

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self.client.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise Unavailable(
                f"{self.provider} timed out", provider=self.provider, debug={"path": path}
            ) from exc
        except ResponseTooLarge as exc:
            raise UnexpectedResponse(
                f"{self.provider} answered with more data than the gateway accepts",
                provider=self.provider, debug={"path": path, "error": str(exc)}) from exc
        except httpx.TransportError as exc:
            raise Unavailable(
                f"{self.provider} is unreachable",
                provider=self.provider,
                debug={"path": path, "error": type(exc).__name__},
            ) from exc
        if response.is_success:
            return response
        error = self.failure(response, _decode(response))
        log.info(
            "upstream error",
            extra={"provider": self.provider, "status": response.status_code, "path": path},
        )
        raise error

    def failure(self, response: httpx.Response, body: Any) -> ProviderError:
        """The error for a failed answer. Kinds with their own error-code tables (Cloudflare)
        or status quirks (DirectAdmin) override this, not the request path."""
        message = self._read_error(body) if body is not None else None
        return error_for_status(response, body, message, self.provider)

    async def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Request and decode JSON; a non-JSON success body is an UnexpectedResponse."""
        return self.decoded(await self.request(method, path, **kwargs), path)

    def decoded(self, response: httpx.Response, path: str) -> Any:
        """A success body as :meth:`json` decodes it (None when empty)."""
        if response.status_code == 204 or not response.content:
            return None
        try:
            return loads(response.content)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UnexpectedResponse(
                f"{self.provider} sent a body that is not JSON",
                provider=self.provider,
                debug={"path": path, "snippet": response.text[:200]},
            ) from exc


def loads(content: bytes) -> Any:
    """A JSON body, decoded by orjson (a 2 MB Catalyst server list took the stdlib a sixth of a
    1,000-server query's CPU). What orjson refuses and the stdlib accepts (NaN, integers past
    64 bits, UTF-16, a byte-order mark) is decoded by the stdlib, as before; what both refuse
    raises the stdlib's ``JSONDecodeError``."""
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return json.loads(content)


def expect(condition: bool, provider: str, what: str) -> None:
    """Guard for payload shapes: garbage from upstream is an UnexpectedResponse, not a crash."""
    if not condition:
        raise UnexpectedResponse(f"{provider} sent an unexpected {what}", provider=provider)
