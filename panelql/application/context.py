"""The typed per-request context: the gateway runtime, fresh dataloaders, and partial errors."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol

from panelql.application.gateway import Gateway
from panelql.application.loaders import Loaders
from panelql.providers.errors import ProviderError


class LiveRights(Protocol):
    """What a running subscription needs of its connection's rights (connection_rights.py)."""

    interval: float

    async def refresh(self, ctx: Context, *, force: bool = False) -> None: ...


@dataclass
class Viewer:
    """Who is asking: built from the API key by the web layer (see resolvers.auth)."""

    name: str = "anonymous"
    scopes: frozenset[str] = frozenset()
    customer_ref: str | None = None
    key_id: int | None = None
    rate_limit_per_minute: int | None = None


@dataclass
class Context:
    gateway: Gateway
    loaders: Loaders
    viewer: Viewer = field(default_factory=Viewer)
    request: Any = None
    # Failures of single panels during list queries: rendered as extra errors[] entries while
    # the data of the healthy panels is returned (never all-or-nothing).
    partial_errors: list[ProviderError] = field(default_factory=list)
    # Customer scopes read from the database once per request (see resolvers.customers).
    scopes: dict[str, Any] = field(default_factory=dict)
    # Long-lived connections (WebSocket, SSE) only: re-checks the key while they live.
    rights: LiveRights | None = None
    # What a related field answered, by relation and key, once its batch had settled: the
    # GraphQL object made for a node or owner is made once per request (1,000 servers on 4
    # nodes make 4 Node objects, not 1,000) and later servers skip the loader (schema.types).
    related: dict[Hashable, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, gateway: Gateway, request: Any = None, viewer: Viewer | None = None
               ) -> Context:
        return cls(gateway=gateway, loaders=Loaders(gateway), request=request,
                   viewer=viewer or Viewer())

    def report(self, error: ProviderError) -> None:
        seen = {(e.provider, e.code) for e in self.partial_errors}
        if (error.provider, error.code) not in seen:
            self.partial_errors.append(error)
