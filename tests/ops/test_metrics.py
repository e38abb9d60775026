"""/metrics after real traffic, /readyz with the bus, request ids on responses."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from panelql.web.metrics import MAX_OPERATION_NAMES, operation_label
from panelql_sim.catalyst import CatalystSim
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import GatewayUnderTest, serve_sim, start_gateway

QUERY = """query FleetPage { servers(first: 50) { totalCount
  edges { node { name node { name } owner { email } } } } }"""


@pytest.fixture(scope="module")
def gateway(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[GatewayUnderTest]:
    sim = CatalystSim(servers=12, users=4, nodes=2)
    entry = serve_sim(background, "metrics-cat", sim, "catalyst", {"api_key": sim.api_key})
    yield start_gateway(background, "gw-metrics", {entry.name: sim}, [entry],
                        tmp_path_factory.mktemp("metrics") / "m.db",
                        watcher={"enabled": False})


def _value(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} {labels} not in metrics")


def test_metrics_after_a_query(gateway: GatewayUnderTest) -> None:
    before = gateway.client.get(f"{gateway.url}/metrics").text
    body = gateway.query(QUERY)
    assert body["data"]["servers"]["totalCount"] == 12
    gateway.query("query Broken { servers(first: 1) { nope } }")
    response = gateway.client.get(f"{gateway.url}/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith(
        "text/plain")
    text = response.text
    assert _value(text, "panelql_graphql_requests_total", operation="FleetPage",
                  type="query", outcome="ok") == 1
    assert _value(text, "panelql_graphql_requests_total", operation="Broken",
                  outcome="error") == 1
    assert _value(text, "panelql_graphql_request_seconds_count", operation="FleetPage") == 1
    assert _value(text, "panelql_graphql_resolver_seconds_count", field="servers") >= 1
    calls = (_value(text, "panelql_upstream_requests_total", provider="metrics-cat",
                    method="GET", status="200")
             - _safe(before, "panelql_upstream_requests_total", provider="metrics-cat",
                     method="GET", status="200"))
    assert 1 <= calls <= 6  # batched: a handful of calls for 12 servers with node and owner
    assert _value(text, "panelql_upstream_request_seconds_count", provider="metrics-cat") >= calls
    assert _value(text, "panelql_dataloader_batch_size_count", loader="nodes") >= 1
    assert _value(text, "panelql_subscriptions_open") == 0
    assert _value(text, "panelql_provider_connections", kind="catalyst") == 1
    assert "panelql_events_delivered_total" in text


def _safe(text: str, name: str, **labels: str) -> float:
    try:
        return _value(text, name, **labels)
    except AssertionError:
        return 0.0


def test_readyz_checks_database_and_bus(gateway: GatewayUnderTest) -> None:
    response = gateway.client.get(f"{gateway.url}/readyz")
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "bus": "ok"}}


def test_request_id_is_echoed_or_generated(gateway: GatewayUnderTest) -> None:
    given = gateway.client.get(f"{gateway.url}/healthz", headers={"x-request-id": "billing-42"})
    assert given.headers["x-request-id"] == "billing-42"
    made = gateway.client.get(f"{gateway.url}/healthz",
                              headers={"x-request-id": "has spaces; and {x}"})
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])


def test_operation_names_cannot_blow_up_label_cardinality() -> None:
    assert operation_label(None) == "anonymous"
    assert operation_label("not a name!") == "other"
    labels = {operation_label(f"Generated{n}") for n in range(MAX_OPERATION_NAMES + 50)}
    assert "other" in labels and len(labels) <= MAX_OPERATION_NAMES + 1


def test_metrics_can_be_switched_off(background: BackgroundServers, tmp_path: Path) -> None:
    gw = start_gateway(background, "gw-nometrics", {}, [], tmp_path / "n.db", metrics=False,
                       watcher={"enabled": False})
    assert gw.client.get(f"{gw.url}/metrics").status_code == 404
