"""selected_on_nodes: which fields a connection's items will be asked for (the prefetch's
input), through edges/node, the nodes shortcut, fragments and inline fragments."""

from __future__ import annotations

import strawberry

from panelql.schema.types.common import selected_on_nodes

SEEN: list[set[str]] = []


@strawberry.type
class Item:
    a: int = 1
    b: int = 2
    c: int = 3


@strawberry.type
class Edge:
    node: Item


@strawberry.type
class Page:
    edges: list[Edge]
    nodes: list[Item]
    total_count: int = 0


@strawberry.type
class Query:
    @strawberry.field
    def page(self, info: strawberry.Info) -> Page:
        SEEN.append(selected_on_nodes(info))  # type: ignore[arg-type]
        return Page(edges=[Edge(node=Item())], nodes=[Item()])


SCHEMA = strawberry.Schema(query=Query)


def seen(query: str) -> set[str]:
    SEEN.clear()
    result = SCHEMA.execute_sync(query)
    assert result.errors is None, result.errors
    return SEEN[0]


def test_edges_node_and_nodes() -> None:
    assert seen("{ page { totalCount edges { node { a } } } }") == {"a"}
    assert seen("{ page { nodes { b } edges { node { a } } } }") == {"a", "b"}


def test_fragments_and_inline_fragments() -> None:
    assert seen("{ page { edges { ...E } } } fragment E on Edge { node { ...I } } "
                "fragment I on Item { a ... on Item { c } }") == {"a", "c"}


def test_nothing_selected_on_items() -> None:
    assert seen("{ page { totalCount } }") == set()
