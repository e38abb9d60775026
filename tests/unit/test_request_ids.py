"""providers/request_ids.py: which header counts, what is kept, and nothing outside a mutation."""

from __future__ import annotations

import asyncio

import httpx

from panelql.providers import request_ids


async def test_collects_only_inside_the_block_and_from_child_tasks() -> None:
    await request_ids.note(httpx.Response(200, headers={"Request-Id": "req_outside"}))
    with request_ids.collecting() as ids:
        await request_ids.note(httpx.Response(200, headers={"CF-Ray": "8a1b2c3d4e5f-AMS"}))
        await asyncio.gather(request_ids.note(httpx.Response(
            500, headers={"Paypal-Debug-Id": "f3a9c0b1d2e4"})))
        await request_ids.note(httpx.Response(200))  # a panel that sends no id
    assert ids == ["8a1b2c3d4e5f-AMS", "f3a9c0b1d2e4"]
    with request_ids.collecting() as fresh:
        pass
    assert fresh == []


def test_summary_keeps_the_last_and_counts_the_rest_within_the_column() -> None:
    assert request_ids.summary([]) is None
    assert request_ids.summary(["a"]) == "a"
    assert request_ids.summary(["a", "b", "c"]) == "c (+2 earlier)"
    long = request_ids.summary(["x", "y" * 200])
    assert long is not None and len(long) == request_ids.MAX_LENGTH
    assert long.endswith(" (+1 earlier)")
