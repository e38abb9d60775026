"""Per-field cost: give graphql-core plain functions for the fields every dashboard row asks for.

Strawberry resolves a field that has a resolver by building an ``Info``, converting arguments
and calling through its extension chain, and a plain attribute through ``get_result`` and the
configured default resolver. For a 1,000-server page that machinery, not the work, was a
quarter of the query's CPU (bench/, ``python -m bench --only floor``). graphql-core accepts any
callable as a field's ``resolve``; this module installs, once when the schema is built:

- for plain attributes (strawberry's "basic" fields: no resolver, no field extensions), a
  ``getattr`` of the Python name, which is exactly what strawberry's default resolver does;
- for the resolvers listed in :data:`CONTEXT_RESOLVERS` (no arguments, only the context
  needed), the function itself, called with the source object and the request's context.

Each such function is also left in the field's ``extensions`` for schema/lean_execution.py,
which calls it without building a ``GraphQLResolveInfo`` at all.

Types, SDL, errors and results are unchanged: strawberry still defines the schema, and a field
not listed keeps strawberry's own resolver.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from graphql import GraphQLObjectType, GraphQLResolveInfo, GraphQLSchema
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

from panelql.schema.lean_execution import LEAN

ContextResolver = Callable[[Any, Any], Any]  # (source object, request context) -> value


def install(schema: GraphQLSchema, context_resolvers: Mapping[tuple[str, str], ContextResolver]
            ) -> None:
    for type_name, graphql_type in schema.type_map.items():
        if not isinstance(graphql_type, GraphQLObjectType) or type_name.startswith("__"):
            continue
        if graphql_type in (schema.query_type, schema.mutation_type, schema.subscription_type):
            continue  # root fields are wrapped (scope checks, metrics): leave them alone
        for field_name, field in graphql_type.fields.items():
            lean = context_resolvers.get((type_name, field_name))
            if lean is None:
                definition = field.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
                if isinstance(definition, StrawberryField) and definition.is_basic_field:
                    lean = _getter(definition.python_name)
            if lean is not None:
                field.resolve = _with_context(lean)
                # What schema/lean_execution.py calls without building an info.
                field.extensions = {**field.extensions, LEAN: lean}


def _getter(name: str) -> ContextResolver:
    def get(source: Any, context: Any) -> Any:
        return getattr(source, name)
    return get


def _with_context(function: ContextResolver) -> Callable[..., Any]:
    def resolve(source: Any, info: GraphQLResolveInfo[Any]) -> Any:
        return function(source, info.context)
    return resolve
