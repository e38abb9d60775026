"""DirectAdmin adapter: users as hosting Accounts, their domains as DNS zones (legacy API).

Batching: DirectAdmin has no bulk user detail call, so ``list_accounts`` is
``CMD_API_SHOW_ALL_USERS`` (names) and then, per user and at most 8 at a time,
``SHOW_USER_CONFIG`` + ``SHOW_USER_USAGE`` + ``SHOW_DOMAINS``: 1 + 3N calls (1 + 2N with the
``usage`` option off). ``get_accounts(ids)`` reads only the requested users. Lifecycle calls are
one request each; ``CMD_API_SELECT_USERS`` takes ``select0..N``, so suspending or deleting
several users is still one call (``suspend_accounts``).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import httpx

from panelql.domain.catalogue import CatalogueEntry
from panelql.domain.records import (
    AccountRecord,
    AccountSpec,
    DatabaseRecord,
    DatabaseSpec,
    LoginLink,
    Usage,
    UsageLimits,
)
from panelql.domain.status import AccountStatus, map_status
from panelql.providers.config import ConnectionConfig
from panelql.providers.contract import Capability, Family, HostingProvider
from panelql.providers.directadmin import catalogue, wire
from panelql.providers.directadmin.client import DirectAdminUpstream, is_outage, read_error
from panelql.providers.directadmin.dns import DirectAdminDns
from panelql.providers.directadmin.mapping import ACCOUNT_STATUS
from panelql.providers.errors import InvalidRequest, NotFound
from panelql.providers.http import ClientFactory, expect

DA_DATE = "%a %b %d %H:%M:%S %Y"  # date_created=Wed Nov 23 14:07:46 2022
LOGIN_URL_EXPIRY = "30m"  # DirectAdmin's own default is 3 days; a link in a mail needs less
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(expiry: str) -> timedelta:
    """``30m`` → 30 minutes (DirectAdmin's s/m/h/d suffixes)."""
    unit = _UNITS.get(expiry[-1:], 60)
    number = expiry[:-1] if expiry[-1:] in _UNITS else expiry
    return timedelta(seconds=int(number) * unit if number.isdigit() else 1800)


def _flag(value: Any, default: bool) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return default if value is None else bool(value)


def _usage(config: dict[str, Any], usage: dict[str, Any]) -> Usage:
    """SHOW_USER_USAGE's quota and bandwidth (MB used; bandwidth counts this month), against
    SHOW_USER_CONFIG's limits of the same names ("unlimited" → None)."""
    return Usage(disk_mb=_mb(usage.get("quota")), bandwidth_mb=_mb(usage.get("bandwidth")),
                 limits=UsageLimits(disk_mb=_mb(config.get("quota")),
                                    bandwidth_mb=_mb(config.get("bandwidth"))))


def parse_da_date(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(" ".join(value.split()), DA_DATE).replace(tzinfo=UTC)
    except ValueError:
        return None


def _mb(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None  # "unlimited" or missing


class DirectAdminProvider(DirectAdminDns, HostingProvider):
    kind = "directadmin"
    families = frozenset({Family.HOSTING, Family.DNS})
    capabilities = frozenset({
        Capability.ACCOUNT_READ, Capability.DNS_READ, Capability.ACCOUNT_CREATE,
        Capability.ACCOUNT_SUSPEND, Capability.ACCOUNT_PACKAGE, Capability.ACCOUNT_PASSWORD,
        Capability.ACCOUNT_DELETE, Capability.DNS_ZONE_WRITE, Capability.DNS_RECORD_WRITE,
        Capability.LOGIN_URL, Capability.CATALOGUE_READ, Capability.DATABASE_CREATE,
    })

    @classmethod
    def from_config(cls, config: ConnectionConfig, clients: ClientFactory) -> Self:
        username = config.credential("username")
        secret_name = "password" if "password" in config.credentials else "login_key"
        password = config.credential(secret_name)
        options = config.options
        client = clients.build(config.base_url.rstrip("/"),
                               auth=httpx.BasicAuth(username, password),
                               timeout=config.timeout_seconds,
                               verify=_flag(options.get("verify_tls"), True),
                               outage=is_outage)
        return cls(config, DirectAdminUpstream(client, config.name, read_error),
                   username=username, password=password,
                   json_mode=_flag(options.get("json"), True))

    @property
    def _with_usage(self) -> bool:
        return _flag(self.config.options.get("usage"), True)

    # -- reads --------------------------------------------------------------------------------
    async def catalogue(self) -> list[CatalogueEntry]:
        return await catalogue.read(self._call, self.name)

    async def list_accounts(self) -> list[AccountRecord]:
        users = await self._user_names()
        return list(await asyncio.gather(*(self._account(u) for u in users)))

    async def get_accounts(self, ids: Sequence[str]) -> Mapping[str, AccountRecord]:
        # The names list is one cheap call and tells "missing" apart from "failing"; only the
        # requested users' details are read after it.
        known = set(await self._user_names())
        wanted = [u for u in dict.fromkeys(ids) if u in known]
        accounts = await asyncio.gather(*(self._account(u) for u in wanted))
        return {a.id: a for a in accounts}

    async def _account(self, user: str) -> AccountRecord:
        async with self._per_user:
            config, usage = await asyncio.gather(
                self._call("SHOW_USER_CONFIG", params={"user": user}),
                self._call("SHOW_USER_USAGE", params={"user": user}) if self._with_usage
                else _none(),
            )
        domains = await self._user_domains(user)
        return self._account_record(user, config, usage, domains)

    def _account_record(self, user: str, config: Any, usage: Any,
                        domains: list[str]) -> AccountRecord:
        expect(isinstance(config, dict), self.name, "user config")
        raw = str(config.get("suspended") or "").lower() or None
        primary = config.get("domain")
        if isinstance(primary, str) and primary and primary not in domains:
            domains = [primary, *domains]
        return AccountRecord(
            connection=self.name, id=user, username=str(config.get("username") or user),
            email=config.get("email") or None,
            status=map_status(ACCOUNT_STATUS, raw, AccountStatus.UNKNOWN, source=self.kind),
            raw_status=raw, package=config.get("package") or None, domains=domains,
            usage=_usage(config, usage) if isinstance(usage, dict) else None,
            created_at=parse_da_date(config.get("date_created")),
        )

    # -- lifecycle ----------------------------------------------------------------------------
    async def create_account(self, spec: AccountSpec) -> AccountRecord:
        package = spec.package or self.config.options.get("default_package")
        if not spec.domain or not package or not spec.email:
            raise InvalidRequest("DirectAdmin needs a domain, a package and an email",
                                 provider=self.name)
        password = spec.password or secrets.token_urlsafe(18)
        await self._post("ACCOUNT_USER", {
            "action": "create", "add": "Submit", "username": spec.username,
            "email": spec.email, "passwd": password, "passwd2": password,
            "domain": spec.domain, "package": str(package), "ip": await self._ip(),
            "notify": "no",
        })
        found = await self.get_accounts([spec.username])
        if spec.username not in found:
            raise NotFound("the new DirectAdmin user is not listed", provider=self.name)
        return found[spec.username]

    async def login_url(self, resource: str, resource_id: str) -> LoginLink:
        """A one-time login URL: ``CMD_API_LOGIN_KEYS`` as ``admin|user`` with
        ``action=create&type=one_time_url`` (after Upmind's DirectAdmin
        provider @3bfa0a7 "Fix getLoginUrl() for newer versions of DA"; the docs' login keys
        page and ``directadmin --create-login-url``). The URL is in ``result`` (JSON) or
        ``details`` (url-encoded)."""
        if resource != "Account":
            raise InvalidRequest("DirectAdmin login links are per user: give the account's id",
                                 provider=self.name, fields={"resource": "account"})
        found = await self.get_accounts([resource_id])
        if resource_id not in found:
            raise NotFound(f"DirectAdmin user {resource_id} does not exist", provider=self.name)
        expiry = str(self.config.options.get("login_url_expiry") or LOGIN_URL_EXPIRY)
        body = await self._post("LOGIN_KEYS", {
            "action": "create", "type": "one_time_url", "expiry": expiry, "clear_key": "yes",
            "login_keys_notify_on_creation": "0"}, as_user=resource_id)
        url = (body.get("result") or body.get("details")) if isinstance(body, dict) else None
        expect(isinstance(url, str) and url.startswith("http"), self.name, "login URL answer")
        return LoginLink(url=str(url), username=resource_id,
                         expires_at=datetime.now(UTC) + _duration(expiry))

    async def _ip(self) -> str:
        """The option ``ip`` if set; otherwise the first of the reseller's IPs (shared)."""
        configured = self.config.options.get("ip")
        if configured:
            return str(configured)
        ips = wire.names(await self._call("SHOW_RESELLER_IPS"), self.name, "IP list")
        if not ips:
            raise InvalidRequest("DirectAdmin has no IP to give the account", provider=self.name)
        return ips[0]

    async def suspend_account(self, account_id: str, reason: str | None) -> None:
        await self.suspend_accounts([account_id], reason)

    async def suspend_accounts(self, account_ids: Sequence[str], reason: str | None) -> None:
        """Suspend several users in one ``SELECT_USERS`` call (``select0..N``)."""
        data = {**_select(account_ids), "dosuspend": "yes", "suspend": "Suspend"}
        if reason and _flag(self.config.options.get("suspend_reason"), False):
            data["reason"] = reason  # newer DirectAdmin only; see docs/providers/directadmin.md
        await self._post("SELECT_USERS", data)

    async def unsuspend_account(self, account_id: str) -> None:
        await self.unsuspend_accounts([account_id])

    async def unsuspend_accounts(self, account_ids: Sequence[str]) -> None:
        await self._post("SELECT_USERS", {**_select(account_ids), "dounsuspend": "yes",
                                          "suspend": "Unsuspend"})

    async def change_account_package(self, account_id: str, package: str) -> None:
        await self._post("MODIFY_USER", {"action": "package", "user": account_id,
                                         "package": package})

    async def create_database(self, account_id: str, spec: DatabaseSpec) -> DatabaseRecord:
        """User level ``CMD_API_DATABASES action=create`` (the legacy API, as the
        DirectAdmin modules call it): DirectAdmin prefixes the database and its user
        with ``<account>_``. The account is checked first: acting as a user that does not exist
        fails as a login, which would read as the gateway's own key being wrong."""
        if account_id not in await self._user_names():
            raise NotFound(f"no DirectAdmin user {account_id!r}", provider=self.name)
        await self._post("DATABASES", {"action": "create", "name": spec.name, "user": spec.user,
                                       "passwd": spec.password, "passwd2": spec.password},
                         as_user=account_id)
        return DatabaseRecord(account_id=account_id, name=f"{account_id}_{spec.name}",
                              user=f"{account_id}_{spec.user}", host="localhost")

    async def change_account_password(self, account_id: str, password: str) -> None:
        await self._post("USER_PASSWD", {"username": account_id, "passwd": password,
                                         "passwd2": password})

    async def delete_account(self, account_id: str) -> None:
        await self._post("SELECT_USERS", {**_select([account_id]), "confirmed": "Confirm",
                                          "delete": "yes"})


def _select(users: Sequence[str]) -> dict[str, str]:
    if not users:
        raise InvalidRequest("no DirectAdmin users selected")
    return {f"select{i}": user for i, user in enumerate(users)}


async def _none() -> None:
    return None
