"""examples/client-area/index.html in headless Chromium with a customer-bound key: the page
lists only the customer's own site and server, adds a custom domain (and shows the backend's
DNS refusal), takes a backup up to the "3/3" quota and turns the proxy off, each change
checked on the simulated panel too.

Needs Debian's chromium (`.ci/run` installs it); skips with the reason where it is missing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from panelql.application.ids import encode
from panelql.domain.records import Ref, ResourceType
from panelql_sim.catalyst import CatalystSim
from panelql_sim.proxmoxwp import ProxmoxWPSim
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import GatewayUnderTest, serve_sim, start_gateway
from tests.ops.browser import STATUS, Page, browser

PAGE = Path(__file__).resolve().parents[2] / "examples" / "client-area" / "index.html"
SITES = "[...document.querySelectorAll('section.site')]"
CARD = f"{SITES}[0]"
MESSAGE = "document.getElementById('message').textContent"


def text(selector: str) -> str:
    return f"({CARD}.querySelector({json.dumps(selector)}) || {{}}).textContent"


@pytest.fixture(scope="module")
def area(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[GatewayUnderTest, ProxmoxWPSim, CatalystSim, str]]:
    wp, cat = ProxmoxWPSim(), CatalystSim(servers=4, nodes=1)
    wp.knobs.transition_seconds = cat.knobs.transition_seconds = 0.2
    entries = [serve_sim(background, "wp-area", wp, "proxmoxwp", {"api_key": wp.api_key},
                         options={"public_ip": wp.public_ip}),
               serve_sim(background, "cat-area", cat, "catalyst", {"api_key": cat.api_key})]
    gw = start_gateway(background, "gw-area", {"wp-area": wp, "cat-area": cat}, entries,
                       tmp_path_factory.mktemp("area") / "area.db", ws_allowed_origins=["*"])
    game = next(iter(cat.servers.values()))
    for resource in (encode(Ref("wp-area", ResourceType.SERVER, "10002")),
                     encode(Ref("cat-area", ResourceType.SERVER, game.id))):
        body = gw.query('mutation($r: ID!) { linkCustomer(customerRef: "whmcs:7", resource: $r)'
                        " { changed } }", {"r": resource})
        assert "errors" not in body, body
    del wp.sites["10002"].backups[2:]  # two of the standard plan's three
    key = gw.create_key(["server.view", "dns.write", "server.update", "backup.create"],
                        name="client-area", customer_ref="whmcs:7")
    yield gw, wp, cat, key


async def loads(page: Page, after: int) -> None:
    """Wait until the page has redrawn from a fresh query (after a click)."""
    await page.wait_for(f"Number(document.body.dataset.loaded || 0) > {after}")


async def loaded(page: Page) -> int:
    return int(await page.evaluate("Number(document.body.dataset.loaded || 0)"))


async def click(page: Page, selector: str) -> None:
    before = await loaded(page)
    await page.evaluate(f"{CARD}.querySelector({json.dumps(selector)}).click()")
    await loads(page, before)


async def add_domain(page: Page, domain: str) -> None:
    before = await loaded(page)
    await page.evaluate(f"{CARD}.querySelector('.new-domain').value = {json.dumps(domain)};"
                        f"{CARD}.querySelector('.add-domain').requestSubmit()")
    await loads(page, before)


async def test_client_area_as_a_customer(
        area: tuple[GatewayUnderTest, ProxmoxWPSim, CatalystSim, str]) -> None:
    gw, wp, cat, key = area
    site = wp.sites["10002"]
    ws_url = gw.url.replace("http://", "ws://") + "/graphql"
    async with browser(f"{PAGE.as_uri()}#url={ws_url}&key={key}") as page:
        await page.wait_for(f"{STATUS} === 'live'", explain=STATUS)
        await page.wait_for(f"{SITES}.length === 1")
        names: Any = await page.evaluate(f"{SITES}.map(s => s.querySelector('h2').textContent)")
        assert names[0].startswith(site.subdomain)  # only the customer's own site
        servers = await page.evaluate(
            "[...document.querySelectorAll('#servers tr')].map(r => r.children[0].textContent)")
        assert servers == [next(iter(cat.servers.values())).name]
        assert await page.evaluate(text(".backup-quota")) == "2/3"
        assert await page.evaluate(text(".domain-quota")) == f"{len(site.domains)}/5"

        await add_domain(page, "shop.invalid")
        assert await page.evaluate(MESSAGE) == f"Domain does not point to {site.public_ip}"
        assert "shop.invalid" not in site.domains

        await add_domain(page, "shop.example.com")
        assert "shop.example.com" in site.domains
        listed = await page.evaluate(f"{CARD}.querySelector('.domains').textContent")
        assert "shop.example.com" in listed
        assert await page.evaluate(text(".domain-quota")) == f"{len(site.domains)}/5"

        await click(page, ".backup")
        assert await page.evaluate(MESSAGE) == "Backup started" and len(site.backups) == 3
        assert await page.evaluate(text(".backup-quota")) == "3/3"
        await click(page, ".backup")
        assert await page.evaluate(MESSAGE) == "Backup limit exceeded"
        assert len(site.backups) == 3

        assert site.proxy_enabled is True
        await click(page, ".toggle-proxy")
        assert site.proxy_enabled is False
        assert await page.evaluate(text(".proxy")) == "off"
