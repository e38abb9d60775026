"""A cheaper path through graphql-core for the fields dashboards read most, beside the general one.

graphql-core executes every field the same way: ``execute_fields`` makes a response ``Path``,
``execute_field`` builds a ``GraphQLResolveInfo`` (fourteen values), calls the resolver, then
dispatches the value through ``complete_value``, ``complete_list_value`` and
``complete_object_value``. For a field that schema/lean_fields.py marked lean (a plain attribute,
or a function of the source and the request context) none of that is needed when the answer is
plain.

This execution context compiles each selection set it completes (an object type and the field
nodes that select on it) once per operation into a plan: for every response key, whether the
field is lean and what its type needs (a leaf to coerce, an object or a list of objects to
execute with its own plan, ``__typename``). Executing an object is then a loop over the plan:
call the lean function, coerce a leaf or recurse, put the value in the response. A response
``Path`` is made only where it can be needed (objects, list items, and any value that leaves the
fast path). Whenever an answer is not plain (an awaitable, an exception, a null where the type
forbids it, a value the leaf type does not accept, an object type with ``is_type_of``, an
abstract type, a list of leaves), the value goes to graphql-core's own completion with the
``info`` graphql-core would have built, so errors, paths and partial results are graphql-core's.
Fields with arguments, directives, or no lean marker, operations with middleware, and selection
sets under ``@defer`` take graphql-core's path from the start.

Extension point: a custom execution context class is how strawberry (``execution_context_class``)
and graphql-core (``executor_class``) let an application change execution. The methods it
overrides and calls (``collect_and_execute_subfields``, ``execute_field``, ``complete_value``,
``handle_field_error``…) are public names, but graphql-core 3.3 documents them as not part of
its stable API, so pyproject.toml bounds graphql-core to 3.3.x and
tests/reliability/test_lean_execution.py runs the suite's documents and a hypothesis-graphql
stream through this path and graphql-core's own, demanding identical ``data`` and ``errors``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLID,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLString,
    Undefined,
    is_leaf_type,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import Path, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

LEAN = "panelql.lean"  # GraphQLField.extensions key: the field's (source, context) function

# What a plan entry does with the field's value.
SLOW, TYPENAME, STRING, LEAF, OBJECT, OBJECT_LIST, OTHER = range(7)
_LEAVES = frozenset({TYPENAME, STRING, LEAF})
# Values of these classes are never awaitable (and never exceptions): no further test needed.
_PLAIN = frozenset({str, int, float, bool, dict, list, tuple})


class Entry(NamedTuple):
    """One response key of a compiled selection set."""

    key: str
    details: FieldDetailsList
    field_def: GraphQLField | None
    kind: int
    lean: Callable[[Any, Any], Any] | None
    named: Any  # the unwrapped type LEAF/OBJECT/OBJECT_LIST need
    non_null: bool  # the field's own type is non-null
    item_type: Any = None  # OBJECT_LIST: the list's item type, NonNull or not


class LeanExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Per operation, like graphql-core's own memo of collected subfields: keyed by the
        # identity of the field list, which the value keeps alive.
        self._plans: dict[tuple[GraphQLObjectType, int],
                          tuple[FieldDetailsList, tuple[list[Entry], bool] | None]] = {}
        self._enum_names: dict[tuple[GraphQLEnumType, type, Any], Any] = {}
        # Answers of leaf-only selections by (object, selection) identity; the value keeps the
        # object alive, so its id is not reused within the operation.
        self._completed: dict[tuple[int, int], tuple[Any, dict[str, Any]]] = {}
        self._field_errors = 0
        manager = self.middleware_manager
        self._lean_allowed = manager is None or not manager.middlewares

    # -- objects ------------------------------------------------------------------------------
    def collect_and_execute_subfields(self, return_type: GraphQLObjectType,
                                      field_details_list: FieldDetailsList, path: Path,
                                      result: Any, position_context: Any) -> Any:
        compiled = (self._plan(return_type, field_details_list) if position_context is None
                    else None)
        if compiled is None:
            return super().collect_and_execute_subfields(return_type, field_details_list, path,
                                                         result, position_context)
        plan, leaves_only = compiled
        if not leaves_only:
            return self._execute_plan(return_type, plan, path, result)
        # Only leaves: the same object (1,000 servers share 4 Node objects) answers the same
        # selection with the same values, so its answer is reused, unless completing it
        # reported an error (errors carry the path) or is still pending.
        key = (id(result), id(field_details_list))
        known = self._completed.get(key)
        if known is not None and known[0] is result:
            return known[1]
        errors = self._field_errors
        completed = self._execute_plan(return_type, plan, path, result)
        if errors == self._field_errors and not self.is_awaitable(completed):
            self._completed[key] = (result, completed)
        return completed

    def handle_field_error(self, raw_error: Exception, return_type: GraphQLOutputType,
                           field_details_list: FieldDetailsList, path: Path) -> None:
        self._field_errors += 1
        super().handle_field_error(raw_error, return_type, field_details_list, path)

    def _plan(self, parent_type: GraphQLObjectType, field_details_list: FieldDetailsList
              ) -> tuple[list[Entry], bool] | None:
        """The compiled selection set and whether it selects only leaves; None under
        ``@defer`` (graphql-core's path)."""
        key = (parent_type, id(field_details_list))
        cached = self._plans.get(key)
        if cached is not None:
            return cached[1]
        grouped, new_defer_usages, _ = self.collect_subfields(parent_type, field_details_list)
        compiled = None
        if not new_defer_usages:
            plan = [self._entry(parent_type, response_key, details)
                    for response_key, details in grouped.items()]
            compiled = plan, all(entry.kind in _LEAVES for entry in plan)
        self._plans[key] = (field_details_list, compiled)
        return compiled

    def _entry(self, parent_type: GraphQLObjectType, key: str, details: FieldDetailsList
               ) -> Entry:
        node = details[0].node
        name = node.name.value
        field_def = self.schema.get_field(parent_type, name)
        if (field_def is None or not self._lean_allowed or node.arguments or node.directives
                or any(d.node.arguments or d.node.directives for d in details[1:])):
            return Entry(key, details, field_def, SLOW, None, None, False)
        return_type = field_def.type
        non_null = isinstance(return_type, GraphQLNonNull)
        named = return_type.of_type if isinstance(return_type, GraphQLNonNull) else return_type
        if name == "__typename":  # graphql-core's resolver answers the parent type's name
            return Entry(key, details, field_def, TYPENAME, None, parent_type.name, True)
        lean = field_def.extensions.get(LEAN)
        if lean is None:
            return Entry(key, details, field_def, SLOW, None, None, False)
        if named is GraphQLString or named is GraphQLID:  # a str is its own output value
            return Entry(key, details, field_def, STRING, lean, named, non_null)
        if is_leaf_type(named):
            return Entry(key, details, field_def, LEAF, lean, named, non_null)
        if isinstance(named, GraphQLObjectType) and named.is_type_of is None:
            return Entry(key, details, field_def, OBJECT, lean, named, non_null)
        if isinstance(named, GraphQLList):
            item = named.of_type
            item_named = item.of_type if isinstance(item, GraphQLNonNull) else item
            if isinstance(item_named, GraphQLObjectType) and item_named.is_type_of is None:
                return Entry(key, details, field_def, OBJECT_LIST, lean, item_named, non_null,
                             item)
        return Entry(key, details, field_def, OTHER, lean, named, non_null)

    def _execute_plan(self, parent_type: GraphQLObjectType, plan: list[Entry], path: Path,
                      source: Any) -> Any:
        """graphql-core's ``execute_fields`` over a compiled selection set."""
        results: dict[str, Any] = {}
        awaiting: list[str] = []
        is_awaitable = self.is_awaitable
        context = self.context_value
        try:
            for entry in plan:
                kind = entry.kind
                if kind == TYPENAME:
                    results[entry.key] = entry.named
                    continue
                if kind == STRING:  # the commonest field, inline
                    try:
                        value = entry.lean(source, context)  # type: ignore[misc]
                    except Exception as raw_error:
                        self._lean_failed(parent_type, entry, path, raw_error)
                        results[entry.key] = None
                        continue
                    if value.__class__ is str:
                        results[entry.key] = value
                        continue
                    result = self._lean_value(parent_type, entry, value, path)
                elif kind == SLOW:
                    result = self.execute_field(parent_type, source, entry.details,
                                                Path(path, entry.key, parent_type.name), None)
                    if result is Undefined:
                        continue
                else:
                    result = self._lean_field(parent_type, entry, source, context, path)
                results[entry.key] = result
                if result.__class__ not in _PLAIN and result is not None and is_awaitable(
                        result):
                    awaiting.append(entry.key)
        except Exception:
            if awaiting:  # as execute_fields: settle the siblings' work, then propagate
                self.settle_in_background([results[key] for key in awaiting])
            raise
        if not awaiting:
            return results
        return self._gather_fields(results, awaiting)

    @staticmethod
    async def _gather_fields(results: dict[str, Any], awaiting: list[str]) -> dict[str, Any]:
        if len(awaiting) == 1:
            results[awaiting[0]] = await results[awaiting[0]]
        else:
            values = await gather_with_cancel(*(results[key] for key in awaiting))
            results.update(zip(awaiting, values, strict=True))
        return results

    # -- one field ----------------------------------------------------------------------------
    def execute_field(self, parent_type: GraphQLObjectType, source: Any,
                      field_details_list: FieldDetailsList, path: Path,
                      position_context: Any) -> Any:
        """A lean field reached through graphql-core's own ``execute_fields`` (the root type,
        ``@defer``) still skips the resolve info when its answer is plain."""
        if position_context is None and self._lean_allowed:
            entry = self._entry(parent_type, str(path.key), field_details_list)
            if entry.kind not in (SLOW, TYPENAME):
                return self._lean_field(parent_type, entry, source, self.context_value,
                                        path.prev)
        return super().execute_field(parent_type, source, field_details_list, path,
                                     position_context)

    def _lean_field(self, parent_type: GraphQLObjectType, entry: Entry, source: Any,
                    context: Any, parent_path: Path | None) -> Any:
        """graphql-core's ``execute_field`` for a lean field; ``parent_path`` is the path of
        the object it belongs to (its own is made only when needed)."""
        try:
            result = entry.lean(source, context)  # type: ignore[misc]
        except Exception as raw_error:
            self._lean_failed(parent_type, entry, parent_path, raw_error)
            return None
        return self._lean_value(parent_type, entry, result, parent_path)

    def _lean_failed(self, parent_type: GraphQLObjectType, entry: Entry,
                     parent_path: Path | None, raw_error: Exception) -> None:
        """A lean function raised: as graphql-core's execute_field handles it."""
        path = Path(parent_path, entry.key, parent_type.name)
        self.handle_field_error(raw_error, entry.field_def.type,  # type: ignore[union-attr]
                                entry.details, path)

    def _lean_value(self, parent_type: GraphQLObjectType, entry: Entry, result: Any,
                    parent_path: Path | None) -> Any:
        """The rest of ``execute_field`` for the value a lean function returned."""
        if result is None:
            if not entry.non_null:
                return None
        elif result.__class__ in _PLAIN or not (self.is_awaitable(result)
                                                 or isinstance(result, Exception)):
            kind = entry.kind
            if kind in (LEAF, STRING):
                coerced = self._coerce(entry.named, result)
                if coerced is not None:
                    return coerced
            elif kind == OBJECT:
                path = Path(parent_path, entry.key, parent_type.name)
                try:
                    completed = self.collect_and_execute_subfields(entry.named, entry.details,
                                                                   path, result, None)
                except Exception as raw_error:
                    self.handle_field_error(raw_error, entry.field_def.type,  # type: ignore[union-attr]
                                            entry.details, path)
                    return None
                if self.is_awaitable(completed):
                    return self._settle(completed, entry, path)
                return completed
            elif kind == OBJECT_LIST and result.__class__ in (list, tuple):
                path = Path(parent_path, entry.key, parent_type.name)
                try:
                    completed = self._object_list(parent_type, entry, path, result)
                except Exception as raw_error:
                    self.handle_field_error(raw_error, entry.field_def.type,  # type: ignore[union-attr]
                                            entry.details, path)
                    return None
                if self.is_awaitable(completed):
                    return self._settle(completed, entry, path)
                return completed
        return self._complete(parent_type, entry, Path(parent_path, entry.key, parent_type.name),
                              result)

    def _coerce(self, leaf: Any, value: Any) -> Any:
        """The leaf's ``coerce_output_value``, or None where graphql-core would fail (and then
        reports the failure itself). An enum's answer for a value is remembered: strawberry's
        enum type finds a member's name by scanning its values."""
        remember = isinstance(leaf, GraphQLEnumType)
        if remember:
            key = (leaf, value.__class__, value)
            try:
                return self._enum_names[key]
            except KeyError:
                pass
            except TypeError:  # an unhashable value: coerced every time
                remember = False
        try:
            coerced = leaf.coerce_output_value(value)
        except Exception:  # graphql-core's completion raises and reports it
            return None
        if coerced is Undefined:
            return None
        if remember and coerced is not None:
            self._enum_names[key] = coerced
        return coerced

    def _object_list(self, parent_type: GraphQLObjectType, entry: Entry, path: Path,
                     items: list[Any] | tuple[Any, ...]) -> Any:
        """graphql-core's ``complete_iterable_value`` for a list of objects (no ``@stream``:
        a field with directives is never lean)."""
        item_type: GraphQLOutputType = entry.item_type
        details = entry.details
        is_awaitable = self.is_awaitable
        completed: list[Any] = []
        awaiting: list[int] = []
        info: Any = None
        try:
            for index, item in enumerate(items):
                item_path = Path(path, index, None)
                if item is not None and item.__class__ not in _PLAIN and not (
                        is_awaitable(item) or isinstance(item, Exception)):
                    try:
                        value = self.collect_and_execute_subfields(entry.named, details,
                                                                   item_path, item, None)
                    except Exception as raw_error:
                        self.handle_field_error(raw_error, item_type, details, item_path)
                        completed.append(None)
                        continue
                    if is_awaitable(value):
                        completed.append(self._settle_item(value, item_type, details,
                                                           item_path))
                        awaiting.append(index)
                    else:
                        completed.append(value)
                    continue
                if info is None:
                    info = self.build_resolve_info(
                        entry.field_def, [d.node for d in details],  # type: ignore[arg-type]
                        parent_type, path)
                if is_awaitable(item):
                    completed.append(self.complete_awaitable_list_item_value(
                        item, item_type, details, info, item_path, None))
                    awaiting.append(index)
                elif self.complete_list_item_value(item, completed, item_type, details, info,
                                                   item_path, None):
                    awaiting.append(index)
        except Exception:
            if awaiting:
                self.settle_in_background([completed[i] for i in awaiting])
            raise
        if not awaiting:
            return completed
        return self._gather_items(completed, awaiting)

    @staticmethod
    async def _gather_items(completed: list[Any], awaiting: list[int]) -> list[Any]:
        if len(awaiting) == 1:
            completed[awaiting[0]] = await completed[awaiting[0]]
        else:
            values = await gather_with_cancel(*(completed[i] for i in awaiting))
            for index, value in zip(awaiting, values, strict=True):
                completed[index] = value
        return completed

    async def _settle_item(self, completed: Awaitable[Any], item_type: GraphQLOutputType,
                           details: FieldDetailsList, item_path: Path) -> Any:
        try:
            return await completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, item_type, details, item_path)
            return None

    def _complete(self, parent_type: GraphQLObjectType, entry: Entry, path: Path,
                  result: Any) -> Any:
        """The rest of graphql-core's execute_field, for a value already resolved."""
        field_def = entry.field_def
        assert field_def is not None
        return_type = field_def.type
        details = entry.details
        info = self.build_resolve_info(field_def, [d.node for d in details], parent_type, path)
        try:
            if self.is_awaitable(result):
                return self.complete_awaitable_value(return_type, details, info, path, result,
                                                     None)
            completed = self.complete_value(return_type, details, info, path, result, None)
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, details, path)
            return None
        if self.is_awaitable(completed):
            return self._settle(completed, entry, path)
        return completed

    async def _settle(self, completed: Awaitable[Any], entry: Entry, path: Path) -> Any:
        try:
            return await completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, entry.field_def.type,  # type: ignore[union-attr]
                                    entry.details, path)
            return None
