"""`panelql serve --workers 2` as an operator runs it: a real parent process, two uvicorn worker
processes sharing one SQLite file, queries and a mutation over HTTP, a clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from panelql_sim.catalyst import CatalystSim
from panelql_sim.runner import BackgroundServers
from tests.scaleout.test_two_replicas import _free_port, _wait_healthy

ROOT = Path(__file__).resolve().parents[2]


def _children(pid: int) -> list[int]:
    """Direct child processes, read from /proc (Linux, like the CI machine)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after the last ")".
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


@pytest.fixture
def workers(background: BackgroundServers, isolated_env: Path, tmp_path: Path
            ) -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    if not Path("/proc").is_dir():
        pytest.skip("needs /proc to see the worker processes")
    sim = CatalystSim(servers=6, nodes=2)
    served = background.serve(f"cat-workers-{uuid.uuid4().hex[:6]}", sim.app())
    config = tmp_path / "panelql.toml"
    config.write_text(f"""
[[providers]]
name = "cat-workers"
kind = "catalyst"
base_url = "{served.url}"
credentials = {{ api_key = "{sim.api_key}" }}
""")
    env = {**os.environ, "PANELQL_CONFIG_FILE": str(config), "PANELQL_LOG_LEVEL": "warning"}
    created = subprocess.run(
        [sys.executable, "-m", "panelql.cli", "keys", "create", "--name", "workers",
         "--scope", "admin"], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    key = next(w for w in created.stdout.split() if w.startswith("pql_"))
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "panelql.cli", "serve", "--workers", "2", "--port", str(port)],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process)
        yield url, key, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_two_workers_serve_queries_and_mutations_and_stop_cleanly(
        workers: tuple[str, str, subprocess.Popen[bytes]]) -> None:
    url, key, process = workers
    assert len(_children(process.pid)) >= 2, "uvicorn did not start two worker processes"
    with httpx.Client(base_url=url, headers={"x-api-key": key}, timeout=30) as http:
        # Several connections, so the kernel spreads them over both workers' accept queues.
        for _ in range(12):
            body = http.post("/graphql", json={"query": "{ servers { totalCount } }"},
                             headers={"connection": "close"}).json()
            assert body == {"data": {"servers": {"totalCount": 6}}}, body
        server = http.post("/graphql", json={"query": "{ servers(filter: {status: [RUNNING]}) "
                                                      "{ edges { node { id } } } }"}).json()
        server_id = server["data"]["servers"]["edges"][0]["node"]["id"]
        mutation = ("mutation($id: ID!) { restartServer(id: $id, idempotencyKey: \"w-1\") "
                    "{ replayed } }")
        first = http.post("/graphql", json={"query": mutation, "variables": {"id": server_id}})
        again = http.post("/graphql", json={"query": mutation, "variables": {"id": server_id}},
                          headers={"connection": "close"})
        assert first.json()["data"]["restartServer"]["replayed"] is False, first.text
        assert again.json()["data"]["restartServer"]["replayed"] is True, again.text
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
