"""API keys as use cases: list them, create one (its secret returned once), revoke one."""

from __future__ import annotations

from datetime import UTC, datetime

from panelql.application.auth import validate_scopes
from panelql.application.context import Context
from panelql.application.customers import valid_customer_ref
from panelql.application.errors import BadUserInput, NotFoundError
from panelql.domain.state import KeyInfo


async def list_keys(ctx: Context) -> list[KeyInfo]:
    return await ctx.gateway.keys.list()


async def create_key(ctx: Context, *, name: str, scopes: list[str], customer_ref: str | None,
                     rate_limit_per_minute: int | None, expires_at: datetime | None
                     ) -> tuple[str, KeyInfo]:
    """(the secret, its stored description); every input checked before anything is stored."""
    if not 1 <= len(name) <= 128:
        raise BadUserInput("name must be 1 to 128 characters", field="name")
    if expires_at is not None and _aware(expires_at) <= datetime.now(UTC):
        raise BadUserInput("expiresAt is in the past; give a future moment", field="expiresAt")
    if rate_limit_per_minute is not None and rate_limit_per_minute < 1:
        raise BadUserInput("rateLimitPerMinute must be positive", field="rateLimitPerMinute")
    return await ctx.gateway.keys.create(
        name=name, scopes=validate_scopes(scopes),
        customer_ref=valid_customer_ref(customer_ref) if customer_ref else None,
        rate_limit_per_minute=rate_limit_per_minute, expires_at=expires_at)


async def revoke_key(ctx: Context, key_id: str) -> KeyInfo:
    try:
        number = int(key_id)
    except ValueError:
        raise BadUserInput("not an API key id", field="id") from None
    found = await ctx.gateway.keys.revoke(number)
    if found is None:
        raise NotFoundError("API key not found")
    return found


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # no zone: UTC, as the CLI
