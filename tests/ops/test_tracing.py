"""OpenTelemetry (the optional `otel` extra): PANELQL_TRACING=true yields spans per operation."""

from __future__ import annotations

from pathlib import Path

import pytest

from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import start_gateway

pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed")

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)


def test_operations_become_spans(background: BackgroundServers, tmp_path: Path) -> None:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    gw = start_gateway(background, "gw-tracing", {}, [], tmp_path / "t.db", tracing=True,
                       watcher={"enabled": False})
    body = gw.query("query WhoAmI { viewer { name } }")
    assert "errors" not in body, body
    names = [span.name for span in exporter.get_finished_spans()]
    assert any("WhoAmI" in name for name in names), names
