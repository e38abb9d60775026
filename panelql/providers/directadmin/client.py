"""The DirectAdmin call: command paths, ``json=yes``, ``admin|user`` impersonation, errors.

Shared by the hosting and DNS halves of the adapter, so both go through one error boundary.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx

from panelql.providers.bounded import Bounded
from panelql.providers.config import ConnectionConfig
from panelql.providers.contract import Provider
from panelql.providers.directadmin import wire
from panelql.providers.errors import ProviderError
from panelql.providers.http import Upstream, error_for_status

log = logging.getLogger("panelql.upstream")

# How many per-user calls run at once: DirectAdmin has no bulk user detail call (N+1).
PER_USER_CONCURRENCY = 8


def read_error(body: Any) -> str | None:
    found = wire.json_error(body)
    return found[0] if found else None


class DirectAdminUpstream(Upstream):
    """The shared boundary, except that a JSON error envelope with HTTP 500 is not an outage.

    Several DirectAdmin versions answer application errors (``user already exists``) with
    HTTP 500 and ``{"error": …, "result": …}`` in JSON mode (Upmind handles them that way). The
    shared boundary would call every 500 ``Unavailable``; here those become the classified
    error, and only a 5xx without that envelope (an HTML crash page, a proxy) is an outage.
    """

    def failure(self, response: httpx.Response, body: Any) -> ProviderError:
        body = _json_or_none(response)
        envelope = wire.json_error(body)
        if response.status_code == 500 and envelope is not None:
            return wire.error_from_text(*envelope, self.provider, 500)
        return error_for_status(response, body, read_error(body), self.provider)


def is_outage(response: httpx.Response) -> bool:
    """For the connection's breaker and retries: a 5xx is an outage unless it is the JSON
    error envelope, DirectAdmin's answer to a request that was wrong (a user or domain that
    does not exist, a name taken), which says the panel is up and would answer the same again.
    """
    if response.status_code < 500:
        return False
    try:
        return response.status_code != 500 or wire.json_error(_json_or_none(response)) is None
    except httpx.ResponseNotRead:  # a streamed answer: its body is not ours to read here
        return True


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return json.loads(response.text) if response.content else None
    except ValueError:
        return None


class DirectAdminBase(Provider):
    """Connection state and the one ``_call`` helper; the families build on it."""

    kind = "directadmin"

    def __init__(self, config: ConnectionConfig, upstream: Upstream, *, username: str,
                 password: str, json_mode: bool = True) -> None:
        super().__init__(config)
        self.api = upstream
        self.json_mode = json_mode
        self._username = username
        self._password = password
        self._per_user = Bounded(PER_USER_CONCURRENCY)

    async def _call(self, command: str, *, method: str = "GET",
                    params: dict[str, str] | None = None, data: dict[str, str] | None = None,
                    as_user: str | None = None, raw: bool = False) -> Any:
        """One ``CMD_API_<command>`` call, decoded, with in-body errors raised."""
        query = dict(params or {})
        if self.json_mode:
            query["json"] = "yes"
        kwargs: dict[str, Any] = {"params": query}
        if data is not None:
            kwargs["data"] = data
        if as_user is not None:
            # Act as the user with the admin's secret: Basic ``admin|user``.
            kwargs["auth"] = httpx.BasicAuth(f"{self._username}|{as_user}", self._password)
        response = await self.api.request(method, f"/CMD_API_{command}", **kwargs)
        return wire.decode(response, json_mode=self.json_mode, provider=self.name, raw=raw)

    async def _post(self, command: str, data: dict[str, str], *,
                    as_user: str | None = None) -> Any:
        return await self._call(command, method="POST", data=data, as_user=as_user)

    async def check_health(self) -> None:
        # LOGIN_TEST answers ``error=0&text=Login OK`` and touches no user data.
        body = await self._call("LOGIN_TEST")
        wire.expect_envelope(body, self.name)

    async def _user_names(self) -> list[str]:
        body = await self._call("SHOW_ALL_USERS")
        return wire.names(body, self.name, "user list")

    async def _user_domains(self, user: str) -> list[str]:
        async with self._per_user:
            body = await self._call("SHOW_DOMAINS", as_user=user)
        return wire.names(body, self.name, "domain list")
