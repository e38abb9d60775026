"""The upstreams' own ids of the requests a mutation made, for its audit entry.

When a billing integration asks "what happened to this suspension?", the panel's support asks
for their request id. Panels that have one send it in a response header: Stripe ``Request-Id``,
PayPal ``Paypal-Debug-Id``, Cloudflare ``CF-Ray``, many others (and proxies) ``X-Request-Id``.
Every client the factory builds notes those headers (an httpx response hook), into the list that
:func:`collecting` opened for the current task and the tasks it starts; outside a mutation
nothing is collected.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import httpx

HEADERS = ("request-id", "paypal-debug-id", "cf-ray", "x-request-id", "x-amzn-requestid")
MAX_LENGTH = 128  # the audit column

_collected: ContextVar[list[str] | None] = ContextVar("panelql_upstream_request_ids",
                                                      default=None)


@contextmanager
def collecting() -> Iterator[list[str]]:
    """Collect the request ids of the upstream answers received inside this block."""
    ids: list[str] = []
    token = _collected.set(ids)
    try:
        yield ids
    finally:
        _collected.reset(token)


async def note(response: httpx.Response) -> None:
    """httpx response hook: remember the upstream's id of this request, if it sent one."""
    ids = _collected.get()
    if ids is None:
        return
    for header in HEADERS:
        value = response.headers.get(header)
        if value:
            ids.append(value[:MAX_LENGTH])
            return


def summary(ids: list[str]) -> str | None:
    """What the audit entry keeps: the last id (the call that finished the action, or failed
    it), with how many calls before it sent one."""
    if not ids:
        return None
    last = ids[-1]
    if len(ids) == 1:
        return last
    suffix = f" (+{len(ids) - 1} earlier)"
    return last[:MAX_LENGTH - len(suffix)] + suffix
