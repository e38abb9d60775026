"""A bounded fuzz pass over the parser and validation limits: fragment, alias and depth bombs
generated from a seeded random source (not hand-picked), each answered within a fixed CPU
budget measured with ``time.thread_time`` in-process (generous: the exponential walks it
guards against need minutes to hours)."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from panelql.schema.root import build_schema
from panelql.settings import Limits

CPU_BUDGET_SECONDS = 2.0
CASES = 60
FIELDS = ("viewer { name }", "__typename", "servers { totalCount }", "providers { name }")


def fragment_bomb(rng: random.Random) -> str:
    levels, fan = rng.randint(5, 40), rng.randint(2, 4)
    on = "Query"
    frags = [f"fragment F{i} on {on} {{ " + " ".join([f"...F{i + 1}"] * fan) + " }"
             for i in range(levels)]
    frags.append(f"fragment F{levels} on {on} {{ {rng.choice(FIELDS)} }}")
    return "query Fuzz { ...F0 }\n" + "\n".join(frags)


def alias_bomb(rng: random.Random) -> str:
    count = rng.randint(10, 600)
    return "query Fuzz { " + " ".join(f"a{i}: {rng.choice(FIELDS)}" for i in range(count)) + " }"


def depth_bomb(rng: random.Random) -> str:
    depth = rng.randint(5, 400)
    inner = "name"
    for _ in range(depth):
        inner = f"servers {{ edges {{ node {{ {inner} }} }} }}" if rng.random() < 0.5 \
            else f"... on Query {{ viewer {{ {inner} }} }}"
    return "query Fuzz { " + inner.replace("{ name }", "{ __typename }") + " }"


GENERATORS = {"fragments": fragment_bomb, "aliases": alias_bomb, "depth": depth_bomb}


@pytest.mark.parametrize("kind", sorted(GENERATORS))
def test_bombs_answer_within_a_cpu_budget(kind: str) -> None:
    schema = build_schema(Limits(max_tokens=20_000))  # the token limit alone would stop most
    rng = random.Random(f"limit-fuzz-{kind}")
    slowest = 0.0
    for _ in range(CASES // len(GENERATORS)):
        document = GENERATORS[kind](rng)
        # This thread's CPU only: the parse and validation run here, while the suite's
        # background servers (other modules' simulators and gateways) spend the process's CPU
        # in threads of their own; process_time counted theirs too (a CI run: 2.4 s "spent").
        started = time.thread_time()
        result = asyncio.run(schema.execute(document, operation_name="Fuzz"))
        spent = time.thread_time() - started
        slowest = max(slowest, spent)
        assert spent < CPU_BUDGET_SECONDS, (kind, spent, document[:200])
        # Executed without a gateway context (what counts here is the parser and validation):
        # an answer, refused or not, came back rather than an exception.
        assert result.data is not None or result.errors
    print(f"{kind}: slowest answer {slowest * 1000:.0f} ms CPU")
