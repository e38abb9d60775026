"""Building adapters against simulators and hand-written fixtures, for the provider tests
(tests/fixtures/PROVENANCE.md says where each fixture comes from)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from panelql.providers.config import ConnectionConfig, Secret
from panelql.providers.contract import Provider
from panelql.providers.http import ClientFactory
from panelql.providers.registry import build_provider

FIXTURES = Path(__file__).parent.parent / "fixtures"


def fixture(kind: str, name: str) -> Any:
    return json.loads((FIXTURES / kind / name).read_text())


def config(kind: str, url: str, name: str | None = None, timeout: float = 5.0,
           **credentials: str) -> ConnectionConfig:
    return ConnectionConfig(
        name=name or f"{kind}-test", kind=kind, base_url=url, timeout_seconds=timeout,
        credentials={k: Secret(v) for k, v in credentials.items()},
    )


def clients(url: str, *, lean: bool = True) -> ClientFactory:
    """The client factory for an adapter talking to ``url``: the production transport
    (providers/transport.py) for every real server, the simulators included. A ``.test`` host
    never resolves (RFC 6761), so it can only be a respx replay of recorded exchanges, and respx
    patches httpx's own transport: those get it. ``lean=False`` is the escape hatch
    (``upstream_transport = "httpx"``), run against the simulators by a smaller suite."""
    host = httpx.URL(url).host
    return ClientFactory(lean=lean and not host.endswith(".test"))


def builder(kind: str, url: str, *, lean: bool = True,
            **credentials: str) -> Callable[..., Provider]:
    """A function building the adapter with optional overrides of timeout and credentials."""

    def build(timeout: float = 5.0, **overrides: str) -> Provider:
        return build_provider(config(kind, url, timeout=timeout, **{**credentials, **overrides}),
                              clients(url, lean=lean))

    return build
