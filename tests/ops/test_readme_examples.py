"""The README's examples, run as written against the data `make demo` serves.

The `curl` line runs in a shell with `.panelql/demo-api-key` beside it (only the port differs:
the test's gateway listens on a free one), and its output must be the JSON the README shows.
The GraphQL blocks run through the gateway; every GraphQL block of README.md and docs/ must at
least be valid against the schema, so an example cannot drift from the contract unnoticed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from graphql import build_schema, parse, validate

from panelql.schema.root import SDL_PATH
from panelql_sim.demo import start_panels
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import GatewayUnderTest, start_gateway

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
SCHEMA = build_schema(SDL_PATH.read_text())  # the exported contract, checked against the code
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def blocks(text: str, language: str) -> list[str]:
    return [body for lang, body in BLOCK.findall(text) if lang == language]


def block_after(marker: str, language: str) -> str:
    """The first ``language`` block that follows ``marker`` in the README."""
    return blocks(README[README.index(marker):], language)[0]


@pytest.fixture(scope="module")
def demo(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[GatewayUnderTest]:
    sims, entries = start_panels(background)  # what `make demo` serves, same seeds
    yield start_gateway(background, "gw-readme", dict(sims), entries,
                        tmp_path_factory.mktemp("readme") / "demo.db")


def test_curl_example_prints_what_the_readme_shows(demo: GatewayUnderTest,
                                                   tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    command = blocks(README, "sh")[1]
    assert command.startswith("curl -s http://127.0.0.1:8000/graphql"), command
    (tmp_path / ".panelql").mkdir()
    (tmp_path / ".panelql" / "demo-api-key").write_text(demo.admin_key)
    command = command.replace("http://127.0.0.1:8000", demo.url)
    done = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=True)
    expected = json.loads(block_after("curl -s http://127.0.0.1:8000", "json"))
    assert json.loads(done.stdout) == expected


def test_the_first_query_runs(demo: GatewayUnderTest) -> None:
    body = demo.query(blocks(README, "graphql")[0])
    assert "errors" not in body, body
    page = body["data"]["servers"]
    assert len(page["edges"]) == 3 and page["pageInfo"]["hasNextPage"]
    assert {e["node"]["status"] for e in page["edges"]} <= {"RUNNING", "SUSPENDED"}


def test_partial_failure_example(demo: GatewayUnderTest) -> None:
    shown: dict[str, Any] = json.loads(block_after("When a panel fails", "json"))
    failing = demo.sims["ptero-eu"]
    failing.knobs.fail_status = 503
    try:
        body = demo.query("{ servers(first: 2) { totalCount edges { node { name } } } }")
    finally:
        failing.knobs.fail_status = None
    assert body["errors"] == shown["errors"]
    assert body["data"]["servers"]["totalCount"] == shown["data"]["servers"]["totalCount"]


def test_suspend_example_suspends_once_and_replays(demo: GatewayUnderTest) -> None:
    mutation = block_after("Lifecycle actions are mutations", "graphql")
    first = demo.query(mutation)
    assert "errors" not in first, first
    assert first["data"]["suspendServer"] == {
        "replayed": False,
        "server": {"status": "SUSPENDED", "suspended": True,
                   "suspensionReason": "Invoice #12345 overdue"}}
    again = demo.query(mutation)
    assert again["data"]["suspendServer"]["replayed"] is True


def test_refetch_by_id_example_from_the_frontend_guide(demo: GatewayUnderTest) -> None:
    guide = (ROOT / "docs" / "frontend.md").read_text()
    refetch = next(b for b in blocks(guide, "graphql") if "query Refetch" in b)
    listing = demo.query("{ servers(first: 1) { edges { node { id name } } } }")
    server = listing["data"]["servers"]["edges"][0]["node"]
    body = demo.query(refetch, {"id": server["id"]})
    assert "errors" not in body, body
    assert body["data"]["resource"]["__typename"] == "Server"
    assert body["data"]["resource"]["name"] == server["name"]


def _examples() -> Iterator[tuple[str, str]]:
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for n, body in enumerate(blocks(path.read_text(), "graphql")):
            yield f"{path.relative_to(ROOT)}#{n}", body


@pytest.mark.parametrize(("where", "document"), list(_examples()),
                         ids=[where for where, _ in _examples()])
def test_every_documented_graphql_example_is_valid(where: str, document: str) -> None:
    errors = validate(SCHEMA, parse(document))
    assert errors == [], f"{where}: {[e.message for e in errors]}"
