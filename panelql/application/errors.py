"""Errors the application layer raises for clients, each with its machine-readable code.

Provider errors (panelql.providers.errors) pass through unchanged; the schema layer renders
both kinds into ``errors[].extensions``.
"""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    code = "INTERNAL"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    @property
    def extensions(self) -> dict[str, Any]:
        """What clients see in ``errors[].extensions`` (graphql-core reads this attribute on
        every transport: HTTP, WebSocket and SSE alike)."""
        return {"code": self.code, **self.details}


class BadUserInput(GatewayError):
    code = "BAD_USER_INPUT"


class NotFoundError(GatewayError):
    code = "NOT_FOUND"


class Forbidden(GatewayError):
    code = "FORBIDDEN"


class Unauthenticated(GatewayError):
    code = "UNAUTHENTICATED"


class RateLimited(GatewayError):
    code = "RATE_LIMITED"


class StateConflict(GatewayError):
    code = "CONFLICT"


class NotSupported(GatewayError):
    code = "NOT_SUPPORTED"
