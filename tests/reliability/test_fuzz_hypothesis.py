"""Property-based fuzzing with hypothesis-graphql: documents generated from the schema's SDL,
valid ones (POSITIVE: every field, argument and input shape the schema allows) and broken ones
(NEGATIVE: wrong types, missing required arguments, unknown enum values), sent over HTTP to a
gateway in front of every demo panel. Hypothesis shrinks a failure to the smallest document.

The same property as test_fuzz.py (its seeded generator aims at hostile values and real IDs):
no 5xx, a GraphQL-shaped body, and every error code known, INTERNAL (a masked crash) excluded.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import hypothesis_graphql
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode
from hypothesis_graphql.nodes import String

from panelql.schema.root import export_sdl
from panelql_sim.demo import start_panels
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import GatewayUnderTest, start_gateway
from tests.reliability.querygen import Operation
from tests.reliability.test_fuzz import problems

SDL = export_sdl()
EXAMPLES = int(os.environ.get("PANELQL_FUZZ_CASES", "120"))
SCALARS = {
    "DateTime": st.datetimes(timezones=st.just(UTC), min_value=datetime(1970, 1, 2),
                             max_value=datetime(2200, 1, 1)).map(lambda d: String(d.isoformat())),
    "JSON": st.text(max_size=20).map(String),
}
# One gateway for every example: a fixture per example would start twelve panels each time.
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def gw(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[GatewayUnderTest]:
    sims, entries = start_panels(background, transition_seconds=0.2)
    tmp: Path = tmp_path_factory.mktemp("hypothesis")
    yield start_gateway(background, "gw-hypothesis", sims, entries, tmp / "fuzz.db",
                        default_rate_limit_per_minute=None, operation_poll_seconds=0.1)


def _check(gw: GatewayUnderTest, document: str) -> None:
    found = problems(gw, Operation(document, {}))
    assert not found, f"{found}\n{document}"


@pytest.mark.parametrize("mode", [Mode.POSITIVE, Mode.NEGATIVE], ids=["valid", "broken"])
def test_generated_queries(gw: GatewayUnderTest, mode: Mode) -> None:
    @FUZZ
    @given(document=hypothesis_graphql.queries(SDL, custom_scalars=SCALARS, mode=mode))
    def run(document: str) -> None:
        _check(gw, document)

    run()


@pytest.mark.parametrize("mode", [Mode.POSITIVE, Mode.NEGATIVE], ids=["valid", "broken"])
def test_generated_mutations(gw: GatewayUnderTest, mode: Mode) -> None:
    @FUZZ
    @given(document=hypothesis_graphql.mutations(SDL, custom_scalars=SCALARS, mode=mode))
    def run(document: str) -> None:
        _check(gw, document)

    run()
