"""Identical upstream reads within one GraphQL query share one request.

A dashboard query asks one panel the same thing from several places: Catalyst's server list
for the servers and again for node allocation, ProxmoxWP's site list for servers, nodes and
backups, Proxmox's full resource list for nodes and for backups. Within one query operation
(:func:`query_scope`, opened by the schema for queries only) the first read of a key is made and
later ones, concurrent or not, get its answer. Mutations and subscriptions never share: a read
after a write must see the write, and the watcher must see the panel as it is.

HTTP reads (providers/http.py, GETs without extra options) share the response and each caller
decodes it again, so no caller can change what another one sees. Where one query needs the same
list twice (the server list for the servers and again for node allocation), the adapter shares
its mapped records instead (:func:`shared_list`): the JSON is decoded and mapped once, and every
caller gets its own list of the same frozen records. Proxmox shares its decoded resource list
(proxmoxer decodes it); its callers only read it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")

_reads: ContextVar[dict[Hashable, asyncio.Future[Any]] | None] = ContextVar(
    "panelql_read_memo", default=None)


@contextmanager
def query_scope() -> Iterator[None]:
    """Share identical reads among everything this block (and the tasks it starts) runs."""
    token = _reads.set({})
    try:
        yield
    finally:
        _reads.reset(token)


async def shared(key: Hashable, read: Callable[[], Awaitable[T]]) -> T:
    """``read()``, or the answer of the identical read made earlier in this query."""
    reads = _reads.get()
    if reads is None:
        return await read()
    future = reads.get(key)
    if future is None:
        future = reads[key] = asyncio.ensure_future(read())
        # Observed here so a failure nobody else awaits is not reported as "never retrieved".
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
    # Shielded: one caller giving up (its own timeout) does not cancel the others' read.
    result: T = await asyncio.shield(future)
    return result


async def shared_list(key: Hashable, read: Callable[[], Awaitable[list[T]]]) -> list[T]:
    """:func:`shared` for a list of immutable records: each caller gets its own list."""
    return list(await shared(key, read))


class LastAnswer:
    """Records mapped from an upstream list, kept for as long as the panel's answer is the same.

    A dashboard asks for the same list again and again, and most of the time the panel answers
    byte for byte what it answered last time: the records mapped then are the records now, and
    decoding and mapping a thousand servers again is most of what such a query costs the
    gateway (``make bench``, the floor rows). Comparing the bytes is one ``memcmp``. Only for
    records nobody changes after mapping (each caller gets its own list of them); a body that
    fails to map is not kept.
    """

    __slots__ = ("_body", "_records")

    def __init__(self) -> None:
        self._body: bytes | None = None
        self._records: list[Any] = []

    def records(self, body: bytes, build: Callable[[bytes], list[T]]) -> list[T]:
        if body != self._body:
            records = build(body)
            self._body, self._records = body, records
        return list(self._records)
