"""GraphQL over HTTP compliance, over a real uvicorn server.

One test per server requirement of the GraphQL-over-HTTP specification (graphql/graphql-over-http,
draft). Each docstring names the section and quotes the rule; the key words are the spec's.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.harness import GatewayUnderTest
from tests.http.conftest import (
    GRAPHQL_RESPONSE,
    JSON,
    assert_coded_errors,
    get,
    media_type,
    post,
)

VIEWER = "{ viewer { __typename } }"
ME = {"viewer": {"__typename": "Viewer"}}
TWO_OPERATIONS = """
query Count($first: Int) { servers(first: $first) { edges { node { id } } } }
query Me { viewer { __typename } }
mutation Start { startServer(id: "x") { __typename } }
"""
BOTH = [GRAPHQL_RESPONSE, JSON]


@pytest.fixture(scope="module")
def gw(default_gateway: GatewayUnderTest) -> GatewayUnderTest:
    return default_gateway


# --- Request: POST -------------------------------------------------------------------------

def test_post_application_json_runs_query(gw: GatewayUnderTest) -> None:
    """POST: "A server MUST support POST requests encoded with the application/json media type"."""
    response = post(gw, {"query": VIEWER})
    assert response.status_code == 200
    assert response.json() == {"data": ME}


def test_post_reads_operation_name_variables_and_extensions(gw: GatewayUnderTest) -> None:
    """Request Parameters: query, operationName, variables (a map) and extensions (a map) are
    the request's parameters; operationName selects the operation a document defines."""
    response = post(gw, {"query": TWO_OPERATIONS, "operationName": "Count",
                         "variables": {"first": 2}, "extensions": {"trace": False}})
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]["servers"]["edges"]) == 2
    me = post(gw, {"query": TWO_OPERATIONS, "operationName": "Me", "variables": None,
                   "extensions": None})
    assert me.json() == {"data": ME}


def test_post_without_content_type_is_rejected(gw: GatewayUnderTest) -> None:
    """POST: "If the client does not supply a Content-Type header with a POST request, the
    server SHOULD reject the request using the appropriate 4xx status code" (415)."""
    response = post(gw, content=json.dumps({"query": VIEWER}).encode(), content_type=None)
    assert response.status_code == 415
    assert "data" not in response.json()
    assert_coded_errors(response)


@pytest.mark.parametrize("content_type", [
    "text/plain", "application/graphql", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x"])
def test_post_with_unsupported_media_type_is_415(gw: GatewayUnderTest, content_type: str) -> None:
    """POST: the body is application/json; a server "MAY" support others, we do not, and
    answer 415 Unsupported Media Type (RFC 9110 §15.5.16) naming the type we read."""
    response = post(gw, content=json.dumps({"query": VIEWER}).encode(),
                    content_type=content_type)
    assert response.status_code == 415
    assert response.headers["accept-post"] == JSON
    assert_coded_errors(response)


@pytest.mark.parametrize("content_type", [
    "application/json; charset=utf-8", "Application/JSON; Charset=UTF-8",
    'application/json;charset="utf-8"'])
def test_post_accepts_utf8_charset_parameter(gw: GatewayUnderTest, content_type: str) -> None:
    """JSON Encoding: requests are UTF-8; a Content-Type naming charset=utf-8 (any case, quoted
    or not) is the same media type."""
    response = post(gw, content=json.dumps({"query": VIEWER}).encode(),
                    content_type=content_type)
    assert response.status_code == 200, response.text


def test_post_with_other_charset_is_415(gw: GatewayUnderTest) -> None:
    """JSON Encoding: the server reads UTF-8 only; another charset is an unsupported media type."""
    response = post(gw, content=json.dumps({"query": VIEWER}).encode("utf-16"),
                    content_type="application/json; charset=utf-16")
    assert response.status_code == 415
    assert "utf-16" in assert_coded_errors(response)[0]["message"]


def test_post_body_without_charset_is_read_as_utf8(gw: GatewayUnderTest) -> None:
    """JSON Encoding: with no charset parameter the server MUST assume UTF-8 (the name comes
    back in the error, byte for byte)."""
    body = '{"query": "query A { viewer { __typename } }", "operationName": "Ö"}'.encode()
    response = post(gw, content=body, content_type=JSON, accept=JSON)
    assert response.status_code == 200
    assert '"Ö"' in assert_coded_errors(response)[0]["message"]


def test_post_body_that_is_not_utf8_is_400(gw: GatewayUnderTest) -> None:
    """JSON Encoding: a body that is not valid UTF-8 is not well-formed: 400."""
    response = post(gw, content=b'{"query": "{ viewer { name \xff } }"}')
    assert response.status_code == 400
    assert "UTF-8" in assert_coded_errors(response)[0]["message"]


@pytest.mark.parametrize("accept", BOTH)
def test_malformed_json_body_is_400_without_data(gw: GatewayUnderTest, accept: str) -> None:
    """Examples, JSON parsing failure: "the server SHOULD reply with status code 400", whichever
    media type; a request error's response does not contain data."""
    response = post(gw, content=b'{"query": "{ viewer { name } }"', accept=accept)
    assert response.status_code == 400
    assert media_type(response) == accept
    assert "data" not in response.json()
    assert_coded_errors(response)


@pytest.mark.parametrize("accept", BOTH)
@pytest.mark.parametrize("body", [
    {}, {"query": None}, {"query": ""}, {"qeury": VIEWER}, {"query": {"a": 1}},
    {"query": 42}, {"query": [VIEWER]}, {"query": VIEWER, "operationName": 3},
    {"query": VIEWER, "operationName": {"a": 1}}, {"query": VIEWER, "variables": "{}"},
    {"query": VIEWER, "variables": [1]}, {"query": VIEWER, "extensions": "x"},
    {"query": VIEWER, "extensions": 1}])
def test_invalid_parameters_are_400(gw: GatewayUnderTest, accept: str, body: object) -> None:
    """Request Parameters + Examples, Invalid parameters: query is a required string,
    operationName an optional string, variables and extensions optional maps. A request
    breaking this is not well-formed: "the server SHOULD reply with status code 400", for
    application/json too (its 200 rule covers well-formed requests only)."""
    response = post(gw, body, accept=accept)
    assert response.status_code == 400, response.text
    assert "data" not in response.json()
    assert_coded_errors(response)


@pytest.mark.parametrize("content", [b"[]", b'[{"query": "{ viewer { name } }"}]', b"1",
                                     b'"{ viewer { name } }"', b"null", b""])
def test_body_must_be_one_json_object(gw: GatewayUnderTest, content: bytes) -> None:
    """POST: "the request body ... MUST be a JSON-encoded map of the request parameters"
    (batching is not part of the spec and is off)."""
    response = post(gw, content=content)
    assert response.status_code == 400
    assert_coded_errors(response)


# --- Request: GET --------------------------------------------------------------------------

def test_get_runs_query_from_url_parameters(gw: GatewayUnderTest) -> None:
    """GET: "the request parameters are encoded in the query component of the URL";
    variables and extensions "MUST be JSON-encoded"."""
    response = get(gw, {"query": TWO_OPERATIONS, "operationName": "Count",
                        "variables": json.dumps({"first": 1}), "extensions": "{}"})
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]["servers"]["edges"]) == 1


@pytest.mark.parametrize("variables", ["{not json", "[1, 2]", '"x"'])
def test_get_variables_must_be_a_json_map(gw: GatewayUnderTest, variables: str) -> None:
    """GET: variables is a JSON-encoded map; anything else is an invalid parameter: 400."""
    response = get(gw, {"query": VIEWER, "variables": variables})
    assert response.status_code == 400
    assert_coded_errors(response)


@pytest.mark.parametrize("params", [
    {"query": 'mutation { startServer(id: "x") { __typename } }'},
    {"query": TWO_OPERATIONS, "operationName": "Start"}])
def test_get_mutation_is_405_with_allow_post(gw: GatewayUnderTest, params: dict[str, str]
                                             ) -> None:
    """GET: "GET requests MUST NOT be used for executing mutation operations. If the values of
    {query} and {operationName} indicate that a mutation operation is to be executed, the
    server MUST respond with error status code 405 (Method Not Allowed) and halt execution."
    RFC 9110 §15.5.6: a 405 carries Allow."""
    gw.reset_counts()
    response = get(gw, params)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert "data" not in response.json()
    assert_coded_errors(response)
    assert sum(gw.upstream_calls().values()) == 0  # halted: nothing reached a panel


def test_get_query_in_a_document_with_mutations_runs(gw: GatewayUnderTest) -> None:
    """GET: only the selected operation matters; a query next to a mutation runs."""
    response = get(gw, {"query": TWO_OPERATIONS, "operationName": "Me"})
    assert response.status_code == 200
    assert response.json()["data"] == ME


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "HEAD"])
def test_other_methods_are_405_with_allow(gw: GatewayUnderTest, method: str) -> None:
    """URL/Request: GraphQL over HTTP uses GET and POST; other methods get 405 with Allow."""
    response = gw.client.request(method, f"{gw.url}/graphql")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    if method != "HEAD":
        assert_coded_errors(response)


# --- Accept and response media types -------------------------------------------------------

@pytest.mark.parametrize("accept", BOTH)
def test_response_uses_the_accepted_media_type_in_utf8(gw: GatewayUnderTest, accept: str
                                                      ) -> None:
    """Accept + Serialization Format: the server MUST support application/graphql-response+json
    (and application/json for legacy clients), MUST indicate it in Content-Type, and encodes
    JSON in UTF-8."""
    response = post(gw, {"query": VIEWER}, accept=accept)
    assert response.status_code == 200
    assert response.headers["content-type"] == f"{accept}; charset=utf-8"
    assert "accept" in response.headers["vary"].lower()


def test_missing_accept_means_json(gw: GatewayUnderTest) -> None:
    """A request without Accept is answered as if it had sent ``Accept: application/json``:
    what graphql-http's server audit (1.23) checks, so legacy clients keep their 200s."""
    response = post(gw, {"query": VIEWER}, accept=None)
    assert media_type(response) == JSON
    broken = post(gw, {"query": "{"}, accept=None)
    assert broken.status_code == 200 and "data" not in broken.json()


@pytest.mark.parametrize(("accept", "expected"), [
    ("application/json", JSON),
    ("application/json, application/graphql-response+json", GRAPHQL_RESPONSE),
    ("application/graphql-response+json;q=0.5, application/json", JSON),
    ("application/json;q=0.9, application/graphql-response+json", GRAPHQL_RESPONSE),
    ("application/graphql-response+json;q=0, application/json;q=0.1", JSON),
    ("*/*", JSON),
    ("application/*", JSON),
    ("application/*;q=0.5, application/json", JSON),
    ("text/html, application/json;q=0.8, */*;q=0.1", JSON),
    ("application/json; charset=utf-8", JSON),
    ("APPLICATION/JSON", JSON),
    ("nonsense, application/json", JSON),
])
def test_accept_is_negotiated_with_q_values(gw: GatewayUnderTest, accept: str, expected: str
                                           ) -> None:
    """Accept: the server picks among the media types the client accepts, honouring q-values
    and the most specific matching range (RFC 9110 §12.5.1); on a tie, the spec's own type."""
    response = post(gw, {"query": VIEWER}, accept=accept)
    assert response.status_code == 200
    assert media_type(response) == expected


@pytest.mark.parametrize("accept", [
    "text/html", "application/xml", "application/graphql-response+json;q=0, application/json;q=0",
    "application/json; charset=latin1", "*/*;q=0"])
def test_unacceptable_accept_is_406(gw: GatewayUnderTest, accept: str) -> None:
    """Accept: "when a client does not include at least one supported media type in the Accept
    HTTP header, the server MUST either: respond with a 406 Not Acceptable status code and stop
    processing the request (RECOMMENDED); or ..." — we respond 406."""
    gw.reset_counts()
    response = post(gw, {"query": "{ servers { totalCount } }"}, accept=accept)
    assert response.status_code == 406
    assert_coded_errors(response)
    assert sum(gw.upstream_calls().values()) == 0


# --- Status codes: application/graphql-response+json vs application/json -----------------

REQUEST_ERRORS = {
    "document parsing failure": ({"query": "{ viewer { name "}, "Syntax Error"),
    "document validation failure": ({"query": "{ viewer { nope } }"}, "Cannot query field"),
    "operation cannot be determined": ({"query": TWO_OPERATIONS, "operationName": "Nope"},
                                       "Unknown operation"),
    "several operations, none named": ({"query": "query A { viewer { name } } "
                                                 "query B { viewer { name } }"}, "operation"),
    "variable coercion failure": ({"query": "query($n: Int) { servers(first: $n) { totalCount } }",
                                   "variables": {"n": "ten"}}, "Int cannot represent"),
    "missing required variable": ({"query": "query($id: ID!) { server(id: $id) { id } }"},
                                  "to be provided"),
}


@pytest.mark.parametrize("case", sorted(REQUEST_ERRORS))
def test_request_errors_are_400_with_graphql_response_json(gw: GatewayUnderTest, case: str
                                                          ) -> None:
    """application/graphql-response+json + Examples (document parsing failure, document
    validation failure, operation cannot be determined, variable coercion failure): "If the
    GraphQL response does not contain the data entry then the server MUST reply with a 4xx or
    5xx status code"; "the server SHOULD reply with 400 status code"; a request error's response
    MUST NOT contain data."""
    body, message = REQUEST_ERRORS[case]
    response = post(gw, body, accept=GRAPHQL_RESPONSE)
    assert response.status_code == 400, response.text
    assert "data" not in response.json()
    assert message in assert_coded_errors(response)[0]["message"]


@pytest.mark.parametrize("case", sorted(REQUEST_ERRORS))
def test_request_errors_are_200_with_legacy_json(gw: GatewayUnderTest, case: str) -> None:
    """application/json: "The server SHOULD use the 200 status code for every response to a
    well-formed GraphQL-over-HTTP request, independent of any GraphQL request error or GraphQL
    field error raised"; the body still has no data entry."""
    body, message = REQUEST_ERRORS[case]
    response = post(gw, body, accept=JSON)
    assert response.status_code == 200, response.text
    assert media_type(response) == JSON
    assert "data" not in response.json()
    assert message in assert_coded_errors(response)[0]["message"]


@pytest.mark.parametrize("accept", BOTH)
def test_field_error_nulling_data_is_200_with_data_present(gw: GatewayUnderTest, accept: str
                                                         ) -> None:
    """application/graphql-response+json: "If the GraphQL response contains the data entry and
    it is null, then the server SHOULD reply with a 2xx status code and it is RECOMMENDED it
    replies with 200"; the error is a field error, so data is present (null)."""
    response = post(gw, {"query": '{ server(id: "nope") { id } }'}, accept=accept)
    assert response.status_code == 200
    body = response.json()
    assert "data" in body and body["data"] is None
    assert body["errors"][0]["path"] == ["server"]
    assert_coded_errors(response)


@pytest.mark.parametrize("accept", BOTH)
def test_partial_data_with_field_errors_is_200(gw: GatewayUnderTest, accept: str) -> None:
    """application/graphql-response+json: "If the GraphQL response contains the data entry and
    it is not null, then the server MUST reply with a 2xx status code and SHOULD reply with 200"
    — here one of two panels fails; its error has no path but data is there."""
    failing = next(sim for name, sim in gw.sims.items() if name.endswith("-1"))
    failing.knobs.fail_status = 503
    try:
        response = post(gw, {"query": "{ servers(first: 100) { totalCount } }"}, accept=accept)
    finally:
        failing.knobs.fail_status = None
    assert response.status_code == 200
    body = response.json()
    assert body["data"]["servers"]["totalCount"] == 6
    assert assert_coded_errors(response, "PROVIDER_UNAVAILABLE")


@pytest.mark.parametrize("accept", BOTH)
def test_subscription_over_plain_http_is_a_request_error(gw: GatewayUnderTest, accept: str
                                                        ) -> None:
    """Execution: a subscription needs a streaming transport (SSE, WebSocket); over a plain
    request it is refused before execution, as a request error."""
    response = post(gw, {"query": "subscription { serverStatusChanged { id } }"}, accept=accept)
    assert response.status_code == (400 if accept == GRAPHQL_RESPONSE else 200)
    assert "data" not in response.json()
    assert "text/event-stream" in assert_coded_errors(response)[0]["message"]
