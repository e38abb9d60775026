"""The executable schema: root types plus the extensions every operation runs through."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import strawberry
from graphql import GraphQLError, GraphQLSchema
from strawberry.extensions import MaxTokensLimiter, ParserCache
from strawberry.extensions.disable_introspection import DisableIntrospection
from strawberry.types import ExecutionContext

from panelql.schema import lean_fields
from panelql.schema.connection_rights import OperationRights
from panelql.schema.cost import CachedValidation
from panelql.schema.deadline import RequestDeadline
from panelql.schema.errors import ErrorShaping, is_unexpected
from panelql.schema.lean_execution import LeanExecutionContext
from panelql.schema.mutation import Mutation as LifecycleMutation
from panelql.schema.onboarding import OnboardingMutation
from panelql.schema.operation_name import RequireOperationName
from panelql.schema.query import Query
from panelql.schema.read_memo import ReadMemoInQueries
from panelql.schema.root_fields import RootWrapper, scope_check, wrap_root_fields
from panelql.schema.subscription import Subscription
from panelql.schema.types.compute import CONTEXT_RESOLVERS
from panelql.settings import Limits


@strawberry.type(name="Mutation")
class Mutation(LifecycleMutation, OnboardingMutation):
    """The root Mutation: lifecycle actions plus onboarding (orders, login links)."""

SDL_PATH = Path(__file__).parent / "schema.graphql"


class PanelQLSchema(strawberry.Schema):
    """Logs only what is unexpected: client mistakes and panel failures are answers, not
    incidents (ErrorShaping logs provider failures at INFO with their debug payload)."""

    def process_errors(self, errors: list[GraphQLError],
                       execution_context: ExecutionContext | None = None) -> None:
        unexpected = [e for e in errors if is_unexpected(e)]
        if unexpected:
            super().process_errors(unexpected, execution_context)


def build_schema(limits: Limits | None = None, *, introspection: bool = True,
                 root_wrappers: Sequence[RootWrapper] = (), lean: bool = True
                 ) -> strawberry.Schema:
    """``root_wrappers`` (the app's metrics) go around each Query and Mutation field, inside
    the scope check, so a refused field is not timed as if it had run."""
    limits = limits or Limits()
    validated: OrderedDict[str, list[GraphQLError]] = OrderedDict()  # per schema: its limits
    executable: list[GraphQLSchema] = []  # filled once the schema exists, before any request
    extensions: list[object] = [
        OperationRights,  # first: every other extension sees the operation's own context
        ErrorShaping,
        # Depth and alias limits are checked by CachedValidation (schema/shape.py), each
        # fragment walked once: strawberry's limiters walk it at every spread.
        lambda: MaxTokensLimiter(max_token_count=limits.max_tokens),
        lambda: CachedValidation(executable[0], limits, validated),
        RequireOperationName,
        ReadMemoInQueries,
        RequestDeadline,
        # Dashboards send the same few documents over and over: parse each once (validation
        # is cached by CachedValidation, which still prices every request's variables).
        lambda: ParserCache(maxsize=512),
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    # lean=False: graphql-core's execution for every field (the differential test's reference).
    schema = PanelQLSchema(query=Query, mutation=Mutation, subscription=Subscription,
                           extensions=extensions,  # type: ignore[arg-type]
                           execution_context_class=LeanExecutionContext if lean else None)
    executable.append(graphql_schema(schema))
    for wrapper in (*root_wrappers, scope_check):
        wrap_root_fields(executable[0], wrapper)
    if lean:
        lean_fields.install(executable[0], CONTEXT_RESOLVERS)
    return schema


def graphql_schema(schema: strawberry.Schema) -> GraphQLSchema:
    """The graphql-core schema strawberry executes, whose root resolvers we wrap and against
    which documents are validated and priced. Strawberry 0.341 has no public accessor for it
    (its maintainers point to ``schema._schema``: strawberry-graphql/strawberry#2590), so this
    is the one place that reads the attribute; pyproject keeps strawberry at 0.341.x."""
    return schema._schema


def export_sdl() -> str:
    return build_schema().as_str() + "\n"
