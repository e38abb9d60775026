"""Building adapters against simulators and hand-written fixtures, for the provider tests
(tests/fixtures/PROVENANCE.md says where each fixture comes from)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def builder(kind: str, url: str, **credentials: str) -> Callable[..., Provider]:
    """A function building the adapter with optional overrides of timeout and credentials."""

    def build(timeout: float = 5.0, **overrides: str) -> Provider:
        return build_provider(config(kind, url, timeout=timeout, **{**credentials, **overrides}),
                              ClientFactory())

    return build
