"""`make demo` wiring: every simulated panel of the demo answers through the gateway."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from panelql.cli import main
from panelql.settings import ProviderEntry
from panelql_sim.demo import DEMO_PANELS, demo_config, start_panels
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import GatewayUnderTest, start_gateway

DONE_QUERY = """{ servers(first: 1000) { totalCount edges { node { id name status
  provider { kind } node { name } owner { email } } } } }"""


@pytest.fixture(scope="module")
def demo(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[GatewayUnderTest]:
    sims, entries = start_panels(background, transition_seconds=0.5)
    yield start_gateway(background, "gw-demo", dict(sims), entries,
                        tmp_path_factory.mktemp("demo") / "demo.db")


def test_every_demo_provider_is_healthy(demo: GatewayUnderTest) -> None:
    body = demo.query("{ providers { name kind families health { ok error } } }")
    providers = {p["name"]: p for p in body["data"]["providers"]}
    assert set(providers) == {p.name for p in DEMO_PANELS}
    unhealthy = {n: p["health"] for n, p in providers.items() if not p["health"]["ok"]}
    assert unhealthy == {}


def test_done_query_returns_servers_of_every_compute_kind(demo: GatewayUnderTest) -> None:
    body = demo.query(DONE_QUERY)
    assert "errors" not in body, body["errors"]
    edges = body["data"]["servers"]["edges"]
    kinds = {e["node"]["provider"]["kind"] for e in edges}
    compute = {p["kind"] for p in demo.query("{ providers { kind families } }")["data"]["providers"]
               if "COMPUTE" in p["families"]}
    assert kinds == compute
    with_node = [e for e in edges if e["node"]["node"]]
    assert len(with_node) >= len(edges) * 0.8
    assert any(e["node"]["owner"] for e in edges)


def test_dns_zones_with_records_across_kinds(demo: GatewayUnderTest) -> None:
    body = demo.query("{ dnsZones(first: 500) { edges { node { name provider { kind } "
                      "records { type name content } } } } }")
    assert "errors" not in body, body["errors"]
    zones = [e["node"] for e in body["data"]["dnsZones"]["edges"]]
    dns_kinds = {p["kind"] for p in demo.query("{ providers { kind families } }")["data"][
        "providers"] if "DNS" in p["families"]}
    assert {z["provider"]["kind"] for z in zones} == dns_kinds
    assert all(z["records"] for z in zones[:5])


def test_invoices_of_every_billing_kind(demo: GatewayUnderTest) -> None:
    body = demo.query("{ invoices(first: 1000, filter: {status: [OPEN]}) { totalCount edges { "
                      "node { status overdue total { amount currency } provider { kind } } } } }")
    assert "errors" not in body, body["errors"]
    edges = body["data"]["invoices"]["edges"]
    assert {e["node"]["provider"]["kind"] for e in edges} == {"STRIPE", "PAYPAL"}
    assert {e["node"]["status"] for e in edges} == {"OPEN"}
    for edge in edges:
        amount = edge["node"]["total"]["amount"]
        assert amount.replace(".", "", 1).isdigit()  # an exact decimal string


def test_demo_config_file_lists_the_simulated_panels(
        demo: GatewayUnderTest, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What `make demo` writes to .panelql/demo.toml is a config file the CLI reads."""
    entries = [ProviderEntry(name=name, kind=kind, base_url=url,
                             credentials={"api_key": "x"}, options={"n": 1, "on": True})
               for name, kind, url in [("a", "catalyst", "http://127.0.0.1:1"),
                                       ("b", "stripe", "http://127.0.0.1:2/v1")]]
    config = tmp_path / "demo.toml"
    config.write_text(demo_config(entries))
    monkeypatch.setenv("PANELQL_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    assert main(["--config", str(config), "providers", "list"]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("a", "catalyst", "http://127.0.0.1:1", "config"),
        ("b", "stripe", "http://127.0.0.1:2/v1", "config")]
