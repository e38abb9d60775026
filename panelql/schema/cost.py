"""Query cost: how much a document may ask of the panels, estimated before anything runs.

Depth and alias limits do not stop ``servers(first: 1000) { edges { node { backups(first:
1000) { … } } } }`` — two levels, no alias, a million objects. The cost model counts objects:

- a leaf field costs 1, ``__typename`` nothing; an object field costs 1 plus its selections;
- a paginated field (a connection, or a list with a ``first`` argument) repeats its per-item
  selections ``first`` times. In a connection only ``edges`` and ``nodes`` repeat; ``pageInfo``
  and ``totalCount`` are paid once;
- ``first`` is read as the resolver will: the literal, the request's variable, the variable's
  default, the argument's schema default, else ``limits.default_page_size``; capped at
  ``limits.max_page_size`` (the resolver refuses more with its own error);
- fragments on several types (a union) count every branch, so the figure is an upper bound.

graphql-core validation never sees variables, so the estimate is not a validation rule:
:class:`CachedValidation` runs it per request, after the (cached) document validation.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SchemaMetaFieldDef,
    SelectionSetNode,
    TypeMetaFieldDef,
    VariableNode,
    get_named_type,
    get_nullable_type,
)
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from panelql.schema.shape import shape_errors
from panelql.settings import Limits

PER_ITEM = frozenset({"edges", "nodes"})  # the parts of a connection that repeat per item
META_FIELDS = {"__schema": SchemaMetaFieldDef, "__type": TypeMetaFieldDef}


@dataclass
class Page:
    path: str
    size: int


@dataclass
class Estimate:
    cost: int
    pages: list[Page] = field(default_factory=list)

    def hint(self) -> str:
        """Which ``first`` to lower: the largest page; on a tie the deepest."""
        if not self.pages:
            return "select fewer fields"
        page = max(self.pages, key=lambda p: (p.size, p.path.count(".")))
        return f"lower `first` on {page.path}"


class CostCalculator:
    def __init__(self, schema: GraphQLSchema, operation: OperationDefinitionNode,
                 fragments: Mapping[str, Any], variables: Mapping[str, Any],
                 limits: Limits) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.limits = limits
        self.defaults = {d.variable.name.value: d.default_value
                         for d in operation.variable_definitions or ()}
        self.fragment_costs: dict[str, int] = {}  # a fragment spread many times is walked once
        self.pages: list[Page] = []

    def selections(self, node: SelectionSetNode | None, parent: GraphQLNamedType, path: str,
                   active: frozenset[str]) -> int:
        if node is None:
            return 0
        total = 0
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent, path)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.schema.get_type(condition.name.value) if condition else parent
                total += self.selections(selection.selection_set, target or parent, path, active)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.spread(selection.name.value, path, active)
        return total

    def spread(self, name: str, path: str, active: frozenset[str]) -> int:
        fragment = self.fragments.get(name)
        if fragment is None or name in active:  # unknown or cyclic: other rules report it
            return 0
        if name not in self.fragment_costs:
            target = self.schema.get_type(fragment.type_condition.name.value)
            self.fragment_costs[name] = 0 if target is None else self.selections(
                fragment.selection_set, target, path, active | {name})
        return self.fragment_costs[name]

    def field(self, node: FieldNode, parent: GraphQLNamedType, path: str) -> int:
        name = node.name.value
        definition = self._definition(parent, name)
        if definition is None:  # __typename, or a field that does not exist (reported elsewhere)
            return 0
        here = f"{path}.{node.alias.value if node.alias else name}".lstrip(".")
        target = get_named_type(definition.type)
        if node.selection_set is None:
            return 1
        size = self._page_size(node, definition)
        if size is None:
            return 1 + self.selections(node.selection_set, target, here, frozenset())
        self.pages.append(Page(here, size))
        if _is_connection(target):
            once = [s for s in node.selection_set.selections if not _repeats(s)]
            each = [s for s in node.selection_set.selections if _repeats(s)]
            return (1 + self._sum(once, target, here) + size * self._sum(each, target, here))
        return 1 + size * self.selections(node.selection_set, target, here, frozenset())

    def _sum(self, selections: list[Any], parent: GraphQLNamedType, path: str) -> int:
        return self.selections(SelectionSetNode(selections=tuple(selections)), parent, path,
                               frozenset())

    def _definition(self, parent: GraphQLNamedType, name: str) -> GraphQLField | None:
        if name in META_FIELDS and parent is self.schema.query_type:
            return META_FIELDS[name]
        if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            found: GraphQLField | None = parent.fields.get(name)
            return found
        return None

    def _page_size(self, node: FieldNode, definition: GraphQLField) -> int | None:
        argument = definition.args.get("first")
        target = get_named_type(definition.type)
        if argument is None or not (_is_connection(target) or _is_list(definition)):
            return None
        size = self._argument_value(node, argument.default_value)
        if size is None:
            size = self.limits.default_page_size
        return min(max(size, 0), self.limits.max_page_size)

    def _argument_value(self, node: FieldNode, schema_default: Any) -> int | None:
        given = next((a.value for a in node.arguments or () if a.name.value == "first"), None)
        if isinstance(given, VariableNode):
            name = given.name.value
            if name in self.variables:
                return _int(self.variables[name])
            given = self.defaults.get(name)
        if isinstance(given, IntValueNode):
            return int(given.value)
        if given is None:
            return _int(schema_default)
        return None  # null or a wrong literal: the default page, or a validation error


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _is_connection(target: GraphQLNamedType) -> bool:
    return isinstance(target, GraphQLObjectType) and "edges" in target.fields


def _is_list(definition: GraphQLField) -> bool:
    return isinstance(get_nullable_type(definition.type), GraphQLList)  # type: ignore[arg-type]


def _repeats(selection: Any) -> bool:
    # Fragments inside a connection are rare; count them per item, the safe side.
    return not isinstance(selection, FieldNode) or selection.name.value in PER_ITEM


def estimate(schema: GraphQLSchema, operation: OperationDefinitionNode,
             fragments: Mapping[str, Any], variables: Mapping[str, Any],
             limits: Limits) -> Estimate:
    root = schema.get_root_type(operation.operation)
    if root is None:
        return Estimate(0)
    calculator = CostCalculator(schema, operation, fragments, variables, limits)
    cost = calculator.selections(operation.selection_set, root, "", frozenset())
    return Estimate(cost, calculator.pages)


def cost_errors(schema: GraphQLSchema, document: DocumentNode, variables: Mapping[str, Any],
                limits: Limits) -> list[GraphQLError]:
    """One BAD_USER_INPUT error per operation of ``document`` that costs more than
    ``limits.max_cost`` with these variables."""
    fragments = {d.name.value: d for d in document.definitions
                 if isinstance(d, FragmentDefinitionNode)}
    errors = []
    for node in document.definitions:
        if not isinstance(node, OperationDefinitionNode):
            continue
        result = estimate(schema, node, fragments, variables, limits)
        if result.cost > limits.max_cost:
            errors.append(GraphQLError(
                f"query cost {result.cost} exceeds {limits.max_cost}: {result.hint()}",
                nodes=[node],
                extensions={"code": "BAD_USER_INPUT", "cost": result.cost,
                            "maxCost": limits.max_cost}))
    return errors


class CachedValidation(SchemaExtension):
    """Validation once per document text, the cost check on every request.

    graphql-core's rules (plus the depth and alias limits) depend only on the document, and
    dashboards send the same few documents over and over; validating a 100-server dashboard
    query took about 2 ms, on the critical path of every request. The cost estimate depends on
    the request's variables (``first: $n``), so it runs each time, after the cached part.
    ``cache`` belongs to one schema (its limits), so schemas with other limits do not share it.

    It is the schema's only validation cache (strawberry's ``ValidationCache`` is not used): that
    one keys on the parsed document, whose hash walks the whole tree on every request (42 µs for
    the bench's list query, against under 1 µs for the text), and it cannot put the shape limits
    before graphql-core's rules. The rules are strawberry's own (``validate_document``: the
    request's rules plus its ``Maybe`` and ``@oneOf`` checks), so nothing strawberry checks is
    skipped.
    """

    def __init__(self, schema: GraphQLSchema, limits: Limits,
                 cache: OrderedDict[str, list[GraphQLError]], maxsize: int = 512) -> None:
        self.schema = schema
        self.limits = limits
        self.cache = cache
        self.maxsize = maxsize

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        document = ctx.graphql_document
        # Already refused (an operation's rights, schema/connection_rights.py): keep that.
        if document is not None and ctx.query is not None and not ctx.pre_execution_errors:
            errors = self._static_errors(ctx.query, document, ctx.validation_rules)
            if not errors:
                errors = cost_errors(self.schema, document, ctx.variables or {},
                                     self.limits)
            ctx.pre_execution_errors = errors
        yield

    def _static_errors(self, text: str, document: DocumentNode,
                       rules: Any) -> list[GraphQLError]:
        cached = self.cache.get(text)
        if cached is not None:
            self.cache.move_to_end(text)
            return cached
        # The shape limits first: they cost the document's size, and a document that breaks
        # them never reaches graphql-core's rules (some quadratic in the document).
        errors = shape_errors(document, self.limits) or list(
            validate_document(self.schema, document, rules))
        self.cache[text] = errors
        if len(self.cache) > self.maxsize:
            self.cache.popitem(last=False)
        return errors
