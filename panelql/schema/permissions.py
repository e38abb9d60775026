"""Scope enforcement on every root field (queries and mutations; subscriptions check in their
generators, because graphql-core does not run field middleware on subscribe)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import GraphQLResolveInfo
from strawberry.extensions import SchemaExtension

from panelql.resolvers import auth

ROOTS = frozenset({"Query", "Mutation"})


class ScopeCheck(SchemaExtension):
    def resolve(self, _next: Callable[..., Any], root: Any, info: GraphQLResolveInfo[Any],
                *args: Any, **kwargs: Any) -> Any:
        parent = info.parent_type.name
        if parent in ROOTS and not info.field_name.startswith("__"):
            auth.check(info.context.viewer, parent, info.field_name)
        return _next(root, info, *args, **kwargs)
