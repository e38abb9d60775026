"""Relay-style pagination over merged, stably ordered lists from several providers.

Cursors are opaque and carry the sort key of the item (its global ID), not an offset, so a page
boundary stays put when items are added or removed before it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from panelql.application.errors import BadUserInput

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    items: list[tuple[str, T]]  # (cursor, item)
    has_next_page: bool
    has_previous_page: bool
    total_count: int

    @property
    def start_cursor(self) -> str | None:
        return self.items[0][0] if self.items else None

    @property
    def end_cursor(self) -> str | None:
        return self.items[-1][0] if self.items else None


def _first(pair: tuple[str, object]) -> str:
    return pair[0]


def _cursor(key: str) -> str:
    return base64.urlsafe_b64encode(f"c:{key}".encode()).decode().rstrip("=")


def _uncursor(cursor: str) -> str:
    try:
        text = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()).decode()
    except (ValueError, UnicodeError):
        text = ""
    if not text.startswith("c:"):
        raise BadUserInput(f"{cursor!r} is not a valid cursor", field="after")
    return text[2:]


def paginate(
    items: Sequence[T], key: Callable[[T], str], *, first: int | None, after: str | None,
    max_page: int, default_page: int,
) -> Page[T]:
    if first is not None and first < 0:
        raise BadUserInput("first must not be negative", field="first")
    if first is not None and first > max_page:
        raise BadUserInput(f"first must be at most {max_page}", field="first")
    size = default_page if first is None else first
    # Each item's key once (natural-order keys cost a regex each): sorted by key alone, ties
    # kept in input order, as sorted(items, key=key) does.
    keyed = sorted([(key(item), item) for item in items], key=_first)
    start = 0
    if after is not None:
        boundary = _uncursor(after)
        start = next((i for i, (k, _) in enumerate(keyed) if k > boundary), len(keyed))
    window = keyed[start:start + size]
    return Page(
        items=[(_cursor(k), item) for k, item in window],
        has_next_page=start + size < len(keyed),
        has_previous_page=start > 0,
        total_count=len(keyed),
    )
