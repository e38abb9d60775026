"""The production switches: settings.introspection and settings.graphiql, on and off; and the
errors the auth middleware answers before the GraphQL view."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.harness import GatewayUnderTest
from tests.http.conftest import JSON, StartGateway, assert_coded_errors, media_type, post

INTROSPECTION = ["{ __schema { queryType { name } } }", '{ __type(name: "Server") { name } }']


@pytest.fixture(scope="module")
def locked(start: StartGateway) -> GatewayUnderTest:
    return start("locked", introspection=False, graphiql=False)


def anonymous(gw: GatewayUnderTest, accept: str, **params: str) -> httpx.Response:
    with httpx.Client(timeout=30) as client:  # no API key
        return client.get(f"{gw.url}/graphql", params=params, headers={"accept": accept})


@pytest.mark.parametrize("query", INTROSPECTION)
def test_introspection_on_answers(default_gateway: GatewayUnderTest, query: str) -> None:
    response = post(default_gateway, {"query": query})
    assert response.status_code == 200 and response.json()["data"], response.text


@pytest.mark.parametrize("query", INTROSPECTION)
def test_introspection_off_is_a_coded_request_error(locked: GatewayUnderTest, query: str) -> None:
    response = post(locked, {"query": query})
    assert response.status_code == 400
    assert "data" not in response.json()
    assert "introspection has been disabled" in assert_coded_errors(response)[0]["message"]


def test_typename_still_works_without_introspection(locked: GatewayUnderTest) -> None:
    """__typename is not introspection of the schema; clients (Apollo, urql) add it everywhere."""
    response = post(locked, {"query": "{ viewer { __typename } }"})
    assert response.json() == {"data": {"viewer": {"__typename": "Viewer"}}}


def test_graphiql_on_serves_the_page_without_a_key(default_gateway: GatewayUnderTest) -> None:
    response = anonymous(default_gateway, "text/html,application/xhtml+xml,*/*;q=0.8")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()


def test_graphiql_page_does_not_open_queries_to_anonymous(
        default_gateway: GatewayUnderTest) -> None:
    """The page is public; a GET carrying a query is not, whatever it accepts."""
    response = anonymous(default_gateway, "text/html", query="{ __typename }")
    assert response.status_code == 401
    assert_coded_errors(response, "UNAUTHENTICATED")


def test_graphiql_off_needs_a_key_and_then_is_404(locked: GatewayUnderTest) -> None:
    assert anonymous(locked, "text/html").status_code == 401
    response = locked.client.get(f"{locked.url}/graphql", headers={"accept": "text/html"})
    assert response.status_code == 404
    assert "GraphiQL is disabled" in assert_coded_errors(response, "NOT_FOUND")[0]["message"]


def test_curl_without_query_gets_json_not_the_page(default_gateway: GatewayUnderTest) -> None:
    """Only browsers asking for text/html get GraphiQL; Accept */* without a query is an
    invalid request (no query), answered in JSON."""
    response = default_gateway.client.get(f"{default_gateway.url}/graphql",
                                          headers={"accept": "*/*"})
    assert response.status_code == 400
    assert_coded_errors(response)


def test_missing_key_is_401_with_a_coded_body(default_gateway: GatewayUnderTest) -> None:
    with httpx.Client(timeout=30) as client:
        response = client.post(f"{default_gateway.url}/graphql", json={"query": "{ __typename }"},
                               headers={"accept": JSON})
    assert response.status_code == 401
    assert media_type(response) == JSON
    assert "data" not in response.json()
    assert_coded_errors(response, "UNAUTHENTICATED")
