"""Hooks that run around root fields only (scope checks, per-root-field metrics).

A strawberry extension with a ``resolve`` hook becomes graphql-core middleware around *every*
field: a 100-server dashboard query resolves about 1,500 fields, and profiling bench/ put two
such hooks (which only cared about root fields) at a sizeable share of the query's CPU. Wrapping
the ``resolve`` of the Query and Mutation fields once, when the schema is built, costs nothing
for nested fields. Subscriptions are not wrapped: their generators check scopes themselves
(graphql-core does not resolve subscription roots through ``resolve``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import GraphQLFieldResolver, GraphQLObjectType, GraphQLResolveInfo, GraphQLSchema

from panelql.application import auth

# (type name, field name, the field's resolver) -> the resolver to install instead.
RootWrapper = Callable[[str, str, GraphQLFieldResolver], GraphQLFieldResolver]


def wrap_root_fields(schema: GraphQLSchema, wrapper: RootWrapper) -> None:
    for root in (schema.query_type, schema.mutation_type):
        if not isinstance(root, GraphQLObjectType):
            continue
        for name, field in root.fields.items():
            if field.resolve is not None and not name.startswith("__"):
                field.resolve = wrapper(root.name, name, field.resolve)


def scope_check(parent: str, field: str, resolve: GraphQLFieldResolver) -> GraphQLFieldResolver:
    """Refuse the field before its resolver runs unless the viewer's key has the scope."""
    def checked(root: Any, info: GraphQLResolveInfo[Any], **kwargs: Any) -> Any:
        auth.check(info.context.viewer, parent, field)
        return resolve(root, info, **kwargs)
    return checked
