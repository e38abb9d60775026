"""providers/read_memo.py: identical reads share one call inside a query scope, never outside."""

from __future__ import annotations

import asyncio

import pytest

from panelql.providers import read_memo


class Panel:
    def __init__(self) -> None:
        self.calls = 0

    async def read(self, delay: float = 0.01, fail: bool = False) -> str:
        self.calls += 1
        await asyncio.sleep(delay)
        if fail:
            raise RuntimeError("panel down")
        return f"answer {self.calls}"


async def test_shared_inside_a_scope_concurrent_or_later_and_by_key() -> None:
    panel = Panel()
    with read_memo.query_scope():
        first, second = await asyncio.gather(read_memo.shared("servers", panel.read),
                                             read_memo.shared("servers", panel.read))
        later = await read_memo.shared("servers", panel.read)
        other = await read_memo.shared("nodes", panel.read)
    assert (first, second, later, other) == ("answer 1", "answer 1", "answer 1", "answer 2")
    assert panel.calls == 2


async def test_not_shared_outside_a_scope_or_across_scopes() -> None:
    panel = Panel()
    await read_memo.shared("servers", panel.read)
    await read_memo.shared("servers", panel.read)
    with read_memo.query_scope():
        await read_memo.shared("servers", panel.read)
    with read_memo.query_scope():
        await read_memo.shared("servers", panel.read)
    assert panel.calls == 4


async def test_a_failure_reaches_every_caller_and_one_caller_leaving_does_not_cancel() -> None:
    panel = Panel()
    with read_memo.query_scope():
        results = await asyncio.gather(read_memo.shared("x", lambda: panel.read(fail=True)),
                                       read_memo.shared("x", lambda: panel.read(fail=True)),
                                       return_exceptions=True)
        assert [str(r) for r in results] == ["panel down", "panel down"]
        impatient = asyncio.create_task(read_memo.shared("y", lambda: panel.read(0.1)))
        patient = asyncio.create_task(read_memo.shared("y", lambda: panel.read(0.1)))
        await asyncio.sleep(0.02)
        impatient.cancel()
        with pytest.raises(asyncio.CancelledError):
            await impatient
        assert await patient == "answer 2"
    assert panel.calls == 2


def test_last_answer_maps_a_body_once_until_it_changes() -> None:
    memo, built = read_memo.LastAnswer(), []

    def build(body: bytes) -> list[str]:
        built.append(body)
        if body == b"garbage":
            raise ValueError("not a server list")
        return body.decode().split(",")

    first = memo.records(b"a,b", build)
    first.append("changed by its caller")  # each caller has its own list
    assert memo.records(",".join("ab").encode(), build) == ["a", "b"]  # equal, not the same
    assert memo.records(b"a,c", build) == ["a", "c"]  # the panel changed: mapped again
    with pytest.raises(ValueError):
        memo.records(b"garbage", build)
    assert memo.records(b"a,c", build) == ["a", "c"]  # the failure was not kept
    assert built == [b"a,b", b"a,c", b"garbage"]
