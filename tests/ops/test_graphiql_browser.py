"""GraphiQL as a new user meets it, in headless Chromium with no internet: the page loads from
the gateway alone, the key goes into the Headers editor, Docs shows the schema without a reload,
and a query runs."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from panelql_sim.catalyst import CatalystSim
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import GatewayUnderTest, serve_sim, start_gateway
from tests.ops.browser import Page, browser

# CodeMirror 5 keeps its editor object on the wrapper element.
# The tools pane holds the variables and the headers editors; the Headers tab is shown first
# to a newcomer, so the visible one is the headers editor.
HEADERS_EDITOR = ("document.querySelector('.graphiql-editor-tool .graphiql-editor:not(.hidden) "
                  ".CodeMirror').CodeMirror")
QUERY_EDITOR = "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror"
RESULT = ("(document.querySelector('.result-window .CodeMirror') || {CodeMirror: "
          "{getValue: () => ''}}).CodeMirror.getValue()")


@pytest.fixture(scope="module")
def gateway(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[GatewayUnderTest]:
    sim = CatalystSim(servers=3, nodes=1)
    entry = serve_sim(background, "cat-graphiql", sim, "catalyst", {"api_key": sim.api_key})
    yield start_gateway(background, "gw-graphiql", {entry.name: sim}, [entry],
                        tmp_path_factory.mktemp("graphiql") / "g.db")


def test_page_and_assets_come_from_the_gateway(gateway: GatewayUnderTest) -> None:
    page = httpx.get(f"{gateway.url}/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and "GraphiQL" in page.text
    assert "unpkg" not in page.text and "https://" not in page.text
    asset = httpx.get(f"{gateway.url}/graphiql/graphiql.min.js")
    assert asset.status_code == 200 and asset.headers["content-type"].startswith("text/javascript")
    assert httpx.get(f"{gateway.url}/graphiql/../settings.py").status_code == 404


async def _click(page: Page, selector: str) -> None:
    assert await page.wait_for(f"!!document.querySelector({json.dumps(selector)})")
    await page.evaluate(f"document.querySelector({json.dumps(selector)}).click()")


async def test_key_in_headers_then_docs_and_a_query(gateway: GatewayUnderTest) -> None:
    key = gateway.create_key(["server.view"], name="graphiql")
    async with browser(f"{gateway.url}/graphql") as page:
        await page.wait_for("!!document.querySelector('.graphiql-container')")
        # Every resource the page loaded is the gateway's own.
        hosts = await page.evaluate("[...new Set(performance.getEntriesByType('resource')"
                                    ".map(e => new URL(e.name).host))]")
        assert hosts == [gateway.url.removeprefix("http://")]

        await page.wait_for(f"!!{HEADERS_EDITOR}")
        headers = json.dumps(json.dumps({"x-api-key": key}))
        await page.evaluate(f"{HEADERS_EDITOR}.setValue({headers})")
        await _click(page, "button[aria-label='Show Documentation Explorer']")
        docs = "document.querySelector('.graphiql-doc-explorer')"
        await page.wait_for(f"{docs} && {docs}.innerText.includes('query: Query')")
        assert "Error fetching schema" not in await page.evaluate(f"{docs}.innerText")

        await page.evaluate(f"{QUERY_EDITOR}.setValue('{{ servers {{ totalCount }} }}')")
        await _click(page, ".graphiql-execute-button")
        result = await page.wait_for(f"{RESULT}.includes('totalCount') && {RESULT}")
        assert json.loads(result) == {"data": {"servers": {"totalCount": 3}}}
