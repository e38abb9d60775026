"""Kinds of provider, imported lazily so a heavy SDK loads only when a connection needs it."""

from __future__ import annotations

import importlib

from panelql.providers.config import ConnectionConfig
from panelql.providers.contract import Provider
from panelql.providers.http import ClientFactory

KINDS: dict[str, str] = {
    "catalyst": "panelql.providers.catalyst.adapter:CatalystProvider",
    "pterodactyl": "panelql.providers.pterodactyl.adapter:PterodactylProvider",
    "virtfusion": "panelql.providers.virtfusion.adapter:VirtFusionProvider",
    "proxmox": "panelql.providers.proxmox.adapter:ProxmoxProvider",
    "proxmoxwp": "panelql.providers.proxmoxwp.adapter:ProxmoxWPProvider",
    "directadmin": "panelql.providers.directadmin.adapter:DirectAdminProvider",
    "nextpanel": "panelql.providers.nextpanel.adapter:NextPanelProvider",
    "ispconfig": "panelql.providers.ispconfig.adapter:ISPConfigProvider",
    "cloudflare": "panelql.providers.cloudflare.adapter:CloudflareProvider",
    "powerdns": "panelql.providers.powerdns.adapter:PowerDNSProvider",
    "stripe": "panelql.providers.stripe.adapter:StripeProvider",
    "paypal": "panelql.providers.paypal.adapter:PayPalProvider",
}


def known_kinds() -> list[str]:
    return sorted(KINDS)


def provider_class(kind: str) -> type[Provider]:
    try:
        target = KINDS[kind]
    except KeyError:
        known = ", ".join(known_kinds())
        raise ValueError(f"unknown provider kind {kind!r}; known: {known}") from None
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise TypeError(f"{target} is not a Provider")
    return cls


def build_provider(config: ConnectionConfig, clients: ClientFactory) -> Provider:
    cls = provider_class(config.kind)
    return cls.from_config(config, clients)
