"""Relay-style connection types, generic over the node type (ServerConnection, NodeEdge…)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import strawberry

from panelql.application.pagination import Page

T = TypeVar("T")
R = TypeVar("R")


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    total_count: int

    @strawberry.field(description="The nodes of this page, without edges.")
    def nodes(self) -> list[T]:
        return [edge.node for edge in self.edges]


def to_connection(page: Page[R], wrap: Callable[[R], T]) -> Connection[T]:
    return Connection(
        edges=[Edge(cursor=cursor, node=wrap(item)) for cursor, item in page.items],
        page_info=PageInfo(
            has_next_page=page.has_next_page, has_previous_page=page.has_previous_page,
            start_cursor=page.start_cursor, end_cursor=page.end_cursor,
        ),
        total_count=page.total_count,
    )
