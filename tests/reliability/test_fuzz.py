"""Fuzzing the GraphQL API over HTTP: generated queries and mutations against every demo panel.

Whatever arrives (random fields, arguments, variables, garbage IDs, huge numbers, wrong
types), the gateway must answer without a 5xx, and every error must carry an
``extensions.code`` from the contract's list; ``INTERNAL`` (a masked crash) counts as a failure.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from panelql.schema.root import build_schema
from panelql_sim.demo import start_panels
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import GatewayUnderTest, start_gateway
from tests.reliability.querygen import Operation, QueryGen

KNOWN_CODES = {"BAD_USER_INPUT", "UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "CONFLICT",
               "RATE_LIMITED", "PROVIDER_UNAVAILABLE", "PROVIDER_ERROR", "NOT_SUPPORTED"}
# Per kind; a run takes a few seconds. PANELQL_FUZZ_CASES=5000 for a longer hunt.
CASES = int(os.environ.get("PANELQL_FUZZ_CASES", "250"))
IDS = """{ servers(first: 20) { edges { node { id node { id } owner { id }
             backups(first: 2) { edges { node { id } } } } } }
           accounts(first: 10) { edges { node { id } } }
           invoices(first: 10) { edges { node { id } } }
           dnsZones(first: 10) { edges { node { id records { id } } } } }"""


@pytest.fixture(scope="module")
def gw(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[GatewayUnderTest]:
    sims, entries = start_panels(background, transition_seconds=0.2)
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    yield start_gateway(background, "gw-fuzz", sims, entries, tmp / "fuzz.db",
                        default_rate_limit_per_minute=None, watcher={"enabled": False},
                        operation_poll_seconds=0.1)


def known_ids(gw: GatewayUnderTest) -> list[str]:
    body = gw.query(IDS)
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "id" and isinstance(item, str):
                    found.append(item)
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(body.get("data"))
    assert found, body
    return found


def problems(gw: GatewayUnderTest, op: Operation) -> list[str]:
    response = gw.client.post(f"{gw.url}/graphql",
                              json={"query": op.document, "variables": op.variables})
    if response.status_code >= 500:
        return [f"HTTP {response.status_code}"]
    try:
        body = response.json()
    except json.JSONDecodeError:
        return [f"HTTP {response.status_code} with a body that is not JSON"]
    if not isinstance(body, dict) or not ({"data", "errors"} & set(body)):
        return [f"not a GraphQL response: {str(body)[:200]}"]
    out = []
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        if code not in KNOWN_CODES:
            out.append(f"code {code!r}: {error.get('message', '')[:300]}")
    return out


@pytest.mark.parametrize("kind", ["query", "mutation"])
def test_generated_operations_never_crash(gw: GatewayUnderTest, kind: str) -> None:
    schema = build_schema()._schema
    ids = known_ids(gw)
    failures = []
    for seed in range(CASES):
        op = QueryGen(schema, seed=seed * 2 + (kind == "mutation"), known_ids=ids).operation(kind)
        found = problems(gw, op)
        if found:
            failures.append(f"seed {seed}: {found}\n  {op.document[:600]}\n  "
                            f"{json.dumps(op.variables, default=str)[:300]}")
    assert not failures, f"{len(failures)} of {CASES}:\n" + "\n".join(failures[:5])


def test_the_generator_reaches_deep_and_hostile_inputs() -> None:
    """Guards the fuzzer itself: it must produce variables, nesting and wrong values."""
    schema = build_schema()._schema
    ops = [QueryGen(schema, seed=s).operation("query") for s in range(50)]
    assert sum(bool(op.variables) for op in ops) > 10
    assert any(op.document.count("{") >= 4 for op in ops)
    assert any("$v" in op.document for op in ops)
