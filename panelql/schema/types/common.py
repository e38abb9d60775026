"""Pieces every object type uses: the typed Info, global IDs, pagination of nested lists."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Hashable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import strawberry
from strawberry.types.nodes import SelectedField

from panelql.application import ids
from panelql.application.context import Context
from panelql.application.filters import sort_key
from panelql.application.pagination import Page, paginate
from panelql.domain.records import ResourceType
from panelql.schema.relay import Connection, to_connection

Info = strawberry.Info[Context, None]
R = TypeVar("R")
T = TypeVar("T")
X = TypeVar("X")


def then(value: X | Awaitable[X], wrap: Callable[[X], T]) -> T | Awaitable[T]:
    """``wrap(value)``, at once when ``value`` is ready, else once it is.

    A resolver that returns a plain value costs graphql-core a function call; one that returns
    an awaitable costs a coroutine and, in a list, a Task. Relations the page prefetch already
    loaded are ready, so their fields stay on the cheap path; the rest still wait."""
    if inspect.isawaitable(value):
        return _then(value, wrap)
    return wrap(value)  # type: ignore[arg-type]


async def _then(value: Awaitable[X], wrap: Callable[[X], T]) -> T:
    return wrap(await value)


_UNSEEN = object()


def related(ctx: Context, key: Hashable, soon: Callable[[], X | Awaitable[X]],
            wrap: Callable[[X], T]) -> T | Awaitable[T]:
    """:func:`then` for a relation many objects share (a server's node, its owner): the
    first answer that is ready is wrapped once and kept for the request under ``key``, so
    the servers after it get the same GraphQL object without asking the loader again. An
    answer still pending is not kept: each field awaits its own."""
    memo = ctx.related
    found = memo.get(key, _UNSEEN)
    if found is not _UNSEEN:
        return found  # type: ignore[no-any-return]
    value = soon()
    if inspect.isawaitable(value):
        return _then(value, wrap)
    made = memo[key] = wrap(value)  # type: ignore[arg-type]
    return made


def global_id(kind: ResourceType, connection: str, upstream_id: str) -> strawberry.ID:
    return strawberry.ID(ids.encode_parts(_TYPE_NAMES[kind], connection, upstream_id))


_TYPE_NAMES = {kind: kind.value for kind in ResourceType}  # an enum's .value is a property


def selected_on_nodes(info: Info) -> set[str]:
    """Field names the query selects on this connection's items (``edges.node`` or ``nodes``),
    fragments included: what the items' resolvers are about to need."""
    def names(selections: Iterable[Any]) -> Iterator[tuple[str, Any]]:
        for s in selections:
            if isinstance(s, SelectedField):
                yield s.name, s
            else:  # fragment spread or inline fragment
                yield from names(s.selections)

    wanted: set[str] = set()
    for field in info.selected_fields:
        for name, sub in names(field.selections):
            if name == "nodes":
                wanted.update(n for n, _ in names(sub.selections))
            elif name == "edges":
                for edge_name, node in names(sub.selections):
                    if edge_name == "node":
                        wanted.update(n for n, _ in names(node.selections))
    return wanted


def page_of(info: Info, items: Sequence[R], key: Callable[[R], str], first: int | None,
            after: str | None) -> Page[R]:
    limits = info.context.gateway.settings.limits
    return paginate(items, key, first=first, after=after, max_page=limits.max_page_size,
                    default_page=limits.default_page_size)


def connection_of(info: Info, items: Sequence[R], wrap: Callable[[R], T],
                  first: int | None, after: str | None) -> Connection[T]:
    """Paginate records that have ``connection`` and ``id`` and wrap them as GraphQL types."""
    page = page_of(info, items, lambda r: sort_key(r.connection, r.id),  # type: ignore[attr-defined]
                   first, after)
    return to_connection(page, wrap)
