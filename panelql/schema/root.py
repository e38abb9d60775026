"""The executable schema: root types plus the extensions every operation runs through."""

from __future__ import annotations

from pathlib import Path

import strawberry
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.extensions.disable_introspection import DisableIntrospection

from panelql.schema.cost import QueryCostLimiter
from panelql.schema.errors import ErrorShaping
from panelql.schema.mutation import Mutation
from panelql.schema.operation_name import RequireOperationName
from panelql.schema.permissions import ScopeCheck
from panelql.schema.query import Query
from panelql.schema.subscription import Subscription
from panelql.settings import Limits

SDL_PATH = Path(__file__).parent / "schema.graphql"


def build_schema(limits: Limits | None = None, *, introspection: bool = True) -> strawberry.Schema:
    limits = limits or Limits()
    extensions: list[object] = [
        ErrorShaping,
        ScopeCheck,
        lambda: QueryDepthLimiter(max_depth=limits.max_depth),
        lambda: MaxAliasesLimiter(max_alias_count=limits.max_aliases),
        lambda: MaxTokensLimiter(max_token_count=limits.max_tokens),
        lambda: QueryCostLimiter(limits),
        RequireOperationName,
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    return strawberry.Schema(query=Query, mutation=Mutation, subscription=Subscription,
                             extensions=extensions)  # type: ignore[arg-type]


def export_sdl() -> str:
    return build_schema().as_str() + "\n"
