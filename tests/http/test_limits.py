"""Query limits: cost (page sizes), tokens, depth and aliases — their status and error bodies.

The over-HTTP tests run a gateway with low limits; the estimate tests call the cost model on
the real schema, without a server.
"""

from __future__ import annotations

from typing import Any

import pytest
from graphql import FragmentDefinitionNode, OperationDefinitionNode, parse

from panelql.schema.cost import Estimate, estimate
from panelql.schema.root import build_schema
from panelql.settings import Limits
from tests.e2e.harness import GatewayUnderTest
from tests.http.conftest import GRAPHQL_RESPONSE, JSON, StartGateway, assert_coded_errors, post

LIMITS = Limits(max_cost=5000, max_tokens=300, max_depth=6, max_aliases=5)
NESTED = """query($a: Int, $b: Int) {
  servers(first: $a) { totalCount edges { node { backups(first: $b) { edges { node { id } } } } } }
}"""


@pytest.fixture(scope="module")
def gw(start: StartGateway) -> GatewayUnderTest:
    return start("limits", limits=LIMITS)


def refused(response: Any, status: int = 400) -> str:
    assert response.status_code == status, response.text
    assert "data" not in response.json()
    return str(assert_coded_errors(response)[0]["message"])


# --- cost over HTTP ------------------------------------------------------------------------

def test_costly_query_is_refused_before_any_upstream_call(gw: GatewayUnderTest) -> None:
    """100 servers x 100 backups each: 30,302 > 5,000. The message names the cost, the limit
    and the `first` to lower; extensions carry both figures for clients."""
    gw.reset_counts()
    response = post(gw, {"query": NESTED, "variables": {"a": 100, "b": 100}})
    message = refused(response)
    assert message == "query cost 30302 exceeds 5000: lower `first` on servers.edges.node.backups"
    extensions = response.json()["errors"][0]["extensions"]
    assert extensions == {"code": "BAD_USER_INPUT", "cost": 30302, "maxCost": 5000}
    assert sum(gw.upstream_calls().values()) == 0


def test_cost_follows_the_variables(gw: GatewayUnderTest) -> None:
    """The same document is cheap with small pages: validation sees the request's variables."""
    response = post(gw, {"query": NESTED, "variables": {"a": 10, "b": 10}})
    assert response.status_code == 200, response.text
    assert response.json()["data"]["servers"]["totalCount"] == 6


def test_cached_validation_still_prices_each_request(gw: GatewayUnderTest) -> None:
    """Validation is cached per document text; the price is not. Alternate cheap and costly
    variables on one document, and an invalid document twice."""
    for a, ok in ((7, True), (100, False), (8, True), (100, False)):
        response = post(gw, {"query": NESTED, "variables": {"a": a, "b": 100}})
        assert (response.status_code == 200 and "errors" not in response.json()) is ok, a
    for _ in range(2):
        message = refused(post(gw, {"query": "{ servers { edges { node { nope } } } }"}))
        assert "Cannot query field 'nope'" in message


def test_hint_names_the_largest_page(gw: GatewayUnderTest) -> None:
    message = refused(post(gw, {"query": NESTED, "variables": {"a": 400, "b": 5}}))
    assert message.endswith("lower `first` on servers")


def test_omitted_first_costs_the_default_page(gw: GatewayUnderTest) -> None:
    """No `first`: the resolver's default page (50) counts — 50 x 50 nested is refused."""
    query = "{ servers { edges { node { backups { edges { node { id } } } } } } }"
    assert refused(post(gw, {"query": query})).startswith("query cost 7651 exceeds 5000")


def test_variable_default_counts(gw: GatewayUnderTest) -> None:
    query = NESTED.replace("$a: Int,", "$a: Int = 100,").replace("$b: Int)", "$b: Int = 100)")
    assert "exceeds 5000" in refused(post(gw, {"query": query}))


def test_first_above_max_page_size_is_the_resolvers_error(gw: GatewayUnderTest) -> None:
    """The estimate caps `first` at max_page_size (the resolver refuses more), so the client
    gets the resolver's precise message, as a field error."""
    response = post(gw, {"query": "{ servers(first: 5000) { edges { node { id } } } }"})
    assert response.status_code == 200
    assert "at most 1000" in assert_coded_errors(response)[0]["message"]


def test_cost_refusal_is_200_without_data_for_legacy_json(gw: GatewayUnderTest) -> None:
    response = post(gw, {"query": NESTED, "variables": {"a": 100, "b": 100}}, accept=JSON)
    refused(response, status=200)


# --- tokens, depth, aliases ----------------------------------------------------------------

def test_too_many_tokens_is_refused_while_parsing(gw: GatewayUnderTest) -> None:
    query = "{ " + "viewer { __typename } " * 80 + "}"
    message = refused(post(gw, {"query": query}, accept=GRAPHQL_RESPONSE))
    assert "more than 300 tokens" in message


def test_comments_count_as_tokens(gw: GatewayUnderTest) -> None:
    """Comments cost the parser too; they cannot smuggle a huge document past the limit."""
    query = "# padding\n" * 400 + "{ __typename }"
    assert "more than 300 tokens" in refused(post(gw, {"query": query}))


def test_too_deep_is_refused_with_a_code(gw: GatewayUnderTest) -> None:
    query = ("{ servers(first: 1) { edges { node { node { servers(first: 1) { edges { node {"
             " node { name } } } } } } } } }")
    assert "exceeds maximum operation depth of 6" in refused(post(gw, {"query": query}))


def test_too_many_aliases_is_refused_with_a_code(gw: GatewayUnderTest) -> None:
    query = "{ " + " ".join(f"a{i}: viewer {{ __typename }}" for i in range(6)) + " }"
    assert refused(post(gw, {"query": query})) == "6 aliases found. Allowed: 5"


def test_within_every_limit_runs(gw: GatewayUnderTest) -> None:
    query = "{ " + " ".join(f"a{i}: viewer {{ __typename }}" for i in range(5)) + " }"
    response = post(gw, {"query": query})
    assert response.status_code == 200 and len(response.json()["data"]) == 5


# --- the cost model, without a server ------------------------------------------------------

SCHEMA = build_schema()._schema


def cost(query: str, variables: dict[str, Any] | None = None,
         limits: Limits | None = None) -> Estimate:
    document = parse(query)
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    fragments = {d.name.value: d for d in document.definitions
                 if isinstance(d, FragmentDefinitionNode)}
    return estimate(SCHEMA, operation, fragments, variables or {}, limits or Limits())


def test_scalars_cost_one_and_typename_nothing() -> None:
    assert cost("{ viewer { __typename } }").cost == 1
    assert cost("{ providers { name kind } }").cost == 3


def test_only_edges_and_nodes_repeat_per_item() -> None:
    """pageInfo and totalCount are paid once per connection, edges/nodes once per item."""
    assert cost("{ servers(first: 10) { totalCount pageInfo { hasNextPage } } }").cost == 4
    assert cost("{ servers(first: 10) { edges { cursor node { id } } } }").cost == 1 + 10 * 4
    assert cost("{ servers(first: 10) { nodes { id name } } }").cost == 1 + 10 * 3


def test_lists_with_first_multiply_by_their_schema_default() -> None:
    """auditLog(first: Int! = 100) is a plain list with a page size."""
    assert cost("{ auditLog { id } }").cost == 1 + 100 * 1
    assert cost("{ auditLog(first: 3) { id } }").cost == 4


def test_fragments_count_once_per_spread_and_cycles_end() -> None:
    query = """{ servers(first: 2) { nodes { ...S } } a: servers(first: 2) { nodes { ...S } } }
               fragment S on Server { id name ...T } fragment T on Server { ...S }"""
    assert cost(query).cost == 2 * (1 + 2 * 3)


def test_union_branches_all_count() -> None:
    query = '{ resource(id: "x") { ... on Server { id name } ... on Node { id } } }'
    assert cost(query).cost == 4


def test_page_size_is_capped_at_max_page_size() -> None:
    limits = Limits(max_page_size=100)
    assert cost("{ servers(first: 100000) { nodes { id } } }", limits=limits).cost == 1 + 100 * 2
