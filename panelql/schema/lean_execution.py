"""A cheaper path through graphql-core for the fields dashboards read most, beside the general one.

graphql-core executes every field the same way: it builds a ``GraphQLResolveInfo`` (fourteen
values), calls the resolver, then dispatches the value through ``complete_value``. For a field
that schema/lean_fields.py marked lean (a plain attribute, or a function of the source and the
request context) none of that is needed when the answer is plain: this execution context calls
the lean function, coerces a leaf, or executes an object's sub-selection directly. Whenever the
answer is not plain (an awaitable, an exception, a null where the type forbids it, a value the
leaf type does not accept, an object type with ``is_type_of``, a list), it hands the value to
graphql-core's own completion, with the ``info`` graphql-core would have built, so errors, paths
and partial results are graphql-core's. Fields with arguments, directives or no lean marker take
graphql-core's path from the start.

tests/unit/test_lean_execution.py runs the suite's documents and a hypothesis-graphql stream
through both paths and demands identical ``data`` and ``errors``.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from graphql import (
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    Undefined,
    is_leaf_type,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

LEAN = "panelql.lean"  # GraphQLField.extensions key: the field's (source, context) function


class LeanExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def execute_field(self, parent_type: GraphQLObjectType, source: Any,
                      field_details_list: FieldDetailsList, path: Path,
                      position_context: Any) -> Any:
        details = field_details_list[0]
        node = details.node
        field_def = parent_type.fields.get(node.name.value)
        lean = None if field_def is None else field_def.extensions.get(LEAN)
        middleware = self.middleware_manager
        if (lean is None or (middleware is not None and middleware.middlewares) or node.arguments
                or node.directives):
            return super().execute_field(parent_type, source, field_details_list, path,
                                         position_context)
        assert field_def is not None
        return_type = field_def.type
        try:
            result = lean(source, self.context_value)
        except Exception as raw_error:  # as graphql-core's execute_field handles it
            self.handle_field_error(raw_error, return_type, field_details_list, path)
            return None
        if result is not None and not self.is_awaitable(result) and not isinstance(
                result, Exception):
            named = (return_type.of_type if isinstance(return_type, GraphQLNonNull)
                     else return_type)
            if is_leaf_type(named):
                try:
                    coerced = named.coerce_output_value(result)
                except Exception:  # graphql-core's completion raises and reports it
                    coerced = None
                if coerced is not Undefined and coerced is not None:
                    return coerced
            elif isinstance(named, GraphQLObjectType) and named.is_type_of is None:
                try:
                    completed = self.collect_and_execute_subfields(
                        named, field_details_list, path, result, position_context)
                except Exception as raw_error:
                    self.handle_field_error(raw_error, return_type, field_details_list, path)
                    return None
                if self.is_awaitable(completed):
                    return self._settle(completed, return_type, field_details_list, path)
                return completed
        elif result is None and not isinstance(return_type, GraphQLNonNull):
            return None
        return self._complete(parent_type, field_def.type, field_details_list, path, result,
                              position_context, field_def)

    def _complete(self, parent_type: GraphQLObjectType, return_type: GraphQLOutputType,
                  field_details_list: FieldDetailsList, path: Path, result: Any,
                  position_context: Any, field_def: Any) -> Any:
        """The rest of graphql-core's execute_field, for a value already resolved."""
        info = self.build_resolve_info(field_def, [d.node for d in field_details_list],
                                       parent_type, path)
        try:
            if self.is_awaitable(result):
                return self.complete_awaitable_value(return_type, field_details_list, info,
                                                     path, result, position_context)
            completed = self.complete_value(return_type, field_details_list, info, path,
                                            result, position_context)
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field_details_list, path)
            return None
        if self.is_awaitable(completed):
            return self._settle(completed, return_type, field_details_list, path)
        return completed

    async def _settle(self, completed: Awaitable[Any], return_type: GraphQLOutputType,
                      field_details_list: FieldDetailsList, path: Path) -> Any:
        try:
            return await completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field_details_list, path)
            return None
