"""A gateway killed (SIGKILL) in the middle of provisionService, between creating the panel
user and creating the server: a new gateway process on the same database finishes the order on
the retry with the same idempotency key, without a second user or server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from panelql_sim.catalyst import DEFAULT_TEMPLATE, CatalystSim
from panelql_sim.runner import BackgroundServers
from tests.scaleout.test_two_replicas import _free_port, _wait_healthy

ROOT = Path(__file__).resolve().parents[2]
ORDER = """mutation($input: ProvisionServiceInput!) {
  provisionService(input: $input, idempotencyKey: "order-kill-1") {
    replayed accountCreated serverCreated account { id } server { id owner { id } } } }"""
INPUT = {"customerRef": "whmcs:77", "provider": "cat-kill",
         "account": {"username": "killed77", "email": "killed77@example.com"},
         "server": {"name": "Order 77", "externalRef": "whmcs:service:77",
                    "resources": {"memoryMb": 1024, "cpuCores": 1, "diskMb": 4096}}}


@pytest.fixture
def setup(background: BackgroundServers, tmp_path: Path
          ) -> Iterator[tuple[CatalystSim, dict[str, str], str]]:
    sim = CatalystSim(servers=2, nodes=1)
    served = background.serve(f"cat-kill-{uuid.uuid4().hex[:6]}", sim.app())
    config = tmp_path / "panelql.toml"
    config.write_text(f"""
[[providers]]
name = "cat-kill"
kind = "catalyst"
base_url = "{served.url}"
credentials = {{ api_key = "{sim.api_key}" }}
options = {{ default_template = "{DEFAULT_TEMPLATE}" }}
""")
    env = {**os.environ, "PANELQL_CONFIG_FILE": str(config), "PANELQL_LOG_LEVEL": "warning",
           # the killed run's claim counts as dead after a second (default: five minutes)
           "PANELQL_IDEMPOTENCY_TAKEOVER_SECONDS": "1"}
    created = subprocess.run(
        [sys.executable, "-m", "panelql.cli", "keys", "create", "--name", "kill",
         "--scope", "admin"], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    key = next(w for w in created.stdout.split() if w.startswith("pql_"))
    yield sim, env, key


def serve(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "panelql.cli", "serve", "--port", str(port)],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    _wait_healthy(url, process)
    return process, url


def order(url: str, key: str, out: dict[str, Any]) -> None:
    try:
        out["body"] = httpx.post(f"{url}/graphql", json={"query": ORDER,
                                                         "variables": {"input": INPUT}},
                                 headers={"x-api-key": key}, timeout=120).json()
    except httpx.HTTPError as exc:  # the gateway died under this request
        out["error"] = exc


def wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + 60  # a safety net, not a timing assertion
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_a_killed_order_is_finished_by_the_retry(
        setup: tuple[CatalystSim, dict[str, str], str]) -> None:
    sim, env, key = setup
    users, servers = len(sim.users), len(sim.servers)
    # The panel takes the user, then never answers the server creation.
    sim.knobs.update({"hang": True, "fault_methods": ["POST"], "fault_paths": ["/api/servers"]})
    first, url = serve(env)
    try:
        answer: dict[str, Any] = {}
        request = threading.Thread(target=order, args=(url, key, answer))
        request.start()
        wait_for(lambda: sim.stats["POST /api/servers"] >= 1, "the order never reached the "
                 "server creation")
        assert len(sim.users) == users + 1  # the user exists; the server does not
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        request.join(30)
        assert "error" in answer, answer  # no answer: the process died mid-order
    finally:
        if first.poll() is None:
            first.kill()
    sim.knobs.update({"hang": False, "fault_methods": None, "fault_paths": None})

    second, url = serve(env)
    try:
        retried: dict[str, Any] = {}
        order(url, key, retried)
        body = retried["body"]
        assert "errors" not in body, body
        done = body["data"]["provisionService"]
        assert not done["replayed"] and not done["accountCreated"] and done["serverCreated"]
        assert done["server"]["owner"]["id"] == done["account"]["id"]
        assert (len(sim.users), len(sim.servers)) == (users + 1, servers + 1)
        replay: dict[str, Any] = {}
        order(url, key, replay)
        assert replay["body"]["data"]["provisionService"]["replayed"], replay
        assert len(sim.servers) == servers + 1
    finally:
        second.terminate()
        second.wait(15)
