"""``panelql demo``: simulated panels on loopback plus a gateway wired to them.

Each entry says how to build one simulator and which credentials the gateway's connection uses,
so adding a kind to the demo is one line here.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from panelql.settings import ProviderEntry
from panelql_sim.framework import SimPanel
from panelql_sim.runner import BackgroundServers


@dataclass(frozen=True)
class DemoPanel:
    name: str
    kind: str
    sim: str  # "module:Class"
    credentials: Callable[[Any], dict[str, str]]
    path: str = ""  # base path appended to the simulator's URL
    region: str | None = None
    tls: bool = False
    options: Callable[[Any, str], dict[str, Any]] = lambda sim, url: {}
    sim_kwargs: dict[str, Any] = field(default_factory=dict)


def _nextpanel(site: str, location: str, used: int) -> DemoPanel:
    """One NextPanel server holding ``used`` accounts from before the gateway counted."""
    def options(sim: Any, url: str) -> dict[str, Any]:
        # NextPanel lists no packages: the connection names them (its catalogue).
        return {"capacity": 100, "current_accounts": used, "location": location,
                "packages": {"1": "Starter", "2": "Business"}}
    return DemoPanel(f"nextpanel-{site}", "nextpanel", "panelql_sim.nextpanel:NextPanelSim",
                     lambda s: {"api_key": s.api_key, "api_secret": s.api_secret},
                     options=options, sim_kwargs={"accounts": used})


DEMO_PANELS: list[DemoPanel] = [
    DemoPanel("catalyst-main", "catalyst", "panelql_sim.catalyst:CatalystSim",
              lambda s: {"api_key": s.api_key}, region="us-east",
              options=lambda s, url: {"default_template": s.default_template},
              sim_kwargs={"templates": 3}),
    DemoPanel("ptero-eu", "pterodactyl", "panelql_sim.pterodactyl:PterodactylSim",
              lambda s: {"application_key": s.application_key, "client_key": s.client_key},
              region="eu-west"),
    DemoPanel("virtfusion", "virtfusion", "panelql_sim.virtfusion:VirtFusionSim",
              lambda s: {"api_token": s.api_token}, path="/api/v1", region="us-west"),
    DemoPanel("proxmox-lab", "proxmox", "panelql_sim.proxmox:ProxmoxSim",
              lambda s: {"token_id": s.token_id, "token_secret": s.token_secret},
              region="eu-central", options=lambda s, url: {"ca_bundle": s.tls.ca_path}),
    DemoPanel("wp-sites", "proxmoxwp", "panelql_sim.proxmoxwp:ProxmoxWPSim",
              lambda s: {"api_key": s.api_key}, region="eu-central",
              options=lambda s, url: {"public_ip": s.public_ip}),
    DemoPanel("directadmin", "directadmin", "panelql_sim.directadmin:DirectAdminSim",
              lambda s: {"username": s.username, "password": s.password}, region="eu-west"),
    # Three NextPanel servers, one connection each, loaded 45/100,
    # 78/100, 92/100): createAccount with kind NEXTPANEL lands on the first.
    *(_nextpanel(site, where, used) for site, where, used in (
        ("fra", "Frankfurt", 45), ("ams", "Amsterdam", 78), ("nyc", "New York", 92))),
    DemoPanel("ispconfig-dns", "ispconfig", "panelql_sim.ispconfig:ISPConfigSim",
              lambda s: {"username": s.username, "password": s.password},
              # the platform's reverse-proxy address (PROXYSRV in zone templates)
              options=lambda s, url: {"resolver_url": f"{url}/dns-query",
                                      "proxy_ip": "203.0.113.10"}),
    DemoPanel("cloudflare", "cloudflare", "panelql_sim.cloudflare:CloudflareSim",
              lambda s: {"api_token": s.api_token}, path="/client/v4",
              options=lambda s, url: {"account_id": s.account_id}),
    DemoPanel("powerdns", "powerdns", "panelql_sim.powerdns:PowerDNSSim",
              lambda s: {"api_key": s.api_key}),
    DemoPanel("stripe", "stripe", "panelql_sim.stripe:StripeSim",
              lambda s: {"api_key": s.api_key, "webhook_secret": s.webhook_secret}),
    DemoPanel("paypal", "paypal", "panelql_sim.paypal:PayPalSim",
              lambda s: {"client_id": s.client_id, "client_secret": s.client_secret},
              options=lambda s, url: {"webhook_id": s.webhook_id}),
]


def load_sim(target: str, **kwargs: Any) -> SimPanel:
    module, _, cls = target.partition(":")
    panel = getattr(importlib.import_module(module), cls)(**kwargs)
    assert isinstance(panel, SimPanel)
    return panel


def start_panels(background: BackgroundServers, *, transition_seconds: float = 3.0,
                 latency_ms: float = 0.0) -> tuple[dict[str, SimPanel], list[ProviderEntry]]:
    """Serve every demo panel; return the simulators and the gateway's provider entries."""
    sims: dict[str, SimPanel] = {}
    entries: list[ProviderEntry] = []
    for demo in DEMO_PANELS:
        panel = load_sim(demo.sim, **demo.sim_kwargs)
        panel.knobs.transition_seconds = transition_seconds
        panel.knobs.latency_ms = latency_ms
        # Panels that need more than plain HTTP (Proxmox: TLS, custom reason phrases) say so.
        serve_options: dict[str, Any] = getattr(panel, "serve_options", dict)()
        served = background.serve(demo.name, panel.app(), **serve_options)
        sims[demo.name] = panel
        entries.append(ProviderEntry(
            name=demo.name, kind=demo.kind, base_url=served.url + demo.path,
            credentials=dict(demo.credentials(panel)), options=demo.options(panel, served.url),
            region=demo.region,
        ))
    return sims, entries


def call_back(sims: dict[str, SimPanel], entries: list[ProviderEntry], gateway: str) -> None:
    """Point the simulated billing providers' webhooks at the gateway (``gateway``: its base
    URL), as their dashboards would be: payments made on their hosted pages then reach
    ``/webhooks/{kind}/{connection}`` and become invoiceStatusChanged events."""
    for entry in entries:
        sim = sims.get(entry.name)
        if sim is not None and hasattr(sim, "webhook_url"):
            sim.webhook_url = f"{gateway.rstrip('/')}/webhooks/{entry.kind}/{entry.name}"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def demo_config(entries: list[ProviderEntry]) -> str:
    """The demo's connections as a config file, so `panelql --config .panelql/demo.toml
    providers list|test` shows the simulated panels while `make demo` runs. The credentials are
    the simulators' own throwaway values."""
    lines = ["# Written by `panelql demo` for its simulated panels; rewritten at each start.",
             ""]
    for entry in entries:
        lines.append("[[providers]]")
        data = entry.model_dump(exclude_defaults=True)
        for key in ("name", "kind", "base_url", "region", "credentials", "options"):
            if data.get(key):
                lines.append(f"{key} = {_toml_value(data[key])}")
        lines.append("")
    return "\n".join(lines)
