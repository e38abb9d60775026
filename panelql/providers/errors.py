"""The provider error tree: every upstream failure becomes one of these, at one boundary.

    ProviderError
     ├── NotFound                 the upstream object does not exist (404)
     ├── Conflict                 wrong state for the action (409, Catalyst/VirtFusion 423), or
     │                            a 403 saying a feature is disabled for this object
     │    └── CapacityExhausted    the target (a NextPanel server) has no free account slot
     ├── RateLimited              429; carries ``retry_after`` seconds when the upstream says
     ├── AuthenticationFailed     401, or a 403 whose body blames the key: the key is rejected
     ├── Forbidden                403 for this object (owner-only rules, per-object roles)
     ├── InvalidRequest           400/422: the upstream rejected our input
     ├── Unavailable              network error, timeout, 5xx, open circuit
     ├── UnexpectedResponse       the upstream answered something we cannot parse
     └── CapabilityNotSupported   the kind cannot do this at all

``message`` is safe to show to API clients; ``debug`` is for logs only and never leaves the
gateway (it may hold upstream bodies, but never credentials).
"""

from __future__ import annotations

from typing import Any


class ProviderError(Exception):
    """Base of the tree. ``retryable`` tells clients whether the same call may succeed later."""

    code = "PROVIDER_ERROR"
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        debug: dict[str, Any] | None = None,
        upstream_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.debug = debug or {}
        self.upstream_status = upstream_status

    @property
    def extensions(self) -> dict[str, Any]:
        """Client-facing details (graphql-core copies this onto the GraphQL error)."""
        ext: dict[str, Any] = {"code": self.code, "provider": self.provider,
                               "retryable": self.retryable}
        retry_after = getattr(self, "retry_after", None)
        if retry_after is not None:
            ext["retryAfter"] = retry_after
        current = getattr(self, "current_status", None)
        if current:
            ext["currentStatus"] = current
        return ext

    def with_provider(self, provider: str) -> ProviderError:
        if self.provider is None:
            self.provider = provider
        return self


class NotFound(ProviderError):
    code = "NOT_FOUND"


class Conflict(ProviderError):
    code = "CONFLICT"

    def __init__(
        self, message: str, *, current_status: str | None = None, retryable: bool = False,
        field: str | None = None, **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.current_status = current_status
        self.retryable = retryable
        self.field = field  # the input that collides (a taken username or email)

    @property
    def extensions(self) -> dict[str, Any]:
        ext = super().extensions
        if self.field:
            ext["field"] = self.field
        return ext


class CapacityExhausted(Conflict):
    """No room on the chosen server; placement may try the next one."""


class RateLimited(ProviderError):
    code = "RATE_LIMITED"
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class AuthenticationFailed(ProviderError):
    """The upstream rejected the gateway's key itself (every call would fail the same way)."""

    code = "PROVIDER_ERROR"
    reason = "AUTHENTICATION"

    @property
    def extensions(self) -> dict[str, Any]:
        return {**super().extensions, "reason": self.reason}


class Forbidden(ProviderError):
    """The key is fine but this object is off limits to it (the panel's own rule, e.g.
    Catalyst's "only the owner may grant access"); the message is the panel's."""

    code = "FORBIDDEN"

    def __init__(self, message: str, *, panel_message: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.panel_message = panel_message  # what the panel said, for adapters to rephrase


class InvalidRequest(ProviderError):
    code = "BAD_USER_INPUT"

    def __init__(
        self, message: str, *, fields: dict[str, str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.fields = fields or {}

    @property
    def extensions(self) -> dict[str, Any]:
        """The upstream's per-field complaints reach the client: ``field`` names the first
        (as the gateway's own BAD_USER_INPUT does), ``fields`` maps each to its message."""
        ext = super().extensions
        if self.fields:
            ext["field"] = next(iter(self.fields))
            ext["fields"] = dict(self.fields)
        return ext


class Unavailable(ProviderError):
    code = "PROVIDER_UNAVAILABLE"
    retryable = True


class UnexpectedResponse(ProviderError):
    code = "PROVIDER_ERROR"


class CapabilityNotSupported(ProviderError):
    code = "NOT_SUPPORTED"
