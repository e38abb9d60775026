"""Pterodactyl's two APIs behind one object: Fractal envelopes, pagination and includes.

Both APIs share the serializer (``PterodactylSerializer``): an item is
``{"object": name, "attributes": {...}}``, a list is ``{"object": "list", "data": [items],
"meta": {"pagination": {..., "total_pages": n}}}``, and ``?include=`` puts related resources
under ``attributes.relationships.<name>`` (``null_resource`` when absent). This module unwraps
them once, so the adapter only sees attribute dicts.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from panelql.providers.errors import (
    CapabilityNotSupported,
    Conflict,
    InvalidRequest,
    ProviderError,
)
from panelql.providers.http import Upstream, expect

log = logging.getLogger("panelql.providers.pterodactyl")

APP = "/api/application"
CLIENT = "/api/client"
# The Client API caps backup pages at 50 (BackupController::index).
CLIENT_BACKUPS_PAGE = 50
# Safety net against an upstream whose pagination never ends.
MAX_PAGES = 10_000
# The largest per_page every Pterodactyl version takes (develop's bound, see app_list).
BOUNDED_PAGE_SIZE = 100

Attributes = dict[str, Any]


def read_error(body: Any) -> str | None:
    """``{"errors": [{"code", "status", "detail", "meta"?}]}`` → the details, joined."""
    if not isinstance(body, dict) or not isinstance(body.get("errors"), list):
        return None
    details = [str(e["detail"]) for e in body["errors"]
               if isinstance(e, dict) and isinstance(e.get("detail"), str)]
    return "; ".join(details) or None


# Our input names for the Application API's user fields (StoreUserRequest @706db62c).
USER_FIELDS = {"username": "username", "email": "email", "external_id": "externalRef",
               "first_name": "name", "last_name": "name", "password": "password"}


def field_failures(body: Any) -> list[tuple[str, str, str]]:
    """(source_field, rule, detail) of each entry in a 422 body. ``Handler::invalidJson``
    (app/Exceptions/Handler.php @706db62c) puts the field and the Laravel rule, snake-cased,
    under each error's ``meta``."""
    if not isinstance(body, dict) or not isinstance(body.get("errors"), list):
        return []
    out = []
    for entry in body["errors"]:
        meta = entry.get("meta") if isinstance(entry, dict) else None
        if isinstance(meta, dict) and isinstance(meta.get("source_field"), str):
            out.append((meta["source_field"], str(meta.get("rule") or ""),
                        str(entry.get("detail") or "")))
    return out


class PterodactylUpstream(Upstream):
    """Reads 422 bodies field by field: when only ``unique`` rules failed (a taken username,
    email or external id) it is a CONFLICT naming the field; otherwise BAD_USER_INPUT with
    every field (the input has mistakes to fix before any collision matters)."""

    def failure(self, response: httpx.Response, body: Any) -> ProviderError:
        failures = field_failures(body) if response.status_code == 422 else []
        if not failures:
            return super().failure(response, body)
        kwargs: dict[str, Any] = {"provider": self.provider, "upstream_status": 422,
                                  "debug": {"status": 422, "failures": failures}}
        taken = [(f, d) for f, rule, d in failures if rule == "unique"]
        if len(taken) == len(failures):
            name, detail = taken[0]
            return Conflict(detail, field=USER_FIELDS.get(name, name),
                            current_status="TAKEN", **kwargs)
        fields = {USER_FIELDS.get(f, f): d for f, _, d in failures}
        return InvalidRequest("; ".join(d for _, _, d in failures),
                              fields=fields, **kwargs)


class PterodactylApi:
    """The Application API (``ptla_`` key) and, optionally, a root admin's Client API."""

    def __init__(self, app: Upstream, client: Upstream | None, *, page_size: int) -> None:
        self.app = app
        self._client = client
        self.page_size = page_size
        self.provider = app.provider

    @property
    def client(self) -> Upstream:
        if self._client is None:
            raise CapabilityNotSupported(
                f"{self.provider} has no client_key: power state, power actions and backups "
                "need the Client API", provider=self.provider,
            )
        return self._client

    @property
    def has_client(self) -> bool:
        return self._client is not None

    # -- envelopes ------------------------------------------------------------------------------
    def attributes(self, envelope: Any, what: str) -> Attributes:
        expect(isinstance(envelope, dict) and isinstance(envelope.get("attributes"), dict),
               self.provider, what)
        attrs: Attributes = envelope["attributes"]
        return attrs

    def related(self, attrs: Attributes, name: str) -> list[Attributes] | Attributes | None:
        """An included relation: a list of attribute dicts, one dict, or None (null_resource)."""
        rel = (attrs.get("relationships") or {}).get(name)
        if not isinstance(rel, dict) or rel.get("object") == "null_resource":
            return None
        if rel.get("object") == "list":
            expect(isinstance(rel.get("data"), list), self.provider, f"{name} relationship")
            return [self.attributes(item, name) for item in rel["data"]]
        return self.attributes(rel, name)

    # -- reads --------------------------------------------------------------------------------
    async def app_list(self, path: str, *, include: str | None = None) -> list[Attributes]:
        """Every page of an Application API list, in pages of ``page_size``.

        The 1.x release line takes any per_page there (1.0-develop @706db62c,
        Servers/ServerController::index paginates what it is given); the develop branch
        (@64c78971) answers 400 QueryValueOutOfRange outside 1..100. A panel that refuses
        the size is asked again at 100, and this connection keeps 100 from then on.
        """
        params: dict[str, Any] = {"include": include} if include else {}
        try:
            return await self._pages(self.app, APP + path, {**params, "per_page": self.page_size})
        except InvalidRequest as exc:
            if self.page_size <= BOUNDED_PAGE_SIZE or "per_page" not in exc.message:
                raise
            log.info("panel bounds per_page; using %d", BOUNDED_PAGE_SIZE,
                     extra={"provider": self.provider, "refused": self.page_size})
            self.page_size = BOUNDED_PAGE_SIZE
            return await self._pages(self.app, APP + path, {**params, "per_page": self.page_size})

    async def client_list(self, path: str, per_page: int) -> list[Attributes]:
        return await self._pages(self.client, CLIENT + path, {"per_page": per_page})

    async def _pages(self, api: Upstream, path: str, params: dict[str, Any]) -> list[Attributes]:
        items: list[Attributes] = []
        page = 1
        while page <= MAX_PAGES:
            body = await api.json("GET", path, params={**params, "page": page})
            expect(isinstance(body, dict) and isinstance(body.get("data"), list),
                   self.provider, "list envelope")
            items.extend(self.attributes(item, "list item") for item in body["data"])
            pagination = (body.get("meta") or {}).get("pagination") or {}
            total_pages = pagination.get("total_pages")
            # Some lists (subusers) are plain collections without pagination meta.
            if not isinstance(total_pages, int) or page >= total_pages or not body["data"]:
                break
            page += 1
        return items

    async def app_item(self, method: str, path: str, what: str,
                       body: dict[str, Any] | None = None) -> Attributes:
        return self.attributes(await self.app.json(method, APP + path, json=body), what)

    async def client_item(self, method: str, path: str, what: str,
                          body: dict[str, Any] | None = None) -> Attributes:
        return self.attributes(await self.client.json(method, CLIENT + path, json=body), what)

    # -- writes answering 204 -----------------------------------------------------------------
    async def app_send(self, method: str, path: str, body: dict[str, Any] | None = None) -> None:
        await self.app.request(method, APP + path, json=body)

    async def client_send(self, method: str, path: str,
                          body: dict[str, Any] | None = None) -> None:
        await self.client.request(method, CLIENT + path, json=body)
