"""The lean execution path (schema/lean_execution.py, lean_fields.py) answers exactly as
strawberry's resolvers and graphql-core's completion do.

Two gateways over the same panels, one with ``lean_execution`` off, get the same documents: every
query document written in this test suite (found by parsing its string literals), the seeded
generator's queries (real IDs, hostile variables) and a hypothesis-graphql stream of valid and
broken queries. ``data`` and ``errors`` must be identical. Some panel values move with the clock
(uptime, timestamps), so a document is compared when two lean answers around the reference one
agree with each other; a document that never settles is retried, then set aside, and the test
fails if more than a few are.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis_graphql
import pytest
from graphql import OperationDefinitionNode, OperationType, parse, validate
from hypothesis import assume, given
from hypothesis_graphql import Mode

from panelql.schema.root import build_schema
from panelql_sim.demo import start_panels
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import GatewayUnderTest, start_gateway
from tests.reliability.querygen import QueryGen
from tests.reliability.test_fuzz import known_ids
from tests.reliability.test_fuzz_hypothesis import FUZZ, SCALARS, SDL

# Root fields over each gateway's own database (keys, audit, operations, customer links): the
# two gateways differ there by construction, not by execution path. (Health measurements are
# masked instead, below, so the rest of such answers is still compared.)
GATEWAY_STATE = re.compile(r"\b(apiKeys|customerLinks|auditLog|operation)\b")
TESTS = Path(__file__).resolve().parents[1]
BENCH = TESTS.parent / "bench"
Pair = tuple[GatewayUnderTest, GatewayUnderTest]


@pytest.fixture(scope="module")
def lean_pair(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[Pair]:
    sims, entries = start_panels(background, transition_seconds=0.2)
    tmp: Path = tmp_path_factory.mktemp("lean")
    # No breaker: the fault test below fails the same calls on both gateways, and a breaker
    # opening on one of them first would be a difference of timing, not of execution path.
    options: dict[str, Any] = {"default_rate_limit_per_minute": None,
                               "operation_poll_seconds": 0.1,
                               "resilience": {"breaker_threshold": 0}}
    lean = start_gateway(background, "gw-lean", sims, entries, tmp / "lean.db", **options)
    reference = start_gateway(background, "gw-reference", sims, entries, tmp / "ref.db",
                              lean_execution=False, **options)
    yield lean, reference


def answer(gw: GatewayUnderTest, document: str, variables: dict[str, Any]) -> Any:
    response = gw.client.post(f"{gw.url}/graphql",
                              json={"query": document, "variables": variables})
    body = response.json()
    return response.status_code, _own_clock(body.get("data")), body.get("errors")


def _own_clock(value: Any) -> Any:
    """A provider's ``health`` is what that gateway measured when it last asked the panel
    (``checkedAt``, ``latencyMs``; each gateway asks on its own schedule): not a value either
    execution path computes, so it is left out of the comparison."""
    if isinstance(value, dict):
        return {k: _MEASURED if k in ("checkedAt", "latencyMs") and v is not None
                else _own_clock(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_own_clock(v) for v in value]
    return value


_MEASURED = "(this gateway's own measurement)"


def compared(pair: Pair, document: str, variables: dict[str, Any] | None = None,
             attempts: int = 3) -> bool | None:
    """True when compared (and equal: it asserts); False when the answers never settled; None
    when the document reads gateway state (not comparable)."""
    if GATEWAY_STATE.search(document):
        return None
    lean, reference = pair
    for _ in range(attempts):
        first = answer(lean, document, variables or {})
        theirs = answer(reference, document, variables or {})
        again = answer(lean, document, variables or {})
        if first == again:
            assert theirs == first, (f"lean and reference differ for\n{document}\n"
                                     f"{json.dumps(variables)}\nlean: {first}\n"
                                     f"reference: {theirs}")
            return True
    return False


def suite_queries() -> list[str]:
    """Every string literal in tests/ and bench/ that is a valid query document without
    variables: what the suite itself asks the gateway."""
    schema = build_schema()._schema
    found: dict[str, None] = {}
    for path in sorted([*TESTS.rglob("*.py"), *BENCH.rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and "{" in node.value):
                continue
            try:
                document = parse(node.value)
            except Exception:  # not GraphQL: most literals with braces are not
                continue
            operations = [d for d in document.definitions
                          if isinstance(d, OperationDefinitionNode)]
            if (len(operations) == 1 and not GATEWAY_STATE.search(node.value)
                    and operations[0].operation is OperationType.QUERY
                    and not operations[0].variable_definitions
                    and not validate(schema, document)):
                found[node.value] = None
    return list(found)


def test_the_suite_has_queries_to_compare() -> None:
    queries = suite_queries()
    assert len(queries) > 20, queries
    assert any("owner" in q and "node" in q for q in queries)


def test_suite_queries_answer_the_same(lean_pair: Pair) -> None:
    queries = suite_queries()
    unsettled = [q for q in queries if compared(lean_pair, q) is False]
    assert len(unsettled) <= max(2, len(queries) // 10), unsettled


def test_generated_queries_answer_the_same(lean_pair: Pair) -> None:
    schema = build_schema()._schema
    ids = known_ids(lean_pair[0])
    outcomes = [compared(lean_pair, op.document, op.variables) for op in (
        QueryGen(schema, seed=seed * 2, known_ids=ids).operation("query") for seed in range(60))]
    assert outcomes.count(True) >= 30, outcomes
    assert outcomes.count(False) <= 6, outcomes


@pytest.mark.parametrize("mode", [Mode.POSITIVE, Mode.NEGATIVE], ids=["valid", "broken"])
def test_hypothesis_queries_answer_the_same(lean_pair: Pair, mode: Mode) -> None:
    @FUZZ
    @given(document=hypothesis_graphql.queries(SDL, custom_scalars=SCALARS, mode=mode))
    def run(document: str) -> None:
        assume(compared(lean_pair, document) is True)

    run()


# Shapes of the compiled plans (lists of objects, nested objects, __typename, aliases, fields
# merged from fragments) asked while the panels' node and user endpoints fail: the related
# objects come back null with the panels' errors, and both paths must say so identically.
FAULT_QUERIES = [
    "{ servers(first: 40) { totalCount edges { cursor node { id name status "
    "node { id name status } owner { email username } } } } }",
    "{ servers { nodes { __typename id n: node { __typename name } owner { id } "
    "...on Server { node { region } owner { email } } } } }",
    "{ servers(first: 5) { edges { node { ...S } } pageInfo { hasNextPage endCursor } } } "
    "fragment S on Server { id node { name provider { name } } owner { username status } }",
    "{ nodes { edges { node { name status servers(first: 2) { totalCount } } } } }",
    "{ accounts(first: 3) { nodes { email servers(first: 2) { nodes { name node { name } } } } } }",
]


def compared_faulty(pair: Pair, document: str) -> bool:
    """:func:`compared` where several panels fail at once: the panels' own errors (no path)
    are listed in the order their failures arrived (retries with jitter), so they are compared
    as a set; the errors of fields (with a path) and the data, exactly."""
    def settled(gw: GatewayUnderTest) -> Any:
        status, data, errors = answer(gw, document, {})
        panels = sorted(json.dumps(e, sort_keys=True) for e in errors or [] if not e.get("path"))
        fields = [e for e in errors or [] if e.get("path")]
        return status, data, fields, panels

    lean, reference = pair
    for _ in range(3):
        first, theirs, again = settled(lean), settled(reference), settled(lean)
        if first == again:
            assert theirs == first, (f"lean and reference differ for\n{document}\n"
                                     f"lean: {first}\nreference: {theirs}")
            return True
    return False


@pytest.mark.parametrize("status", [503, 404])
def test_failing_relations_answer_the_same(lean_pair: Pair, status: int) -> None:
    sims = lean_pair[0].sims
    for sim in sims.values():
        sim.knobs.update({"fail_status": status, "fault_paths": [
            "/api/nodes", "/api/admin/users", "/api/application/nodes",
            "/api/application/users", "/api/v1/nodes", "/api2/json/nodes"]})
    try:
        outcomes = [compared_faulty(lean_pair, q) for q in FAULT_QUERIES]
        errors = answer(lean_pair[0], FAULT_QUERIES[0], {})[2]
    finally:
        for sim in sims.values():
            sim.knobs.update({"fail_status": None, "fault_paths": None})
    assert outcomes.count(True) >= len(FAULT_QUERIES) - 1, outcomes
    assert errors, "the failing endpoints must show in the answer, or this test compares nothing"
