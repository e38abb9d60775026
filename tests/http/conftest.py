"""Gateways under test for the HTTP layer: real uvicorn, real SQLite, Catalyst simulators."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from panelql_sim.catalyst import CatalystSim
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import GatewayUnderTest, serve_sim, start_gateway

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"

StartGateway = Callable[..., GatewayUnderTest]


@pytest.fixture(scope="module")
def start(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
          ) -> StartGateway:
    """``start(tag, panels=1, **settings)``: a gateway over ``panels`` Catalyst simulators."""

    def _start(tag: str, panels: int = 1, **settings: Any) -> GatewayUnderTest:
        sims = {f"cat-{tag}-{i}": CatalystSim(servers=6, users=4, nodes=2) for i in range(panels)}
        entries = [serve_sim(background, name, sim, "catalyst", {"api_key": sim.api_key})
                   for name, sim in sims.items()]
        db = tmp_path_factory.mktemp(tag) / "gateway.db"
        return start_gateway(background, f"gw-{tag}", dict(sims), entries, db, **settings)

    return _start


def post(gw: GatewayUnderTest, body: Any = None, *, accept: str | None = GRAPHQL_RESPONSE,
         content: bytes | None = None, content_type: str | None = JSON,
         **headers: str) -> httpx.Response:
    """POST /graphql with full control over Accept and Content-Type (None drops the header).
    Accept defaults to the spec's own type, whose status codes the tests read."""
    request = gw.client.build_request(
        "POST", f"{gw.url}/graphql", json=body if content is None else None, content=content,
        headers=headers)
    _set(request, "accept", accept)
    _set(request, "content-type", content_type)
    return gw.client.send(request)


def get(gw: GatewayUnderTest, params: dict[str, str], *, accept: str | None = GRAPHQL_RESPONSE,
        **headers: str) -> httpx.Response:
    request = gw.client.build_request("GET", f"{gw.url}/graphql", params=params,
                                      headers=headers)
    _set(request, "accept", accept)
    return gw.client.send(request)


def _set(request: httpx.Request, name: str, value: str | None) -> None:
    if value is None:
        request.headers.pop(name, None)
    else:
        request.headers[name] = value


def assert_coded_errors(response: httpx.Response, code: str = "BAD_USER_INPUT") -> list[Any]:
    """Every error carries ``extensions.code``; the first one has ``code``."""
    errors: list[Any] = response.json()["errors"]
    assert errors and all(e["extensions"]["code"] for e in errors), errors
    assert errors[0]["extensions"]["code"] == code, errors
    return errors


def media_type(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


@pytest.fixture(scope="module")
def default_gateway(start: StartGateway) -> Iterator[GatewayUnderTest]:
    yield start("http", panels=2)
