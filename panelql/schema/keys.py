"""API keys through GraphQL (admins only): list, create (the secret is shown once), revoke."""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry

from panelql.application.auth import validate_scopes
from panelql.application.customers import valid_customer_ref
from panelql.application.errors import BadUserInput, NotFoundError
from panelql.application.execution import ActionResult
from panelql.db.api_keys import KeyInfo
from panelql.schema.actions import run_action
from panelql.schema.types.common import Info


@strawberry.type
class ApiKey:
    info: strawberry.Private[KeyInfo]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.info.id))

    @strawberry.field
    def name(self) -> str:
        return self.info.name

    @strawberry.field(description="The key's public prefix (pql_<prefix>_…), to tell keys apart.")
    def prefix(self) -> str:
        return self.info.prefix

    @strawberry.field
    def scopes(self) -> list[str]:
        return list(self.info.scopes)

    @strawberry.field
    def customer_ref(self) -> str | None:
        return self.info.customer_ref

    @strawberry.field
    def rate_limit_per_minute(self) -> int | None:
        return self.info.rate_limit_per_minute

    @strawberry.field
    def expires_at(self) -> datetime | None:
        return self.info.expires_at

    @strawberry.field
    def revoked_at(self) -> datetime | None:
        return self.info.revoked_at

    @strawberry.field
    def active(self) -> bool:
        return self.info.active


@strawberry.type
class CreatedApiKey:
    key: str = strawberry.field(description="The secret. Shown only in this answer; stored hashed.")
    api_key: ApiKey


@strawberry.type
class KeyQuery:
    @strawberry.field(description="Every API key (never their secrets).")
    async def api_keys(self, info: Info) -> list[ApiKey]:
        return [ApiKey(info=k) for k in await info.context.gateway.keys.list()]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # no zone: UTC, as the CLI


@strawberry.type
class KeyMutation:
    @strawberry.mutation(description="Create an API key. Not idempotent by design: a replay "
                                     "would have to store the secret.")
    async def create_api_key(self, info: Info, name: str, scopes: list[str],
                             customer_ref: str | None = None,
                             rate_limit_per_minute: int | None = None,
                             expires_at: datetime | None = None) -> CreatedApiKey:
        created: list[tuple[str, KeyInfo]] = []

        async def run() -> ActionResult:
            if not 1 <= len(name) <= 128:
                raise BadUserInput("name must be 1 to 128 characters", field="name")
            if expires_at is not None and _aware(expires_at) <= datetime.now(UTC):
                raise BadUserInput("expiresAt is in the past; give a future moment",
                                   field="expiresAt")
            if rate_limit_per_minute is not None and rate_limit_per_minute < 1:
                raise BadUserInput("rateLimitPerMinute must be positive",
                                   field="rateLimitPerMinute")
            raw, key = await info.context.gateway.keys.create(
                name=name, scopes=validate_scopes(scopes),
                customer_ref=valid_customer_ref(customer_ref) if customer_ref else None,
                rate_limit_per_minute=rate_limit_per_minute, expires_at=expires_at)
            created.append((raw, key))
            return ActionResult(target=f"apikey:{key.id}")

        values = {"name": name, "scopes": scopes, "customer_ref": customer_ref,
                  "rate_limit_per_minute": rate_limit_per_minute,
                  "expires_at": expires_at.isoformat() if expires_at else None}
        await run_action(info, None, None, values, run)
        raw, key = created[0]
        return CreatedApiKey(key=raw, api_key=ApiKey(info=key))

    @strawberry.mutation
    async def revoke_api_key(self, info: Info, id: strawberry.ID) -> ApiKey:
        revoked: list[KeyInfo] = []

        async def run() -> ActionResult:
            try:
                key_id = int(id)
            except ValueError:
                raise BadUserInput("not an API key id", field="id") from None
            found = await info.context.gateway.keys.revoke(key_id)
            if found is None:
                raise NotFoundError("API key not found")
            revoked.append(found)
            return ActionResult(target=f"apikey:{found.id}")

        await run_action(info, f"apikey:{id}", None, {"id": id}, run)
        return ApiKey(info=revoked[0])
