"""The vendors' OpenAPI documents referee the simulators: what they catch, what they let pass.

These tests make a simulator (or a client) break its document on purpose, check that the
referee recorded it, and then take the violation back so the suite-wide check
(tests/conftest.py) does not fail them. Skips where shared/specs is absent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from panelql_sim import referee
from panelql_sim.cloudflare import CloudflareSim
from panelql_sim.paypal import PayPalSim
from panelql_sim.powerdns import PowerDNSSim
from panelql_sim.runner import BackgroundServers

pytestmark = pytest.mark.skipif(not referee.enabled(),
                                reason="shared/specs is absent: nothing referees the simulators")


@pytest.fixture
def caught() -> Iterator[list[referee.Violation]]:
    """The violations recorded during the test, removed from the suite-wide list."""
    with referee.tolerated() as found:
        yield found


class LyingPowerDNS(PowerDNSSim):
    """Answers the server object with a number as id (the document: string)."""

    async def get_server(self, request: Request) -> Response:
        return JSONResponse({**self._server_json(), "id": 42})


class LyingCloudflare(CloudflareSim):
    """Answers a zone list whose result_info counts are strings."""

    async def list_zones(self, request: Request) -> Response:
        return JSONResponse({"success": True, "errors": [], "messages": [], "result": [],
                             "result_info": {"count": "0", "page": 1, "per_page": 20,
                                             "total_count": "none"}})


def _serve(background: BackgroundServers, name: str, panel: Any) -> str:
    return background.serve(name, panel.app()).url


def test_a_wrong_answer_is_caught(background: BackgroundServers,
                                  caught: list[referee.Violation]) -> None:
    url = _serve(background, "referee-pdns-lies", LyingPowerDNS())
    answer = httpx.get(f"{url}/api/v1/servers/localhost",
                       headers={"X-API-Key": "pdns_demo_key"})
    assert answer.status_code == 200
    lying = _serve(background, "referee-cf-lies", LyingCloudflare())
    httpx.get(f"{lying}/client/v4/zones", headers={"Authorization": "Bearer cf_demo_token"})
    referee.settle()
    kinds = {(v.panel, v.what) for v in referee.VIOLATIONS[-5:]}
    assert ("powerdns", "response 200") in kinds and ("cloudflare", "response 200") in kinds


def test_a_wrong_request_and_an_undocumented_path_are_caught(
        background: BackgroundServers, caught: list[referee.Violation]) -> None:
    sim = PowerDNSSim()
    url = _serve(background, "referee-pdns-requests", sim)
    headers = {"X-API-Key": sim.api_key}
    httpx.patch(f"{url}/api/v1/servers/localhost/zones/zone1.example.", headers=headers,
                json={"rrsets": [{"name": "zone1.example.", "type": "A", "ttl": "soon",
                                  "changetype": "REPLACE", "records": []}]})
    httpx.get(f"{url}/api/v1/not-in-the-document", headers=headers)
    referee.settle()
    problems = [v for v in referee.VIOLATIONS if v.panel == "powerdns"][-2:]
    assert [p.what for p in problems] == ["request", "request"], problems
    assert "no operation" in problems[1].problem


def test_documented_quirks_pass(background: BackgroundServers) -> None:
    seen = len(referee.VIOLATIONS)
    pdns = PowerDNSSim()
    url = _serve(background, "referee-pdns-quirks", pdns)
    # A DELETE rrset without ttl and records (the document requires both; the server doesn't).
    answer = httpx.patch(f"{url}/api/v1/servers/localhost/zones/zone1.example.",
                         headers={"X-API-Key": pdns.api_key},
                         json={"rrsets": [{"name": "www.zone1.example.", "type": "CNAME",
                                           "changetype": "DELETE"}]})
    assert answer.status_code == 204
    cf = CloudflareSim()
    cf_url = _serve(background, "referee-cf-quirks", cf)
    bearer = {"Authorization": f"Bearer {cf.api_token}"}  # the document knows only key+email
    zone = next(iter(cf.zones))
    record = next(r for r in cf.records.values() if r["zone_id"] == zone)
    gone = httpx.delete(f"{cf_url}/client/v4/zones/{zone}/dns_records/{record['id']}",
                        headers=bearer)
    assert gone.json() == {"result": {"id": record["id"]}}
    httpx.post(f"{cf_url}/client/v4/zones/{zone}/dns_records/batch", headers=bearer,
               json={"deletes": [], "patches": [], "puts": [], "posts": []})
    paypal = PayPalSim()
    pp_url = _serve(background, "referee-paypal-quirks", paypal)
    token = httpx.post(f"{pp_url}/v1/oauth2/token", data={"grant_type": "client_credentials"},
                       auth=(paypal.client_id, paypal.client_secret))
    assert token.status_code == 200
    referee.settle()
    assert [str(v) for v in referee.VIOLATIONS[seen:]] == []
