"""The shape of a document — depth, aliases, fields — measured before any other validation.

Strawberry's ``QueryDepthLimiter`` and ``MaxAliasesLimiter`` walk a fragment again at every
spread. Twenty fragments on ``Query``, each spreading the next twice, make an 829-byte document
that costs them 2^20 walks (9 s of CPU); thirty levels never finish, and the event loop with
them. Here each fragment is measured once and its figures are reused at every spread, so the
walk costs the document's size, and these checks run first: a document over a limit is refused
before graphql-core's rules (some quadratic in the document) look at it.

The third figure, ``fields``, is how many fields the document expands to with every fragment
inlined at each spread. Execution merges repeated spreads, but code that looks at the expanded
selection (strawberry's ``info.selected_fields``, the cost estimate's variants) does not, and a
bomb of ``__typename`` leaves costs nothing in the cost model; this bounds all of them.

Figures follow strawberry's limiters, so messages and meaning stay as documented: a leaf field
has depth 0 and a field with a selection one more than its deepest child; introspection fields
(``__schema``…) do not count towards depth; aliases count once per expansion.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

from panelql.settings import Limits


@dataclass(frozen=True)
class Shape:
    depth: int = 0
    aliases: int = 0
    fields: int = 0


class _Walker:
    def __init__(self, document: DocumentNode) -> None:
        self.fragments = {d.name.value: d for d in document.definitions
                          if isinstance(d, FragmentDefinitionNode)}
        self.memo: dict[str, Shape] = {}
        self.active: set[str] = set()  # fragments being measured: a cycle counts as nothing

    def selection_set(self, node: SelectionSetNode | None) -> Shape:
        depth = aliases = fields = 0
        for selection in node.selections if node is not None else ():
            if isinstance(selection, FieldNode):
                fields += 1
                aliases += selection.alias is not None
                if selection.selection_set is None:
                    continue
                inner = self.selection_set(selection.selection_set)
                if not selection.name.value.startswith("__"):
                    depth = max(depth, 1 + inner.depth)
            elif isinstance(selection, InlineFragmentNode):
                inner = self.selection_set(selection.selection_set)
                depth = max(depth, inner.depth)
            elif isinstance(selection, FragmentSpreadNode):
                inner = self.fragment(selection.name.value)
                depth = max(depth, inner.depth)
            else:  # pragma: no cover - graphql-core has no other selection kind
                continue
            aliases += inner.aliases
            fields += inner.fields
        return Shape(depth, aliases, fields)

    def fragment(self, name: str) -> Shape:
        known = self.memo.get(name)
        if known is not None:
            return known
        definition = self.fragments.get(name)
        if definition is None or name in self.active:  # unknown or cyclic: graphql-core says so
            return Shape()
        self.active.add(name)
        try:
            shape = self.selection_set(definition.selection_set)
        finally:
            self.active.discard(name)
        self.memo[name] = shape
        return shape


def shape_errors(document: DocumentNode, limits: Limits) -> list[GraphQLError]:
    """The limits ``document`` breaks: depth per operation, aliases and fields in total."""
    walker = _Walker(document)
    errors: list[GraphQLError] = []
    aliases = fields = 0
    try:
        for node in document.definitions:
            if not isinstance(node, OperationDefinitionNode):
                continue
            shape = walker.selection_set(node.selection_set)
            aliases += shape.aliases
            fields += shape.fields
            if shape.depth > limits.max_depth:
                name = node.name.value if node.name else "anonymous"
                errors.append(_error(f"'{name}' exceeds maximum operation depth of "
                                     f"{limits.max_depth}", node))
    except RecursionError:  # only with a max_tokens far above the default
        return [_error("the document nests too deeply to validate")]
    if aliases > limits.max_aliases:
        errors.append(_error(f"{aliases} aliases found. Allowed: {limits.max_aliases}"))
    if fields > limits.max_fields:
        errors.append(_error(f"the document expands to {fields} fields (fragments count at "
                             f"every spread); allowed: {limits.max_fields}"))
    return errors


def _error(message: str, node: OperationDefinitionNode | None = None) -> GraphQLError:
    return GraphQLError(message, nodes=[node] if node is not None else None,
                        extensions={"code": "BAD_USER_INPUT"})
