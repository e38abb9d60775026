"""Real deployments for the scale-out tests: `panelql serve` processes started with the command
and environment of examples/deploy/compose.yaml, each deployment on a fresh PostgreSQL
database (created and dropped here) and the test Redis.

Only what has to differ from the compose file is replaced: the database and Redis URLs (the
test's servers), the config file (pointing at simulators), and the port (an ephemeral one per
replica, since the replicas share this host). Everything else, the command included, is the
compose file's, so the file an operator copies is the file these tests run.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "examples" / "deploy" / "compose.yaml"
SERVICE = "panelql"
# Replaced per test run; every other variable is taken from the compose file as written.
PER_RUN = {"PANELQL_DATABASE_URL", "PANELQL_REDIS_URL", "PANELQL_CONFIG_FILE",
           "PANELQL_SECRET_KEY", "PANELQL_DEPLOYMENT"}
READY_DEADLINE = 120.0  # a safety net for a loaded machine, not a speed target


def services() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return dict(loaded["services"])


def gateway_service() -> dict[str, Any]:
    return dict(services()[SERVICE])


def replica_count() -> int:
    return int(gateway_service()["deploy"]["replicas"])


def compose_environment() -> dict[str, str]:
    return {str(k): str(v) for k, v in gateway_service()["environment"].items()}


def lease_seconds() -> float:
    return float(compose_environment()["PANELQL_WATCHER__LEASE_SECONDS"])


def compose_command(port: int) -> list[str]:
    """The service's command with the port swapped for ``port`` and the host for loopback."""
    command = [str(part) for part in gateway_service()["command"]]
    assert command[:2] == ["panelql", "serve"], command
    swapped = {"--port": str(port), "--host": "127.0.0.1"}
    out = list(command)
    for flag, value in swapped.items():
        out[out.index(flag) + 1] = value
    # The console script of this checkout's environment, whichever venv runs the tests.
    return [str(Path(sys.executable).with_name("panelql")), *out[1:]]


def needs_services() -> tuple[str, str]:
    pg, redis = (os.environ.get("PANELQL_TEST_POSTGRES_URL"),
                 os.environ.get("PANELQL_TEST_REDIS_URL"))
    if not pg or not redis:
        pytest.skip("PANELQL_TEST_POSTGRES_URL and PANELQL_TEST_REDIS_URL are needed: the "
                    "scale-out tests run real replicas on real PostgreSQL and Redis")
    return pg, redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _admin(base: str, statement: str) -> None:
    engine = create_async_engine(base, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


def create_database(base: str, purpose: str) -> str:
    """A fresh, empty database; returns its URL."""
    name = f"panelql_{purpose}_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(base, f'CREATE DATABASE "{name}"'))
    return make_url(base).set(database=name).render_as_string(hide_password=False)


def drop_database(base: str, url: str) -> None:
    asyncio.run(_admin(base, f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))


def redis_db(url: str, number: int) -> str:
    """The same Redis server, another database number (which pub/sub ignores)."""
    return re.sub(r"/\d*$", "", url.rstrip("/")) + f"/{number}"


@dataclass
class Replica:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no hand-back; what a crashed node or an OOM kill does."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@dataclass
class Deployment:
    """One deployment: its database, its settings, and the replicas started for it."""

    database: str
    redis: str
    workdir: Path
    config: str = ""
    deployment: str | None = None
    replicas: list[Replica] = field(default_factory=list)
    secret_key: str = field(default_factory=lambda: _fernet_key())

    def environment(self) -> dict[str, str]:
        config_file = self.workdir / "panelql.toml"
        config_file.write_text(self.config)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PANELQL_")}
        env.update({k: v for k, v in compose_environment().items() if k not in PER_RUN})
        env.update({"PANELQL_DATABASE_URL": self.database, "PANELQL_REDIS_URL": self.redis,
                    "PANELQL_CONFIG_FILE": str(config_file),
                    "PANELQL_SECRET_KEY": self.secret_key})
        if self.deployment is not None:  # else derived from the database, like a default
            env["PANELQL_DEPLOYMENT"] = self.deployment
        return env

    def start(self, count: int) -> list[Replica]:
        """Start ``count`` replicas at once (as a scheduler does) without waiting for them."""
        env = self.environment()
        started = []
        for _ in range(count):
            port = free_port()
            log = self.workdir / f"replica-{port}.log"
            with log.open("wb") as sink:
                process = subprocess.Popen(compose_command(port), env=env, cwd=self.workdir,
                                           stdout=sink, stderr=subprocess.STDOUT)
            started.append(Replica(f"http://127.0.0.1:{port}", process, log))
        self.replicas += started
        return started

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        panelql = str(Path(sys.executable).with_name("panelql"))
        return subprocess.run([panelql, *args], env=self.environment(), cwd=self.workdir,
                              capture_output=True, text=True, timeout=120, check=False)

    def admin_key(self) -> str:
        """Created the way docs/operations.md says, with the CLI."""
        done = self.cli("keys", "create", "--name", "scaleout", "--scope", "admin", "--quiet")
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def stop(self) -> None:
        for replica in self.replicas:
            replica.stop()


def _fernet_key() -> str:
    from panelql.secrets import generate_key

    return generate_key()


def wait_ready(replica: Replica) -> None:
    """Until /readyz answers 200; fails at once if the process exits, with its output."""
    deadline = time.monotonic() + READY_DEADLINE
    while time.monotonic() < deadline:
        if replica.process.poll() is not None:
            raise AssertionError(f"replica exited with {replica.process.returncode}:\n"
                                 f"{replica.output()[-3000:]}")
        try:
            if httpx.get(f"{replica.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{replica.url} never became ready:\n{replica.output()[-3000:]}")


def graphql(replica: Replica, key: str, query: str, variables: dict[str, Any] | None = None
            ) -> dict[str, Any]:
    answer = httpx.post(f"{replica.url}/graphql", headers={"x-api-key": key}, timeout=60,
                        json={"query": query, "variables": variables or {}})
    body = answer.json()
    assert "errors" not in body, body
    return dict(body["data"])
