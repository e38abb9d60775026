"""examples/deploy/compose.yaml is what the scale-out tests run; these checks keep it a
deployment an operator can copy (three replicas, PostgreSQL, Redis, the settings the docs
name). They need no services: they read the file."""

from __future__ import annotations

from sqlalchemy import make_url

from panelql.settings import Settings
from tests.scaleout.deployment import (
    COMPOSE,
    compose_command,
    compose_environment,
    gateway_service,
    lease_seconds,
    replica_count,
    services,
)


def test_three_replicas_on_postgres_and_redis() -> None:
    assert set(services()) == {"postgres", "redis", "panelql"}
    assert replica_count() == 3
    env = compose_environment()
    database = make_url(env["PANELQL_DATABASE_URL"].replace("${POSTGRES_PASSWORD}", "pw"))
    assert database.drivername == "postgresql+asyncpg" and database.host == "postgres"
    assert env["PANELQL_REDIS_URL"].startswith("redis://redis:")
    assert set(gateway_service()["depends_on"]) == {"postgres", "redis"}


def test_the_gateway_settings_are_valid_settings() -> None:
    env = compose_environment()
    assert env["PANELQL_AUTO_MIGRATE"] == "true"  # replicas take turns, see test_operators
    settings = Settings.model_validate({
        "deployment": env["PANELQL_DEPLOYMENT"],
        "auto_migrate": env["PANELQL_AUTO_MIGRATE"],
        "log_format": env["PANELQL_LOG_FORMAT"],
        "graphiql": env["PANELQL_GRAPHIQL"],
        "watcher": {"lease_seconds": lease_seconds()},
    })
    assert settings.redis_prefix == f"panelql:{env['PANELQL_DEPLOYMENT']}:"
    assert compose_command(8123)[1:] == ["serve", "--host", "127.0.0.1", "--port", "8123"]


def test_the_docs_point_at_the_file_and_its_commands() -> None:
    docs = (COMPOSE.parents[2] / "docs" / "operations.md").read_text()
    assert "examples/deploy/compose.yaml" in docs
    assert "docker compose up -d --build" in docs and "docker compose up -d --build" in \
        COMPOSE.read_text()
    assert "Rate limits are per process" not in docs  # they are shared through Redis
