"""Fragment bombs: a few hundred bytes that expand to 2^30 fields must be refused at the cost
of reading them, and the gateway must keep answering meanwhile.

Before schema/shape.py, strawberry's depth and alias limiters walked each fragment at every
spread: 20 levels took 9 s of CPU, 30 levels never finished and /healthz waited with them.
CPU budgets are measured with ``time.process_time`` in-process (not wall-clock), generous
enough for a loaded CI machine yet far below what the exponential walk needs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Iterator

import httpx
import pytest

from panelql.schema.root import build_schema
from panelql.settings import Limits
from panelql_sim.catalyst import CatalystSim
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import GatewayUnderTest, serve_sim, start_gateway

CPU_BUDGET_SECONDS = 1.0  # the fixed walk needs ~5 ms; 2^30 spreads would need hours


def bomb(levels: int, on: str = "Query", leaf: str = "viewer { name }",
         root: str = "{ ...F0 }") -> str:
    """``levels`` fragments, each spreading the next twice: 2^levels leaves once expanded."""
    fragments = [f"fragment F{i} on {on} {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)]
    fragments.append(f"fragment F{levels} on {on} {{ {leaf} }}")
    return f"query Bomb {root}\n" + "\n".join(fragments)


def run(query: str, limits: Limits | None = None) -> tuple[float, list[dict[str, object]]]:
    schema = build_schema(limits or Limits())
    started = time.process_time()
    result = asyncio.run(schema.execute(query, operation_name="Bomb"))
    spent = time.process_time() - started
    return spent, [{"message": e.message, **(e.extensions or {})} for e in result.errors or []]


@pytest.mark.parametrize(("name", "query"), [
    ("viewer leaves", bomb(30)),
    # __typename costs nothing in the cost model: only the expansion bound refuses these.
    ("typename leaves", bomb(30, leaf="__typename")),
    ("inside a connection", bomb(30, on="Server", leaf="__typename",
                                 root="{ servers { edges { node { ...F0 } } } }")),
    ("aliased leaves", bomb(30, leaf="a: __typename b: __typename")),
])
def test_thirty_level_bomb_is_refused_within_a_cpu_budget(name: str, query: str) -> None:
    assert len(query) < 1500
    spent, errors = run(query)
    assert spent < CPU_BUDGET_SECONDS, (name, spent)
    assert errors and all(e["code"] == "BAD_USER_INPUT" for e in errors)
    assert any("expands to" in str(e["message"]) for e in errors), errors


def test_aliases_and_depth_are_counted_per_expansion() -> None:
    """The memoised walk keeps the limiters' meaning: a fragment's aliases count at every
    spread, its depth adds to where it is spread."""
    limits = Limits(max_aliases=7, max_depth=3)
    _, errors = run(bomb(3, leaf="a: __typename"), limits)  # 2^3 = 8 aliases
    assert [e["message"] for e in errors] == ["8 aliases found. Allowed: 7"]
    _, errors = run(bomb(2, leaf="a: __typename"), limits)  # 4 aliases: within the limits
    assert errors == []
    deep = ("query Bomb { ...A } fragment A on Query { servers { edges { ...B } } }"
            " fragment B on ServerEdge { node { node { id } } }")
    _, errors = run(deep, limits)
    assert [e["message"] for e in errors] == ["'Bomb' exceeds maximum operation depth of 3"]


def test_fragment_cycle_is_still_reported() -> None:
    _, errors = run("query Bomb { ...A } fragment A on Query { viewer { name } ...A }")
    assert errors and "Cannot spread fragment 'A' within itself" in str(errors[0]["message"])


@pytest.fixture(scope="module")
def gw(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[GatewayUnderTest]:
    sim = CatalystSim(servers=2)
    entry = serve_sim(background, "cat-bomb", sim, "catalyst", {"api_key": sim.api_key})
    yield start_gateway(background, "gw-bomb", {"cat-bomb": sim}, [entry],
                        tmp_path_factory.mktemp("bomb") / "g.db")


def test_healthz_answers_while_bombs_arrive(gw: GatewayUnderTest) -> None:
    """Eight 30-level bombs and /healthz at once over real HTTP: every bomb gets its coded 400
    and /healthz its 200 (before the fix the first bomb held the event loop for good)."""
    def send_bomb() -> httpx.Response:
        return httpx.post(f"{gw.url}/graphql", json={"query": bomb(30)},
                          headers={"x-api-key": gw.admin_key,
                                   "accept": "application/graphql-response+json"}, timeout=60)

    with concurrent.futures.ThreadPoolExecutor(max_workers=9) as pool:
        bombs = [pool.submit(send_bomb) for _ in range(8)]
        health = pool.submit(httpx.get, f"{gw.url}/healthz", timeout=60)
        assert health.result().json() == {"status": "ok"}
        for future in bombs:
            answer = future.result()
            assert answer.status_code == 400, answer.text
            assert answer.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
