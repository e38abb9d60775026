"""Two gateway processes sharing PostgreSQL and Redis: a mutation on one reaches a subscriber
of the other. Real processes (`panelql serve`), real sockets, real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from panelql.db.api_keys import ApiKeys
from panelql.db.engine import create_engine, session_factory
from panelql.db.migrate import upgrade
from panelql_sim.catalyst import CatalystSim
from panelql_sim.runner import BackgroundServers
from tests.e2e.wsclient import ws_client


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _database(base: str) -> str:
    name = f"panelql_replicas_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return make_url(base).set(database=name).render_as_string(hide_password=False)


async def _drop(base: str, url: str) -> None:
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" '
                                "WITH (FORCE)"))
    await admin.dispose()


async def _admin_key(url: str) -> str:
    await upgrade(url)
    engine = create_engine(url)
    raw, _ = await ApiKeys(session_factory(engine)).create(name="replicas", scopes=["admin"])
    await engine.dispose()
    return raw


def _wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"gateway exited: {process.stderr.read().decode()[-2000:]}"
                                 if process.stderr else "gateway exited")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} never became ready")


@pytest.fixture(scope="module")
def replicas(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[tuple[list[str], str, CatalystSim]]:
    pg, redis = (os.environ.get("PANELQL_TEST_POSTGRES_URL"),
                 os.environ.get("PANELQL_TEST_REDIS_URL"))
    if not pg or not redis:
        pytest.skip("PANELQL_TEST_POSTGRES_URL and PANELQL_TEST_REDIS_URL are needed for the "
                    "two-replica test")
    database = asyncio.run(_database(pg))
    key = asyncio.run(_admin_key(database))
    sim = CatalystSim(servers=8, nodes=2)
    sim.knobs.transition_seconds = 0.5
    served = background.serve("cat-replicas", sim.app())
    config = tmp_path_factory.mktemp("replicas") / "panelql.toml"
    config.write_text(f"""
[gateway]
database_url = "{database}"
redis_url = "{redis}"
operation_poll_seconds = 0.1

[[providers]]
name = "cat-replicas"
kind = "catalyst"
base_url = "{served.url}"
credentials = {{ api_key = "{sim.api_key}" }}
""")
    urls, processes = [], []
    env = {**os.environ, "PANELQL_CONFIG_FILE": str(config), "PANELQL_LOG_LEVEL": "warning"}
    try:
        for _ in range(2):
            port = _free_port()
            process = subprocess.Popen(
                [sys.executable, "-m", "panelql.cli", "serve", "--port", str(port)],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                cwd=Path(__file__).resolve().parents[2])
            processes.append(process)
            urls.append(f"http://127.0.0.1:{port}")
        for url, process in zip(urls, processes, strict=True):
            _wait_healthy(url, process)
        yield urls, key, sim
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        asyncio.run(_drop(pg, database))


async def test_mutation_on_one_replica_reaches_subscriber_on_the_other(
        replicas: tuple[list[str], str, CatalystSim]) -> None:
    (first, second), key, sim = replicas
    stopped = next(s for s in sim.servers.values()
                   if s.status == "stopped" and sim.nodes[s.node_id]["isOnline"])
    from panelql.application.ids import encode
    from panelql.domain.records import Ref, ResourceType
    server_id = encode(Ref("cat-replicas", ResourceType.SERVER, stopped.id))
    async with ws_client(second) as client:
        assert (await client.init({"x-api-key": key}))["type"] == "connection_ack"
        await client.subscribe("subscription($f: StatusEventFilter) { serverStatusChanged("
                               "filter: $f) { id status previous source } }",
                               {"f": {"ids": [server_id]}})
        await asyncio.sleep(1.0)  # the subscription is in another process: give it a moment
        async with httpx.AsyncClient(timeout=30) as http:
            answer = await http.post(f"{first}/graphql", headers={"x-api-key": key}, json={
                "query": "mutation($id: ID!) { startServer(id: $id) { operation { id } } }",
                "variables": {"id": server_id}})
        assert "errors" not in answer.json(), answer.text
        events = []
        while not events or events[-1]["status"] != "RUNNING":
            message = await client.recv(timeout=20)
            events.append(message["payload"]["data"]["serverStatusChanged"])
    assert events[0]["status"] == "STARTING" and events[0]["previous"] == "STOPPED"
    assert events[-1]["status"] == "RUNNING"
    assert all(e["id"] == server_id for e in events)


def test_both_replicas_share_state(replicas: tuple[list[str], str, CatalystSim]) -> None:
    (first, second), key, _ = replicas
    audit = httpx.post(f"{second}/graphql", headers={"x-api-key": key}, timeout=30,
                       json={"query": "{ auditLog(first: 5) { action outcome } }"}).json()
    assert {"action": "startServer", "outcome": "ok"} in audit["data"]["auditLog"]
    for url in (first, second):
        ready = httpx.get(f"{url}/readyz", timeout=5).json()
        assert ready["checks"]["bus"] == "ok"
