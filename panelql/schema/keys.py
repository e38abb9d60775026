"""API keys through GraphQL (admins only): list, create (the secret is shown once), revoke."""

from __future__ import annotations

from datetime import datetime

import strawberry

from panelql.application import api_keys
from panelql.application.execution import ActionResult
from panelql.domain.state import KeyInfo
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
        return [ApiKey(info=k) for k in await api_keys.list_keys(info.context)]


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
            created.append(await api_keys.create_key(
                info.context, name=name, scopes=scopes, customer_ref=customer_ref,
                rate_limit_per_minute=rate_limit_per_minute, expires_at=expires_at))
            return ActionResult(target=f"apikey:{created[0][1].id}")

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
            revoked.append(await api_keys.revoke_key(info.context, id))
            return ActionResult(target=f"apikey:{revoked[0].id}")

        await run_action(info, f"apikey:{id}", None, {"id": id}, run)
        return ApiKey(info=revoked[0])
