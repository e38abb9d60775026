"""What one ``nextpanel`` connection says about its server: credentials, capacity, location.

Until issue #13 one connection stood for a "NextPanel API" reporting many servers, with
credentials ``key_id``/``key_secret`` and an ``api_prefix`` option. No NextPanel serves that:
the real billing client (saifulrony/nextpanel-bill
``billing-backend/app/services/nextpanel_service.py`` @9aa18120, class ``NextPanelServer``)
holds one base URL, ``api_key`` and ``api_secret`` per server, and keeps ``capacity`` and
``current_accounts`` itself. Old entries fail at load with a message saying what changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from panelql.providers.config import ConnectionConfig

# nextpanel_service.py @9aa18120 NextPanelServer.__init__: capacity: int = 100.
DEFAULT_CAPACITY = 100
CREDENTIALS = ("api_key", "api_secret")
# ``packages`` names the server's packages ({"1" = "Starter"}): its API lists none (catalogue).
OPTIONS = frozenset({"capacity", "location", "current_accounts", "packages",
                     "catalogue_cache_seconds"})
CHANGED = ("the nextpanel kind changed: each connection is now one NextPanel server (its own "
           "base_url) with credentials api_key and api_secret (formerly key_id/key_secret) and "
           "options capacity, location and current_accounts; api_prefix is gone (the panel's "
           "routes are fixed under /api/v1/billing/accounts). See docs/providers/nextpanel.md")


@dataclass(frozen=True, slots=True)
class ServerConfig:
    capacity: int
    current_accounts: int  # accounts already on the server before the gateway counted
    location: str | None


def server_config(config: ConnectionConfig) -> ServerConfig:
    """Parse and check the connection; ValueError names the key that is wrong."""
    legacy = sorted({"key_id", "key_secret"} & set(config.credentials))
    legacy += ["api_prefix"] if "api_prefix" in config.options else []
    if legacy:
        raise ValueError(f"{', '.join(legacy)}: {CHANGED}")
    missing = [k for k in CREDENTIALS if k not in config.credentials]
    if missing:
        raise ValueError(f"credentials.{' and credentials.'.join(missing)} missing: a nextpanel "
                         "connection needs the server's api_key (npk_…) and api_secret (nps_…)")
    unknown = sorted(set(config.options) - OPTIONS)
    if unknown:
        raise ValueError(f"options.{unknown[0]}: unknown option for nextpanel; known: "
                         f"{', '.join(sorted(OPTIONS))}")
    capacity = _count(config.options, "capacity", DEFAULT_CAPACITY, minimum=1)
    current = _count(config.options, "current_accounts", 0, minimum=0)
    location = config.options.get("location", config.region)
    if location is not None and not isinstance(location, str):
        raise ValueError("options.location: must be a string")
    packages = config.options.get("packages", {})
    if not isinstance(packages, dict) or not all(
            isinstance(v, str) and str(k).isdigit() for k, v in packages.items()):
        raise ValueError('options.packages: must map package ids to names, e.g. '
                         '{ 1 = "Starter" }')
    return ServerConfig(capacity=capacity, current_accounts=current, location=location)


def _count(options: dict[str, Any], key: str, default: int, *, minimum: int) -> int:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"options.{key}: must be a whole number of at least {minimum}")
    return value
