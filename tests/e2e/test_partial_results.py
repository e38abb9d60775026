"""A panel that is down yields the other panels' data plus one error naming it."""

from __future__ import annotations

from pathlib import Path

from panelql_sim.catalyst import CatalystSim
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import serve_sim, start_gateway

QUERY = "{ servers(first: 500) { totalCount edges { node { name provider { name } } } } }"


def test_one_failing_panel_does_not_hide_the_others(
        background: BackgroundServers, tmp_path: Path) -> None:
    healthy, failing, gone = CatalystSim(servers=5), CatalystSim(servers=7), CatalystSim(servers=3)
    entries = [serve_sim(background, name, sim, "catalyst", {"api_key": sim.api_key})
               for name, sim in (("cat-ok", healthy), ("cat-500", failing), ("cat-gone", gone))]
    gw = start_gateway(background, "gw-partial",
                       {"cat-ok": healthy, "cat-500": failing, "cat-gone": gone},
                       entries, tmp_path / "partial.db")
    failing.knobs.fail_status = 503
    background.stop_one("cat-gone")  # nothing listens there any more

    body = gw.query(QUERY)
    assert body["data"]["servers"]["totalCount"] == 5
    assert {e["node"]["provider"]["name"] for e in body["data"]["servers"]["edges"]} == {"cat-ok"}
    by_provider = {e["extensions"]["provider"]: e for e in body["errors"]}
    assert set(by_provider) == {"cat-500", "cat-gone"}
    for error in by_provider.values():
        assert error["extensions"]["code"] == "PROVIDER_UNAVAILABLE"
        assert error["extensions"]["retryable"] is True
        assert "api_key" not in error["message"] and healthy.api_key not in str(body)

    health = gw.query("{ providers { name health { ok code } } }")
    states = {p["name"]: p["health"] for p in health["data"]["providers"]}
    assert states["cat-ok"]["ok"] is True
    assert states["cat-500"] == {"ok": False, "code": "PROVIDER_UNAVAILABLE"}

    failing.knobs.fail_status = None
    recovered = gw.query(QUERY)
    assert recovered["data"]["servers"]["totalCount"] == 12
    assert [e["extensions"]["provider"] for e in recovered["errors"]] == ["cat-gone"]


def test_garbage_from_a_panel_is_a_provider_error(
        background: BackgroundServers, tmp_path: Path) -> None:
    sim = CatalystSim(servers=2)
    entry = serve_sim(background, "cat-garbage", sim, "catalyst", {"api_key": sim.api_key})
    gw = start_gateway(background, "gw-garbage", {"cat-garbage": sim}, [entry],
                       tmp_path / "garbage.db")
    sim.knobs.malformed = True
    body = gw.query(QUERY)
    assert body["data"]["servers"]["totalCount"] == 0
    assert body["errors"][0]["extensions"] == {
        "code": "PROVIDER_ERROR", "provider": "cat-garbage", "retryable": False}


def test_failing_nested_lookup_is_one_error_per_panel(
        background: BackgroundServers, tmp_path: Path) -> None:
    sim = CatalystSim(servers=12, users=4)
    entry = serve_sim(background, "cat-nested", sim, "catalyst", {"api_key": sim.api_key})
    gw = start_gateway(background, "gw-nested", {"cat-nested": sim}, [entry],
                       tmp_path / "nested.db")
    sim.knobs.update({"fail_status": 503, "fault_paths": ["/api/admin/users"]})
    body = gw.query("{ servers(first: 100) { edges { node { name owner { email } "
                    "node { name } } } } }")
    edges = body["data"]["servers"]["edges"]
    assert len(edges) == 12
    assert all(e["node"]["owner"] is None and e["node"]["node"]["name"] for e in edges)
    assert [(e["extensions"]["provider"], e["extensions"]["code"]) for e in body["errors"]] == [
        ("cat-nested", "PROVIDER_UNAVAILABLE")]
