"""JSON from outside, parsed with a nesting limit, everywhere a body is read.

``json.loads`` of ``[[[[…` 100,000 deep raises RecursionError, which no handler expected: the
gateway answered a plain-text 500 and logged a traceback (on the PayPal webhook, before any
signature check). A document only a few hundred levels deep parses, then overflows whatever
walks it next (graphql-core coercing variables, the stripe library). So every body the gateway
reads — GraphQL requests over HTTP, SSE and WebSocket messages, webhook deliveries — goes
through :func:`loads`, which refuses anything nested deeper than ``MAX_DEPTH`` with
:class:`TooDeep`, a ``json.JSONDecodeError``, so every caller that already handles bad JSON
(strawberry's WebSocket reader included) handles it too.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64  # GraphQL variables and webhook events nest a handful of levels


class TooDeep(json.JSONDecodeError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"JSON nested more than {limit} levels deep", "", 0)
        self.limit = limit


def loads(data: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` that raises TooDeep (never RecursionError) past ``max_depth`` levels."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise TooDeep(max_depth) from None
    check_depth(value, max_depth)
    return value


def check_depth(value: Any, max_depth: int = MAX_DEPTH) -> None:
    """Iterative, so the check itself cannot overflow the stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > max_depth:
            raise TooDeep(max_depth)
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, dict | list))
